"""The supervisor: runs in system tasks, errors out bare with the node's name, early exits and
outside cancellation stop every actor."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from rillet.graphs import RunnableGenerator, RunnableLambda, RunnableParallel
from rillet.nodes import StrOutputParser
from rillet.runtime import NodeInputError, RunHandle, configure_logging
from rillet.runtime.chunks import DELTA
from rillet.runtime.engine.actors import transform_actor
from rillet.runtime.engine.edges import Emitter, Outlet
from rillet.runtime.engine.scope import RunScope, RunState
from rillet.runtime.engine.supervisor import Wiring, launch_run, sole_error


class Boom(Exception):
    """The test's own failure, so nothing else can raise it by accident."""


# -- sole_error -------------------------------------------------------------------------------


def test_sole_error_finds_the_real_failure_among_cancellations() -> None:
    """Cancelled leaves are skipped, nested groups searched, a bare error returned as is."""
    boom = Boom("x")
    cancelled = trio.Cancelled._create()
    group = BaseExceptionGroup("run", [cancelled, BaseExceptionGroup("inner", [cancelled, boom])])
    assert sole_error(group) is boom
    assert sole_error(boom) is boom
    assert sole_error(BaseExceptionGroup("only", [cancelled])) is None
    assert sole_error(cancelled) is None


# -- launch_run with hand-wired actors ----------------------------------------------------------


def _upper_wire(
    transform: Callable[[AsyncIterator[str]], AsyncGenerator[str, None]],
) -> Callable[[Wiring, Outlet], Outlet]:
    """A wire function placing one streaming node named 'upper' as the run's root."""

    def wire(w: Wiring, out: Outlet) -> Outlet:
        scope = w.note_scope(RunScope(name="upper", kind="chain", state=w.state, is_root=True))
        send, recv = w.edge()
        w.actor(transform_actor, transform, scope, recv, Emitter.open(out.tapped(scope)), DELTA)
        return Outlet.to(send)

    return wire


