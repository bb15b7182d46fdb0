"""The scale-out semantics on the in-memory backends: one process, trio's mock clock, no Redis."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from rillet.runtime.errors import RemoteError, WireFormatError, WorkerBusy
from rillet.runtime.events.types import Event, RunFinished, RunStarted
from rillet.runtime.scaleout.queue import InMemoryRunQueue, Lease, RunSubmission, StoreUnavailable
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker, WorkerSettings
from rillet.runtime.scaleout.store import InMemoryEventLog, RunNotFound, RunOutcome, RunSuperseded
from rillet.runtime.wire.codec import packb

from .graphs import GRAPHS, expected_output, slow_chain


def started(seq: int, attempt: int = 1) -> Event:
    return RunStarted(run_id="r1", name="n", kind="chain", seq=seq, attempt=attempt)


async def test_a_malformed_request_says_what_is_wrong() -> None:
    """Decoding names the bad field; that text becomes the dead letter's reason."""
    with pytest.raises(WireFormatError, match=r"^not a msgpack value"):
        RunSubmission.from_wire(b"\xc1")
    with pytest.raises(WireFormatError, match=r"^run entry field 'run_id' must be a str, got 7$"):
        RunSubmission.from_wire(packb({"run_id": 7, "graph": "g", "input": 1, "config": {}}))
    with pytest.raises(ValueError, match="graph name must be a non-empty str"):
        RunSubmission.new("", 1)


