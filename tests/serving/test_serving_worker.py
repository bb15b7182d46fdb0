"""Worker: concurrency limits, a bounded queue, run handles, the worker bus, graceful shutdown."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from serving_apps import JOKE, failing, joke, make_ticks

from rillet.graphs import RunnableLambda
from rillet.runtime.engine.handles import RunCancelled
from rillet.runtime.engine.worker import Worker
from rillet.runtime.errors import WorkerBusy
from rillet.runtime.events.types import Event, RunFinished, RunStarted


def _sleeper(seconds: float, log: list[str] | None = None) -> RunnableLambda:
    async def sleep(x: str) -> str:
        if log is not None:
            log.append(f"start {x}")
        await trio.sleep(seconds)
        if log is not None:
            log.append(f"end {x}")
        return x

    return RunnableLambda(sleep, name="sleep")


async def test_result_stream_and_events_of_one_run() -> None:
    """result() adds the chunks up, stream() yields them, events() renders v2 dicts."""
    async with Worker() as worker:
        run = await worker.submit(joke, {"topic": "parrot"})
        assert await run.result() == JOKE
        run = await worker.submit(joke, {"topic": "parrot"})
        assert "".join([token async for token in run.stream()]) == JOKE
        run = await worker.submit(joke, {"topic": "parrot"}, events=True)
        names = [ev["event"] async for ev in run.events(include_types=["parser"])]
        assert names[0] == "on_parser_start" and names[-1] == "on_parser_end"
        run = await worker.submit(joke, {"topic": "parrot"}, events=True)
        assert await run.result() == JOKE


async def test_a_run_is_read_once_and_by_the_reader_it_was_submitted_for() -> None:
    """Reading output from an events run (or twice) fails with a message saying what to do."""
    async with Worker() as worker:
        run = await worker.submit(joke, {"topic": "x"})
        with pytest.raises(RuntimeError, match=r"^events\(\) needs a run submitted with "
                                               r"events=True"):
            run.events()
        stream = run.stream()
        with pytest.raises(RuntimeError, match=r"already read by stream\(\)"):
            await run.result()
        await stream.aclose()
        with pytest.raises(TypeError, match=r"^Worker.submit expected a runnable .* got int: 3$"):
            await worker.submit(3, None)


async def test_the_run_error_is_raised_to_every_reader() -> None:
    """A failing run raises its own exception from result(), stream() and events()."""
    async with Worker() as worker:
        with pytest.raises(ValueError, match="cannot handle 1"):
            await (await worker.submit(failing, 1)).result()
        events: list[str] = []
        run = await worker.submit(failing, 1, events=True)
        with pytest.raises(ValueError, match="cannot handle 1"):
            async for ev in run.events():
                events.append(ev["event"])
        assert events[-1] == "on_chain_error"


async def test_at_most_max_concurrent_runs_run_and_the_rest_wait_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two slots, four submissions: two run at once, the others start as slots free up."""
    log: list[str] = []
    async with Worker(max_concurrent_runs=2, max_queued=2) as worker:
        async with trio.open_nursery() as nursery:
            for name in "abcd":
                nursery.start_soon(lambda n: _submit_and_wait(worker, n, log), name)
                await trio.sleep(0.1)  # submit in a known order
            await trio.sleep(0.5)
            assert worker.statistics().running == 2
            assert worker.statistics().waiting == 2
    assert log == ["start a", "start b", "end a", "start c", "end b", "start d", "end c", "end d"]
    assert trio.current_time() == pytest.approx(2.1)  # c and d started as a and b ended


async def _submit_and_wait(worker: Worker, name: str, log: list[str]) -> None:
    run = await worker.submit(_sleeper(1.0, log), name)
    assert await run.result() == name


async def test_a_full_queue_answers_busy_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """With every slot taken and max_queued submissions waiting, the next one is refused."""
    async with Worker(max_concurrent_runs=1, max_queued=1) as worker:
        first = await worker.submit(_sleeper(10), "a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.submit, _sleeper(10), "b")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(WorkerBusy, match=r"^worker is busy: 1 runs running "
                               r"\(max_concurrent_runs=1\) and 1 submissions waiting "
                               r"\(max_queued=1\); retry later$"):
                await worker.submit(_sleeper(10), "c")
            assert worker.statistics().rejected == 1
            first.cancel()
        assert trio.current_time() < 1  # nobody waited for the sleepers


