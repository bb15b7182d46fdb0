"""A queue gateway for the HTTP server: ``rillet serve --redis`` runs nothing itself.

:class:`QueueGateway` stands in for the in-process :class:`~rillet.runtime.engine.worker.Worker`
behind the HTTP endpoints: every request becomes a run submitted to the shared queue (Redis
Streams, or the in-memory queue in tests), executed by ``rillet worker`` processes on any
machine, and followed through the run's event stream. So web frontends and workers scale
separately. As in-process:

- a client that disconnects cancels its run, on whichever worker holds it (or before any
  worker claims it): the gateway asks the queue (:meth:`ScaleoutClient.cancel`), workers see
  the request within their ``poll_interval``;
- shutting down, it stops accepting, gives the runs its clients follow ``shutdown_timeout``
  seconds (10, as the Worker) and then cancels them on their workers; queued runs nobody here
  follows are left to the workers;
- a run that failed on its worker answers with the status it would get in-process (a
  ``NodeInputError`` is a 422);
- ``GET /events`` streams every run's events, from every worker, through the queue's
  worker-wide feed (:mod:`rillet.runtime.scaleout.feed`), with the drop policies only.

What differs, by design: ``/stream`` and ``/stream_events`` follow the run's current attempt;
if its worker dies and the run is redelivered, the stream gets an ``attempt`` frame and then
the output again from the start (the delivery guarantee of the scale-out section). While the
queue is unreachable, requests get 503 with ``Retry-After`` and ``/healthz`` says
``unavailable``.

Example::

    async with open_scaleout_client("redis://127.0.0.1:6379/0") as client:
        await serve({"joke": chain}, worker=QueueGateway(client, {"joke": chain}))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Unpack

import attrs
import trio

from rillet.runtime.engine.config import RunConfig
from rillet.runtime.errors import RemoteError, StoreUnavailable, WorkerBusy
from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.events.types import ChunkEmitted, Event
from rillet.runtime.scaleout.feed import FeedSubscription
from rillet.runtime.scaleout.service import ScaleoutClient

__all__ = ["GatewayStatistics", "QueueGateway", "QueuedRun"]

#: Seconds ``/healthz`` waits for the queue to answer before calling it unavailable.
_PROBE_TIMEOUT: Final = 2.0


@attrs.frozen
class GatewayStatistics:
    """What ``/healthz`` shows for a gateway: runs followed now and in all, and accepting."""

    following: int
    submitted: int
    cancelled: int
    accepting: bool
    max_concurrent_runs: int


class QueuedRun:
    """A run submitted to the queue, followed through its event stream (a ``WorkerRun`` twin).

    ``attempt`` is the attempt whose events were read last (0 before the first).
    """

    def __init__(self, gateway: QueueGateway, run_id: str) -> None:
        self.run_id = run_id
        self._gateway = gateway
        self._events = gateway.client.events(run_id)
        gateway._following += 1
        gateway._followed.add(self)
        self._open = True
        self._ended = False

    @property
    def attempt(self) -> int:
        return self._events.attempt

    async def result(self) -> Any:
        """The run's output once a worker finished it (``RemoteError`` if it failed)."""
        try:
            output = await self._gateway.client.result(self.run_id)
        except RemoteError:
            self._ended = True
            raise
        except trio.Cancelled:
            await self._abandon()
            raise
        finally:
            self._release()
        self._ended = True
        return output

    async def receive_events(self, limit: int) -> list[Event]:
        """The next event (a batch of one), ``[]`` after the last; raises the run's error."""
        try:
            return [await self._events.__anext__()]
        except StopAsyncIteration:
            self._ended = True
            return []
        except RemoteError:
            self._ended = True
            raise

    async def receive_chunks(self, limit: int) -> list[Any]:
        """The root run's next output chunks, ``[]`` at the end; raises the run's error."""
        while True:
            events = await self.receive_events(limit)
            if not events:
                return []
            chunks = [e.data.get("chunk") for e in events
                      if isinstance(e, ChunkEmitted) and not e.parent_ids]
            if chunks:
                return chunks

    async def aclose(self) -> None:
        """Stop following; a run left before its end is cancelled (its client has gone)."""
        if not self._ended:
            await self._abandon()
        self._release()
        await trio.lowlevel.checkpoint()

    async def _abandon(self, reason: str = "its HTTP client disconnected before it finished"
                       ) -> None:
        """Cancel the run on its worker (once)."""
        if self._ended:
            return
        self._ended = True
        with trio.CancelScope(shield=True, deadline=trio.current_time() + _PROBE_TIMEOUT):
            try:
                await self._gateway.client.cancel(self.run_id, reason)
                self._gateway._cancelled += 1
            except StoreUnavailable:
                pass  # it runs to its end unwatched

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._gateway._following -= 1
            self._gateway._followed.discard(self)
            if not self._gateway._followed:
                self._gateway._idle.set()


