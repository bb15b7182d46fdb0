"""Components: messages, prompts, chat models, output parsers, documents and retrieval."""

from nodes.chat_models import BaseChatModel, ScriptedChatModel
from nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from nodes.parsers import (
    CommaSeparatedListOutputParser,
    OutputParserError,
    StrOutputParser,
)
from nodes.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from nodes.templates import ChatPromptValue, MissingVariablesError, StringPromptValue

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "BaseChatModel",
    "BaseMessage",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "CommaSeparatedListOutputParser",
    "HumanMessage",
    "MessagesPlaceholder",
    "MissingVariablesError",
    "OutputParserError",
    "PromptTemplate",
    "ScriptedChatModel",
    "StrOutputParser",
    "StringPromptValue",
    "SystemMessage",
    "ToolMessage",
]