async def test_shutdown_lets_runs_finish_within_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Runs shorter than shutdown_timeout finish; new submissions are refused meanwhile."""
    worker = Worker(shutdown_timeout=5)
    async with worker:
        run = await worker.submit(_sleeper(3), "a")
    assert trio.current_time() == pytest.approx(3)
    assert await run.result() == "a"
    with pytest.raises(WorkerBusy, match="^worker is shutting down and accepts no new runs$"):
        await worker.submit(joke, {"topic": "x"})


async def test_shutdown_cancels_runs_past_the_deadline_and_refuses_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past the deadline the run is cancelled (its reader says why); a waiter gets WorkerBusy."""
    ticking, state = make_ticks(1000, 1.0)
    outcome: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        worker = Worker(max_concurrent_runs=1, shutdown_timeout=2)
        async with worker:
            run = await worker.submit(ticking, "go")

            async def wait_for_slot() -> None:
                try:
                    await worker.submit(joke, {"topic": "x"})
                except WorkerBusy as error:
                    outcome.append(error)

            nursery.start_soon(wait_for_slot)
            await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() == pytest.approx(2)
    assert state.closed.is_set()
    assert str(outcome[0]) == "worker is shutting down and accepts no new runs"
    with pytest.raises(RunCancelled, match=r"did not finish: the worker shut down before it"):
        await run.result()


async def test_leaving_the_block_with_an_error_cancels_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crash inside ``async with Worker`` does not wait shutdown_timeout for the runs."""
    ticking, state = make_ticks(1000, 1.0)
    with pytest.raises(KeyError):
        async with Worker(shutdown_timeout=100) as worker:
            await worker.submit(ticking, "go")
            raise KeyError("boom")
    assert trio.current_time() < 1
    assert state.closed.is_set()


async def test_cancel_ends_the_reader_with_run_cancelled() -> None:
    """cancel() stops the run; its reader ends with RunCancelled, not a truncated output."""
    ticking, state = make_ticks(1000, 0.001)
    async with Worker() as worker:
        run = await worker.submit(ticking, "go")
        seen = 0
        with pytest.raises(RunCancelled, match="cancelled by its caller"):
            async for _ in run.stream():
                seen += 1
                if seen == 3:
                    run.cancel()
        assert state.closed.is_set()


async def test_the_worker_bus_carries_every_runs_events() -> None:
    """A worker subscriber sees the events of runs with and without their own subscriber."""
    async with Worker() as worker:
        with worker.subscribe(policy="block", bound=1000, include_types=["chain"]) as sub:
            first = await worker.submit(joke, {"topic": "a"})
            second = await worker.submit(joke, {"topic": "b"}, events=True)
            await first.result()
            await second.result()
            seen: list[Event] = []
            while True:
                try:
                    seen.append(sub.receive_nowait())
                except trio.WouldBlock:
                    break
    roots = {ev.run_id for ev in seen if isinstance(ev, (RunStarted, RunFinished))}
    assert {first.run_id, second.run_id} <= roots
    assert {ev.kind for ev in seen} == {"chain"}


async def test_a_drop_policy_subscriber_never_slows_the_runs() -> None:
    """A drop_oldest subscriber that never reads loses events; the run still completes."""
    async with Worker() as worker:
        with worker.subscribe(policy="drop_oldest", bound=2) as sub:
            assert await (await worker.submit(joke, {"topic": "x"})).result() == JOKE
            assert sub.statistics().buffered == 2
            assert sub.dropped > 10
            last = [sub.receive_nowait(), sub.receive_nowait()][-1]
            assert isinstance(last, RunFinished) and last.name == "RunnableSequence"


async def test_a_subscription_ends_when_the_worker_shuts_down() -> None:
    """Worker subscribers see end-of-stream at shutdown; subscribing afterwards fails."""
    worker = Worker()
    async with worker:
        sub = worker.subscribe()
    assert [ev async for ev in sub] == []
    with pytest.raises(RuntimeError, match="closed event bus"):
        worker.subscribe()


def test_limits_are_checked() -> None:
    """Nonsense limits fail at construction, naming the parameter."""
    with pytest.raises(ValueError, match=r"^max_concurrent_runs must be an int >= 1, got 0$"):
        Worker(max_concurrent_runs=0)
    with pytest.raises(ValueError, match=r"^max_queued must be an int >= 0, got -1$"):
        Worker(max_queued=-1)
