"""The queue gateway under faults (issues 20.8 and 16): redelivered runs announced in their
streams, 503 with Retry-After while the queue is down, a client that leaves cancels its run on
its worker, and ``GET /events`` through the worker-wide feed.

In-memory backends with in-process workers; the server for real on loopback (real time, every
wait bounded). test_redis_remote.py runs the same over a real redis-server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import trio

from rillet.runtime.errors import StoreUnavailable
from rillet.runtime.scaleout.feed import InMemoryEventFeed
from rillet.runtime.scaleout.gateway import QueueGateway
from rillet.runtime.scaleout.queue import InMemoryRunQueue
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker, WorkerSettings
from rillet.runtime.scaleout.store import InMemoryEventLog
from rillet.runtime.serve.server import open_server
from rillet.runtime.wire.sse import SSEParser

from .graphs import GRAPHS, expected_output
from .sse_frames import ended, follow_events, frames, until_data

SERVED = {"slow_chain": GRAPHS["slow_chain"]}
FAST = WorkerSettings(poll_interval=0.05)


class Switchable:
    """A run queue that can be taken down: every call raises StoreUnavailable while ``down``."""

    def __init__(self, queue: InMemoryRunQueue) -> None:
        self.queue, self.down = queue, False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.queue, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                await trio.lowlevel.checkpoint()
                raise StoreUnavailable("the run queue is unavailable (test outage)")
            return await method(*args, **kwargs)

        return call


@asynccontextmanager
async def gateway_server(client: ScaleoutClient) -> AsyncIterator[httpx.AsyncClient]:
    async with open_server(SERVED, worker=QueueGateway(client, SERVED)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http


async def test_a_redelivered_run_is_announced_in_its_stream() -> None:
    """The worker of a streamed run dies: another takes the run, and the client gets an
    ``attempt`` frame before the output starts again, instead of a silent repeat."""
    queue, log = InMemoryRunQueue(lease_timeout=5.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    async with trio.open_nursery() as nursery:
        doomed = trio.CancelScope()

        async def first_worker(task_status: trio.TaskStatus[None]) -> None:
            with doomed:
                await ScaleoutWorker(GRAPHS, queue, log, consumer="a").run(
                    task_status=task_status)

        await nursery.start(first_worker)
        async with gateway_server(client) as http:
            got: list[tuple[str, Any]] = []
            parser = SSEParser()
            with trio.fail_after(20):
                async with http.stream("POST", "/slow_chain/stream",
                                       json={"input": {"n": 10, "delay": 0.05}}) as reply:
                    async for chunk in reply.aiter_bytes():
                        got += frames(parser, chunk)
                        if not doomed.cancel_called and [e for e, _ in got].count("data") == 3:
                            doomed.cancel()  # the worker dies; its lease goes to the next
                            await nursery.start(ScaleoutWorker(GRAPHS, queue, log,
                                                               consumer="b").run)
        nursery.cancel_scope.cancel()
    kinds = [event for event, _ in got]
    marker = kinds.index("attempt")
    first, second = got[1:marker], got[marker + 1:-1]
    assert got[marker][1]["attempt"] == 2
    assert "redelivered" in got[marker][1]["message"]
    assert [d for _, d in first] == [f"t{i} " for i in range(len(first))] and len(first) >= 3
    assert "".join(d for _, d in second) == expected_output(10)
    assert got[-1] == ("end", None) and kinds.count("attempt") == 1


async def test_an_unreachable_queue_answers_503_with_retry_after() -> None:
    """While the queue is down every run endpoint answers 503 StoreUnavailable with
    Retry-After and /healthz says unavailable; when it is back, all works again."""
    queue = Switchable(InMemoryRunQueue(lease_timeout=5.0))
    log = InMemoryEventLog()
    client = ScaleoutClient(queue, log)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(ScaleoutWorker(GRAPHS, queue, log, settings=FAST).run)  # type: ignore[arg-type]
        async with gateway_server(client) as http:
            queue.down = True
            for path in ("/slow_chain/invoke", "/slow_chain/stream", "/slow_chain/batch"):
                body = {"inputs": [{"n": 1}]} if path.endswith("batch") else {"input": {"n": 1}}
                reply = await http.post(path, json=body)
                assert (reply.status_code, reply.headers["retry-after"]) == (503, "5"), path
                assert reply.json()["type"] == "StoreUnavailable"
                assert "try again shortly" in reply.json()["message"]
            health = await http.get("/healthz")
            assert (health.status_code, health.json()["status"]) == (503, "unavailable")
            assert "test outage" in health.json()["error"]
            queue.down = False
            assert (await http.get("/healthz")).json()["status"] == "ok"
            reply = await http.post("/slow_chain/invoke", json={"input": {"n": 2}})
            assert reply.json()["output"] == expected_output(2)
        nursery.cancel_scope.cancel()


async def test_a_client_that_leaves_cancels_its_run_on_the_worker() -> None:
    """Closing a /stream connection cancels the run where it runs: its log ends cancelled
    long before the run would have finished."""
    queue, log = InMemoryRunQueue(lease_timeout=30.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    async with trio.open_nursery() as nursery:
        worker = ScaleoutWorker(GRAPHS, queue, log, settings=FAST)
        await nursery.start(worker.run)
        async with gateway_server(client) as http:
            async with http.stream("POST", "/slow_chain/stream",
                                   json={"input": {"n": 10_000, "delay": 0.01}}) as reply:
                seen = await until_data(reply, 2)
            run_id = seen[0][1]["run_id"]
            with trio.fail_after(10):
                while (await client.status(run_id)).state != "cancelled":
                    await trio.sleep(0.02)
        with trio.fail_after(5):
            while worker.running:
                await trio.sleep(0.02)
        assert worker.statistics().cancelled == 1
        nursery.cancel_scope.cancel()


async def test_events_through_a_gateway_carry_runs_from_every_worker() -> None:
    """GET /events behind a gateway: the runs of two workers arrive whole, each in order."""
    queue, log, feed = InMemoryRunQueue(), InMemoryEventLog(), InMemoryEventFeed()
    client = ScaleoutClient(queue, log, feed=feed)
    async with trio.open_nursery() as nursery:
        one_at_a_time = WorkerSettings(poll_interval=0.05, concurrency=1)
        workers = [ScaleoutWorker(GRAPHS, queue, log, consumer=name, feed=feed,
                                  settings=one_at_a_time) for name in ("w1", "w2")]
        for worker in workers:
            await nursery.start(worker.run)
        async with gateway_server(client) as http, trio.open_nursery() as readers:
            seen: list[tuple[str, Any]] = []
            await readers.start(partial(follow_events, http, {"include_names": "RunnableSequence"},
                                        seen))
            assert seen[0] == ("metadata", {"policy": "drop_oldest", "bound": 256})
            submitted: list[str] = []
            with trio.fail_after(20):
                while len(ended(seen) & set(submitted)) < 4:
                    # Runs that start before the workers' next poll are not in the feed.
                    for _ in range(2):  # one for each worker
                        submitted.append(await client.submit("slow_chain", {"n": 3,
                                                                            "delay": 0.05}))
                    await trio.sleep(0.2)
            readers.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    events = [d for e, d in seen if e == "data"]
    finished = ended(seen) & set(submitted)
    for run_id in finished:
        mine = [ev["event"] for ev in events if ev["run_id"] == run_id]
        assert mine == ["on_chain_start", *["on_chain_stream"] * 3, "on_chain_end"]
    consumers = {(await client.log.read(r, "0-0", count=1))[0].info["consumer"] for r in finished}
    assert consumers == {"w1", "w2"}

