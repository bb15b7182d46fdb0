"""Event logs: record a run's lifecycle events to a file while it streams, read and replay them.

Events go on the wire as a closed set of tagged maps (``{"type": "ChunkEmitted", ...}``) whose
values are encoded by :mod:`rillet.runtime.wire.codec` — registered types only, never pickle. An exception
in a ``RunFailed`` event travels as an :class:`~rillet.runtime.wire.codec.ErrorInfo` (type and message).

>>> # async with open_event_log("run.rlog") as log:
>>> #     await chain.ainvoke(x, config={"callbacks": [log.bus]})
>>> # for ev in replay_event_log("run.rlog"): print(ev["event"])
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from rillet.runtime.errors import TruncatedLogError, WireFormatError
from rillet.runtime.events.bus import EventBus
from rillet.runtime.events.render import render_event
from rillet.runtime.events.types import EVENT_TYPES, Event, RunFailed
from rillet.runtime.wire.codec import decode_value, encode_value, error_info
from rillet.runtime.wire.logfile import open_log_writer, read_log

__all__ = [
    "EventLog",
    "decode_event",
    "encode_event",
    "open_event_log",
    "read_event_log",
    "replay_event_log",
]

_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in EVENT_TYPES}
_FIELDS = ("run_id", "name", "kind", "seq", "parent_ids", "tags", "time", "attempt")


def encode_event(event: Event) -> dict[str, Any]:
    """A msgpack-ready tree for ``event`` (exceptions become ``ErrorInfo``)."""
    data = dict(event.data)
    if isinstance(event, RunFailed) and isinstance(data.get("error"), BaseException):
        data["error"] = error_info(data["error"])
    tree: dict[str, Any] = {"type": type(event).__name__}
    for field in _FIELDS:
        tree[field] = getattr(event, field)
    tree["parent_ids"] = list(event.parent_ids)
    tree["tags"] = list(event.tags)
    tree["metadata"] = encode_value(dict(event.metadata))
    tree["data"] = encode_value(data)
    return tree


def decode_event(tree: Any) -> Event:
    """The event encoded by :func:`encode_event`.

    Raises:
        WireFormatError: an unknown type tag or missing fields, naming what was expected.
    """
    if not isinstance(tree, Mapping):
        raise WireFormatError(f"an event must be a map, got {type(tree).__name__}")
    tag = tree.get("type")
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise WireFormatError(f"unknown event type {tag!r}; expected one of {sorted(_TYPES)}")
    try:
        fields = {field: tree[field] for field in _FIELDS if field in tree}
        event: Event = cls(
            **fields,
            metadata=decode_value(tree.get("metadata", {})),
            data=decode_value(tree.get("data", {})),
        )
    except (TypeError, ValueError) as error:
        raise WireFormatError(f"malformed {tag} event: {error}") from error
    return event


class EventLog:
    """An open event log: pass :attr:`bus` in a run's ``config["callbacks"]`` to record it."""

    def __init__(self, bus: EventBus, path: str) -> None:
        self.bus, self.path = bus, path
        self.written = 0


@asynccontextmanager
async def open_event_log(
    path: str | os.PathLike[str],
    *,
    header: Mapping[str, Any] | None = None,
    bound: int = 256,
) -> AsyncIterator[EventLog]:
    """Record every event published on ``log.bus`` to ``path`` while runs stream.

    A writer task drains a bounded, lossless subscription: when the disk is slow the run waits
    rather than memory growing. On exit the log is flushed, even if the body failed.
    """
    bus = EventBus()
    sub = bus.subscribe(policy="block", bound=bound)
    log = EventLog(bus, os.fspath(path))
    async with open_log_writer(path, header=header) as writer:

        async def drain() -> None:
            with sub:
                async for event in sub:
                    tree = encode_event(event)
                    try:
                        writer.write_nowait(tree)
                    except trio.WouldBlock:
                        await writer.write(tree)
                    log.written += 1

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                try:
                    yield log
                finally:
                    bus.close()
        except BaseExceptionGroup as group:
            # The body's own exception comes out bare, as if there were no writer task.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise


def read_event_log(path_or_bytes: str | os.PathLike[str] | bytes) -> list[Event]:
    """Every event of a log file.

    Raises:
        TruncatedLogError: the file is damaged or truncated; the message names the byte
            offset and how many bytes were skipped, ``.events`` holds every complete event
            before it (decoded).
        WireFormatError: the file is not an event log, or a record is not an event.
    """
    try:
        records = read_log(path_or_bytes).records
    except TruncatedLogError as error:
        raise TruncatedLogError(str(error), offset=error.offset, skipped=error.skipped,
                                events=_decode_all(error.events)) from error
    return _decode_all(records)


def _decode_all(trees: list[Any]) -> list[Event]:
    try:
        return [decode_event(tree) for tree in trees]
    except RecursionError:
        raise WireFormatError("an event in the log nests too deeply to decode") from None


def replay_event_log(
    path_or_bytes: str | os.PathLike[str] | bytes, *, version: str = "v2"
) -> Iterator[dict[str, Any]]:
    """A saved run's events as the dicts ``astream_events`` yielded."""
    for event in read_event_log(path_or_bytes):
        rendered = render_event(event, version)
        if rendered is not None:
            yield rendered

