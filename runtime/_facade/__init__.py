"""rillet: a streaming runtime for LLM pipelines — chains run as a dataflow of actors on trio.

This file installs as the top-level ``rillet`` package (``package-dir`` in pyproject.toml maps
``rillet`` here and ``rillet.runtime``, ``rillet.graphs``, ``rillet.nodes`` to the repository's
three directories). It is a facade: the names below resolve on first use, so
``import rillet.runtime`` stays as light as the engine and ``import rillet`` costs nothing.

>>> import rillet
>>> chain = rillet.ChatPromptTemplate.from_template("hi {name}") | rillet.ScriptedChatModel(
...     responses=["Hello!"]) | rillet.StrOutputParser()
>>> chain.invoke({"name": "Ada"})
'Hello!'

The layers, each with its own ``__all__``:

- :mod:`rillet.graphs`: the Runnable API (``|``, invoke / stream / batch / events, Graph);
- :mod:`rillet.nodes`: components (messages, prompts, chat models, parsers, retrieval, tools);
- :mod:`rillet.runtime`: the engine (actors, events, bus, worker, serving, scale-out);
- :mod:`rillet.errors`: every error class, with the whole hierarchy drawn.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rillet.graphs import (
        Graph,
        Runnable,
        RunnableBranch,
        RunnableGenerator,
        RunnableLambda,
        RunnableParallel,
        RunnablePassthrough,
        RunnableSequence,
        chain,
    )
    from rillet.nodes import (
        AIMessage,
        AIMessageChunk,
        AnthropicChatModel,
        ChatPromptTemplate,
        CommaSeparatedListOutputParser,
        Document,
        HashingEmbeddings,
        HumanMessage,
        InMemoryVectorStore,
        JsonOutputParser,
        MessagesPlaceholder,
        OpenAIChatModel,
        PromptTemplate,
        ScriptedChatModel,
        StrOutputParser,
        SystemMessage,
        Tool,
        ToolMessage,
        tool,
    )
    from rillet.runtime import (
        EventBus,
        RunLog,
        RunLogPatch,
        Worker,
        configure_logging,
        dispatch_custom_event,
        open_event_log,
        read_event_log,
    )

try:
    __version__ = version("rillet")
except PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
    __version__ = "0+unknown"

_HOMES = {
    "rillet.graphs": (
        "Graph", "Runnable", "RunnableBranch", "RunnableGenerator", "RunnableLambda",
        "RunnableParallel", "RunnablePassthrough", "RunnableSequence", "chain",
    ),
    "rillet.nodes": (
        "AIMessage", "AIMessageChunk", "AnthropicChatModel", "ChatPromptTemplate",
        "CommaSeparatedListOutputParser", "Document", "HashingEmbeddings", "HumanMessage",
        "InMemoryVectorStore", "JsonOutputParser", "MessagesPlaceholder", "OpenAIChatModel",
        "PromptTemplate", "ScriptedChatModel", "StrOutputParser", "SystemMessage", "Tool",
        "ToolMessage", "tool",
    ),
    "rillet.runtime": (
        "EventBus", "RunLog", "RunLogPatch", "Worker", "configure_logging",
        "dispatch_custom_event", "open_event_log", "read_event_log",
    ),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "AnthropicChatModel",
    "ChatPromptTemplate",
    "CommaSeparatedListOutputParser",
    "Document",
    "EventBus",
    "Graph",
    "HashingEmbeddings",
    "HumanMessage",
    "InMemoryVectorStore",
    "JsonOutputParser",
    "MessagesPlaceholder",
    "OpenAIChatModel",
    "PromptTemplate",
    "RunLog",
    "RunLogPatch",
    "Runnable",
    "RunnableBranch",
    "RunnableGenerator",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "ScriptedChatModel",
    "StrOutputParser",
    "SystemMessage",
    "Tool",
    "ToolMessage",
    "Worker",
    "__version__",
    "chain",
    "configure_logging",
    "dispatch_custom_event",
    "open_event_log",
    "read_event_log",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'rillet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
