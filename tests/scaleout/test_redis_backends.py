"""The Redis queue and event log, in this process, against a real redis-server."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio

from rillet.runtime.events.types import ChunkEmitted, RunStarted
from rillet.runtime.scaleout.queue import RunSubmission
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker, open_redis_backends
from rillet.runtime.scaleout.store import RunOutcome, RunSuperseded

from .graphs import GRAPHS, expected_output

pytestmark = pytest.mark.redis


def started(seq: int, attempt: int = 1) -> Any:
    return RunStarted(run_id="r1", name="n", kind="chain", seq=seq, attempt=attempt)


async def test_coredis_runs_on_trio(redis_backends: Any) -> None:
    """The premise: coredis's async client works natively inside trio.run."""
    queue, _ = redis_backends
    assert await queue.redis.ping() == b"PONG"


async def test_stream_ids_are_the_cursors_and_the_stream_expires_after_the_end(
    redis_backends: Any,
) -> None:
    """rillet:events:<run_id> holds '<attempt>-<index>' ids; EXPIRE is set by the end record."""
    queue, log = redis_backends
    assert await log.begin("r1", 1, {"consumer": "c"})
    await log.append("r1", 1, 1, [started(0), started(1)])
    assert await log.ttl_of("r1") == -1  # no expiry while the run is alive
    await log.end("r1", 1, 3, RunOutcome(status="finished", output={"k": (1, 2)}))
    ids = [e.identifier for e in await queue.redis.xrange(log.keys.events("r1"))]
    assert ids == [b"1-0", b"1-1", b"1-2", b"1-3"]
    assert 0 < await log.ttl_of("r1") <= log.ttl
    (end,) = await log.read("r1", "1-2")
    assert end.outcome == RunOutcome(status="finished", output={"k": (1, 2)})


async def test_writes_are_fenced_and_idempotent(redis_backends: Any) -> None:
    """A retried batch is not duplicated; an older attempt and anything after the end are
    refused."""
    _, log = redis_backends
    await log.begin("r1", 1, {})
    await log.append("r1", 1, 1, [started(0)])
    await log.append("r1", 1, 1, [started(0), started(1)])  # first one already there: skipped
    await log.begin("r1", 2, {})
    with pytest.raises(RunSuperseded, match="a later attempt began"):
        await log.append("r1", 1, 3, [started(2)])
    await log.end("r1", 2, 1, RunOutcome(status="failed"))
    await log.end("r1", 2, 1, RunOutcome(status="failed"))  # a retried end is fine
    with pytest.raises(RunSuperseded, match="the run already ended"):
        await log.end("r1", 3, 1, RunOutcome(status="finished"))
    assert not await log.begin("r1", 3, {})
    with pytest.raises(RunSuperseded, match="its event log is gone"):
        await log.append("nobody", 1, 1, [started(0)])
    cursors = [e.cursor for e in await log.read("r1", "0-0")]
    assert cursors == ["1-0", "1-1", "1-2", "2-0", "2-1"]
    assert [e.cursor for e in await log.read("r1", None)] == ["2-0", "2-1"]


async def test_event_streams_are_capped(redis_url: str, prefix: str) -> None:
    """XADD MAXLEN ~ cap: a long run keeps roughly its newest cap events."""
    async with open_redis_backends(redis_url, prefix=prefix, event_cap=50) as (_, log):
        await log.begin("r1", 1, {})
        for start in range(1, 600, 100):
            await log.append("r1", 1, start, [started(i) for i in range(100)])
        length = await log.redis.xlen(log.keys.events("r1"))
        assert 50 <= length < 300


async def test_unencodable_event_values_travel_as_repr(redis_backends: Any) -> None:
    """Events are for watching: a value of no wire type is shown by its repr."""
    _, log = redis_backends

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    await log.begin("r1", 1, {})
    data: dict[str, Any] = {"chunk": Opaque()}
    chunk = ChunkEmitted(run_id="r1", name="n", kind="chain", seq=0, data=data)
    await log.append("r1", 1, 1, [chunk])
    (entry,) = await log.read("r1", "1-0")
    assert entry.event is not None and entry.event.data == {"chunk": "<Opaque>"}


