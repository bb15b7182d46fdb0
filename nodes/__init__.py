"""Components: messages, prompts, chat models, output parsers, documents and retrieval."""

import nodes.registry  # noqa: F401  (registers wire types and n-ary addition)
from nodes.chat_models import BaseChatModel, ScriptedChatModel
from nodes.documents import Document
from nodes.embeddings import BaseEmbeddings, Embeddings, HashingEmbeddings
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
from nodes.retrievers import VectorStoreRetriever
from nodes.templates import ChatPromptValue, MissingVariablesError, StringPromptValue
from nodes.vectorstores import InMemoryVectorStore

__all__ = [
    "AIMessage",
    "AIMessageChunk",
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
    "MessagesPlaceholder",
    "MissingVariablesError",
    "OutputParserError",
    "PromptTemplate",
    "ScriptedChatModel",
    "StrOutputParser",
    "StringPromptValue",
    "SystemMessage",
    "ToolMessage",
    "VectorStoreRetriever",
]
