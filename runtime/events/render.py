"""Rendering lifecycle events as LangChain-shaped dicts (``astream_events`` v1 and v2).

v2: ``{"event": "on_<kind>_<phase>", "name", "run_id", "parent_ids", "tags", "metadata",
"data"}`` where ``data`` holds ``input`` (start; end of a non-root run), ``chunk`` (stream) or
``output`` (end). v1 has the same keys with ``parent_ids`` always ``[]``, drops custom events,
and reports some outputs in its own shapes (a nested chat model's end is an LLMResult-like dict,
a retriever's is ``{"documents": [...]}``, a tool's start has no input).

Deliberate differences from LangChain (documented in the README): a failed run emits
``on_<kind>_error`` with the exception (``data["error"]``), and filtered streams never get the
root input injected into their first event.
"""

from __future__ import annotations

from typing import Any

from rillet.runtime.events.types import CustomEvent, Event, RunFailed, RunFinished, RunStarted

__all__ = ["llm_result", "render_event"]

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
        if v1 and kind == "tool":
            out = {}
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
    output = data.get("output")
    if v1:
        if event.kind == "chat_model" and event.parent_ids:
            output = llm_result(output)
        elif event.kind == "retriever":
            output = {"documents": output}
        if event.kind == "tool":
            return {"output": output}
        return {"input": data["input"], "output": output} if "input" in data else {"output": output}
    return dict(data)


def llm_result(message: Any) -> dict[str, Any]:
    """A chat model's output in LangChain's LLMResult shape (v1 events, run logs)."""
    text = getattr(message, "text", message if isinstance(message, str) else "")
    return {
        "generations": [[{"text": text, "generation_info": None, "type": "ChatGenerationChunk",
                          "message": message}]],
        "llm_output": None,
        "run": None,
        "type": "LLMResult",
    }


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
