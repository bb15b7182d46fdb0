"""Run logs: a run streamed as JSON-patch operations (``astream_log``).

The state of a run log (``RunLog.state``) is LangChain's::

    {"id", "name", "type", "streamed_output": [...], "final_output": ...,
     "logs": {"<run name>[:n]": {"id", "name", "type", "tags", "metadata", "start_time",
                                "streamed_output", "streamed_output_str", "final_output",
                                "end_time"}}}

:class:`RunLogBuilder` turns lifecycle events into patches: ``replace ""`` with the root's
state first, ``add /logs/<key>`` when a sub-run starts (a repeated name gets ``name:2``…),
``add …/streamed_output/-`` per chunk, ``add …/final_output`` and ``…/end_time`` when it ends,
and for every root chunk ``add /streamed_output/-`` plus the diff of the accumulated
``final_output``. Patches add up: ``patch + patch`` is a :class:`RunLog`.

>>> p1 = RunLogPatch({"op": "replace", "path": "", "value": {"streamed_output": []}})
>>> (p1 + RunLogPatch({"op": "add", "path": "/streamed_output/-", "value": "hi"})).state
{'streamed_output': ['hi']}
"""

from __future__ import annotations

import datetime
from pprint import pformat
from typing import Any

from rillet.runtime.chunks import add_chunks
from rillet.runtime.events.filters import EventFilter
from rillet.runtime.events.render import llm_result
from rillet.runtime.events.types import (
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)
from rillet.runtime.wire.jsonpatch import apply_patch, make_patch

__all__ = ["RunLog", "RunLogBuilder", "RunLogPatch"]


class RunLogPatch:
    """A list of JSON-patch ops (``.ops``); adding patches gives a :class:`RunLog`."""

    def __init__(self, *ops: dict[str, Any]) -> None:
        self.ops = list(ops)

    def __add__(self, other: object) -> RunLog:
        if not isinstance(other, RunLogPatch):
            return NotImplemented
        ops = self.ops + other.ops
        return RunLog(*ops, state=apply_patch(None, ops))

    def __repr__(self) -> str:
        return "RunLogPatch(" + ",\n ".join(pformat(op) for op in self.ops) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunLogPatch) and type(other) is type(self) and self.ops == other.ops

    __hash__ = None  # type: ignore[assignment]


class RunLog(RunLogPatch):
    """Patches plus the state they build (``.state``); ``run_log + patch`` applies the patch
    to a copy that shares every part the patch does not touch."""

    def __init__(self, *ops: dict[str, Any], state: object) -> None:
        super().__init__(*ops)
        self.state = state

    def __add__(self, other: object) -> RunLog:
        if not isinstance(other, RunLogPatch):
            return NotImplemented
        return RunLog(*self.ops, *other.ops, state=apply_patch(self.state, other.ops))

    def __repr__(self) -> str:
        return f"RunLog({pformat(self.state)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunLog) and self.state == other.state and self.ops == other.ops

    __hash__ = None


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _log_type(kind: str) -> str:
    # LangChain's tracer calls a chat model run "llm"; so do run logs (not v2 events).
    return "llm" if kind == "chat_model" else kind


def _final_output(kind: str, output: object) -> object:
    if kind == "chat_model":
        return llm_result(output)
    if kind == "retriever":
        return {"documents": output}
    if kind == "prompt":
        return output
    return {"output": output}


class RunLogBuilder:
    """Turns one run's events into :class:`RunLogPatch`es (or cumulative :class:`RunLog`s)."""

    def __init__(
        self,
        *,
        diff: bool = True,
        with_streamed_output_list: bool = True,
        event_filter: EventFilter | None = None,
    ) -> None:
        self.diff = diff
        self.with_streamed_output_list = with_streamed_output_list
        self.filter = event_filter or EventFilter()
        self.root_id: str | None = None
        self._keys: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._final: object = None
        self._log: RunLog | None = None

    def feed(self, event: Event) -> RunLogPatch | None:
        """The patch for ``event``, or ``None`` when it changes nothing the log shows."""
        ops = self._ops(event)
        if not ops:
            return None
        patch = RunLogPatch(*ops)
        if self.diff:
            return patch
        self._log = (
            RunLog(*ops, state=apply_patch(None, ops)) if self._log is None else self._log + patch
        )
        return self._log

    def _ops(self, event: Event) -> list[dict[str, object]]:
        if isinstance(event, CustomEvent):
            return []
        if self.root_id is None and isinstance(event, RunStarted):
            self.root_id = event.run_id
            return [{"op": "replace", "path": "", "value": {
                "id": event.run_id, "streamed_output": [], "final_output": None, "logs": {},
                "name": event.name, "type": _log_type(event.kind)}}]
        if event.run_id == self.root_id:
            return self._root_ops(event)
        if isinstance(event, RunStarted):
            if not self.filter.accepts_values(event.name, _log_type(event.kind), event.tags):
                return []
            count = self._counts.get(event.name, 0) + 1
            self._counts[event.name] = count
            key = event.name if count == 1 else f"{event.name}:{count}"
            self._keys[event.run_id] = key
            return [{"op": "add", "path": f"/logs/{_escape(key)}", "value": {
                "id": event.run_id, "name": event.name, "type": _log_type(event.kind),
                "tags": list(event.tags), "metadata": dict(event.metadata),
                "start_time": _iso(event.time), "streamed_output": [],
                "streamed_output_str": [], "final_output": None, "end_time": None}}]
        found = self._keys.get(event.run_id)
        if found is None:
            return []
        key = found
        base = f"/logs/{_escape(key)}"
        if isinstance(event, ChunkEmitted):
            chunk = event.data.get("chunk")
            ops = []
            if event.kind in ("chat_model", "llm"):
                text = getattr(chunk, "text", chunk if isinstance(chunk, str) else "")
                ops.append({"op": "add", "path": f"{base}/streamed_output_str/-", "value": text})
            ops.append({"op": "add", "path": f"{base}/streamed_output/-", "value": chunk})
            return ops
        if isinstance(event, RunFinished):
            return [
                {"op": "add", "path": f"{base}/final_output",
                 "value": _final_output(event.kind, event.data.get("output"))},
                {"op": "add", "path": f"{base}/end_time", "value": _iso(event.time)},
            ]
        if isinstance(event, RunFailed):
            error = event.data.get("error")
            return [
                {"op": "add", "path": f"{base}/error", "value": repr(error)},
                {"op": "add", "path": f"{base}/end_time", "value": _iso(event.time)},
            ]
        return []

    def _root_ops(self, event: Event) -> list[dict[str, object]]:
        if not isinstance(event, ChunkEmitted):
            return []
        chunk = event.data.get("chunk")
        ops: list[dict[str, object]] = []
        if self.with_streamed_output_list:
            ops.append({"op": "add", "path": "/streamed_output/-", "value": chunk})
        previous = self._final
        self._final = chunk if previous is None else add_chunks(previous, chunk)
        if isinstance(chunk, dict) and isinstance(previous, dict) and isinstance(self._final, dict):
            # Only the keys this chunk touched can have changed: diff those, not the whole dict.
            for key in chunk:
                path = f"/final_output/{_escape(str(key))}"
                if key in previous:
                    ops += _prefixed(make_patch(previous[key], self._final[key]), path)
                else:
                    ops.append({"op": "add", "path": path, "value": self._final[key]})
        else:
            ops += _prefixed(make_patch(previous, self._final), "/final_output")
        return ops


def _prefixed(ops: list[dict[str, Any]], prefix: str) -> list[dict[str, object]]:
    return [{**op, "path": prefix + op["path"]} for op in ops]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
