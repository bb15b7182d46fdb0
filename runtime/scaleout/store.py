"""Run event stores: each run's events, kept by attempt, read from any offset and followed live.

A run's log is a sequence of entries at *positions* ``(attempt, index)``, written as the cursor
string ``"<attempt>-<index>"`` (exactly the Redis stream id in
:mod:`rillet.runtime.scaleout.redis_store`):

- ``<a>-0``: the *attempt marker* of delivery ``a`` (which worker, when);
- ``<a>-1``, ``<a>-2``, …: that attempt's events, in the order the run emitted them;
- one *end record* after the last event of the attempt that completed (its :class:`RunOutcome`).

Writes are fenced: once attempt ``a`` began, a write of an older attempt raises
:class:`RunSuperseded`, and so does any write after the end record. So segments never
interleave, there is at most one end record, and it is the last entry. Readers resume from the
cursor of the last entry they saw; ``after=None`` starts at the latest attempt's marker.

>>> parse_cursor("2-17")
(2, 17)
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar

import attrs
import trio

from rillet.runtime.errors import RemoteError, RunNotFound, RunSuperseded
from rillet.runtime.events.types import Event
from rillet.runtime.scaleout.queue import StoreUnavailable
from rillet.runtime.wire.codec import ErrorInfo

__all__ = [
    "ATTEMPT",
    "END",
    "EVENT",
    "EventLog",
    "InMemoryEventLog",
    "LogEntry",
    "RunEventStream",
    "RunNotFound",
    "RunOutcome",
    "RunSuperseded",
    "format_cursor",
    "parse_cursor",
]

ATTEMPT: Final = "attempt"
EVENT: Final = "event"
END: Final = "end"
OUTCOMES: Final = ("finished", "failed", "dead_lettered", "cancelled")

T = TypeVar("T")


def parse_cursor(cursor: str) -> tuple[int, int]:
    """``"3-12"`` -> ``(3, 12)``.

    Raises:
        ValueError: not two non-negative integers joined by ``-``.
    """
    attempt, sep, index = cursor.partition("-")
    if not (sep and attempt.isdigit() and index.isdigit()):
        raise ValueError(f"an event cursor looks like '<attempt>-<index>' (e.g. '1-7'), "
                         f"got {cursor!r:.60}")
    return int(attempt), int(index)


def format_cursor(attempt: int, index: int) -> str:
    return f"{attempt}-{index}"


@attrs.frozen(kw_only=True)
class RunOutcome:
    """How a run ended: ``finished`` with ``output``; ``failed``, ``dead_lettered`` or
    ``cancelled`` (a client asked) with ``error``; ``attempt`` is the delivery that ended it."""

    status: str = attrs.field(validator=attrs.validators.in_(OUTCOMES))
    attempt: int = 1
    output: Any = None
    error: ErrorInfo | None = None

    def to_tree(self) -> dict[str, Any]:
        return {"status": self.status, "attempt": self.attempt, "output": self.output,
                "error": self.error}

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> RunOutcome:
        return cls(status=tree["status"], attempt=tree.get("attempt", 1),
                   output=tree.get("output"), error=tree.get("error"))


@attrs.frozen(kw_only=True)
class LogEntry:
    """One entry of a run's log: a marker (``info``), an ``event``, or the end (``outcome``)."""

    cursor: str
    attempt: int
    kind: str = attrs.field(validator=attrs.validators.in_((ATTEMPT, EVENT, END)))
    event: Event | None = None
    info: Mapping[str, Any] = attrs.field(factory=dict)
    outcome: RunOutcome | None = None

    @property
    def position(self) -> tuple[int, int]:
        return parse_cursor(self.cursor)


class EventLog(Protocol):
    """Per-run event logs; see the module docstring. Methods may raise ``StoreUnavailable``.

    Writes are idempotent per position, so a writer retries a batch after a lost reply.
    """

    async def begin(self, run_id: str, attempt: int, info: Mapping[str, Any]) -> bool:
        """Write attempt ``attempt``'s marker; False when the run already ended (skip it).

        Raises:
            RunSuperseded: a later attempt already began.
        """

    async def append(self, run_id: str, attempt: int, index: int, events: Sequence[Event]) -> None:
        """Write ``events`` at positions ``attempt-index``, ``attempt-(index+1)``, …

        Raises:
            RunSuperseded: a later attempt began, the run ended, or its log is gone.
        """

    async def end(self, run_id: str, attempt: int, index: int, outcome: RunOutcome) -> None:
        """Write the end record at ``attempt-index`` and start the log's expiry clock.

        Raises:
            RunSuperseded: a later attempt began or the run already ended.
        """

    async def read(
        self, run_id: str, after: str | None, *, count: int = 100, timeout: float = 0.0
    ) -> list[LogEntry]:
        """Up to ``count`` entries after cursor ``after`` (None: from the latest attempt's
        marker), waiting up to ``timeout`` seconds for the first one."""

    async def last(self, run_id: str) -> LogEntry | None:
        """The newest entry of the run's log; None when there is no log."""


