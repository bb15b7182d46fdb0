"""The sync bridge: ``invoke`` / ``stream`` / ``batch`` from plain threads, early exit from
sync code, nested sync calls inside a run, and the ``rillet demo`` command."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableGenerator, RunnableLambda
from rillet.runtime import current_scope
from rillet.runtime.cli.main import DEMO_STORY
from rillet.runtime.engine.bridge import portal_token
from rillet.runtime.engine.streams import HANDOFF_EDGES

REPO = Path(__file__).resolve().parents[2]


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a fresh plain thread; return its result or raise its exception."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            box["error"] = error

    thread = threading.Thread(target=target, name="test-caller")
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the call did not return"
    if "error" in box:
        raise box["error"]
    return box["result"]


def _double(x: int) -> int:
    return x * 2


def _words(text: str) -> Iterator[str]:
    yield from text.split()


# -- calling from threads ---------------------------------------------------------------------


def test_invoke_stream_and_batch_from_a_plain_thread() -> None:
    """A thread of the application's own can invoke, stream and batch a chain."""
    chain = RunnableLambda(_double) | RunnableLambda(str) | RunnableLambda(_words)
    assert _in_thread(lambda: chain.invoke(21)) == "42"
    assert _in_thread(lambda: list((RunnableLambda(_words)).stream("a b c"))) == ["a", "b", "c"]
    assert _in_thread(lambda: RunnableLambda(_double).batch([1, 2, 3])) == [2, 4, 6]