class QueueGateway:
    """The server's worker surface over a :class:`~rillet.runtime.scaleout.service.ScaleoutClient`.

    Args:
        client: submits runs, follows and cancels them; its ``feed`` serves ``GET /events``.
        runnables: the served ``name -> runnable`` map; the workers must serve the same graphs
            under the same names (``rillet worker module:attr``).
        max_concurrent_runs: how many runs one request batch submits at once.
        shutdown_timeout: on shutdown, seconds the runs this gateway's clients follow get to
            finish before they are cancelled on their workers — the in-process
            :class:`~rillet.runtime.engine.worker.Worker`'s drain, so both backends stop alike.
    """

    def __init__(self, client: ScaleoutClient, runnables: Mapping[str, Any], *,
                 max_concurrent_runs: int = 64, shutdown_timeout: float = 10.0) -> None:
        self.client = client
        self.shutdown_timeout = shutdown_timeout
        self._followed: set[QueuedRun] = set()
        self._idle = trio.Event()
        self._idle.set()
        self._names = {id(runnable): name for name, runnable in runnables.items()}
        self.max_concurrent_runs = max_concurrent_runs
        self._following = self._submitted = self._cancelled = 0
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def submit(self, runnable: Any, input: Any, config: RunConfig | None = None,
                     *, events: bool = False) -> QueuedRun:
        """Queue a run of ``runnable`` (by its served name) and start following it.

        Raises:
            WorkerBusy: the gateway is shutting down.
            StoreUnavailable: the queue cannot be reached (the server answers 503).
        """
        if not self._accepting:
            raise WorkerBusy("the server is shutting down and accepts no new runs")
        name = self._names.get(id(runnable))
        if name is None:
            raise LookupError(f"{runnable!r} is not one of the served graphs "
                              f"{sorted(self._names.values())}")
        run_id = await self.client.submit(name, input, RunConfig.from_dict(config).to_wire())
        self._submitted += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        return QueuedRun(self, run_id)

    def subscribe(self, *, policy: str = "drop_oldest", bound: int = 256,
                  **filters: Unpack[FilterOptions]) -> FeedSubscription:
        """Every run's events from every worker, through the client's feed.

        Raises:
            WorkerBusy: the client has no feed (``ScaleoutClient(..., feed=None)``).
        """
        if self.client.feed is None:
            raise WorkerBusy("GET /events needs the queue's event feed, and this gateway's "
                             "client has none; follow one run with /stream_events instead")
        accept = EventFilter.from_options(filters).as_predicate()
        return FeedSubscription(self.client.feed, policy=policy, bound=bound, accept=accept)

    async def check_store(self) -> str | None:
        """None while the queue answers; else why not (what ``/healthz`` reports)."""
        try:
            with trio.fail_after(_PROBE_TIMEOUT):
                await self.client.queue.statistics()
        except StoreUnavailable as error:
            return str(error)
        except trio.TooSlowError:
            return f"the run queue did not answer within {_PROBE_TIMEOUT:g} s"
        return None

    def statistics(self) -> GatewayStatistics:
        return GatewayStatistics(following=self._following, submitted=self._submitted,
                                 cancelled=self._cancelled, accepting=self._accepting,
                                 max_concurrent_runs=self.max_concurrent_runs)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let the runs clients follow finish within ``timeout`` (default
        ``shutdown_timeout``), then cancel the rest on their workers. Queued runs nobody here
        follows are left to the workers."""
        self._accepting = False
        timeout = self.shutdown_timeout if timeout is None else timeout
        try:
            with trio.move_on_after(timeout):
                await self._idle.wait()
        finally:
            for run in tuple(self._followed):
                await run._abandon("the server shut down before it finished")


if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import RunService

    # mypy checks that the gateway is what the HTTP endpoints need, as the Worker is.
    _GATEWAY_SERVES: type[RunService] = QueueGateway
