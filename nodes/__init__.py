"""Components: messages, prompts, chat models, output parsers, documents and retrieval."""

import rillet.nodes.registry  # noqa: F401  (registers wire types and n-ary addition)
from rillet.nodes.chat_models import BaseChatModel, ScriptedChatModel
from rillet.nodes.documents import Document
from rillet.nodes.embeddings import BaseEmbeddings, Embeddings, HashingEmbeddings
from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.parsers import (
    CommaSeparatedListOutputParser,
    JsonOutputParser,
    OutputParserError,
    StrOutputParser,
)
from rillet.nodes.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from rillet.nodes.providers import (
    AnthropicChatModel,
    OpenAIChatModel,
    OpenAIEmbeddings,
    ProviderError,
)
from rillet.nodes.retrievers import VectorStoreRetriever
from rillet.nodes.templates import ChatPromptValue, MissingVariablesError, StringPromptValue
from rillet.nodes.tools import Tool, ToolArgumentError, tool
from rillet.nodes.vectorstores import InMemoryVectorStore
from rillet.runtime.lowlevel import fixup_module_metadata as _fixup_module_metadata

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

_fixup_module_metadata(__name__, globals())
