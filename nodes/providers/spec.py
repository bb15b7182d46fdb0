"""Pick a chat model from a short spec string, as ``rillet demo --model`` does.

Specs: ``"scripted"``; ``"openai:<model>"`` (``OPENAI_API_KEY``, or ``OPENAI_BASE_URL`` for a
local OpenAI-compatible server, which needs no key); ``"anthropic:<model>"``
(``ANTHROPIC_API_KEY``); ``"ollama:<model>"`` (``OLLAMA_BASE_URL`` or
``http://localhost:11434/v1``, no key). When the key a provider needs is missing, the
scripted model stands in and the returned note says why; this module prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from rillet.nodes.chat_models import BaseChatModel, ScriptedChatModel
from rillet.nodes.providers.anthropic import AnthropicChatModel
from rillet.nodes.providers.openai import OpenAIChatModel

__all__ = ["PROVIDERS", "model_from_spec"]

PROVIDERS: Final = ("anthropic", "ollama", "openai", "scripted")
OLLAMA_BASE_URL: Final = "http://localhost:11434/v1"


def model_from_spec(
    spec: str,
    *,
    fallback: BaseChatModel | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[BaseChatModel, str | None]:
    """The chat model a spec names, and a note when another one stands in for it.

    Args:
        spec: ``"openai:gpt-4o-mini"``, ``"anthropic:claude-sonnet-4-5"``,
            ``"ollama:llama3.2"`` or ``"scripted"``.
        fallback: the model for ``"scripted"`` and for a missing key (default: a
            ``ScriptedChatModel()``).
        env: where to look for keys and URLs (default ``os.environ``).
        options: passed to the model class (``temperature=0``, ``max_tokens=...``).

    Returns:
        ``(model, note)``: ``note`` is ``None`` when the model is the one asked for, else one
        sentence for the user, e.g. ``"OPENAI_API_KEY is not set: using the scripted model"``.

    Raises:
        ValueError: an unknown provider or a spec without a model name.

    >>> model, note = model_from_spec("anthropic:claude-sonnet-4-5", env={})
    >>> type(model).__name__, note
    ('ScriptedChatModel', 'ANTHROPIC_API_KEY is not set: using the scripted model instead of anthropic:claude-sonnet-4-5')
    """
    environ = os.environ if env is None else env
    stand_in = fallback if fallback is not None else ScriptedChatModel()
    provider, _, model = spec.strip().partition(":")
    provider = provider.lower()
    if provider == "scripted":
        return stand_in, None
    if provider not in PROVIDERS:
        raise ValueError(f"unknown model provider {provider!r} in {spec!r}; use one of "
                         f"{[f'{name}:<model>' for name in PROVIDERS[:3]] + ['scripted']}")
    if not model:
        raise ValueError(f"{spec!r} names no model; write {provider}:<model>, "
                         f"e.g. {_EXAMPLES[provider]}")

    def missing(variable: str) -> tuple[BaseChatModel, str]:
        return stand_in, f"{variable} is not set: using the scripted model instead of {spec}"

    if provider == "openai":
        key, base_url = environ.get("OPENAI_API_KEY"), environ.get("OPENAI_BASE_URL")
        if not key and not base_url:
            return missing("OPENAI_API_KEY")
        return OpenAIChatModel(model, api_key=key or None, base_url=base_url or None,
                               **options), None
    if provider == "ollama":
        base_url = environ.get("OLLAMA_BASE_URL") or OLLAMA_BASE_URL
        # A placeholder key, so an OPENAI_API_KEY in the environment is never sent to Ollama.
        return OpenAIChatModel(model, base_url=base_url, api_key="ollama", **options), None
    key = environ.get("ANTHROPIC_API_KEY")
    if not key:
        return missing("ANTHROPIC_API_KEY")
    return AnthropicChatModel(model, api_key=key, base_url=environ.get("ANTHROPIC_BASE_URL"),
                              **options), None


_EXAMPLES: Final = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-sonnet-4-5",
                    "ollama": "ollama:llama3.2", "scripted": "scripted"}
