"""The run queue: where submitted runs wait for a worker, with leases, redelivery and dead letters.

A :class:`RunQueue` hands each submitted :class:`RunSubmission` to one worker at a time as a
:class:`Lease`. The worker renews the lease while the run is alive and acknowledges it only after
the run's final event is stored; a lease that is not renewed for ``lease_timeout`` seconds (its
worker died) is handed to the next worker that claims, with ``attempt`` one higher. An entry that
cannot be decoded never reaches a worker: ``claim`` moves it to the dead letters with the reason.
A client may ask for a run to be cancelled (:meth:`RunQueue.cancel`): whichever worker holds it,
or claims it later, sees the request (:meth:`RunQueue.cancel_requests`) and stops it.

Two implementations share these semantics: :class:`InMemoryRunQueue` (one process, no Redis; the
default) and :class:`rillet.runtime.scaleout.redis_queue.RedisRunQueue` (Redis Streams, many
machines).

>>> request = RunSubmission.new("joke", {"topic": "parrot"})
>>> RunSubmission.from_wire(request.to_wire()) == request
True
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from rillet.runtime.errors import StoreUnavailable, WireFormatError, WorkerBusy
from rillet.runtime.wire.codec import packb, unpackb

__all__ = [
    "DeadLetter",
    "InMemoryRunQueue",
    "Lease",
    "QueueStatistics",
    "RunQueue",
    "RunSubmission",
    "StoreUnavailable",
]


@attrs.frozen(kw_only=True)
class RunSubmission:
    """One submitted run: which graph, its input and config. What the runs queue carries."""

    run_id: str
    graph: str
    input: Any
    # Copied, so a caller mutating its dict after submitting cannot change the request.
    config: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    submitted_at: float = 0.0

    @classmethod
    def new(
        cls, graph: str, input: Any, config: Mapping[str, Any] | None = None,
        *, run_id: str | None = None,
    ) -> RunSubmission:
        """A request with a fresh ``run_id`` (or the given one), stamped with the time now."""
        if not isinstance(graph, str) or not graph:
            raise ValueError(f"graph name must be a non-empty str, got {graph!r:.80}")
        return cls(run_id=run_id or str(uuid.uuid4()), graph=graph, input=input,
                   config=dict(config or {}), submitted_at=time.time())

    def to_wire(self) -> bytes:
        """msgpack of ``{"run_id", "graph", "input", "config", "submitted_at"}``.

        Raises:
            WireFormatError: the input or config holds a value of no wire type.
        """
        return packb({"run_id": self.run_id, "graph": self.graph, "input": self.input,
                      "config": dict(self.config), "submitted_at": self.submitted_at})

    @classmethod
    def from_wire(cls, payload: bytes) -> RunSubmission:
        """The request packed by :meth:`to_wire`.

        Raises:
            WireFormatError: not msgpack, not a map, or a field missing or of the wrong type;
                the message says which (it becomes the dead letter's reason).
        """
        tree = unpackb(payload)
        if not isinstance(tree, dict):
            raise WireFormatError(f"a run entry must be a map, got {type(tree).__name__}")
        for key, kind in (("run_id", str), ("graph", str), ("config", dict)):
            if not isinstance(tree.get(key), kind):
                raise WireFormatError(
                    f"run entry field {key!r} must be a {kind.__name__}, got {tree.get(key)!r:.60}")
        if not tree["run_id"] or not tree["graph"] or "input" not in tree:
            raise WireFormatError("run entry needs a non-empty 'run_id' and 'graph' and an 'input'")
        submitted = tree.get("submitted_at", 0.0)
        if not isinstance(submitted, (int, float)):
            raise WireFormatError(
                f"run entry field 'submitted_at' must be a number, got {submitted!r}")
        return cls(run_id=tree["run_id"], graph=tree["graph"], input=tree["input"],
                   config=tree["config"], submitted_at=float(submitted))


@attrs.frozen(kw_only=True)
class Lease:
    """A worker's hold on one run: renew it while running, acknowledge it when done.

    ``attempt`` counts deliveries of the entry: 1 the first time, one more after each expiry.
    """

    request: RunSubmission
    entry_id: str
    attempt: int
    consumer: str

    @property
    def run_id(self) -> str:
        return self.request.run_id


@attrs.frozen(kw_only=True)
class DeadLetter:
    """An entry taken out of the queue for good: ``reason`` says why, ``payload`` is the entry."""

    entry_id: str
    reason: str
    run_id: str | None
    deliveries: int
    payload: bytes
    at: float


@attrs.frozen
class QueueStatistics:
    """Entries waiting for a first delivery, held under a lease, and dead-lettered."""

    waiting: int
    pending: int
    dead: int


class RunQueue(Protocol):
    """What a worker and a client need from a run queue; see the module docstring.

    Every method may raise :class:`StoreUnavailable`; callers retry with backoff.
    """

    lease_timeout: float

    async def submit(self, request: RunSubmission) -> str:
        """Queue ``request``; returns its ``run_id``."""

    async def claim(self, consumer: str, *, count: int = 1, timeout: float = 1.0) -> list[Lease]:
        """Up to ``count`` leases: expired ones first, then new entries; waits up to ``timeout``
        seconds when there is none (returns ``[]`` then)."""

    async def renew(self, lease: Lease) -> bool:
        """Reset the lease's idle time; False when the lease was lost to another worker."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up so the next claim redelivers it at once (attempt + 1)."""

    async def acknowledge(self, lease: Lease) -> None:
        """The run is complete: remove its entry for good."""

    async def dead_letter(self, lease: Lease, reason: str) -> None:
        """Move the entry to the dead letters with ``reason`` and remove it from the queue."""

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters."""

    async def retire(self, consumer: str) -> None:
        """A worker leaves: forget ``consumer`` if it holds no lease."""

    async def cancel(self, run_id: str, reason: str) -> None:
        """Ask for ``run_id`` to be cancelled, queued or running (kept for a day)."""

    async def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Which of ``run_ids`` were asked to be cancelled: ``{run_id: reason}``."""

    async def statistics(self) -> QueueStatistics: ...


@attrs.define
class _Pending:
    consumer: str
    deliveries: int
    since: float  # trio time of the last delivery or renewal


class InMemoryRunQueue:
    """A :class:`RunQueue` in this process's memory: the single-process default, and for tests.

    Bounded: ``submit`` raises :class:`~rillet.runtime.errors.WorkerBusy` when ``capacity`` entries
    wait; at most ``dead_capacity`` dead letters are kept (oldest dropped). Time is trio's clock,
    so ``MockClock`` tests lease expiry without waiting.

    >>> queue = InMemoryRunQueue(lease_timeout=30.0)
    """

    def __init__(
        self, *, lease_timeout: float = 30.0, capacity: int = 10_000, dead_capacity: int = 1_000
    ) -> None:
        if lease_timeout <= 0 or capacity < 1 or dead_capacity < 1:
            raise ValueError("lease_timeout must be > 0, capacity and dead_capacity >= 1")
        self.lease_timeout, self.capacity = lease_timeout, capacity
        self._payloads: dict[str, bytes] = {}
        self._waiting: deque[str] = deque()
        self._pending: dict[str, _Pending] = {}
        self._dead: deque[DeadLetter] = deque(maxlen=dead_capacity)
        self._cancels: dict[str, str] = {}  # oldest first; bounded by capacity
        self._count = 0
        self._changed = trio.Event()

    async def submit(self, request: RunSubmission) -> str:
        await self.submit_raw(request.to_wire())
        return request.run_id

    async def submit_raw(self, payload: bytes) -> str:
        """Queue an entry as bytes, as another client might (tests use it for bad entries)."""
        await trio.lowlevel.checkpoint()
        if len(self._payloads) >= self.capacity:
            raise WorkerBusy(f"the run queue holds {self.capacity} entries; try again later")
        self._count += 1
        entry_id = f"0-{self._count}"
        self._payloads[entry_id] = payload
        self._waiting.append(entry_id)
        self._wake()
        return entry_id

    async def claim(self, consumer: str, *, count: int = 1, timeout: float = 1.0) -> list[Lease]:
        deadline = trio.current_time() + timeout
        while True:
            leases = self._take(consumer, count)
            if leases:
                await trio.lowlevel.checkpoint()
                return leases
            now = trio.current_time()
            if now >= deadline:
                await trio.lowlevel.checkpoint()
                return []
            # Wake for a submission, or when the oldest lease could have expired.
            expiry = min((p.since + self.lease_timeout for p in self._pending.values()),
                         default=math.inf)
            with trio.move_on_at(min(deadline, max(expiry, now))):
                await self._changed.wait()

    def _take(self, consumer: str, count: int) -> list[Lease]:
        now = trio.current_time()
        taken: list[tuple[str, int]] = []
        for entry_id, pending in list(self._pending.items()):
            if len(taken) >= count:
                break
            if now - pending.since >= self.lease_timeout:
                pending.consumer, pending.since = consumer, now
                pending.deliveries += 1
                taken.append((entry_id, pending.deliveries))
        while self._waiting and len(taken) < count:
            entry_id = self._waiting.popleft()
            self._pending[entry_id] = _Pending(consumer, 1, now)
            taken.append((entry_id, 1))
        leases = []
        for entry_id, deliveries in taken:
            try:
                request = RunSubmission.from_wire(self._payloads[entry_id])
            except WireFormatError as error:
                self._bury(entry_id, f"malformed run entry: {error}", None)
                continue
            leases.append(Lease(request=request, entry_id=entry_id, attempt=deliveries,
                                consumer=consumer))
        return leases

    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        pending = self._pending.get(lease.entry_id)
        if pending is None or pending.consumer != lease.consumer:
            return False
        pending.since = trio.current_time()
        return True

    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        pending = self._pending.get(lease.entry_id)
        if pending is not None and pending.consumer == lease.consumer:
            pending.since = -math.inf
            self._wake()

    async def acknowledge(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        self._pending.pop(lease.entry_id, None)
        self._payloads.pop(lease.entry_id, None)

    async def dead_letter(self, lease: Lease, reason: str) -> None:
        await trio.lowlevel.checkpoint()
        if lease.entry_id in self._payloads:
            self._bury(lease.entry_id, reason, lease.run_id)

    def _bury(self, entry_id: str, reason: str, run_id: str | None) -> None:
        pending = self._pending.pop(entry_id, None)
        self._dead.append(DeadLetter(
            entry_id=entry_id, reason=reason, run_id=run_id,
            deliveries=pending.deliveries if pending else 0,
            payload=self._payloads.pop(entry_id), at=time.time()))

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        await trio.lowlevel.checkpoint()
        return list(self._dead)[:count]

    async def retire(self, consumer: str) -> None:
        await trio.lowlevel.checkpoint()  # consumers are not tracked apart from their leases

    async def cancel(self, run_id: str, reason: str) -> None:
        await trio.lowlevel.checkpoint()
        self._cancels[run_id] = reason
        if len(self._cancels) > self.capacity:
            del self._cancels[next(iter(self._cancels))]

    async def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        return {run_id: self._cancels[run_id] for run_id in run_ids if run_id in self._cancels}

    async def statistics(self) -> QueueStatistics:
        await trio.lowlevel.checkpoint()
        return QueueStatistics(len(self._waiting), len(self._pending), len(self._dead))

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
