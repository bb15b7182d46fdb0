"""Components: messages, prompts, chat models, output parsers, documents and retrieval."""

import nodes.registry  # noqa: F401  (registers wire types and n-ary addition)
from nodes.anthropic import AnthropicChatModel
from nodes.chat_models import BaseChatModel, ScriptedChatModel
from nodes.documents import Document
from nodes.embeddings import BaseEmbeddings, Embeddings, HashingEmbeddings
from nodes.http import ProviderError
from nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from nodes.openai import OpenAIChatModel, OpenAIEmbeddings
from nodes.parsers import (
    CommaSeparatedListOutputParser,
    JsonOutputParser,
    OutputParserError,
    StrOutputParser,
)
from nodes.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from nodes.retrievers import VectorStoreRetriever
from nodes.templates import ChatPromptValue, MissingVariablesError, StringPromptValue
from nodes.tools import Tool, ToolArgumentError, tool
from nodes.vectorstores import InMemoryVectorStore

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "AnthropicChatModel",
    "BaseChatModel",
    "BaseEmbeddings",
    "BaseMessage",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "CommaSeparatedListOutputParser",
    "Document",
    "Embeddings",
    "HashingEmbeddings",
    "HumanMessage",
    "InMemoryVectorStore",
    "JsonOutputParser",
    "MessagesPlaceholder",
    "MissingVariablesError",
    "OpenAIChatModel",
    "OpenAIEmbeddings",
    "OutputParserError",
    "PromptTemplate",
    "ProviderError",
    "ScriptedChatModel",
    "StrOutputParser",
    "StringPromptValue",
    "SystemMessage",
    "Tool",
    "ToolArgumentError",
    "ToolMessage",
    "VectorStoreRetriever",
    "tool",
]