@attrs.define
class _RunLog:
    entries: deque[LogEntry]
    top: tuple[int, int] = (0, -1)
    ended: bool = False
    expires_at: float = math.inf
    changed: trio.Event = attrs.field(factory=trio.Event)


class InMemoryEventLog:
    """An :class:`EventLog` in this process's memory (events kept as objects, not encoded).

    Each run keeps its newest ``cap`` entries; a log is dropped ``ttl`` seconds after its end
    record (trio's clock). The single-process default, and what tests use without Redis.

    >>> log = InMemoryEventLog(cap=10_000, ttl=3600.0)
    """

    def __init__(self, *, cap: int = 10_000, ttl: float = 3600.0) -> None:
        if cap < 2 or ttl <= 0:
            raise ValueError(f"cap must be >= 2 and ttl > 0, got cap={cap}, ttl={ttl}")
        self.cap, self.ttl = cap, ttl
        self._logs: dict[str, _RunLog] = {}

    def _get(self, run_id: str) -> _RunLog | None:
        log = self._logs.get(run_id)
        if log is not None and trio.current_time() >= log.expires_at:
            del self._logs[run_id]
            return None
        return log

    def _write(self, run_id: str, log: _RunLog, entries: list[LogEntry]) -> None:
        for entry in entries:
            log.entries.append(entry)
            log.top = parse_cursor(entry.cursor)
        log.changed.set()
        log.changed = trio.Event()
        self._expire_some()

    def _expire_some(self) -> None:
        # Lazily drop ended logs past their expiry, a few per write: no timer task needed.
        now = trio.current_time()
        for run_id in [r for r, log in self._logs.items() if log.expires_at <= now][:16]:
            del self._logs[run_id]

    def _check(self, run_id: str, log: _RunLog | None, attempt: int) -> _RunLog:
        if log is None:
            raise RunSuperseded(run_id, attempt, "its event log is gone")
        if log.ended:
            raise RunSuperseded(run_id, attempt, "the run already ended")
        if log.top[0] > attempt:
            raise RunSuperseded(run_id, attempt, f"attempt {log.top[0]} began")
        return log

    async def begin(self, run_id: str, attempt: int, info: Mapping[str, Any]) -> bool:
        await trio.lowlevel.checkpoint()
        log = self._get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog(deque(maxlen=self.cap))
        if log.ended:
            return False
        self._check(run_id, log, attempt)
        if log.top[0] < attempt:
            self._write(run_id, log, [LogEntry(cursor=format_cursor(attempt, 0), attempt=attempt,
                                               kind=ATTEMPT, info=dict(info))])
        return True

    async def append(self, run_id: str, attempt: int, index: int, events: Sequence[Event]) -> None:
        await trio.lowlevel.checkpoint()
        log = self._check(run_id, self._get(run_id), attempt)
        fresh = [LogEntry(cursor=format_cursor(attempt, index + i), attempt=attempt, kind=EVENT,
                          event=event)
                 for i, event in enumerate(events) if (attempt, index + i) > log.top]
        self._write(run_id, log, fresh)

    async def end(self, run_id: str, attempt: int, index: int, outcome: RunOutcome) -> None:
        await trio.lowlevel.checkpoint()
        log = self._get(run_id)
        if log is None:  # a run dead-lettered before any attempt began
            log = self._logs[run_id] = _RunLog(deque(maxlen=self.cap))
        self._check(run_id, log, attempt)
        log.ended = True
        log.expires_at = trio.current_time() + self.ttl
        self._write(run_id, log, [LogEntry(cursor=format_cursor(attempt, index), attempt=attempt,
                                           kind=END, outcome=outcome)])

    async def read(
        self, run_id: str, after: str | None, *, count: int = 100, timeout: float = 0.0
    ) -> list[LogEntry]:
        await trio.lowlevel.checkpoint()
        found = self._after(run_id, after, count)
        with trio.move_on_after(timeout):
            while not found:
                log = self._get(run_id)
                if log is None:  # not begun yet: poll, since there is no log to wait on
                    await trio.sleep(min(0.05, timeout))
                else:
                    await log.changed.wait()
                found = self._after(run_id, after, count)
        return found

    def _after(self, run_id: str, after: str | None, count: int) -> list[LogEntry]:
        log = self._get(run_id)
        if log is None or not log.entries:
            return []
        start = (log.top[0], -1) if after is None else parse_cursor(after)
        first = bisect.bisect_right(log.entries, start, key=_position)
        return list(itertools.islice(log.entries, first, first + count))

    async def last(self, run_id: str) -> LogEntry | None:
        await trio.lowlevel.checkpoint()
        log = self._get(run_id)
        return log.entries[-1] if log is not None and log.entries else None


