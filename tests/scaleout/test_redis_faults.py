"""Faults against a real redis-server (issue 20): the runs stream deleted under the workers,
FLUSHALL, and a dead worker's runs redelivered ahead of a backlog. Real time, bounded."""

from __future__ import annotations

import pytest
import trio

from rillet.runtime.scaleout.queue import RunSubmission
from rillet.runtime.scaleout.redis_queue import RedisRunQueue
from rillet.runtime.scaleout.service import open_redis_backends, open_scaleout_client

from .conftest import RedisServer, Workers
from .graphs import expected_output
from .test_redis_workers import wait_running

pytestmark = pytest.mark.redis


async def test_workers_survive_the_runs_stream_being_deleted(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """``DEL <prefix>:runs`` while one worker runs a run and another waits in XREADGROUP: the
    group is made again, the running run completes, new runs are served, nobody crashes."""
    procs = await workers.start(redis_url, prefix, "--lease-timeout", "1", count=2)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        running = await client.submit("slow_chain", {"n": 20, "delay": 0.1})
        await wait_running(client, running)
        await client.queue.redis.delete([f"{prefix}:runs"])  # type: ignore[attr-defined]
        with trio.fail_after(30):
            after = await client.submit("slow_chain", {"n": 3})
            assert await client.result(after) == expected_output(3)
            assert await client.result(running) == expected_output(20)
        assert (await client.status(running)).attempt == 1  # kept by its worker, not redone
    assert all(proc.poll() is None for proc in procs), workers.output()


async def test_workers_survive_flushall(private_redis: RedisServer, prefix: str,
                                        workers: Workers) -> None:
    """``FLUSHALL`` wipes the queue and every event log while workers wait: they recreate the
    group and serve the next runs."""
    private_redis.start()
    procs = await workers.start(private_redis.url, prefix, "--lease-timeout", "1", count=2)
    async with open_scaleout_client(private_redis.url, prefix=prefix) as client:
        with trio.fail_after(30):
            first = await client.submit("slow_chain", {"n": 2})
            assert await client.result(first) == expected_output(2)
            await client.queue.redis.flushall()  # type: ignore[attr-defined]
            await trio.sleep(0.2)  # the workers are back in XREADGROUP on a stream now gone
            for n in (3, 4):
                run_id = await client.submit("slow_chain", {"n": n})
                assert await client.result(run_id) == expected_output(n)
    assert all(proc.poll() is None for proc in procs), workers.output()


async def test_a_dead_workers_runs_are_redelivered_before_the_backlog(
    redis_url: str, prefix: str,
) -> None:
    """Once a dead worker's leases expired, a busy worker claiming one run at a time gets every
    one of them back before any of the 50 waiting new runs: redelivery does not wait for the
    backlog to drain (issue 20.5)."""
    async with open_redis_backends(redis_url, prefix=prefix) as (_, log):
        # Each worker process has a queue of its own.
        queue, other = (RedisRunQueue(log.redis, pipe=log.pipe, keys=log.keys,
                                       lease_timeout=30.0)
                        for _ in range(2))
        for i in range(8):
            await queue.submit(RunSubmission.new("g", {"i": i}))
        dead = await other.claim("dead-worker", count=8, timeout=0.1)
        for i in range(50):
            await queue.submit(RunSubmission.new("g", {"i": 100 + i}))
        # The dead worker stopped renewing long ago: its entries look idle past the lease.
        for lease in dead:
            await log.redis.xclaim(queue.keys.runs, queue.keys.group, "dead-worker", 0,
                                   [lease.entry_id], idle=60_000, justid=True)
        again = [(await queue.claim("live-worker", count=1, timeout=0.1))[0] for _ in range(8)]
        assert sorted(lease.entry_id for lease in again) == sorted(d.entry_id for d in dead)
        assert {lease.attempt for lease in again} == {2}
        after = await queue.claim("live-worker", count=1, timeout=0.1)
        assert (after[0].request.input, after[0].attempt) == ({"i": 100}, 1)
