"""The worker: a long-running trio service that runs many runs at once, under limits.

``async with Worker(max_concurrent_runs=8, max_queued=32) as worker:`` gives a service that

- starts at most ``max_concurrent_runs`` runs at once; a submission beyond that waits for a slot
  (fairly, first come first served), and at most ``max_queued`` submissions wait: the next one
  gets :class:`~rillet.runtime.errors.WorkerBusy` at once instead of a queue that grows without limit;
- publishes the events of every run on one worker-wide bus (:meth:`Worker.subscribe`), each
  subscriber with its own policy — ``drop_oldest`` by default, so a slow monitor never slows
  the runs; ``block`` is lossless and parks every run behind the slowest reader;
- shuts down gracefully when the ``async with`` block ends (or :meth:`Worker.shutdown` is
  called): it stops accepting, lets running runs finish within ``shutdown_timeout`` seconds,
  then cancels the rest and waits for them to stop. A block left by an exception cancels the
  runs at once.

It runs any :class:`~rillet.runtime.engine.protocols.Launchable` (a ``rillet.graphs.Runnable``
is one), so this module imports neither ``graphs`` nor ``nodes``, and it is the in-process
:class:`~rillet.runtime.engine.protocols.RunService` behind ``rillet serve``. Its async methods
also work from asyncio (they run in the loop's trio guest; see :mod:`.hosts`).

>>> # async with Worker(max_concurrent_runs=4) as worker:
>>> #     run = await worker.submit(chain, {"topic": "parrot"})
>>> #     print(await run.result())
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Unpack

import attrs
import trio

from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.handles import WorkerRun
from rillet.runtime.engine.hosts import hosted, hosted_with
from rillet.runtime.engine.protocols import Launchable, is_launchable
from rillet.runtime.engine.scope import new_run_id
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.errors import WorkerBusy
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.logs import get_logger

__all__ = ["Worker", "WorkerStatistics"]

# Past the shutdown deadline, how long cancelled runs get to unwind before the worker gives up
# waiting (a sync function stuck in a thread cannot be interrupted).
_UNWIND_GRACE = 5.0


@attrs.frozen
class WorkerStatistics:
    """A snapshot of a worker: runs running and waiting, totals, and whether it accepts runs."""

    running: int
    waiting: int
    max_concurrent_runs: int
    max_queued: int
    accepted: int
    rejected: int
    accepting: bool
    subscribers: int


class Worker:
    """Runs many runnables concurrently under limits; see the module docstring.

    Args:
        max_concurrent_runs: runs running at once.
        max_queued: submissions that may wait for a slot; the next gets ``WorkerBusy``.
        shutdown_timeout: seconds running runs get to finish when the worker shuts down.
        event_bound: buffer of a run's own event subscription (``submit(events=True)``).

    Example::

        async with Worker(max_concurrent_runs=4) as worker:
            run = await worker.submit(chain, {"topic": "parrot"})
            async for token in run.stream():
                print(token, end="")
    """

    def __init__(
        self,
        *,
        max_concurrent_runs: int = 64,
        max_queued: int = 256,
        shutdown_timeout: float = 10.0,
        event_bound: int = 64,
    ) -> None:
        if not isinstance(max_concurrent_runs, int) or max_concurrent_runs < 1:
            raise ValueError(
                f"max_concurrent_runs must be an int >= 1, got {max_concurrent_runs!r}")
        if not isinstance(max_queued, int) or max_queued < 0:
            raise ValueError(f"max_queued must be an int >= 0, got {max_queued!r}")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout!r}")
        self.max_concurrent_runs, self.max_queued = max_concurrent_runs, max_queued
        self.shutdown_timeout, self.event_bound = shutdown_timeout, event_bound
        self.bus = EventBus()
        self._limiter = trio.CapacityLimiter(max_concurrent_runs)
        self._runs: set[WorkerRun] = set()
        self._idle = trio.Event()
        self._idle.set()
        self._waiting: set[trio.CancelScope] = set()
        self._accepting = True
        self._accepted = self._rejected = 0
        self._log = get_logger(component="worker")

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # Leaving with an error (Ctrl-C, a crash) cancels the runs at once instead of draining.
        await self.shutdown(timeout=0 if exc_type is not None else None)

    @property
    def accepting(self) -> bool:
        """False once shutdown began: every submission then gets ``WorkerBusy``."""
        return self._accepting

    async def check_store(self) -> str | None:
        """Always None: an in-process worker depends on nothing outside the process."""
        await trio.lowlevel.checkpoint()
        return None

    def statistics(self) -> WorkerStatistics:
        return WorkerStatistics(
            running=len(self._runs), waiting=len(self._waiting),
            max_concurrent_runs=self.max_concurrent_runs, max_queued=self.max_queued,
            accepted=self._accepted, rejected=self._rejected, accepting=self._accepting,
            subscribers=self.bus.statistics().subscribers,
        )

    @hosted_with(lambda run: run.cancel("its submitter was cancelled before it received the run"))
    async def submit(
        self,
        runnable: Launchable,
        input: object,
        config: RunConfig | Mapping[str, object] | None = None,
        *,
        events: bool = False,
    ) -> WorkerRun:
        """Start one run of ``runnable`` on ``input`` once a slot is free; return its handle.

        Args:
            config: the run's config (a dict, checked here, or a checked ``RunConfig``); a
                ``run_id`` is assigned when it has none.
            events: publish this run's events to the handle (``run.events()``) instead of its
                output (``run.stream()``); ``run.result()`` works either way.

        Raises:
            WorkerBusy: ``max_queued`` submissions already wait, or the worker shuts down.
            TypeError: ``runnable`` is not a runnable.
            ConfigError: ``config`` has a bad key.
        """
        if not is_launchable(runnable):
            raise TypeError(
                f"Worker.submit expected a runnable (a rillet.graphs.Runnable, or another "
                f"Launchable), got {type(runnable).__name__}: {runnable!r:.80}"
            )
        checked = RunConfig.from_dict(config)
        self._check_accepting()
        token = object()
        if self._limiter.available_tokens == 0 and len(self._waiting) >= self.max_queued:
            self._rejected += 1
            raise WorkerBusy(
                f"worker is busy: {len(self._runs)} runs running (max_concurrent_runs="
                f"{self.max_concurrent_runs}) and {len(self._waiting)} submissions waiting "
                f"(max_queued={self.max_queued}); retry later"
            )
        with trio.CancelScope() as wait_scope:
            self._waiting.add(wait_scope)
            try:
                await self._limiter.acquire_on_behalf_of(token)
            finally:
                self._waiting.discard(wait_scope)
        if wait_scope.cancelled_caught or not self._accepting:
            if not wait_scope.cancelled_caught:
                self._limiter.release_on_behalf_of(token)
            self._check_accepting()
        try:
            run = self._launch(runnable, input, checked, events, token)
        except BaseException:
            self._limiter.release_on_behalf_of(token)
            raise
        self._accepted += 1
        return run

    def _launch(self, runnable: Launchable, input: object, config: RunConfig, events: bool,
                token: object) -> WorkerRun:
        run_id = config.run_id or new_run_id()
        if config.run_id is None:
            config = attrs.evolve(config, run_id=run_id)
        own_bus = EventBus() if events else None
        sub = own_bus.subscribe(policy="block", bound=self.event_bound) if own_bus else None
        buses = (own_bus, self.bus) if own_bus is not None else (self.bus,)

        def on_done(_handle: RunHandle) -> None:
            # Sync, in the run's own task as it ends: the slot frees before the next checkpoint.
            self._limiter.release_on_behalf_of(token)
            self._runs.discard(run)
            if own_bus is not None:
                own_bus.close()
            if not self._runs:
                self._idle.set()

        handle = runnable.launch(
            [input], config, start_input=input, buses=buses, sink=not events, on_done=on_done
        )
        run = WorkerRun._create(handle, run_id=run_id, name=runnable.get_name(),
                                runnable=runnable, subscription=sub)
        self._runs.add(run)
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        return run

    def _check_accepting(self) -> None:
        if not self._accepting:
            self._rejected += 1
            raise WorkerBusy("worker is shutting down and accepts no new runs")

    def subscribe(
        self,
        *,
        policy: str = "drop_oldest",
        bound: int = 256,
        **filters: Unpack[FilterOptions],
    ) -> Subscription:
        """Subscribe to the events of every run that starts from now on.

        Filtered events never take buffer space. The subscription ends (after its buffered
        events) when the worker shuts down; close it (``with``) to leave earlier.

        Example::

            with worker.subscribe(policy="drop_oldest", include_types=["chat_model"]) as sub:
                async for event in sub:
                    print(event.run_id, event.name, event.phase)

        Raises:
            ValueError: an unknown policy or a bound < 1.
            RuntimeError: the worker has shut down.
        """
        event_filter = EventFilter.from_options(filters)
        return self.bus.subscribe(
            policy=policy, bound=bound, accept=event_filter.as_predicate(),
            # Checked once per run: runs this subscriber cannot see build no events for it.
            prefilter=event_filter.as_prefilter(),
        )

    def stop_accepting(self) -> None:
        """Refuse new submissions from now on (sync); waiting submissions get ``WorkerBusy``."""
        self._accepting = False
        for scope in tuple(self._waiting):
            scope.cancel()

    @hosted
    async def wait_idle(self) -> None:
        """Wait until no run is running."""
        while self._runs:
            await self._idle.wait()

    @hosted
    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let runs finish within ``timeout`` (default ``shutdown_timeout``),
        then cancel the rest and wait for them; end every worker subscription. Idempotent.

        Cancelling the caller skips the wait for running runs: they are cancelled at once.
        """
        self.stop_accepting()
        timeout = self.shutdown_timeout if timeout is None else timeout
        left: int | None = None
        try:
            with trio.move_on_after(timeout):
                await self.wait_idle()
        finally:
            left = len(self._runs)
            for run in tuple(self._runs):
                run.cancel(reason="the worker shut down before it finished")
            with trio.CancelScope(shield=True), trio.move_on_after(_UNWIND_GRACE):
                await self.wait_idle()
            self.bus.close()
            self._log.info("worker_stopped", cancelled=left, stuck=len(self._runs))


if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import RunService

    # mypy checks that the worker is what the HTTP endpoints need.
    _WORKER_SERVES: type[RunService] = Worker
