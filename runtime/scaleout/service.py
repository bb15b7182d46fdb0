"""Scale-out: workers that take runs from a :class:`RunQueue` and store every event in an
:class:`EventLog`, and the client that submits runs and follows them from any machine.

With Redis (:func:`open_redis_backends`) workers on many machines share one queue; with the
in-memory backends everything stays in one process. The worker, for each lease:

1. dead-letters it if it was delivered more than ``max_deliveries`` times, or names an unknown
   graph;
2. writes the attempt marker (``EventLog.begin``); a run that already ended is acknowledged;
3. runs the graph with ``attempt`` on its events while a task renews the lease every
   ``lease_timeout / 3`` s, and appends the events in batches as they come;
4. writes the end record (output, or the error) and only then acknowledges the lease.

An outage of the store makes every step retry with exponential backoff; a refused write (a later
attempt took over) or a lost lease stops the run without acknowledging it.

Delivery guarantee: executed at least once, completed exactly once (one end record, then the
acknowledgement); a redelivered run restarts as attempt n+1, after attempt n's events, never
interleaved with them (``docs_scaleout.md`` has the details).

>>> # async with open_scaleout_client("redis://127.0.0.1:6379/0") as client:
>>> #     run_id = await client.submit("joke", {"topic": "parrot"})
>>> #     async for ev in client.astream_events(run_id): print(ev["event"])
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

import attrs
import trio

from rillet.runtime.chunks import DELTA, Accumulator
from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.protocols import Launchable
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.events.render import render_event
from rillet.runtime.events.types import Event
from rillet.runtime.logs import get_logger
from rillet.runtime.scaleout.queue import Lease, RunQueue, RunSubmission, StoreUnavailable
from rillet.runtime.scaleout.store import (
    END,
    EventLog,
    RunEventStream,
    RunOutcome,
    RunSuperseded,
    raise_for_outcome,
)
from rillet.runtime.wire.codec import ErrorInfo, encode_value, error_info

if TYPE_CHECKING:
    from rillet.runtime.scaleout.redis_queue import RedisRunQueue
    from rillet.runtime.scaleout.redis_store import RedisEventLog

__all__ = ["RunStatus", "ScaleoutClient", "ScaleoutStatistics", "ScaleoutWorker", "WorkerSettings",
           "open_redis_backends", "open_scaleout_client"]

R = TypeVar("R")


@attrs.frozen(kw_only=True)
class WorkerSettings:
    """Knobs of one worker process (the lease timeout belongs to the queue)."""

    concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    #: Deliveries before a run is dead-lettered instead of run again.
    max_deliveries: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: False: a run whose graph raises ends ``failed`` (the error is its result). True: it is
    #: redelivered, and dead-lettered with its last error after ``max_deliveries``.
    retry_errors: bool = False
    event_batch: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    claim_timeout: float = 1.0
    backoff_max: float = 5.0


@attrs.frozen
class ScaleoutStatistics:
    """A snapshot of one scale-out worker; ``lost``: runs another worker took over."""

    running: int
    completed: int
    failed: int
    lost: int
    dead_lettered: int


class ScaleoutWorker:
    """Takes runs from ``queue``, runs them, stores their events in ``events``.

    ``run()`` serves until :meth:`stop` (then lets running runs finish) or cancellation (then
    releases its leases so another worker restarts them at once).

    Example::

        worker = ScaleoutWorker({"joke": chain}, queue, events)
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
    """

    def __init__(self, graphs: Mapping[str, Launchable], queue: RunQueue, events: EventLog, *,
                 consumer: str | None = None, settings: WorkerSettings = WorkerSettings()) -> None:
        self.graphs, self.queue, self.events, self.settings = dict(graphs), queue, events, settings
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.counts = {"completed": 0, "failed": 0, "lost": 0, "dead_lettered": 0}
        self.running = 0
        self._stopping = False
        self._slot_freed = trio.Event()
        self._outage = False
        self.log = get_logger(consumer=self.consumer)

    def statistics(self) -> ScaleoutStatistics:
        """Runs in progress, and how the served ones ended."""
        return ScaleoutStatistics(running=self.running, **self.counts)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Stop claiming; ``run()`` returns once the runs in progress have ended."""
        self._stopping = True
        self._slot_freed.set()

    async def run(self, *, task_status: trio.TaskStatus[ScaleoutWorker] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self.log.info("worker_started", graphs=sorted(self.graphs))
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            while not self._stopping:
                free = self.settings.concurrency - self.running
                if free <= 0:
                    await self._slot_freed.wait()
                    self._slot_freed = trio.Event()
                    continue
                leases = await self._retrying(self.queue.claim, self.consumer, count=free,
                                              timeout=self.settings.claim_timeout)
                for lease in leases:
                    self.running += 1
                    nursery.start_soon(self._serve, lease)
        with trio.move_on_after(2):
            await self._retrying(self.queue.retire, self.consumer)
        self.log.info("worker_stopped", **self.counts)

    async def _retrying(self, fn: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
        """``await fn(...)``, retried with exponential backoff while the store is unavailable."""
        delay = 0.05
        while True:
            try:
                result = await fn(*args, **kwargs)
            except StoreUnavailable as error:
                if not self._outage:
                    self._outage = True
                    self.log.warning("store_unavailable", error=str(error))
                await trio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: no thundering herd
                delay = min(delay * 2, self.settings.backoff_max)
                continue
            if self._outage:
                self._outage = False
                self.log.info("store_recovered")
            return result

    async def _serve(self, lease: Lease) -> None:
        log = self.log.bind(run_id=lease.run_id, attempt=lease.attempt, graph=lease.request.graph)
        try:
            status = await self._serve_lease(lease)
            self.counts[status] += 1
            log.info("run_" + status)
        except trio.Cancelled:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 2):
                try:  # shutting down: let another worker restart it now, not after the lease
                    await self.queue.release(lease)
                except StoreUnavailable:
                    pass
            raise
        except Exception as error:  # noqa: BLE001 - one broken run must not stop the worker
            log.exception("run_serving_crashed", error=repr(error))
        finally:
            self.running -= 1
            self._slot_freed.set()

    async def _serve_lease(self, lease: Lease) -> str:
        name, settings = lease.request.graph, self.settings
        if lease.attempt > settings.max_deliveries:
            return await self._bury(lease, 1, f"delivered {lease.attempt} times without completing "
                                              f"(max_deliveries={settings.max_deliveries})")
        graph = self.graphs.get(name)
        if graph is None:
            return await self._bury(lease, 1, f"unknown graph {name!r}; this worker serves "
                                              f"{sorted(self.graphs)}")
        info = {"consumer": self.consumer, "entry": lease.entry_id, "started_at": time.time()}
        try:
            if not await self._retrying(self.events.begin, lease.run_id, lease.attempt, info):
                # An earlier attempt completed it and died before acknowledging.
                await self._retrying(self.queue.acknowledge, lease)
                return "completed"
        except RunSuperseded:
            return "lost"
        async with trio.open_nursery() as nursery:
            lost = trio.CancelScope()
            nursery.start_soon(self._keep_lease, lease, lost)
            with lost:
                index, outcome = await self._execute(lease, graph, lost)
            if lost.cancelled_caught or lost.cancel_called:
                nursery.cancel_scope.cancel()
                return "lost"
            try:
                if outcome.status == "failed" and settings.retry_errors:
                    if lease.attempt < settings.max_deliveries:
                        await self._retrying(self.queue.release, lease)
                        return "failed"
                    error = outcome.error or ErrorInfo(type="Error", message="")
                    return await self._bury(lease, index, f"failed {lease.attempt} times; last "
                                                          f"error: {error.type}: {error.message}")
                await self._retrying(self.events.end, lease.run_id, lease.attempt, index, outcome)
                await self._retrying(self.queue.acknowledge, lease)
            except RunSuperseded:
                return "lost"
            finally:
                nursery.cancel_scope.cancel()
        return "completed" if outcome.status == "finished" else "failed"

    async def _keep_lease(self, lease: Lease, lost: trio.CancelScope) -> None:
        """Renew every ``lease_timeout / 3`` s; cancel ``lost`` when another worker has it."""
        period = self.queue.lease_timeout / 3
        while True:
            await trio.sleep(period)
            try:
                owned = await self.queue.renew(lease)
            except StoreUnavailable:
                continue  # nobody can take it while the store is down; try again next period
            if not owned:
                lost.cancel()
                return

    async def _execute(self, lease: Lease, graph: Launchable,
                       lost: trio.CancelScope) -> tuple[int, RunOutcome]:
        """Run the graph once; return the next log index and the outcome."""
        request, bus = lease.request, EventBus()
        sub = bus.subscribe(policy="block", bound=2 * self.settings.event_batch)
        acc = Accumulator(graph.output_mode(DELTA))
        next_index = [1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._append, lease, sub, next_index, lost)
            try:
                config = attrs.evolve(RunConfig.from_dict(request.config), run_id=request.run_id)
                handle = graph.launch([request.input], config, start_input=request.input,
                                      buses=(bus,), sink=True, attempt=lease.attempt,
                                      on_done=lambda _handle: bus.close())
                async for chunk in handle.chunks():
                    acc.add(chunk)
                output = graph.finalize(acc.value)
                encode_value(output)  # a result that cannot travel fails the run, not the worker
                outcome = RunOutcome(status="finished", attempt=lease.attempt, output=output)
            except Exception as error:  # noqa: BLE001 - the run's own failure is its outcome
                outcome = RunOutcome(status="failed", attempt=lease.attempt,
                                     error=error_info(error))
            bus.close()  # a config that launch rejected started no run to close it
        return next_index[0], outcome

    async def _append(self, lease: Lease, sub: Subscription, next_index: list[int],
                      lost: trio.CancelScope) -> None:
        """Store the run's events in batches of whatever is ready (up to ``event_batch``)."""
        with sub:
            async for first in sub:
                batch: list[Event] = [first]
                while len(batch) < self.settings.event_batch:
                    try:
                        batch.append(sub.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    await self._retrying(self.events.append, lease.run_id, lease.attempt,
                                         next_index[0], batch)
                except RunSuperseded:
                    lost.cancel()
                    return
                next_index[0] += len(batch)

    async def _bury(self, lease: Lease, index: int, reason: str) -> str:
        outcome = RunOutcome(status="dead_lettered", attempt=lease.attempt,
                             error=ErrorInfo(type="DeadLettered", message=reason))
        try:  # the end record first, so followers learn; then out of the queue
            await self._retrying(self.events.end, lease.run_id, lease.attempt, index, outcome)
        except RunSuperseded:
            pass  # ended already (this is a redelivery of a bury that crashed halfway)
        await self._retrying(self.queue.dead_letter, lease, reason)
        return "dead_lettered"


@attrs.frozen(kw_only=True)
class RunStatus:
    """Where a run is: ``unknown`` (queued, or never submitted, or expired), ``running``,
    ``finished``, ``failed`` or ``dead_lettered``; with its attempt and that attempt's worker."""

    state: str
    attempt: int = 0
    consumer: str | None = None
    cursor: str | None = None


class ScaleoutClient:
    """Submit runs and follow them: the surface ``rillet serve --redis`` builds on.

    Example::

        client = ScaleoutClient(queue, events)
        run_id = await client.submit("joke", {"topic": "parrot"})
        async for ev in client.astream_events(run_id, version="v2"): ...
        joke = await client.result(run_id)
    """

    def __init__(self, queue: RunQueue, events: EventLog) -> None:
        self.queue, self.log = queue, events

    async def submit(self, graph: str, input: Any, config: Mapping[str, Any] | None = None, *,
                     run_id: str | None = None) -> str:
        """Queue a run of the graph a worker serves as ``graph``; returns its ``run_id``.

        Raises:
            WireFormatError: ``input`` or ``config`` holds a value of no wire type.
            StoreUnavailable: the queue cannot be reached.
        """
        return await self.queue.submit(RunSubmission.new(graph, input, config, run_id=run_id))

    def events(self, run_id: str, *, after: str | None = None) -> RunEventStream[Event]:
        """The run's events (``Event`` objects) live; ``after``: a cursor to resume from."""
        return RunEventStream(self.log, run_id, after=after, transform=lambda event: event)

    def astream_events(
        self, run_id: str, *, version: str = "v2", after: str | None = None,
        **filters: Unpack[FilterOptions],
    ) -> RunEventStream[dict[str, Any]]:
        """The run's events as the dicts ``Runnable.astream_events`` yields."""
        if version not in ("v1", "v2"):
            raise ValueError(f"astream_events version must be 'v1' or 'v2', got {version!r}")
        rules = EventFilter.from_options(filters)

        def render(event: Event) -> dict[str, Any] | None:
            return render_event(event, version) if rules.accepts(event) else None

        return RunEventStream(self.log, run_id, after=after, transform=render)

    async def status(self, run_id: str) -> RunStatus:
        """The run's state from its event log (one or two reads)."""
        last = await self.log.last(run_id)
        if last is None:
            return RunStatus(state="unknown")
        if last.kind == END and last.outcome is not None:
            return RunStatus(state=last.outcome.status, attempt=last.attempt, cursor=last.cursor)
        first = await self.log.read(run_id, None, count=1)
        consumer = first[0].info.get("consumer") if first and first[0].kind == "attempt" else None
        return RunStatus(state="running", attempt=last.attempt, consumer=consumer,
                         cursor=last.cursor)

    async def result(self, run_id: str) -> Any:
        """Wait for the run to end; its output, or ``RemoteError`` if it failed.

        Waits while the run is queued: bound it with ``trio.move_on_after``. An outage of the
        store raises ``StoreUnavailable``; call again to go on waiting.
        """
        while True:
            last = await self.log.last(run_id)
            if last is not None and last.kind == END and last.outcome is not None:
                return raise_for_outcome(last.outcome)
            # Wait for the next write, then look at the top again: reads one entry per wake-up
            # instead of decoding every event of the run.
            await self.log.read(run_id, last.cursor if last else "0-0", count=1, timeout=5.0)


@asynccontextmanager
async def open_redis_backends(
    url: str, *, prefix: str = "rillet", lease_timeout: float = 30.0, event_cap: int = 10_000,
    event_ttl: int = 3_600,
) -> AsyncIterator[tuple[RedisRunQueue, RedisEventLog]]:
    """The Redis queue and event log for ``url``, sharing one connection pool."""
    from rillet.runtime.scaleout.redis_client import RedisKeys, open_redis
    from rillet.runtime.scaleout.redis_queue import RedisRunQueue
    from rillet.runtime.scaleout.redis_store import RedisEventLog

    keys = RedisKeys(prefix)
    async with open_redis(url) as redis:
        yield (RedisRunQueue(redis, keys=keys, lease_timeout=lease_timeout),
               RedisEventLog(redis, keys=keys, cap=event_cap, ttl=event_ttl))


@asynccontextmanager
async def open_scaleout_client(url: str, *, prefix: str = "rillet"
                               ) -> AsyncIterator[ScaleoutClient]:
    """A :class:`ScaleoutClient` on the Redis at ``url``; closes its connections on exit."""
    async with open_redis_backends(url, prefix=prefix) as (queue, events):
        yield ScaleoutClient(queue, events)
