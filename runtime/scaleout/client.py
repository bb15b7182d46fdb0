"""The client of scale-out: submit runs, follow them from any machine, cancel them.

:class:`ScaleoutClient` is what ``rillet serve --redis`` builds on, and what an application uses
to queue runs for ``rillet worker`` processes directly; :func:`open_scaleout_client` opens one on
Redis, :func:`open_redis_backends` the queue and event log beneath it.

>>> # async with open_scaleout_client("redis://127.0.0.1:6379/0") as client:
>>> #     run_id = await client.submit("joke", {"topic": "parrot"})
>>> #     async for ev in client.astream_events(run_id): print(ev["event"])
>>> #     await client.cancel(run_id)       # stops it on whichever worker holds it
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Unpack

import attrs

from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.events.render import render_event
from rillet.runtime.events.types import Event
from rillet.runtime.scaleout.feed import EventFeed
from rillet.runtime.scaleout.queue import RunQueue, RunSubmission
from rillet.runtime.scaleout.store import END, EventLog, RunEventStream, raise_for_outcome

if TYPE_CHECKING:
    from rillet.runtime.scaleout.redis_queue import RedisRunQueue
    from rillet.runtime.scaleout.redis_store import RedisEventLog

__all__ = ["RunStatus", "ScaleoutClient", "open_redis_backends", "open_scaleout_client"]


@attrs.frozen(kw_only=True)
class RunStatus:
    """Where a run is: ``unknown`` (queued, or never submitted, or expired), ``running``,
    ``finished``, ``failed``, ``dead_lettered`` or ``cancelled``; with its attempt and that
    attempt's worker."""

    state: str
    attempt: int = 0
    consumer: str | None = None
    cursor: str | None = None


class ScaleoutClient:
    """Submit runs, follow and cancel them: the surface ``rillet serve --redis`` builds on.

    ``feed`` is the worker-wide event feed, when the deployment has one (with Redis it does).

    Example::

        client = ScaleoutClient(queue, events)
        run_id = await client.submit("joke", {"topic": "parrot"})
        async for ev in client.astream_events(run_id, version="v2"): ...
        joke = await client.result(run_id)
    """

    def __init__(self, queue: RunQueue, events: EventLog, *,
                 feed: EventFeed | None = None) -> None:
        self.queue, self.log, self.feed = queue, events, feed

    async def submit(self, graph: str, input: Any, config: Mapping[str, Any] | None = None, *,
                     run_id: str | None = None) -> str:
        """Queue a run of the graph a worker serves as ``graph``; returns its ``run_id``.

        Raises:
            WireFormatError: ``input`` or ``config`` holds a value of no wire type.
            StoreUnavailable: the queue cannot be reached.
        """
        return await self.queue.submit(RunSubmission.new(graph, input, config, run_id=run_id))

    async def cancel(self, run_id: str, reason: str = "cancelled by its client") -> None:
        """Cancel the run, queued or running, on whichever worker holds it or claims it.

        Workers look for requests about once a second (``WorkerSettings.poll_interval``): a
        running run stops then, with an end record ``cancelled`` (its followers and
        ``result`` get ``RemoteError("RunCancelled", reason)``); a queued one ends so without
        running. Cancelling a run that already ended changes nothing.

        Raises:
            StoreUnavailable: the queue cannot be reached.
        """
        await self.queue.cancel(run_id, reason)

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
    """The Redis queue and event log for ``url``, sharing one pipelined connection (every
    per-run command) and one coredis pool (blocking reads, the rare commands). The feed can
    share them too: ``RedisEventFeed(events.redis, pipe=events.pipe, keys=events.keys)``."""
    from rillet.runtime.scaleout.redis_client import RedisKeys, open_redis
    from rillet.runtime.scaleout.redis_queue import RedisRunQueue
    from rillet.runtime.scaleout.redis_store import RedisEventLog
    from rillet.runtime.scaleout.resp import open_pipelined

    keys = RedisKeys(prefix)
    async with open_redis(url) as redis, open_pipelined(url) as pipe:
        yield (RedisRunQueue(redis, pipe=pipe, keys=keys, lease_timeout=lease_timeout),
               RedisEventLog(redis, pipe=pipe, keys=keys, cap=event_cap, ttl=event_ttl))


@asynccontextmanager
async def open_scaleout_client(url: str, *, prefix: str = "rillet"
                               ) -> AsyncIterator[ScaleoutClient]:
    """A :class:`ScaleoutClient` on the Redis at ``url``, with its event feed; closes its
    connections on exit."""
    from rillet.runtime.scaleout.redis_feed import RedisEventFeed

    async with open_redis_backends(url, prefix=prefix) as (queue, events):
        yield ScaleoutClient(queue, events,
                             feed=RedisEventFeed(events.redis, pipe=events.pipe,
                                                 keys=events.keys))
