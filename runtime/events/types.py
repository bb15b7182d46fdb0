"""Lifecycle events: what a run's supervisor broadcasts to subscribers.

Every event is a frozen, keyword-only attrs class carrying the run's identity (``run_id``,
``parent_ids`` root first, ``name``, ``kind``, ``tags``, ``metadata``), its ``data`` and ``seq``,
a counter shared by every run of one root run that increases by one per event, so a subscriber
can tell order and loss without timestamps. ``time`` is wall-clock seconds, for run logs.

>>> ev = RunStarted(run_id="r1", name="parser", kind="parser", seq=0, data={})
>>> ev.phase, ev.kind
('start', 'parser')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, TypeAlias

import attrs

__all__ = [
    "KINDS",
    "ChunkEmitted",
    "CustomEvent",
    "Event",
    "RunFailed",
    "RunFinished",
    "RunStarted",
]

KINDS: Final = frozenset(
    {"chain", "chat_model", "llm", "prompt", "parser", "retriever", "tool", "embedding"}
)


@attrs.frozen(kw_only=True)
class _EventFields:
    run_id: str
    name: str
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    seq: int = attrs.field(validator=attrs.validators.ge(0))
    parent_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    tags: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    # Copied, so a caller mutating its dict later cannot change an emitted event.
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    time: float = 0.0
    # Which delivery of a run this event belongs to (scale-out redelivers runs; 1 otherwise).
    attempt: int = 1
    phase: ClassVar[str]

    @classmethod
    def _trusted(
        cls, run_id: str, name: str, kind: str, seq: int, parent_ids: tuple[str, ...],
        tags: tuple[str, ...], metadata: Mapping[str, object], data: Mapping[str, object],
        time: float, attempt: int,
    ) -> Any:
        """Build an event from a run scope's own, already-checked fields, skipping validators.

        The scopes emit three events per streamed token; the checked constructor would be half
        of astream_events' cost. ``metadata`` is the scope's own dict, never mutated after the
        scope is built, so sharing it is as safe as the copy the converter makes.
        """
        event = object.__new__(cls)
        put = object.__setattr__
        put(event, "run_id", run_id)
        put(event, "name", name)
        put(event, "kind", kind)
        put(event, "seq", seq)
        put(event, "parent_ids", parent_ids)
        put(event, "tags", tags)
        put(event, "metadata", metadata)
        put(event, "data", data)
        put(event, "time", time)
        put(event, "attempt", attempt)
        return event


@attrs.frozen(kw_only=True)
class RunStarted(_EventFields):
    """A run began: ``data == {"input": ...}`` when the input is known at start, else ``{}``."""

    phase: ClassVar[str] = "start"


@attrs.frozen(kw_only=True)
class ChunkEmitted(_EventFields):
    """A run produced one output chunk: ``data == {"chunk": ...}``."""

    phase: ClassVar[str] = "stream"


@attrs.frozen(kw_only=True)
class RunFinished(_EventFields):
    """A run ended: ``data == {"output": ..., "input": ...}`` (a root run reports no input)."""

    phase: ClassVar[str] = "end"


@attrs.frozen(kw_only=True)
class RunFailed(_EventFields):
    """A run failed: ``data == {"error": ErrorInfo-like, "input": ...}``; no end event follows."""

    phase: ClassVar[str] = "error"


@attrs.frozen(kw_only=True)
class CustomEvent(_EventFields):
    """User code inside a run called ``dispatch_custom_event(name, data)``.

    ``name`` is the user's event name; ``run_id``/``parent_ids``/``tags``/``metadata`` are those
    of the run that dispatched it; ``data == {"payload": <as given>}``.
    """

    phase: ClassVar[str] = "custom"


Event: TypeAlias = RunStarted | ChunkEmitted | RunFinished | RunFailed | CustomEvent
EVENT_TYPES: Final[tuple[type[_EventFields], ...]] = (
    RunStarted,
    ChunkEmitted,
    RunFinished,
    RunFailed,
    CustomEvent,
)
