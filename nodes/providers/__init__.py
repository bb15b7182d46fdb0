"""Model providers: chat models and embeddings on real model servers, over httpx on trio.

Holds the provider-neutral plumbing — errors (:mod:`.errors`), the retry policy and
``Retry-After`` (:mod:`.retry`), the client with its per-run pool, timeouts and event streams
(:mod:`.http`), the server-sent-events parser (:mod:`.sse`), and the stream loop every chat
adapter shares (:mod:`.stream`) — then the adapters, which only know their own protocol:
OpenAI and compatible servers (:mod:`.openai`, :mod:`.openai_embeddings`) and Anthropic
(:mod:`.anthropic`); tool schemas from functions (:mod:`.tool_schema`) and in each provider's
format (:mod:`.tool_formats`); and picking a model from a spec string (:mod:`.spec`).

May import: :mod:`rillet.nodes` (messages, chat models), :mod:`rillet.runtime`'s errors, logs
and engine, and httpx.

>>> from rillet.nodes.providers import OpenAIChatModel, Timeouts
>>> OpenAIChatModel("llama3.2", base_url="http://localhost:11434/v1", timeout=Timeouts(read=30))
OpenAIChatModel(model='llama3.2', base_url='http://localhost:11434/v1')
"""

from rillet.nodes.providers.anthropic import AnthropicChatModel
from rillet.nodes.providers.errors import (
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
)
from rillet.nodes.providers.http import Timeouts
from rillet.nodes.providers.openai import OpenAIChatModel
from rillet.nodes.providers.openai_embeddings import OpenAIEmbeddings
from rillet.nodes.providers.retry import RetryPolicy
from rillet.nodes.providers.spec import model_from_spec
from rillet.nodes.providers.tool_schema import ToolSchemaError, function_schema
from rillet.runtime.lowlevel import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "AnthropicChatModel",
    "MissingAPIKeyError",
    "OpenAIChatModel",
    "OpenAIEmbeddings",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RetryPolicy",
    "Timeouts",
    "ToolSchemaError",
    "function_schema",
    "model_from_spec",
]

_fixup_module_metadata(__name__, globals())
