"""A queue gateway for the HTTP server: ``rillet serve --redis`` runs nothing itself.

:class:`QueueGateway` stands in for the in-process :class:`~rillet.runtime.engine.worker.Worker` behind the
HTTP endpoints: every request becomes a run submitted to the shared queue (Redis Streams, or the
in-memory queue in tests), executed by ``rillet worker`` processes on any machine, and followed
through the run's event stream. So web frontends and workers scale separately.

What differs from serving in-process, by design:

- a client disconnect stops *following* the run, not the run (a queued run has no owner here);
- ``/stream`` and ``/stream_events`` follow the run's current attempt; if its worker dies and
  the run is redelivered, the stream sees the root run start again (``event.attempt`` goes up)
  — the delivery guarantee of the scale-out section applies;
- the worker-wide ``GET /events`` channel is not available (there is no process that sees every
  run): it answers 503 with that reason.

Example::

    async with open_scaleout_client("redis://127.0.0.1:6379/0") as client:
        await serve({"joke": chain}, worker=QueueGateway(client, {"joke": chain}))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from rillet.runtime.engine.config import RunConfig
from rillet.runtime.errors import WorkerBusy
from rillet.runtime.events.types import ChunkEmitted, Event
from rillet.runtime.scaleout.service import ScaleoutClient

__all__ = ["GatewayStatistics", "QueueGateway", "QueuedRun"]


@attrs.frozen
class GatewayStatistics:
    """What ``/healthz`` shows for a gateway: runs followed now and in all, and accepting."""

    following: int
    submitted: int
    accepting: bool
    max_concurrent_runs: int


class QueuedRun:
    """A run submitted to the queue, followed through its event stream (a ``WorkerRun`` twin)."""

    def __init__(self, gateway: QueueGateway, run_id: str) -> None:
        self.run_id = run_id
        self._gateway = gateway
        self._events = gateway.client.events(run_id)
        gateway._following += 1
        self._open = True

    async def result(self) -> Any:
        """The run's output once a worker finished it (``RemoteError`` if it failed)."""
        try:
            return await self._gateway.client.result(self.run_id)
        finally:
            self._release()

    async def receive_events(self, limit: int) -> list[Event]:
        """The next event (a batch of one), ``[]`` after the last; raises the run's error."""
        try:
            return [await self._events.__anext__()]
        except StopAsyncIteration:
            return []

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
        """Stop following (the run itself goes on on its worker)."""
        self._release()
        await trio.lowlevel.checkpoint()

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._gateway._following -= 1


class QueueGateway:
    """The server's worker surface over a :class:`~rillet.runtime.scaleout.service.ScaleoutClient`.

    Args:
        client: submits runs and follows their events.
        runnables: the served ``name -> runnable`` map; the workers must serve the same graphs
            under the same names (``rillet worker module:attr``).
        max_concurrent_runs: how many runs one request batch submits at once.
    """

    def __init__(self, client: ScaleoutClient, runnables: Mapping[str, Any], *,
                 max_concurrent_runs: int = 64, shutdown_timeout: float = 0.0) -> None:
        self.client = client
        # Nothing runs here, so there is nothing to drain; kept for the CLI's messages.
        self.shutdown_timeout = shutdown_timeout
        self._names = {id(runnable): name for name, runnable in runnables.items()}
        self.max_concurrent_runs = max_concurrent_runs
        self._following = 0
        self._submitted = 0
        self._accepting = True

    async def submit(self, runnable: Any, input: Any, config: RunConfig | None = None,
                     *, events: bool = False) -> QueuedRun:
        """Queue a run of ``runnable`` (by its served name) and start following it."""
        if not self._accepting:
            raise WorkerBusy("the server is shutting down and accepts no new runs")
        name = self._names.get(id(runnable))
        if name is None:
            raise LookupError(f"{runnable!r} is not one of the served graphs {sorted(self._names.values())}")
        run_id = await self.client.submit(name, input, RunConfig.from_dict(config).to_wire())
        self._submitted += 1
        return QueuedRun(self, run_id)

    def subscribe(self, **_: Any) -> Any:
        raise WorkerBusy(
            "GET /events is not available with --redis: no single process sees every run; "
            "follow one run with /stream_events or its run id"
        )

    def statistics(self) -> GatewayStatistics:
        return GatewayStatistics(following=self._following, submitted=self._submitted,
                                 accepting=self._accepting,
                                 max_concurrent_runs=self.max_concurrent_runs)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting; runs already queued go on on their workers."""
        self._accepting = False
        await trio.lowlevel.checkpoint()


if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import RunService

    # mypy checks that the gateway is what the HTTP endpoints need, as the Worker is.
    _GATEWAY_SERVES: type[RunService] = QueueGateway
