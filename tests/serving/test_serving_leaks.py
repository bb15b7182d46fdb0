"""Leaks (issue 16): a thousand streams abandoned mid-way leave no task, socket or run behind,
over HTTP and in-process. (Memory over ten thousand is a bench figure: ``python -m bench.soak
leaks``.)"""

from __future__ import annotations

import trio
import trio.testing
from http_helpers import open_raw, port_of, request_bytes
from serving_apps import make_ticks

from bench.soak import open_fds, task_count
from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.server import open_server

STREAMS = 1000


async def settle(worker: Worker) -> None:
    """Wait (bounded) until every abandoned run has unwound."""
    with trio.fail_after(30):
        while worker.statistics().running:
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)


async def test_a_thousand_http_streams_dropped_mid_way_leave_nothing_behind() -> None:
    """Each client reads the first chunk of a long stream and hangs up; afterwards the server
    holds as many tasks and file descriptors as before, and no run."""
    ticking, _ = make_ticks(10**6, 0.001)
    async with Worker(max_concurrent_runs=64, max_queued=0) as worker, \
            open_server({"ticks": ticking}, worker=worker) as running:
        port = port_of(running.url)
        request = request_bytes("POST", "/ticks/stream", b'{"input": 1}')

        async def one() -> None:
            async with await open_raw(port) as stream:
                await stream.send_all(request)
                received = b""
                while b"event: data" not in received:
                    received += await stream.receive_some(65536)

        async def batch(size: int) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(size):
                    nursery.start_soon(one)

        await batch(20)  # warm up: first-use allocations are not leaks
        await settle(worker)
        tasks, fds = task_count(), open_fds()
        with trio.fail_after(120):
            for _ in range(STREAMS // 50):
                await batch(50)
        await settle(worker)
        assert (task_count(), open_fds()) == (tasks, fds)
        assert worker.statistics().accepted == STREAMS + 20


async def test_a_thousand_in_process_streams_left_early_leave_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``break`` out of astream after the first chunk, a thousand times: no task remains."""
    ticking, state = make_ticks(10**6, 0.01)
    tasks = task_count()
    for _ in range(STREAMS):
        async for _chunk in ticking.astream(1):  # type: ignore[attr-defined]
            break
    await trio.testing.wait_all_tasks_blocked()
    assert task_count() == tasks
    assert state.produced < 3 * STREAMS  # every run stopped at once