async def test_malformed_entries_go_to_the_dead_letter_stream(redis_backends: Any) -> None:
    """Garbage, or an entry without a 'run' field, is dead-lettered with the reason."""
    queue, _ = redis_backends
    await queue.submit_raw(b"\xc1")
    await queue.redis.xadd(queue.keys.runs, {"other": b"x"})
    await queue.submit(RunSubmission.new("g", 1, run_id="good"))
    leases = await queue.claim("w", count=10)
    assert [lease.run_id for lease in leases] == ["good"]
    garbage, no_field = await queue.dead_letters()
    assert garbage.reason.startswith("malformed run entry: not a msgpack value")
    assert (garbage.payload, garbage.run_id) == (b"\xc1", None)
    assert no_field.reason == "malformed run entry: no 'run' field (fields: ['other'])"
    stats = await queue.statistics()
    assert (stats.waiting, stats.pending, stats.dead) == (0, 1, 2)


async def test_submit_is_idempotent_per_run_id(redis_backends: Any) -> None:
    """A client retrying a submit after a lost reply does not queue the run twice."""
    queue, _ = redis_backends
    request = RunSubmission.new("g", 1)
    assert await queue.submit(request) == await queue.submit(request) == request.run_id
    assert (await queue.statistics()).waiting == 1


async def test_a_renewed_lease_stays_and_an_expired_one_moves(redis_url: str, prefix: str) -> None:
    """Renewal (owner-checked XCLAIM JUSTID) keeps the lease; without it XAUTOCLAIM takes it."""
    async with open_redis_backends(redis_url, prefix=prefix, lease_timeout=0.3) as (queue, _):
        await queue.submit(RunSubmission.new("g", 1, run_id="r1"))
        (lease,) = await queue.claim("a")
        for _ in range(4):
            await trio.sleep(0.15)
            assert await queue.renew(lease)
            assert await queue.claim("b", timeout=0.01) == []
        await trio.sleep(0.4)
        (stolen,) = await queue.claim("b", timeout=0.01)
        assert (stolen.attempt, stolen.consumer) == (2, "b")
        assert not await queue.renew(lease)  # the owner check: 'a' cannot steal it back
        assert await queue.renew(stolen)
        await queue.acknowledge(stolen)
        assert await queue.redis.xlen(queue.keys.runs) == 0


async def test_an_in_process_worker_serves_runs_through_redis(redis_backends: Any) -> None:
    """Submit, follow and collect a run through Redis, all inside one trio.run."""
    queue, log = redis_backends
    client = ScaleoutClient(queue, log)
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(ScaleoutWorker(GRAPHS, queue, log).run)
        run_id = await client.submit("slow_chain", {"n": 5})
        events = [ev["event"] async for ev in client.astream_events(run_id)]
        assert events[0] == "on_chain_start" and events[-1] == "on_chain_end"
        assert events.count("on_chain_stream") == 1 + 5 * 2  # prepare; tokens and the root
        assert await client.result(run_id) == expected_output(5)
        assert (await client.status(run_id)).state == "finished"
        worker.stop()


async def test_a_chat_chain_followed_through_redis_matches_astream_events(
    redis_backends: Any,
) -> None:
    """Messages and prompt values survive the trip through Redis: the dicts equal the local ones
    (run ids aside)."""
    queue, log = redis_backends
    client = ScaleoutClient(queue, log)
    local = [ev async for ev in GRAPHS["chat"].astream_events({"topic": "parrots"})]
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(ScaleoutWorker(GRAPHS, queue, log).run)
        run_id = await client.submit("chat", {"topic": "parrots"})
        remote = [ev async for ev in client.astream_events(run_id)]
        assert await client.result(run_id) == "Parrots can live for eighty years."
        worker.stop()

    assert [type(ev["data"].get("chunk")) for ev in remote] == [
        type(ev["data"].get("chunk")) for ev in local]
    assert same_but_run_ids(remote, local)


def same_but_run_ids(left: list[Any], right: list[Any]) -> bool:
    """Equal reprs once each run id (uuid) is numbered by first appearance."""
    def numbered(events: list[Any]) -> str:
        seen: dict[str, str] = {}
        return UUID.sub(lambda m: seen.setdefault(m.group(), f"<run{len(seen)}>"), repr(events))
    return numbered(left) == numbered(right)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