async def test_an_expired_lease_goes_to_the_next_claimer_with_the_next_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A worker that stops renewing loses the run after lease_timeout; its renew says so."""
    queue = InMemoryRunQueue(lease_timeout=10.0)
    await queue.submit(RunSubmission.new("g", 1, run_id="r1"))
    (first,) = await queue.claim("a")
    assert (first.run_id, first.attempt) == ("r1", 1)
    assert await queue.claim("b", timeout=5.0) == []
    (second,) = await queue.claim("b", timeout=60.0)
    assert (second.attempt, second.consumer) == (2, "b")
    assert trio.current_time() == pytest.approx(10.0)
    assert not await queue.renew(first)
    assert await queue.renew(second)


async def test_a_renewed_lease_is_never_taken(autojump_clock: trio.testing.MockClock) -> None:
    """Renewing every lease_timeout/3 keeps a long run with its worker."""
    queue = InMemoryRunQueue(lease_timeout=3.0)
    await queue.submit(RunSubmission.new("g", 1))
    (lease,) = await queue.claim("a")
    async with trio.open_nursery() as nursery:
        async def renew() -> None:
            while True:
                await trio.sleep(1.0)
                assert await queue.renew(lease)
        nursery.start_soon(renew)
        assert await queue.claim("b", timeout=30.0) == []
        nursery.cancel_scope.cancel()


async def test_malformed_entries_are_dead_lettered_with_the_reason() -> None:
    """A bad entry never reaches a worker; the next good one does."""
    queue = InMemoryRunQueue()
    await queue.submit_raw(b"\x92\x01\x02")
    await queue.submit(RunSubmission.new("g", 1, run_id="good"))
    leases = await queue.claim("a", count=5)
    assert [lease.run_id for lease in leases] == ["good"]
    (dead,) = await queue.dead_letters()
    assert dead.reason == "malformed run entry: a run entry must be a map, got list"
    assert (dead.run_id, dead.payload) == (None, b"\x92\x01\x02")


async def test_a_full_memory_queue_refuses_submissions() -> None:
    """Bounded: the in-memory queue raises WorkerBusy instead of growing."""
    queue = InMemoryRunQueue(capacity=1)
    await queue.submit(RunSubmission.new("g", 1))
    with pytest.raises(WorkerBusy, match="holds 1 entries"):
        await queue.submit(RunSubmission.new("g", 2))


async def test_the_event_log_fences_superseded_attempts() -> None:
    """Older attempts cannot write after a newer one began, nobody after the end record."""
    log = InMemoryEventLog()
    assert await log.begin("r1", 1, {"consumer": "a"})
    await log.append("r1", 1, 1, [started(0)])
    assert await log.begin("r1", 2, {"consumer": "b"})
    with pytest.raises(RunSuperseded,
                       match=r"^attempt 1 of run 'r1' was superseded: attempt 2 began$"):
        await log.append("r1", 1, 2, [started(1)])
    await log.append("r1", 2, 1, [started(0, 2), started(1, 2)])
    await log.append("r1", 2, 1, [started(0, 2), started(1, 2)])  # a retried batch: no duplicates
    await log.end("r1", 2, 3, RunOutcome(status="finished", attempt=2, output="ok"))
    assert not await log.begin("r1", 3, {})
    everything = await log.read("r1", "0-0")
    assert [e.cursor for e in everything] == ["1-0", "1-1", "2-0", "2-1", "2-2", "2-3"]
    latest = await log.read("r1", None)
    assert [e.cursor for e in latest] == ["2-0", "2-1", "2-2", "2-3"]
    assert [e.cursor for e in await log.read("r1", "2-1", count=1)] == ["2-2"]


async def test_an_ended_log_expires_after_its_ttl(autojump_clock: trio.testing.MockClock) -> None:
    """Logs are dropped ttl seconds after the end record; resuming then says why."""
    log = InMemoryEventLog(ttl=60.0)
    await log.begin("r1", 1, {})
    await log.end("r1", 1, 1, RunOutcome(status="finished"))
    await trio.sleep(61)
    assert await log.last("r1") is None
    client = ScaleoutClient(InMemoryRunQueue(), log)
    with pytest.raises(RunNotFound, match="has no event log"):
        async for _ in client.events("r1", after="1-0"):
            pass


async def run_worker(queue: Any, log: Any, nursery: trio.Nursery,
                     **settings: Any) -> ScaleoutWorker:
    worker = ScaleoutWorker(GRAPHS, queue, log, consumer="w1", settings=WorkerSettings(**settings))
    await nursery.start(worker.run)
    return worker


async def test_a_followed_run_looks_like_astream_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The remote dicts equal what astream_events yields locally (run ids aside)."""
    queue, log = InMemoryRunQueue(), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    request = {"n": 3, "delay": 0.5}
    local = [ev async for ev in slow_chain.astream_events(request, config={"run_id": "r1"})]
    async with trio.open_nursery() as nursery:
        worker = await run_worker(queue, log, nursery)
        await client.submit("slow_chain", request, run_id="r1")
        remote = [ev async for ev in client.astream_events("r1")]
        assert await client.result("r1") == expected_output(3)
        worker.stop()
    strip = [{**ev, "run_id": None, "parent_ids": None} for ev in local]
    assert [{**ev, "run_id": None, "parent_ids": None} for ev in remote] == strip
    assert remote[0]["run_id"] == remote[-1]["run_id"] == "r1"


class Partitioned:
    """A queue whose renewals never arrive: the worker believes it still holds its leases."""

    def __init__(self, queue: InMemoryRunQueue) -> None:
        self.queue, self.lease_timeout = queue, queue.lease_timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        return True


