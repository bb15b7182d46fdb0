"""Scale-out workers: take runs from a :class:`RunQueue`, store every event in an
:class:`EventLog`. The client that submits, follows and cancels runs is in :mod:`.client`
(re-exported here).

With Redis (:func:`open_redis_backends`) workers on many machines share one queue; with the
in-memory backends everything stays in one process. The worker, for each lease:

1. dead-letters it if it was delivered more than ``max_deliveries`` times, or names an unknown
   graph; ends it ``cancelled`` without running it if a client asked for that;
2. writes the attempt marker (``EventLog.begin``); a run that already ended is acknowledged;
3. runs the graph with ``attempt`` on its events while a task renews the lease every
   ``lease_timeout / 3`` s, and appends the events in batches as they come (and to the
   worker-wide :class:`~rillet.runtime.scaleout.feed.EventFeed` while somebody listens);
4. writes the end record (output, the error, or ``cancelled``) and only then acknowledges.

Every ``poll_interval`` seconds one task per worker looks for cancel requests of the runs it
holds (one read for all of them) and whether the feed has listeners. An outage of the store
makes every step retry with exponential backoff; a refused write (a later attempt took over)
or a lost lease stops the run without acknowledging it.

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
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from rillet.runtime.chunks import DELTA, Accumulator
from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.protocols import Launchable
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.types import Event
from rillet.runtime.logs import get_logger
from rillet.runtime.scaleout.client import (
    RunStatus,
    ScaleoutClient,
    open_redis_backends,
    open_scaleout_client,
)
from rillet.runtime.scaleout.feed import EventFeed
from rillet.runtime.scaleout.queue import Lease, RunQueue, StoreUnavailable
from rillet.runtime.scaleout.store import EventLog, RunOutcome, RunSuperseded
from rillet.runtime.wire.codec import ErrorInfo, encode_value, error_info

if TYPE_CHECKING:
    from rillet.runtime.engine.supervisor import RunHandle

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
    #: Seconds between looks for cancel requests (and for listeners of the event feed).
    poll_interval: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))


@attrs.frozen
class ScaleoutStatistics:
    """A snapshot of one scale-out worker; ``lost``: runs another worker took over."""

    running: int
    completed: int
    failed: int
    lost: int
    dead_lettered: int
    cancelled: int


@attrs.define
class _Live:
    """A run this worker executes now: its handle once launched, and why it was cancelled."""

    handle: RunHandle | None = None
    reason: str | None = None

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            if self.handle is not None:
                self.handle.cancel()


class ScaleoutWorker:
    """Takes runs from ``queue``, runs them, stores their events in ``events``.

    ``run()`` serves until :meth:`stop` (then lets running runs finish) or cancellation (then
    releases its leases so another worker restarts them at once). With a ``feed``, runs are
    published to it while it has listeners.

    Example::

        worker = ScaleoutWorker({"joke": chain}, queue, events)
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
    """

    def __init__(self, graphs: Mapping[str, Launchable], queue: RunQueue, events: EventLog, *,
                 consumer: str | None = None, settings: WorkerSettings = WorkerSettings(),
                 feed: EventFeed | None = None) -> None:
        self.graphs, self.queue, self.events, self.settings = dict(graphs), queue, events, settings
        self.feed = feed
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.counts = {"completed": 0, "failed": 0, "lost": 0, "dead_lettered": 0,
                       "cancelled": 0}
        self.running = 0
        self._live: dict[str, _Live] = {}
        self._feed_listened = False
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
            polling = trio.CancelScope()
            nursery.start_soon(self._poll, polling)
            while not self._stopping:
                free = self.settings.concurrency - self.running
                if free <= 0:
                    await self._slot_freed.wait()
                    self._slot_freed = trio.Event()
                    continue
                leases = await self._retrying(self.queue.claim, self.consumer, count=free,
                                              timeout=self.settings.claim_timeout)
                cancelled = await self._retrying(self.queue.cancel_requests,
                                                 [lease.run_id for lease in leases])
                for lease in leases:
                    self.running += 1
                    nursery.start_soon(self._serve, lease, cancelled.get(lease.run_id))
            while self.running:  # stopping: the poller still serves cancels meanwhile
                await self._slot_freed.wait()
                self._slot_freed = trio.Event()
            polling.cancel()
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

    async def _poll(self, scope: trio.CancelScope) -> None:
        """Every ``poll_interval`` s: cancel the held runs a client asked to cancel, and learn
        whether the feed has listeners."""
        with scope:
            while True:
                await trio.sleep(self.settings.poll_interval)
                try:
                    if self._live:
                        requests = await self.queue.cancel_requests(list(self._live))
                        for run_id, reason in requests.items():
                            live = self._live.get(run_id)
                            if live is not None:
                                live.cancel(reason)
                    if self.feed is not None:
                        self._feed_listened = await self.feed.listening()
                except StoreUnavailable:
                    continue  # the next poll tries again; runs wait on their own writes

    async def _serve(self, lease: Lease, cancelled: str | None = None) -> None:
        log = self.log.bind(run_id=lease.run_id, attempt=lease.attempt, graph=lease.request.graph)
        try:
            status = await self._serve_lease(lease, cancelled)
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

    async def _serve_lease(self, lease: Lease, cancelled: str | None) -> str:
        name, settings = lease.request.graph, self.settings
        if cancelled is not None:  # asked to cancel before any worker ran it
            return await self._end(lease, 1, RunOutcome(
                status="cancelled", attempt=lease.attempt,
                error=ErrorInfo(type="RunCancelled", message=cancelled)))
        if lease.attempt > settings.max_deliveries:
            return await self._bury(lease, 1, f"delivered {lease.attempt} times without "
                                              f"completing (max_deliveries="
                                              f"{settings.max_deliveries})")
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
                return await self._end(lease, index, outcome)
            except RunSuperseded:
                return "lost"
            finally:
                nursery.cancel_scope.cancel()

    async def _end(self, lease: Lease, index: int, outcome: RunOutcome) -> str:
        """Write the end record, then acknowledge; the status to count."""
        await self._retrying(self.events.end, lease.run_id, lease.attempt, index, outcome)
        await self._retrying(self.queue.acknowledge, lease)
        return {"finished": "completed", "cancelled": "cancelled"}.get(outcome.status, "failed")

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
        """Run the graph once; return the next log index and the outcome.

        A cancel request cancels the graph only: the events it emitted until then are still
        stored (the append task drains them), then the end record says ``cancelled``.
        """
        request, bus = lease.request, EventBus()
        sub = bus.subscribe(policy="block", bound=2 * self.settings.event_batch)
        acc = Accumulator(graph.output_mode(DELTA))
        next_index = [1]
        live = self._live[request.run_id] = _Live()
        publish = self.feed is not None and self._feed_listened  # decided once, as a bus does
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._append, lease, sub, next_index, lost, publish)
                try:  # a bad config is the run's failure too, not the worker's
                    config = attrs.evolve(RunConfig.from_dict(request.config),
                                          run_id=request.run_id)
                    live.handle = graph.launch([request.input], config,
                                               start_input=request.input, buses=(bus,),
                                               sink=True, attempt=lease.attempt,
                                               on_done=lambda _handle: bus.close())
                    if live.reason is not None:
                        live.handle.cancel()
                    async for chunk in live.handle.chunks():
                        acc.add(chunk)
                    output = graph.finalize(acc.value)
                    encode_value(output)  # a result that cannot travel fails the run
                    outcome = RunOutcome(status="finished", attempt=lease.attempt,
                                         output=output)
                except Exception as error:  # noqa: BLE001 - the run's own failure is its outcome
                    outcome = RunOutcome(status="failed", attempt=lease.attempt,
                                         error=error_info(error))
                bus.close()  # a config that launch rejected started no run to close it
        finally:
            if self._live.get(request.run_id) is live:  # not a newer lease of the same run
                del self._live[request.run_id]
        if live.reason is not None:  # whatever the cancelled graph ended with
            outcome = RunOutcome(status="cancelled", attempt=lease.attempt,
                                 error=ErrorInfo(type="RunCancelled", message=live.reason))
        return next_index[0], outcome

    async def _append(self, lease: Lease, sub: Subscription, next_index: list[int],
                      lost: trio.CancelScope, publish: bool) -> None:
        """Store the run's events in batches of whatever is ready (up to ``event_batch``);
        with ``publish``, also to the feed (best effort: it is for watching)."""
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
                if publish:
                    assert self.feed is not None
                    try:
                        await self.feed.publish(batch)
                    except StoreUnavailable:
                        pass  # watchers lose this batch; the run's own log has it

    async def _bury(self, lease: Lease, index: int, reason: str) -> str:
        outcome = RunOutcome(status="dead_lettered", attempt=lease.attempt,
                             error=ErrorInfo(type="DeadLettered", message=reason))
        try:  # the end record first, so followers learn; then out of the queue
            await self._retrying(self.events.end, lease.run_id, lease.attempt, index, outcome)
        except RunSuperseded:
            pass  # ended already (this is a redelivery of a bury that crashed halfway)
        await self._retrying(self.queue.dead_letter, lease, reason)
        return "dead_lettered"
