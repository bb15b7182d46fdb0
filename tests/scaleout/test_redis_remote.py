"""Remote cancel, the cross-machine ``GET /events`` and outages, with ``rillet worker``
processes on a real redis-server and a queue gateway serving HTTP (issues 16 and 20.8).
Real time, bounded by trio.fail_after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from rillet.runtime.errors import RemoteError
from rillet.runtime.scaleout.gateway import QueueGateway
from rillet.runtime.scaleout.service import ScaleoutClient, open_scaleout_client
from rillet.runtime.serve.server import open_server

from .conftest import RedisServer, Workers
from .graphs import GRAPHS, expected_output
from .sse_frames import ended, follow_events, until_data
from .test_redis_workers import pid_of, wait_running

pytestmark = pytest.mark.redis
SERVED = {"slow_chain": GRAPHS["slow_chain"]}


@asynccontextmanager
async def gateway(url: str, prefix: str
                  ) -> AsyncIterator[tuple[ScaleoutClient, httpx.AsyncClient]]:
    """What ``rillet serve --redis`` runs: a gateway on the queue, serving on loopback."""
    async with open_scaleout_client(url, prefix=prefix) as client, \
            open_server(SERVED, worker=QueueGateway(client, SERVED)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        yield client, http


async def test_a_disconnect_cancels_the_run_on_its_worker_within_the_lease(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """An HTTP client leaves a /stream: the worker process running it stops it within the
    lease, and the run's log ends ``cancelled`` after the events it made."""
    await workers.start(redis_url, prefix, "--lease-timeout", "5", count=2)
    async with gateway(redis_url, prefix) as (client, http):
        with trio.fail_after(20):
            async with http.stream("POST", "/slow_chain/stream",
                                   json={"input": {"n": 1000, "delay": 0.05}}) as reply:
                seen = await until_data(reply, 3)
        left = trio.current_time()
        run_id = seen[0][1]["run_id"]
        with trio.fail_after(20):
            while (status := await client.status(run_id)).state != "cancelled":
                await trio.sleep(0.05)
        assert trio.current_time() - left < 5  # within one lease (the poll is 1 s)
        assert status.attempt == 1
        kinds = [entry.kind for entry in await client.log.read(run_id, "0-0", count=10_000)]
        assert kinds[0] == "attempt" and kinds[-1] == "end" and kinds.count("event") >= 3


async def test_an_explicit_cancel_reaches_queued_and_running_runs(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """``client.cancel``: a running run stops on whichever worker holds it; a queued one ends
    without running when a worker claims it; the others complete."""
    procs = await workers.start(redis_url, prefix, "--concurrency", "1", count=2)
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        long = [await client.submit("slow_chain", {"n": 40, "delay": 0.1}) for _ in range(2)]
        queued = await client.submit("slow_chain", {"n": 2})
        await client.cancel(queued, "not needed after all")
        running = await wait_running(client, long[1])
        await client.cancel(long[1])
        with trio.fail_after(30):
            with pytest.raises(RemoteError, match=r"^RunCancelled: cancelled by its client$"):
                await client.result(long[1])
            with pytest.raises(RemoteError, match=r"^RunCancelled: not needed after all$"):
                await client.result(queued)
            assert await client.result(long[0]) == expected_output(40)
        assert pid_of(running.consumer or "") in {p.pid for p in procs}
        assert [e.kind for e in await client.log.read(queued, "0-0")] == ["end"]


async def test_events_behind_a_gateway_come_from_every_worker_process(
    redis_url: str, prefix: str, workers: Workers,
) -> None:
    """``GET /events`` with --redis: the events of runs on two worker processes arrive in one
    stream, each run whole and in order."""
    await workers.start(redis_url, prefix, "--concurrency", "1", count=2)
    async with gateway(redis_url, prefix) as (client, http), trio.open_nursery() as readers:
        seen: list[tuple[str, Any]] = []
        await readers.start(partial(follow_events, http, {"include_types": "chain"}, seen))
        submitted: list[str] = []
        with trio.fail_after(30):
            while len(ended(seen) & set(submitted)) < 4:
                submitted += [await client.submit("slow_chain", {"n": 3, "delay": 0.1})
                              for _ in range(2)]
                await trio.sleep(0.5)
        readers.cancel_scope.cancel()
    finished = ended(seen) & set(submitted)
    for run_id in finished:
        mine = [d["event"] for e, d in seen if e == "data" and d["run_id"] == run_id
                and d["name"] == "RunnableSequence"]
        assert mine == ["on_chain_start", *["on_chain_stream"] * 3, "on_chain_end"]
    async with open_scaleout_client(redis_url, prefix=prefix) as client:
        consumers = {(await client.log.read(r, "0-0", count=1))[0].info["consumer"]
                     for r in finished}
    assert len({pid_of(c) for c in consumers}) == 2


async def test_a_redis_outage_is_a_503_and_healthz_says_so(
    private_redis: RedisServer, prefix: str, workers: Workers,
) -> None:
    """Redis down: run endpoints answer 503 StoreUnavailable with Retry-After (not a 500) and
    /healthz 503 unavailable; Redis back: both recover."""
    private_redis.start()
    await workers.start(private_redis.url, prefix, count=1)
    async with gateway(private_redis.url, prefix) as (_, http):
        assert (await http.post("/slow_chain/invoke", json={"input": {"n": 1}})).status_code == 200
        private_redis.kill()
        reply = await http.post("/slow_chain/invoke", json={"input": {"n": 1}})
        assert (reply.status_code, reply.headers["retry-after"]) == (503, "5")
        assert reply.json()["type"] == "StoreUnavailable"
        health = await http.get("/healthz")
        assert (health.status_code, health.json()["status"]) == (503, "unavailable")
        private_redis.start()
        with trio.fail_after(30):
            while (await http.get("/healthz")).status_code != 200:
                await trio.sleep(0.1)
            reply = await http.post("/slow_chain/invoke", json={"input": {"n": 2}})
        assert reply.json()["output"] == expected_output(2)