async def test_a_superseded_attempt_stops_and_the_log_stays_coherent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A worker cut off from the queue loses its run to another; its late writes are refused,
    so the log is attempt 1's prefix, then attempt 2 complete, then one end record."""
    queue, log = InMemoryRunQueue(lease_timeout=2.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    await client.submit("slow_chain", {"n": 10, "delay": 1.0}, run_id="r1")
    async with trio.open_nursery() as nursery:
        cut_off = ScaleoutWorker(GRAPHS, Partitioned(queue), log, consumer="cut-off")
        await nursery.start(cut_off.run)
        await trio.sleep(0.1)
        cut_off.stop()
        healthy = await run_worker(queue, log, nursery)
        assert await client.result("r1") == expected_output(10)
        healthy.stop()
    assert cut_off.counts["lost"] == 1 and healthy.counts["completed"] == 1
    entries = await log.read("r1", "0-0", count=1000)
    attempts = [e.attempt for e in entries]
    assert attempts == sorted(attempts) and set(attempts) == {1, 2}
    second = [e.event for e in entries if e.attempt == 2 and e.event is not None]
    assert [e.seq for e in second] == list(range(len(second)))
    assert isinstance(second[-1], RunFinished) and second[-1].run_id == "r1"
    assert [e.kind for e in entries].count("end") == 1 and entries[-1].kind == "end"


async def test_a_run_delivered_too_often_is_dead_lettered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A run whose workers keep dying is buried after max_deliveries, and followers learn."""
    queue, log = InMemoryRunQueue(lease_timeout=1.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    await client.submit("slow_chain", {"n": 1}, run_id="r1")
    for _ in range(2):  # two deliveries to workers that died
        await queue.claim("dead", timeout=5.0)
    async with trio.open_nursery() as nursery:
        worker = await run_worker(queue, log, nursery, max_deliveries=2)
        with pytest.raises(RemoteError, match=r"DeadLettered: delivered 3 times without "
                                              r"completing \(max_deliveries=2\)"):
            await client.result("r1")
        worker.stop()
    (dead,) = await queue.dead_letters()
    assert (dead.run_id, dead.deliveries) == ("r1", 3)
    assert (await client.status("r1")).state == "dead_lettered"


async def test_a_failing_graph_is_retried_then_dead_lettered_with_its_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With retry_errors, each delivery fails; the last one buries the run with the error."""
    queue, log = InMemoryRunQueue(lease_timeout=1.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    await client.submit("flaky", 1, run_id="r1")
    async with trio.open_nursery() as nursery:
        worker = await run_worker(queue, log, nursery, max_deliveries=3, retry_errors=True)
        with pytest.raises(RemoteError, match=r"failed 3 times; last error: ValueError: flaky"):
            await client.result("r1")
        worker.stop()
    stats = worker.statistics()
    assert (stats.completed, stats.failed, stats.lost, stats.dead_lettered) == (0, 2, 0, 1)
    markers = [e.attempt for e in await log.read("r1", "0-0") if e.kind == "attempt"]
    assert markers == [1, 2, 3]


async def test_without_retry_errors_a_failing_graph_fails_once() -> None:
    """By default the graph's error is the run's result: no redelivery."""
    queue, log = InMemoryRunQueue(), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    await client.submit("flaky", 1, run_id="r1")
    async with trio.open_nursery() as nursery:
        worker = await run_worker(queue, log, nursery)
        with pytest.raises(RemoteError, match=r"^ValueError: flaky graph refuses 1$"):
            async for _ in client.events("r1"):
                pass
        worker.stop()
    assert worker.counts["failed"] == 1 and await queue.dead_letters() == []


class Flaky:
    """An event log that is unavailable for its first ``outages`` appends."""

    def __init__(self, log: InMemoryEventLog, outages: int) -> None:
        self.log, self.outages = log, outages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def append(self, *args: Any) -> None:
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("the test event log is unavailable")
        await self.log.append(*args)


async def test_a_store_outage_is_retried_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Appends that fail for a while are retried; the run completes with every event."""
    queue, log = InMemoryRunQueue(), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    await client.submit("slow_chain", {"n": 4}, run_id="r1")
    async with trio.open_nursery() as nursery:
        worker = ScaleoutWorker(GRAPHS, queue, Flaky(log, outages=6), consumer="w")
        await nursery.start(worker.run)
        assert await client.result("r1") == expected_output(4)
        worker.stop()
    events = [e.event for e in await log.read("r1", None, count=1000) if e.event is not None]
    assert [e.seq for e in events] == list(range(len(events))) and len(events) > 4
    assert trio.current_time() > 1.0  # it backed off, exponentially
