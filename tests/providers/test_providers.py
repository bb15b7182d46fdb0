"""model_from_spec: the real provider when its key is set, the scripted model otherwise."""

from __future__ import annotations

import pytest

from rillet.nodes import ScriptedChatModel
from rillet.nodes.providers import AnthropicChatModel, OpenAIChatModel, model_from_spec


def test_a_key_in_the_environment_picks_the_real_provider() -> None:
    """openai:/anthropic: specs build the adapter with the key and the model name."""
    model, note = model_from_spec("openai:gpt-4o-mini", env={"OPENAI_API_KEY": "sk-1"},
                                  temperature=0)
    assert isinstance(model, OpenAIChatModel) and note is None
    assert (model.model_name, model.temperature) == ("gpt-4o-mini", 0)
    assert model.client.headers["authorization"] == "Bearer sk-1"
    model, note = model_from_spec("anthropic:claude-sonnet-4-5",
                                  env={"ANTHROPIC_API_KEY": "sk-ant"})
    assert isinstance(model, AnthropicChatModel) and note is None
    assert model.client.base_url == "https://api.anthropic.com"


def test_a_missing_key_falls_back_to_the_scripted_model_with_a_note() -> None:
    """No key: the given fallback (or a default scripted model) and one explaining sentence."""
    story = ScriptedChatModel(responses=["Once upon a time"])
    model, note = model_from_spec("openai:gpt-4o-mini", fallback=story, env={})
    assert model is story
    assert note == "OPENAI_API_KEY is not set: using the scripted model instead of " \
                   "openai:gpt-4o-mini"
    model, note = model_from_spec("scripted", env={})
    assert isinstance(model, ScriptedChatModel) and note is None


def test_local_servers_need_no_key() -> None:
    """OPENAI_BASE_URL alone selects a local OpenAI-compatible server; ollama: has a default."""
    model, note = model_from_spec("openai:qwen2.5", env={
        "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
    assert isinstance(model, OpenAIChatModel) and note is None
    assert model.client.base_url == "http://127.0.0.1:8000/v1"
    model, _ = model_from_spec("ollama:llama3.2", env={"OPENAI_API_KEY": "sk-real"})
    assert isinstance(model, OpenAIChatModel)
    assert model.client.base_url == "http://localhost:11434/v1"
    # A real OpenAI key in the environment is never sent to the local server.
    assert model.client.headers["authorization"] == "Bearer ollama"


def test_bad_specs_say_what_would_work() -> None:
    """An unknown provider or a missing model name is a ValueError with examples."""
    with pytest.raises(ValueError, match=r"unknown model provider 'gemini' in 'gemini:pro'; "
                                         r"use one of \['anthropic:<model>'"):
        model_from_spec("gemini:pro", env={})
    with pytest.raises(ValueError, match=r"'openai' names no model; write openai:<model>, "
                                         r"e\.g\. openai:gpt-4o-mini"):
        model_from_spec("openai", env={})
