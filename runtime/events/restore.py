"""Events that crossed a wire as rendered dicts, back as :class:`~rillet.runtime.events.types.Event`
objects: how a client re-publishes a remote run's events on its own bus, nested under its own run.

A v2 dict (``render_event(event, "v2")``) keeps everything a subscriber sees: the event name
gives kind and phase, the rest is copied. What it lacks is replaced: ``seq`` comes from the
receiving run (its counter), ``time`` is the time of arrival.

>>> event = event_from_dict({"event": "on_chat_model_stream", "name": "model", "run_id": "r2",
...                          "parent_ids": ["r1"], "tags": [], "metadata": {},
...                          "data": {"chunk": "hi"}}, seq=7, parent_ids=("local",))
>>> type(event).__name__, event.kind, event.parent_ids, event.seq
('ChunkEmitted', 'chat_model', ('local', 'r1'), 7)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from rillet.runtime.errors import WireFormatError
from rillet.runtime.events.types import (
    KINDS,
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)

__all__ = ["event_from_dict"]

_PHASES: Final[dict[str, type[Event]]] = {
    "start": RunStarted, "stream": ChunkEmitted, "end": RunFinished, "error": RunFailed,
}


def event_from_dict(tree: Mapping[str, object], *, seq: int,
                    parent_ids: tuple[str, ...] = ()) -> Event:
    """The event a v2 dict was rendered from, nested under ``parent_ids`` (root first).

    Raises:
        WireFormatError: ``tree`` is not a rendered event.
    """
    name = tree.get("event")
    cls, kind = _class_and_kind(name)
    data = tree.get("data")
    if cls is CustomEvent:
        data = {"payload": data}
    if not isinstance(data, Mapping):
        raise WireFormatError(f"event {name!r} has data {data!r:.80}; expected an object")
    own_parents = tree.get("parent_ids") or []
    tags = tree.get("tags") or []
    metadata = tree.get("metadata") or {}
    if not (isinstance(own_parents, list) and isinstance(tags, list)
            and isinstance(metadata, Mapping)):
        raise WireFormatError(f"event {name!r} has malformed parent_ids, tags or metadata")
    # Every field is checked or converted above (the kind parsed against KINDS), so the
    # validating constructor has nothing left to check.
    event: Event = cls._trusted(
        str(tree.get("run_id")), str(tree.get("name")), kind, seq,
        (*parent_ids, *(str(p) for p in own_parents)), tuple(str(t) for t in tags),
        dict(metadata), dict(data), time.time(), 1,
    )
    return event


def _class_and_kind(name: object) -> tuple[type[Event], str]:
    if name == "on_custom_event":
        return CustomEvent, "chain"
    if isinstance(name, str) and name.startswith("on_"):
        kind, _, phase = name[3:].rpartition("_")
        if kind in KINDS and phase in _PHASES:
            return _PHASES[phase], kind
    raise WireFormatError(f"{name!r} is not an event name; expected on_<kind>_<phase> with a "
                          f"kind in {sorted(KINDS)} or on_custom_event")