def _position(entry: LogEntry) -> tuple[int, int]:
    return entry.position


def raise_for_outcome(outcome: RunOutcome) -> Any:
    """The output of a finished run; a failed, dead-lettered or cancelled one raises
    ``RemoteError``."""
    if outcome.status == "finished":
        return outcome.output
    error = outcome.error or ErrorInfo(type="RunFailed", message="no error recorded")
    if outcome.status == "dead_lettered":
        raise RemoteError("DeadLettered", error.message)
    if outcome.status == "cancelled":
        raise RemoteError("RunCancelled", error.message)
    raise RemoteError(error.type, error.message)


class RunEventStream(Generic[T]):
    """Follow one run's events live from any process: an async iterator with a cursor.

    Yields ``transform(event)`` for each stored event after ``after`` (None: from the latest
    attempt's start), skipping ``None`` results, and ends after the run's end record — raising
    ``RemoteError`` there when the run failed or was dead-lettered, as ``astream_events``
    raises the run's error after its error events. After each item, :attr:`cursor` is the
    position to resume from (``after=stream.cursor``), :attr:`attempt` the attempt being read.
    An outage is retried with backoff for up to ``reconnect_timeout`` seconds, then raised.

    Example::

        stream = RunEventStream(log, run_id, transform=lambda e: e)
        async for event in stream:
            remember(stream.cursor)
    """

    def __init__(
        self, log: EventLog, run_id: str, *, after: str | None = None,
        transform: Callable[[Event], T | None], page: int = 100, wait: float = 5.0,
        reconnect_timeout: float = 30.0,
    ) -> None:
        if after is not None:
            parse_cursor(after)
        self.run_id, self.cursor = run_id, after
        self.attempt, self.lost = 0, 0
        self.outcome: RunOutcome | None = None
        self._log, self._transform, self._page, self._wait = log, transform, page, wait
        self._reconnect_timeout = reconnect_timeout
        self._buffer: deque[LogEntry] = deque()
        # Resuming from a cursor presumes a log; from the start, the run may still be queued.
        self._checked = after in (None, "0-0")
        self._closed = False

    def __aiter__(self) -> RunEventStream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._closed:
            while self._buffer:
                entry = self._buffer.popleft()
                self._count_gap(entry)
                self.cursor = entry.cursor
                if entry.kind == END:
                    assert entry.outcome is not None
                    self.outcome = entry.outcome
                    self._buffer.clear()
                    raise_for_outcome(entry.outcome)
                    raise StopAsyncIteration
                self.attempt = max(self.attempt, entry.attempt)
                if entry.kind == EVENT and entry.event is not None:
                    out = self._transform(entry.event)
                    if out is not None:
                        return out
            if self.outcome is not None:
                break
            self._buffer.extend(await self._read())
        raise StopAsyncIteration

    def _count_gap(self, entry: LogEntry) -> None:
        # Within one attempt positions are consecutive: a jump means the cap trimmed entries
        # this reader had not read yet.
        if self.cursor is not None and entry.kind != END:
            attempt, index = parse_cursor(self.cursor)
            if entry.attempt == attempt and entry.position[1] > index + 1:
                self.lost += entry.position[1] - index - 1

    async def _read(self) -> list[LogEntry]:
        deadline, delay = math.inf, 0.05
        while True:
            try:
                if not self._checked and await self._log.last(self.run_id) is None:
                    raise RunNotFound(f"run {self.run_id!r} has no event log (it expired, or "
                                      f"the id is unknown); cannot resume after {self.cursor}")
                self._checked = True
                return await self._log.read(self.run_id, self.cursor, count=self._page,
                                            timeout=self._wait)
            except StoreUnavailable:
                now = trio.current_time()
                deadline = min(deadline, now + self._reconnect_timeout)
                if now >= deadline:
                    raise
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def aclose(self) -> None:
        """Stop following (nothing to release: reads hold no resources between items)."""
        self._closed = True
        self._buffer.clear()
        await trio.lowlevel.checkpoint()