async def test_launch_run_streams_the_output_through_the_handle() -> None:
    """A launched run's chunks come out of ``RunHandle.chunks`` and the handle ends done."""

    async def upper(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            yield chunk.upper()

    handle = launch_run(_upper_wire(upper), ["a", "b", "c"], state=RunState())
    assert isinstance(handle, RunHandle)
    assert [chunk async for chunk in handle.chunks()] == ["A", "B", "C"]
    assert handle.done.is_set()
    assert handle.error is None


async def test_launch_run_reports_a_node_failure_bare_and_named(
    rillet_tasks: Callable[[], list[str]],
) -> None:
    """The handle raises the node's own exception (no group), annotated with the node."""

    async def upper(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            if chunk == "b":
                raise Boom("no b")
            yield chunk.upper()

    handle = launch_run(_upper_wire(upper), ["a", "b", "c"], state=RunState())
    received = []
    with pytest.raises(Boom) as info:
        async for chunk in handle.chunks():
            received.append(chunk)
    assert received == ["A"]
    assert str(info.value) == "no b"
    assert info.value.rillet_node == "upper"  # type: ignore[attr-defined]
    assert isinstance(handle.error, Boom)
    assert rillet_tasks() == []


async def test_leaving_handle_chunks_early_stops_the_run(
    rillet_tasks: Callable[[], list[str]],
) -> None:
    """Closing the chunk iterator after one chunk cancels the run and waits for its actors."""
    events: list[str] = []

    async def endless(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        try:
            async for _ in chunks:
                while True:
                    yield "tick"
        finally:
            events.append("finally")

    handle = launch_run(_upper_wire(endless), ["go"], state=RunState())
    async with aclosing(handle.chunks()) as chunks:  # type: ignore[type-var]
        async for _ in chunks:
            break
    assert events == ["finally"]
    assert handle.done.is_set()
    assert rillet_tasks() == []


async def test_a_failing_wire_function_is_the_runs_error() -> None:
    """An exception while wiring the run (before any actor starts) reaches the reader."""

    def wire(w: Wiring, out: Outlet) -> Outlet:
        raise Boom("cannot wire")

    handle = launch_run(wire, [1], state=RunState())
    with pytest.raises(Boom, match="cannot wire"):
        await handle.wait()


# -- errors through the Runnable API ------------------------------------------------------------


async def _tokens(_: Any) -> AsyncGenerator[str, None]:
    for token in ["a", "b", "c"]:
        yield token


async def _fail_on_b(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    async for chunk in chunks:
        if "b" in chunk:  # streamed: the second chunk; invoked: the whole text
            raise Boom("b is bad")
        yield chunk


def _failing_chain() -> Any:
    """``tokens | fail_on_b | relay``: the middle node fails on its second chunk."""

    async def relay(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            yield chunk

    return RunnableLambda(_tokens) | _fail_on_b | relay


def _assert_named(error: BaseException, node: str) -> None:
    assert not isinstance(error, BaseExceptionGroup)
    assert error.rillet_node == node  # type: ignore[attr-defined]
    assert any(node in note for note in error.__notes__)


async def test_ainvoke_raises_the_original_exception_with_the_node_name() -> None:
    """``ainvoke`` raises the failing node's exception type, named after that node."""
    with pytest.raises(Boom) as info:
        await _failing_chain().ainvoke(None)
    assert str(info.value) == "b is bad"
    _assert_named(info.value, "_fail_on_b")


async def test_astream_keeps_chunks_already_yielded_then_raises() -> None:
    """Chunks yielded before the failure stay with the caller; then the original error."""
    received: list[str] = []
    with pytest.raises(Boom) as info:
        async for chunk in _failing_chain().astream(None):
            received.append(chunk)
    assert received == ["a"]
    _assert_named(info.value, "_fail_on_b")


async def test_astream_is_exhausted_after_raising_the_error() -> None:
    """Like an async generator, a stream that raised the run's error is finished: the next
    ``__anext__`` raises StopAsyncIteration, not the error again."""
    chunks = _failing_chain().astream(None)
    assert await chunks.__anext__() == "a"
    with pytest.raises(Boom):
        await chunks.__anext__()
    with pytest.raises(StopAsyncIteration):
        await chunks.__anext__()


def test_sync_invoke_and_stream_raise_the_original_exception() -> None:
    """From synchronous code, ``invoke`` and ``stream`` raise the node's exception, named."""
    with pytest.raises(Boom) as info:
        _failing_chain().invoke(None)
    _assert_named(info.value, "_fail_on_b")

    received: list[str] = []
    with pytest.raises(Boom) as info:
        for chunk in _failing_chain().stream(None):
            received.append(chunk)
    assert received == ["a"]
    _assert_named(info.value, "_fail_on_b")


def test_batch_raises_the_original_exception() -> None:
    """``batch`` without ``return_exceptions`` raises the node's exception, not a group."""
    with pytest.raises(Boom) as info:
        _failing_chain().batch([None, None, None])
    _assert_named(info.value, "_fail_on_b")


async def test_abatch_raises_the_original_exception() -> None:
    """``abatch`` raises one of the failures bare, even when several inputs fail."""
    with pytest.raises(Boom) as info:
        await _failing_chain().abatch([None, None, None])
    _assert_named(info.value, "_fail_on_b")


async def test_a_plain_function_failure_is_named_after_the_function() -> None:
    """A sync function failing in its worker thread is reported under the function's name."""

    def divide(x: int) -> float:
        return 1 / x

    with pytest.raises(ZeroDivisionError) as info:
        await (RunnableLambda(lambda x: x - 1) | divide).ainvoke(1)
    _assert_named(info.value, "divide")


async def test_error_in_a_nested_run_keeps_the_innermost_node_name() -> None:
    """A function calling another runnable that fails re-raises that failure under the inner
    node's name (the innermost node wins), still bare."""

    async def inner_fails(x: int) -> int:
        raise Boom("deep")

    inner = RunnableLambda(inner_fails)

    async def outer(x: int) -> int:
        return int(await inner.ainvoke(x)) + 1

    with pytest.raises(Boom, match="deep") as info:
        await (RunnableLambda(outer) | (lambda x: x)).ainvoke(1)
    _assert_named(info.value, "inner_fails")
    assert len(info.value.__notes__) == 1


async def test_error_in_the_input_stream_reaches_the_caller() -> None:
    """An exception raised by the input iterator of ``atransform`` is the run's error."""

    async def inputs() -> AsyncGenerator[str, None]:
        yield "a"
        raise Boom("input broke")

    async def relay(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            yield chunk

    received = []
    with pytest.raises(Boom, match="input broke"):
        async for chunk in RunnableGenerator(relay).atransform(inputs()):
            received.append(chunk)
    assert received == ["a"]


async def test_failing_branch_cancels_its_siblings(autojump_clock: trio.testing.MockClock) -> None:
    """When one parallel branch fails, the others stop at once (their ``finally`` runs) and
    the chunks they already streamed stay with the caller."""
    ticks: list[int] = []
    events: list[str] = []

    async def ticker(_: Any) -> AsyncGenerator[int, None]:
        try:
            for i in range(100):
                await trio.sleep(1)
                ticks.append(i)
                yield i
        finally:
            events.append("ticker finally")

    async def fails_later(_: Any) -> str:
        await trio.sleep(3.5)
        raise Boom("branch failed")

    parallel = RunnableParallel(slow=RunnableLambda(ticker), bad=fails_later)
    received: list[dict[str, Any]] = []
    start = trio.current_time()
    with pytest.raises(Boom) as info:
        async for chunk in parallel.astream(None):
            received.append(dict(chunk))
    assert trio.current_time() - start == 3.5
    _assert_named(info.value, "fails_later")
    assert events == ["ticker finally"]
    assert received == [{"slow": 0}, {"slow": 1}, {"slow": 2}]
    await trio.sleep(10)
    assert ticks == [0, 1, 2]


async def test_simultaneous_failures_still_raise_one_bare_exception() -> None:
    """Two branches failing at once give the caller one of the two errors, never a group."""

    async def bad_key(_: Any) -> None:
        raise KeyError("k")

    async def bad_value(_: Any) -> None:
        raise ValueError("v")

    with pytest.raises((KeyError, ValueError)) as info:
        await RunnableParallel(k=bad_key, v=bad_value).ainvoke(None)
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_failed_run_logs_started_then_failed() -> None:
    """With logging on, a parser given a dict logs its start and its failure, the failure
    carrying the NodeInputError (STYLE.md §12)."""
    configure_logging(True)
    try:
        with capture_logs() as logs, pytest.raises(NodeInputError) as info:
            await StrOutputParser().ainvoke({"topic": "parrot"})
    finally:
        configure_logging(False)
    assert str(info.value) == (
        "node 'StrOutputParser' expected str or a message (chunk), got dict: {'topic': 'parrot'}"
    )
    assert [e["event"] for e in logs] == ["run_started", "run_failed"]
    assert logs[-1]["node"] == "StrOutputParser"
    assert "NodeInputError" in logs[-1]["error"]


# -- early exit and outside cancellation (async) ------------------------------------------------


async def _until_stable(read: Callable[[], int]) -> None:
    """Wait (bounded, short real sleeps) until worker threads stop changing ``read()``."""
    last, same = read(), 0
    for _ in range(400):
        await trio.sleep(0.005)
        now = read()
        same, last = (same + 1 if now == last else 0), now
        if same >= 4:
            return


def _counting_source(log: list[str], kind: str = "async") -> Any:
    """``source | relay`` whose upstream generator logs every item it produces and its
    ``finally``: an async or sync generator over the input stream (piped), or a sync generator
    function of the whole input (``RunnableLambda``)."""

    async def source(chunks: AsyncIterator[Any]) -> AsyncGenerator[int, None]:
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
            time.sleep(0.02)  # a cleanup that takes a moment, like closing a connection
            log.append("finally")

    def whole_input_source(_: Any) -> Iterator[int]:
        try:
            for i in range(10_000):
                log.append("produced")
                yield i
        finally:
            time.sleep(0.02)
            log.append("finally")

    async def relay(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            yield chunk

    first = {
        "async": RunnableGenerator(source),
        "sync": RunnableGenerator(sync_source),
        "lambda-sync": RunnableLambda(whole_input_source),
    }[kind]
    return first | relay


async def test_break_out_of_astream_cancels_the_run(
    autojump_clock: trio.testing.MockClock, rillet_tasks: Callable[[], list[str]]
) -> None:
    """Breaking out of ``async for`` stops the upstream generator (its ``finally`` runs) and
    leaves no rillet task behind; the generator produces nothing more."""
    log: list[str] = []
    async for chunk in _counting_source(log).astream(None):
        if chunk == 3:
            break
    await trio.testing.wait_all_tasks_blocked()
    assert log[-1] == "finally"
    assert rillet_tasks() == []
    produced = log.count("produced")
    assert produced <= 4 + 2 * 16 + 2  # what fits in the edges, not the 10 000 items
    await trio.sleep(60)
    assert log.count("produced") == produced


@pytest.mark.parametrize("kind", ["async", "sync", "lambda-sync"])
async def test_aclose_of_astream_waits_for_every_actor(
    kind: str, rillet_tasks: Callable[[], list[str]]
) -> None:
    """``aclose()`` after one chunk returns only once the upstream generator's ``finally``
    has run, whether it is an async generator or a sync one running in worker threads."""
    log: list[str] = []
    chunks = _counting_source(log, kind).astream(None, {"bound": 2})
    assert await chunks.__anext__() == 0
    await _until_stable(lambda: len(log))  # the edges are full: the source is parked
    await chunks.aclose()
    assert log[-1] == "finally"
    assert rillet_tasks() == []
    with pytest.raises(StopAsyncIteration):
        await chunks.__anext__()


async def test_async_with_astream_closes_the_run(rillet_tasks: Callable[[], list[str]]) -> None:
    """Leaving ``async with chain.astream(...)`` early cancels the run and waits for it."""
    log: list[str] = []
    async with _counting_source(log).astream(None) as chunks:
        async for _ in chunks:
            break
    assert log[-1] == "finally"
    assert rillet_tasks() == []


async def test_exception_in_the_consumer_cancels_the_run(
    rillet_tasks: Callable[[], list[str]],
) -> None:
    """An exception raised in the body of ``async for`` propagates and stops the run."""
    log: list[str] = []
    with pytest.raises(Boom):
        async for chunk in _counting_source(log).astream(None):
            if chunk == 2:
                raise Boom("consumer gave up")
    await trio.testing.wait_all_tasks_blocked()
    assert log[-1] == "finally"
    assert rillet_tasks() == []


async def test_leaving_a_parallel_stream_early_stops_every_branch(
    autojump_clock: trio.testing.MockClock, rillet_tasks: Callable[[], list[str]]
) -> None:
    """Breaking out after the first ``{key: chunk}`` stops all branches, not only the one
    that produced it."""
    events: list[str] = []

    def ticker(label: str, period: float) -> Any:
        async def tick(_: Any) -> AsyncGenerator[int, None]:
            try:
                for i in range(1000):
                    await trio.sleep(period)
                    yield i
            finally:
                events.append(f"{label} finally")

        return RunnableLambda(tick)

    parallel = RunnableParallel(fast=ticker("fast", 1), slow=ticker("slow", 7))
    async with parallel.astream(None) as chunks:
        async for chunk in chunks:
            assert chunk == {"fast": 0}
            break
    assert sorted(events) == ["fast finally", "slow finally"]
    assert trio.current_time() == 1
    assert rillet_tasks() == []


async def test_cancelling_the_caller_cancels_the_run(
    autojump_clock: trio.testing.MockClock, rillet_tasks: Callable[[], list[str]]
) -> None:
    """A cancel scope around ``ainvoke`` stops the run's nodes, and the caller sees a plain
    cancellation (no error of the run)."""
    events: list[str] = []

    async def forever(_: Any) -> str:
        try:
            await trio.sleep_forever()
        finally:
            events.append("finally")
        return "never"

    async def same(x: int) -> int:
        return x

    with trio.move_on_after(5) as scope:
        await (RunnableLambda(same) | forever).ainvoke(1)
    assert scope.cancelled_caught
    assert trio.current_time() == 5
    assert events == ["finally"]
    assert rillet_tasks() == []


async def test_runs_are_system_tasks_not_children_of_the_caller() -> None:
    """While a stream is open, its run lives in a rillet system task (so the caller's
    ``async for`` never yields from inside a nursery)."""
    log: list[str] = []

    def descendants(task: trio.lowlevel.Task) -> list[str]:
        names = []
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                names += [child.name, *descendants(child)]
        return names

    chunks = _counting_source(log).astream(None)
    try:
        await chunks.__anext__()
        root = trio.lowlevel.current_root_task()
        assert root is not None
        system = root.child_nurseries
        assert "rillet-run:RunnableSequence" in [t.name for n in system for t in n.child_tasks]
        assert not [n for n in descendants(trio.lowlevel.current_task()) if "rillet" in n]
    finally:
        await chunks.aclose()
