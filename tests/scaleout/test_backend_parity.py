"""The two backends behind the HTTP server — the in-process Worker and ``--redis``'s queue
gateway — answer the same failure with the same status and body, and drain alike on
shutdown (issue 19, point 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio
import trio.testing

from rillet.graphs import RunnableGenerator, RunnableLambda
from rillet.nodes import StrOutputParser
from rillet.runtime import Worker
from rillet.runtime.errors import RemoteError
from rillet.runtime.scaleout.gateway import QueueGateway
from rillet.runtime.scaleout.queue import InMemoryRunQueue
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker
from rillet.runtime.scaleout.store import InMemoryEventLog
from rillet.runtime.serve.server import open_server

from .graphs import expected_output

SERVED = {"parser": StrOutputParser()}


async def _tokens_of_stream(requests: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for request in requests:
        for i in range(request["n"]):
            await trio.sleep(request["delay"])
            yield f"t{i} "


async def _same(request: dict[str, Any]) -> dict[str, Any]:
    return request


# Async steps only: a sync step runs in a thread, and the mock clock would jump while it does.
GRAPHS = {"slow_chain": RunnableLambda(_same) | RunnableGenerator(_tokens_of_stream)}


async def _reply(worker: Any, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with open_server(SERVED, worker=worker) as server, httpx.AsyncClient(
            base_url=server.url, timeout=10) as http:
        reply = await http.post(path, json=body)
        return reply.status_code, reply.json()


async def test_bad_input_gets_the_same_answer_from_both_backends() -> None:
    """A node's NodeInputError is a 422 naming it, in-process and through the queue."""
    body = {"input": {"a": 1}}
    async with Worker() as worker:
        local = await _reply(worker, "/parser/invoke", body)
    queue, log = InMemoryRunQueue(lease_timeout=5.0), InMemoryEventLog()
    async with trio.open_nursery() as nursery:
        runner = ScaleoutWorker(SERVED, queue, log)
        await nursery.start(runner.run)
        queued = await _reply(QueueGateway(ScaleoutClient(queue, log), SERVED),
                              "/parser/invoke", body)
        runner.stop()
        nursery.cancel_scope.cancel()
    assert local[0] == queued[0] == 422
    assert local[1]["type"] == queued[1]["type"] == "NodeInputError"
    assert local[1]["message"] == queued[1]["message"]
    assert "expected str or a message" in local[1]["message"]


async def _follow(run: Any, out: list[str], errors: list[BaseException]) -> None:
    try:
        while chunks := await run.receive_chunks(16):
            out.extend(chunks)
    except RemoteError as error:
        errors.append(error)
    finally:
        await run.aclose()


async def test_a_gateway_lets_followed_runs_finish_within_its_shutdown_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Shutting down, a gateway stops accepting, waits for the runs its clients follow (up to
    ``shutdown_timeout``, 10 s by default as for the Worker), and cancels none of them."""
    queue, log = InMemoryRunQueue(lease_timeout=30.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    gateway = QueueGateway(client, GRAPHS)
    assert gateway.shutdown_timeout == 10.0
    out: list[str] = []
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        runner = ScaleoutWorker(GRAPHS, queue, log)
        await nursery.start(runner.run)
        run = await gateway.submit(GRAPHS["slow_chain"], {"n": 5, "delay": 1.0})
        nursery.start_soon(_follow, run, out, errors)
        start = trio.current_time()
        await gateway.shutdown()
        assert trio.current_time() - start < 10  # ended with the run, not at the deadline
        assert not gateway.accepting
        runner.stop()
        nursery.cancel_scope.cancel()
    assert "".join(out) == expected_output(5) and not errors
    assert gateway.statistics().cancelled == 0


async def test_a_gateway_cancels_followed_runs_past_its_shutdown_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A followed run still going at the deadline is cancelled on its worker, as a Worker
    cancels its runs past ``shutdown_timeout``."""
    queue, log = InMemoryRunQueue(lease_timeout=30.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    gateway = QueueGateway(client, GRAPHS, shutdown_timeout=3.0)
    out: list[str] = []
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        runner = ScaleoutWorker(GRAPHS, queue, log)
        await nursery.start(runner.run)
        run = await gateway.submit(GRAPHS["slow_chain"], {"n": 100, "delay": 1.0})
        nursery.start_soon(_follow, run, out, errors)
        start = trio.current_time()
        await gateway.shutdown()
        assert 3 <= trio.current_time() - start < 4
        with trio.fail_after(30):
            while (await client.status(run.run_id)).state != "cancelled":
                await trio.sleep(0.5)
        runner.stop()
        nursery.cancel_scope.cancel()
    assert gateway.statistics().cancelled == 1
    assert 0 < len(out) < 100
