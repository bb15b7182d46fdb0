"""Rendering lifecycle events as LangChain-shaped dicts (``astream_events`` v1 and v2).

v2: ``{"event": "on_<kind>_<phase>", "name", "run_id", "parent_ids", "tags", "metadata",
"data"}`` where ``data`` holds ``input`` (start; end of a non-root run), ``chunk`` (stream) or
``output`` (end). The outermost run's start shows the input as the caller passed it
(``model.astream_events("hello")`` starts with ``input == "hello"``); nested runs show it as
their kind does (a chat model's ``{"messages": [[...]]}``, a retriever's ``{"query": q}``).
v1 has the same keys with ``parent_ids`` always ``[]``, drops custom events, and reports a
nested run's output in its own shapes: a chat model's end is an LLMResult-like dict, a
retriever's is ``{"documents": [...]}`` (the outermost run's output is reported as is).
These rules were checked against langchain-core 1.8.1 and 1.8.3 for roots and nested runs of
every kind (``tests/events/test_event_payloads.py`` holds the recorded shapes).

Deliberate differences from LangChain (documented in the README): a failed run emits
``on_<kind>_error`` with the exception (``data["error"]``), and filtered streams never get the
root input injected into their first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rillet.runtime.events.types import CustomEvent, Event, RunFailed, RunFinished, RunStarted

__all__ = ["llm_result", "render_event", "tool_call_id"]

_PHASE_NAMES = {RunStarted: "start", RunFinished: "end", RunFailed: "error"}


def render_event(event: Event, version: str = "v2") -> dict[str, Any] | None:
    """The LangChain-shaped dict of ``event``; ``None`` for what ``version`` does not report."""
    v1 = version == "v1"
    if isinstance(event, CustomEvent):
        if v1:
            return None
        return _shape("on_custom_event", event, event.data.get("payload"), v1)
    kind, data = event.kind, event.data
    if isinstance(event, RunStarted):
        name = f"on_{kind}_start"
        out: dict[str, Any] = dict(data)
    elif isinstance(event, RunFinished):
        name = f"on_{kind}_end"
        out = _end_data(event, v1)
    elif isinstance(event, RunFailed):
        name = f"on_{kind}_error"
        out = dict(data)
    else:
        name = f"on_{kind}_stream"
        out = dict(data)
    return _shape(name, event, out, v1)


def _end_data(event: RunFinished, v1: bool) -> dict[str, Any]:
    data = event.data
    if not v1:
        return dict(data)
    output = data.get("output")
    if event.parent_ids:  # v1 reshapes nested outputs only; the root's is reported as is
        if event.kind == "chat_model":
            output = llm_result(output)
        elif event.kind == "retriever":
            output = {"documents": output}
    return {"input": data["input"], "output": output} if "input" in data else {"output": output}


def llm_result(message: Any) -> dict[str, Any]:
    """A chat model's output in LangChain's LLMResult shape (v1 events, run logs)."""
    text = getattr(message, "text", message if isinstance(message, str) else "")
    # A streamed run ends with the added-up chunk, an invoked one with the message.
    generation = "ChatGenerationChunk" if type(message).__name__.endswith("Chunk") else (
        "ChatGeneration")
    return {
        "generations": [[{"text": text, "generation_info": None, "type": generation,
                          "message": message}]],
        "llm_output": None,
        "run": None,
        "type": "LLMResult",
    }


def tool_call_id(value: Any) -> str | None:
    """The id of the tool call a tool was called with (``on_tool_error`` reports it), if any.

    >>> tool_call_id({"name": "add", "args": {}, "id": "call_1", "type": "tool_call"})
    'call_1'
    """
    if isinstance(value, Mapping) and value.get("type") == "tool_call":
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def _shape(name: str, event: Event, data: Any, v1: bool) -> dict[str, Any]:
    return {
        "event": name,
        "name": event.name,
        "run_id": event.run_id,
        "parent_ids": [] if v1 else list(event.parent_ids),
        "tags": list(event.tags),
        "metadata": dict(event.metadata),
        "data": data,
    }