def test_several_threads_can_call_at_once() -> None:
    """Calls from many threads at the same time each get their own result."""
    chain = RunnableLambda(_double) | (lambda x: x + 1)
    results: dict[int, Any] = {}

    def call(i: int) -> None:
        results[i] = chain.invoke(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {i: 2 * i + 1 for i in range(8)}


def test_sync_calls_work_while_another_trio_loop_runs_in_another_thread() -> None:
    """Another trio loop running in another thread does not confuse the bridge."""
    started, stop = threading.Event(), threading.Event()

    async def other_loop() -> None:
        started.set()
        while not stop.is_set():
            await trio.sleep(0.001)

    other = threading.Thread(target=trio.run, args=(other_loop,), name="other-trio-loop")
    other.start()
    try:
        assert started.wait(timeout=10)
        assert RunnableLambda(_double).invoke(5) == 10
        assert list(RunnableLambda(_words).stream("x y")) == ["x", "y"]
        assert _in_thread(lambda: RunnableLambda(_double).invoke(6)) == 12
    finally:
        stop.set()
        other.join(timeout=10)


async def test_sync_calls_on_a_trio_thread_raise_a_clear_error() -> None:
    """On a thread running a trio loop, blocking calls raise RuntimeError naming the call and
    pointing at the async variant, instead of deadlocking the loop."""
    runnable = RunnableLambda(_double, name="double")
    with pytest.raises(RuntimeError, match=r"double\.invoke\(\) blocks.*ainvoke"):
        runnable.invoke(1)
    with pytest.raises(RuntimeError, match=r"double\.batch\(\) blocks.*abatch"):
        runnable.batch([1])
    with pytest.raises(RuntimeError, match=r"stream\(\) blocks.*astream"):
        next(iter(runnable.stream(1)))


def test_sync_function_calling_invoke_inside_a_run_makes_a_child_run() -> None:
    """A sync lambda calling ``other.invoke()`` goes back to the run's loop: it works, and the
    inner run is a child of the lambda's run."""
    seen: dict[str, Any] = {}

    def inner_fn(x: int) -> int:
        scope = current_scope()
        assert scope is not None
        seen["inner_parents"] = scope.parent_ids
        return x * 10

    inner = RunnableLambda(inner_fn)

    def outer_fn(x: int) -> int:
        scope = current_scope()
        assert scope is not None
        seen["outer"] = scope.run_id
        return int(inner.invoke(x)) + 1

    assert RunnableLambda(outer_fn).invoke(4) == 41
    assert seen["outer"] in seen["inner_parents"]


def test_sync_function_can_stream_another_runnable_inside_a_run() -> None:
    """A sync lambda iterating ``other.stream()`` inside a run gets every chunk."""
    words = RunnableLambda(_words)

    def collect(text: str) -> list[str]:
        return [w.upper() for w in words.stream(text)]

    assert _in_thread(lambda: RunnableLambda(collect).invoke("a b c")) == ["A", "B", "C"]


# -- early exit from sync code ------------------------------------------------------------------


def _chain_with_source(kind: str, log: list[str]) -> tuple[Any, CodeType]:
    """``source | relay`` where the source is an async or a sync generator over the input
    stream that logs every item it produces and its ``finally``."""

    async def async_source(chunks: AsyncIterator[Any]) -> AsyncGenerator[int, None]:
        try:
            async for _ in chunks:
                for i in range(10_000):
                    log.append("produced")
                    yield i
        finally:
            log.append("finally")

    def sync_source(chunks: Iterator[Any]) -> Iterator[int]:
        try:
            for _ in chunks:
                for i in range(10_000):
                    log.append("produced")
                    yield i
        finally:
            # Cleanup that takes a moment, like closing a connection: a stream that returns
            # before the cleanup is over is caught every time, not by luck of scheduling.
            time.sleep(0.02)
            log.append("finally")

    async def relay(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            yield chunk

    source = async_source if kind == "async" else sync_source
    return RunnableGenerator(source) | relay, source.__code__


def _baseline(kind: str, settle: Callable[[int], int]) -> int:
    """Thread count after a complete run of the same shape (portal and worker threads warm)."""
    log: list[str] = []
    chain, _ = _chain_with_source(kind, log)
    for i, _chunk in enumerate(chain.stream(None, {"bound": 2})):
        if i == 50:
            break
    return settle(threading.active_count())


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_break_out_of_stream_in_a_thread_cancels_the_run(
    kind: str,
    wait_until_stable: Callable[[Callable[[], object]], object],
    threads_running: Callable[[CodeType], list[str]],
    settled_threads: Callable[[int], int],
) -> None:
    """Breaking out of ``for chunk in chain.stream(...)`` in a plain thread stops the upstream
    generator before the loop is left (its ``finally`` has run) and leaves no thread behind."""
    baseline = _baseline(kind, settled_threads)
    log: list[str] = []
    chain, code = _chain_with_source(kind, log)

    def consume() -> None:
        for chunk in chain.stream(None, {"bound": 2}):
            if chunk == 1:
                wait_until_stable(lambda: len(log))  # the edges are full: the source is parked
                break

    _in_thread(consume)
    assert log[-1] == "finally"
    produced = log.count("produced")
    assert produced < 50
    wait_until_stable(lambda: len(log))
    assert log.count("produced") == produced
    assert threads_running(code) == []
    assert settled_threads(baseline) <= baseline


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_close_of_a_sync_stream_waits_for_the_run_to_stop(
    kind: str,
    wait_until_stable: Callable[[Callable[[], object]], object],
    threads_running: Callable[[CodeType], list[str]],
    settled_threads: Callable[[int], int],
) -> None:
    """``close()`` after one chunk cancels the run and returns once the generator's
    ``finally`` has run."""
    baseline = _baseline(kind, settled_threads)
    log: list[str] = []
    chain, code = _chain_with_source(kind, log)
    chunks = chain.stream(None, {"bound": 2})
    assert next(chunks) == 0
    wait_until_stable(lambda: len(log))
    chunks.close()
    assert log[-1] == "finally"
    assert list(chunks) == []
    assert threads_running(code) == []
    assert settled_threads(baseline) <= baseline


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_garbage_collected_sync_stream_cancels_the_run(
    kind: str,
    wait_until_stable: Callable[[Callable[[], object]], object],
    threads_running: Callable[[CodeType], list[str]],
    settled_threads: Callable[[int], int],
) -> None:
    """Dropping a half-read sync stream (``del`` + ``gc.collect()``) cancels its run."""
    baseline = _baseline(kind, settled_threads)
    log: list[str] = []
    chain, code = _chain_with_source(kind, log)
    chunks = chain.stream(None, {"bound": 2})
    assert next(chunks) == 0
    wait_until_stable(lambda: len(log))
    del chunks
    gc.collect()
    assert log[-1] == "finally"
    produced = log.count("produced")
    wait_until_stable(lambda: len(log))
    assert log.count("produced") == produced
    assert threads_running(code) == []
    assert settled_threads(baseline) <= baseline


def _portal_parked() -> None:
    """Wait until every task on the portal loop is blocked: the run's actors are parked on
    full edges (a scheduling fact, not a timing guess)."""
    trio.from_thread.run(trio.testing.wait_all_tasks_blocked, trio_token=portal_token())


@pytest.mark.parametrize("bound", [2, 16])
def test_sync_stream_keeps_backpressure(bound: int) -> None:
    """A sync consumer that stops to wait holds the upstream generator back: however long it
    waits, produced - consumed stays within a few channel bounds plus its local batch (the
    hand-off holds at most HANDOFF_EDGES bounds' worth)."""
    produced = 0

    async def source(chunks: AsyncIterator[Any]) -> AsyncGenerator[int, None]:
        nonlocal produced
        async for _ in chunks:
            for i in range(120):
                produced += 1
                yield i

    async def relay(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            yield chunk

    lags = []
    for consumed, _ in enumerate((RunnableGenerator(source) | relay).stream(None, {"bound": bound}), 1):
        if consumed % 20 == 1:
            _portal_parked()  # a slow consumer: upstream runs until parked
            lags.append(produced - consumed)
    assert len(lags) == 6
    assert max(lags) <= (5 + HANDOFF_EDGES) * bound
    assert max(lags) >= bound


def test_sync_stream_is_exhausted_after_raising_the_error() -> None:
    """Like a generator, a sync stream that raised the run's error is finished: the next
    ``next()`` raises StopIteration (no second error, no trio channel error)."""

    def fail(x: int) -> int:
        raise LookupError(f"no {x}")

    chunks = RunnableLambda(fail).stream(3)
    with pytest.raises(LookupError, match="no 3"):
        next(chunks)
    with pytest.raises(StopIteration):
        next(chunks)


def test_sync_stream_is_lazy() -> None:
    """Nothing runs until the first ``next()``: creating a stream starts no run."""
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x

    chunks = RunnableLambda(record).stream(7)
    assert calls == []
    assert list(chunks) == [7]
    assert calls == [7]


# -- the command line ---------------------------------------------------------------------------


def test_rillet_demo_streams_the_story() -> None:
    """``rillet demo`` exits 0 and prints the whole story after the command it shows."""
    done = subprocess.run(
        [sys.executable, "-m", "rillet.runtime.cli", "demo", "--delay", "0", "--topic", "otters"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ScriptedChatModel" in lines[0] and "'otters'" in lines[0]
    assert DEMO_STORY in lines
    assert lines.index(DEMO_STORY) > 0
