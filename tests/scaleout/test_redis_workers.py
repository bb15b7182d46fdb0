"""Worker processes on a real redis-server: spreading runs, kill -9, leases, dead letters,
resuming a followed stream, and a Redis restart. Real time, bounded by trio.fail_after."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import trio

from rillet.runtime.errors import RemoteError
from rillet.runtime.events.types import Event, RunFinished
from rillet.runtime.scaleout.service import (
    ScaleoutClient,
    open_redis_backends,
    open_scaleout_client,
)

from .conftest import RedisServer, Workers
from .graphs import expected_output

pytestmark = pytest.mark.redis


def pid_of(consumer: str) -> int:
    """Consumers are named host:pid:nonce."""
    return int(consumer.split(":")[1])


async def wait_running(client: ScaleoutClient, run_id: str) -> Any:
    with trio.fail_after(20):
        while (status := await client.status(run_id)).state != "running":
            await trio.sleep(0.02)
    return status


def assert_complete_attempt(events: list[Event], attempt: int, run_id: str) -> None:
    """One attempt's events: seq 0, 1, 2, … with nothing missing, ending in the root's end."""
    mine = [e for e in events if e.attempt == attempt]
    assert [e.seq for e in mine] == list(range(len(mine)))
    assert isinstance(mine[-1], RunFinished) and mine[-1].run_id == run_id


async def test_three_workers_share_the_runs(redis_url: str, prefix: str, workers: Workers) -> None:
    """Thirty runs submitted to three worker processes all complete, spread over all three."""
    await workers.start(redis_url, prefix, "--concurrency", "2", count=3)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        run_ids = [await client.submit("slow_chain", {"n": 4, "delay": 0.05}) for _ in range(30)]
        with trio.fail_after(30):
            results = [await client.result(run_id) for run_id in run_ids]
        assert results == [expected_output(4)] * 30
        consumers = set()
        for run_id in run_ids:
            entries = await client.log.read(run_id, "0-0", count=1)
            consumers.add(entries[0].info["consumer"])
        assert {pid_of(c) for c in consumers} == {p.pid for p in workers.procs}


async def test_a_run_survives_kill_9_of_its_worker(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """kill -9 mid-run: another worker restarts it after the lease; the live follower sees
    attempt 1's prefix then attempt 2 complete and in order; a new follower sees only
    attempt 2."""
    await workers.start(redis_url, prefix, "--lease-timeout", "1", count=3)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        run_id = await client.submit("slow_chain", {"n": 20, "delay": 0.1})
        seen: list[Event] = []
        stream = client.events(run_id)
        with trio.fail_after(30):
            async for event in stream:
                seen.append(event)
                if len(seen) == 6:
                    victim = pid_of((await client.status(run_id)).consumer or "")
                    os.kill(victim, signal.SIGKILL)
        assert workers.by_pid(victim).wait(5) == -signal.SIGKILL
        assert [e.attempt for e in seen] == sorted(e.attempt for e in seen)
        first = [e for e in seen if e.attempt == 1]
        assert len(first) >= 6 and [e.seq for e in first] == list(range(len(first)))
        assert seen[-1].attempt == 2
        assert_complete_attempt(seen, 2, run_id)
        assert await client.result(run_id) == expected_output(20)
        status = await client.status(run_id)
        assert (status.state, status.attempt) == ("finished", 2)
        fresh = [e async for e in client.events(run_id)]
        assert fresh == [e for e in seen if e.attempt == 2]


async def test_lease_renewal_keeps_a_slow_run_with_its_worker(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """A run four times longer than the lease is never stolen by the idle second worker."""
    await workers.start(redis_url, prefix, "--lease-timeout", "1", count=2)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        run_id = await client.submit("slow_chain", {"n": 40, "delay": 0.1})
        with trio.fail_after(30):
            events = [e async for e in client.events(run_id)]
        assert {e.attempt for e in events} == {1}
        assert_complete_attempt(events, 1, run_id)
        markers = [e for e in await client.log.read(run_id, "0-0") if e.kind == "attempt"]
        assert len(markers) == 1


async def test_failing_and_malformed_runs_are_dead_lettered(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """A run failing on every delivery is buried after --max-deliveries with its last error; a
    malformed entry with the decode error; the workers keep serving."""
    await workers.start(redis_url, prefix, "--retry-errors", "--max-deliveries", "2",
                        "--lease-timeout", "1", count=2)
    async with open_redis_backends(redis_url, prefix=prefix) as (queue, log):
        client = ScaleoutClient(queue, log)
        flaky = await client.submit("flaky", {"x": 1})
        await queue.submit_raw(b"not msgpack \xc1")
        with trio.fail_after(20):
            with pytest.raises(RemoteError, match=r"^DeadLettered: failed 2 times; last error: "
                                                  r"ValueError: flaky graph refuses"):
                await client.result(flaky)
            good = await client.submit("slow_chain", {"n": 2})
            assert await client.result(good) == expected_output(2)
        # The worker writes the end record before it moves the entry to the dead letters (so a
        # crash between the two still tells followers), so the result can come first.
        with trio.fail_after(10):
            while len(reasons := {d.run_id: d.reason for d in await queue.dead_letters()}) < 2:
                await trio.sleep(0.02)
        assert reasons[None].startswith("malformed run entry: not a msgpack value")
        assert reasons[flaky].startswith("failed 2 times")
        assert (await queue.statistics()).pending == 0


async def test_a_follower_resumes_after_disconnecting(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """Drop the connection mid-run; a new client resumes from the cursor: nothing twice,
    nothing missing."""
    await workers.start(redis_url, prefix, count=1)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        run_id = await client.submit("slow_chain", {"n": 20, "delay": 0.05})
        local = [ev async for ev in client.astream_events(run_id)]  # the whole run, for reference
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        run_id = await client.submit("slow_chain", {"n": 20, "delay": 0.05})
        before: list[dict[str, Any]] = []
        stream = client.astream_events(run_id)
        async for ev in stream:
            before.append(ev)
            if len(before) == 7:
                break
        cursor = stream.cursor
    await trio.sleep(0.3)  # disconnected while the run goes on
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        after = [ev async for ev in client.astream_events(run_id, after=cursor)]
    names = [ev["event"] for ev in before + after]
    assert names == [ev["event"] for ev in local]
    chunks = [ev["data"]["chunk"] for ev in before + after
              if ev["event"] == "on_chain_stream" and ev["run_id"] == run_id]
    assert "".join(chunks) == expected_output(20)


async def test_workers_ride_out_a_redis_restart(private_redis: RedisServer, prefix: str,
                                                workers: Workers) -> None:
    """kill -9 Redis mid-run and restart it: acknowledged runs are still there (AOF, fsync
    always), the running run completes, and the workers serve new runs."""
    private_redis.start()
    url = private_redis.url
    procs = await workers.start(url, prefix, "--lease-timeout", "5", count=2)
    async with open_scaleout_client(url, prefix=prefix) as client:
        done = await client.submit("slow_chain", {"n": 3})
        with trio.fail_after(20):
            assert await client.result(done) == expected_output(3)
        running = await client.submit("slow_chain", {"n": 30, "delay": 0.1})
        await wait_running(client, running)
        await trio.sleep(0.5)
    private_redis.kill()
    await trio.sleep(1.0)
    private_redis.start()
    async with open_scaleout_client(url, prefix=prefix) as client:
        with trio.fail_after(30):
            assert await client.result(done) == expected_output(3)
            assert await client.result(running) == expected_output(30)
            events = [e async for e in client.events(running)]
            assert_complete_attempt(events, events[-1].attempt, running)
            after = await client.submit("slow_chain", {"n": 2})
            assert await client.result(after) == expected_output(2)
    assert all(proc.poll() is None for proc in procs), workers.output()
