"""Remote cancel and the worker-wide feed, on the in-memory backends with the autojump clock
(the same interfaces run on Redis in test_redis_remote.py)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from rillet.runtime.errors import RemoteError
from rillet.runtime.events.types import ChunkEmitted, Event, RunFinished, RunStarted
from rillet.runtime.scaleout.feed import FeedSubscription, InMemoryEventFeed
from rillet.runtime.scaleout.queue import InMemoryRunQueue
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker, WorkerSettings
from rillet.runtime.scaleout.store import InMemoryEventLog

from .graphs import GRAPHS, expected_output


def _backends(**settings: float) -> tuple[ScaleoutClient, ScaleoutWorker]:
    queue, log, feed = InMemoryRunQueue(lease_timeout=30.0), InMemoryEventLog(), InMemoryEventFeed()
    worker = ScaleoutWorker(GRAPHS, queue, log, consumer="w1", feed=feed,
                            settings=WorkerSettings(**settings))  # type: ignore[arg-type]
    return ScaleoutClient(queue, log, feed=feed), worker


async def test_cancelling_a_running_run_stops_it_within_a_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The worker holding the run stops it at its next poll; the events until then are kept,
    the end record says cancelled, and every reader gets RemoteError('RunCancelled')."""
    client, worker = _backends(poll_interval=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.run)
        run_id = await client.submit("slow_chain", {"n": 100, "delay": 1.0})
        seen: list[Event] = []
        with pytest.raises(RemoteError, match=r"^RunCancelled: changed my mind$"):
            async for event in client.events(run_id):
                seen.append(event)
                if sum(isinstance(e, ChunkEmitted) for e in seen) == 3:
                    await client.cancel(run_id, "changed my mind")
                    asked = trio.current_time()
        assert trio.current_time() - asked <= 0.5 + 1e-6  # one poll, not the lease
        with pytest.raises(RemoteError, match="RunCancelled"):
            await client.result(run_id)
        status = await client.status(run_id)
        assert (status.state, status.attempt) == ("cancelled", 1)
        assert isinstance(seen[0], RunStarted) and len(seen) < 20
        while worker.running:  # it counts the run once its lease is acknowledged
            await trio.sleep(0.01)
        assert worker.statistics().cancelled == 1
        worker.stop()


async def test_cancelling_a_queued_run_ends_it_without_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A run cancelled while it waits in the queue is ended by the worker that claims it,
    before any node runs; the runs around it are served as usual."""
    client, worker = _backends(concurrency=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.run)
        first = await client.submit("slow_chain", {"n": 5, "delay": 1.0})
        queued = await client.submit("slow_chain", {"n": 5})
        await client.cancel(queued)
        assert await client.result(first) == expected_output(5)
        with pytest.raises(RemoteError, match=r"^RunCancelled: cancelled by its client$"):
            await client.result(queued)
        entries = await client.log.read(queued, "0-0")
        assert [entry.kind for entry in entries] == ["end"]  # no attempt, no event
        later = await client.submit("slow_chain", {"n": 2})
        assert await client.result(later) == expected_output(2)
        worker.stop()


async def test_the_feed_carries_every_run_once_somebody_listens(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No listener: nothing is published. Once a reader listens, runs starting a poll later
    are in the feed whole and in order, filtered for the reader; stopping listening stops it."""
    client, worker = _backends(poll_interval=0.5)
    assert client.feed is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.run)
        unheard = await client.submit("slow_chain", {"n": 2})
        await client.result(unheard)
        assert await client.feed.read("0", count=10, timeout=0) == ("0", [])  # nothing published
        with FeedSubscription(client.feed, policy="drop_oldest", bound=100,
                              accept=lambda e: not e.parent_ids) as sub:
            with trio.move_on_after(0.1):
                await sub.__anext__()  # marks the feed as listened to
            await trio.sleep(1.0)  # the worker's next poll sees it
            heard = await client.submit("slow_chain", {"n": 3})
            events = [await sub.__anext__()]
            while not isinstance(events[-1], RunFinished):
                events.append(await sub.__anext__())
        assert [type(e) for e in events] == [RunStarted, *[ChunkEmitted] * 3, RunFinished]
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert {e.run_id for e in events} == {heard} and sub.dropped == 0
        await trio.sleep(15.0)  # the listen mark expires
        cursor, _ = await client.feed.read(None, count=1, timeout=0)
        quiet = await client.submit("slow_chain", {"n": 2})
        await client.result(quiet)
        assert await client.feed.read(cursor, count=100, timeout=0) == (cursor, [])
        worker.stop()


async def test_a_reader_that_falls_behind_the_cap_counts_what_it_lost() -> None:
    """The feed keeps its newest ``cap`` items; a reader further behind sees the gap."""
    feed = InMemoryEventFeed(cap=5)
    events = [RunStarted(run_id=f"r{i}", name="x", kind="chain", seq=0) for i in range(12)]
    sub = FeedSubscription(feed, policy="drop_oldest", bound=100, accept=None)
    with trio.move_on_after(0.01):
        await sub.__anext__()  # reading from now on
    await feed.publish(events[:2])
    assert [(await sub.__anext__()).run_id for _ in range(2)] == ["r0", "r1"]
    await feed.publish(events[2:])
    rest = [(await sub.__anext__()).run_id for _ in range(5)]
    assert rest == ["r7", "r8", "r9", "r10", "r11"] and sub.dropped == 5
