"""Edges (bounded channels, emitters) and actors, and the backpressure they give a whole run."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableGenerator
from rillet.runtime import DEFAULT_BOUND, open_edge
from rillet.runtime.chunks import DELTA
from rillet.runtime.engine.actors import invoke_actor, stream_actor, transform_actor
from rillet.runtime.engine.edges import SKIP, Emitter, Outlet
from rillet.runtime.engine.scope import RunScope, RunState


def _scope(name: str = "upper", kind: str = "parser") -> RunScope:
    return RunScope(name=name, kind=kind, state=RunState())


# -- edges ------------------------------------------------------------------------------------


def test_open_edge_rejects_a_negative_bound() -> None:
    """A negative bound is a ValueError that says what was given."""
    with pytest.raises(ValueError, match=r"^edge bound must be >= 0, got -1$"):
        open_edge(-1)


@pytest.mark.parametrize(
    ("bound", "message"),
    [
        (math.inf, r"finite int; rillet has no unbounded edges"),
        (2.0, r"^edge bound must be an int, got float: 2\.0$"),
        (True, r"^edge bound must be an int, got bool: True$"),
        ("16", r"^edge bound must be an int, got str: '16'$"),
    ],
)
def test_open_edge_rejects_non_integer_bounds(bound: Any, message: str) -> None:
    """Only a finite int is a bound: infinity, floats, bools and strings are TypeErrors."""
    with pytest.raises(TypeError, match=message):
        open_edge(bound)


async def test_zero_bound_edge_is_a_rendezvous() -> None:
    """With bound 0 nothing is buffered: a send waits until a receiver takes the value."""
    send, recv = open_edge(0)
    with pytest.raises(trio.WouldBlock):
        send.send_nowait("x")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send.send, "x")
        await trio.testing.wait_all_tasks_blocked()
        assert send.statistics().tasks_waiting_send == 1
        assert await recv.receive() == "x"


def test_default_bound_is_sixteen() -> None:
    """An edge opened without a bound holds exactly DEFAULT_BOUND (16) values."""
    send, _recv = open_edge()
    for i in range(16):
        send.send_nowait(i)
    with pytest.raises(trio.WouldBlock):
        send.send_nowait(16)
    assert DEFAULT_BOUND == 16


async def test_slow_consumer_throttles_producer(autojump_clock: trio.testing.MockClock) -> None:
    """A full edge parks the producer instead of buffering without limit."""
    send, recv = open_edge(2)
    sent: list[int] = []

    async def producer() -> None:
        with send:
            for i in range(10):
                await send.send(i)
                sent.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == [0, 1]
        assert send.statistics().tasks_waiting_send == 1
        with recv:
            async for _ in recv:
                await trio.sleep(1)  # slow consumer; autojump makes it instant
    assert trio.current_time() == 10


# -- emitters ---------------------------------------------------------------------------------


async def test_emitter_reports_a_consumer_that_hung_up() -> None:
    """``send`` returns True while the consumer listens and False once it has closed its end."""
    send, recv = open_edge(4)
    with send, Emitter.open(Outlet.to(send)) as out:
        assert await out.send("a") is True
        assert recv.receive_nowait() == "a"
        recv.close()
        assert await out.send("b") is False
        assert out.alive is False


async def test_emitter_fan_out_keeps_feeding_the_consumer_still_listening() -> None:
    """In a fan-out, one consumer leaving does not stop delivery to the other."""
    send_a, recv_a = open_edge(4)
    send_b, recv_b = open_edge(4)
    with send_a, send_b, Emitter.open(Outlet.to(send_a, send_b)) as out:
        assert await out.send(1)
        recv_a.close()
        assert await out.send(2) is True
        assert [recv_b.receive_nowait(), recv_b.receive_nowait()] == [1, 2]
        recv_b.close()
        assert await out.send(3) is False


async def test_emitter_applies_maps_and_drops_skipped_chunks() -> None:
    """A mapped outlet transforms each chunk, and a map returning SKIP drops the chunk."""
    send, recv = open_edge(8)
    outlet = Outlet.to(send).mapped(lambda n: SKIP if n % 2 else n * 10)
    with send, Emitter.open(outlet) as out:
        for n in range(5):
            assert await out.send(n)
    received = []
    async with recv:
        async for value in recv:
            received.append(value)
    assert received == [0, 20, 40]


async def test_fan_in_ends_when_the_last_producer_closes() -> None:
    """Each producer holds its own clone; the consumer sees end-of-stream after the last one."""
    send, recv = open_edge(8)
    first, second = Emitter.open(Outlet.to(send)), Emitter.open(Outlet.to(send))
    send.close()  # the wiring's original; only the clones remain
    await first.send("a")
    first.close()
    await second.send("b")
    assert [recv.receive_nowait(), recv.receive_nowait()] == ["a", "b"]
    with pytest.raises(trio.WouldBlock):
        recv.receive_nowait()  # still open: the second producer may send more
    second.close()
    with pytest.raises(trio.EndOfChannel):
        recv.receive_nowait()


# -- actors -----------------------------------------------------------------------------------


async def test_transform_actor_streams_chunk_by_chunk() -> None:
    """A streaming node sees each chunk as it arrives and its outputs go out one by one."""
    in_send, in_recv = open_edge(4)
    out_send, out_recv = open_edge(4)
    seen: list[str] = []

    async def upper(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            seen.append(chunk)
            yield chunk.upper()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            transform_actor, upper, _scope(), in_recv, Emitter.open(Outlet.to(out_send)), DELTA
        )
        out_send.close()
        await in_send.send("a")
        assert await out_recv.receive() == "A"
        assert seen == ["a"]  # the second chunk is not needed to produce the first output
        await in_send.send("b")
        in_send.close()
        assert [chunk async for chunk in out_recv] == ["B"]
    assert seen == ["a", "b"]


async def test_transform_actor_stops_and_closes_its_ends_when_downstream_hangs_up() -> None:
    """A consumer leaving early is a stop, not a failure: the node's ``finally`` runs and the
    actor closes its inbox, so the producer upstream sees the hang-up too."""
    in_send, in_recv = open_edge(1)
    out_send, out_recv = open_edge(0)
    events: list[str] = []

    async def node(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            events.append("finally")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            transform_actor, node, _scope(), in_recv, Emitter.open(Outlet.to(out_send)), DELTA
        )
        out_send.close()
        await in_send.send(1)
        assert await out_recv.receive() == 1
        out_recv.close()
        await in_send.send(2)
    assert events == ["finally"]
    with pytest.raises(trio.BrokenResourceError):
        in_send.send_nowait(3)


async def test_transform_actor_failure_is_annotated_and_ends_the_output() -> None:
    """A failing node raises its own exception with its name attached, after closing its
    outbox so the consumer is not left waiting."""
    in_send, in_recv = open_edge(4)
    out_send, out_recv = open_edge(4)

    async def node(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            if chunk == 2:
                raise KeyError("two")
            yield chunk

    in_send.send_nowait(1)
    in_send.send_nowait(2)
    with pytest.raises(KeyError) as info:
        await transform_actor(
            node, _scope("picky"), in_recv, Emitter.open(Outlet.to(out_send)), DELTA
        )
    out_send.close()
    assert info.value.rillet_node == "picky"  # type: ignore[attr-defined]
    assert "(raised in rillet node 'picky', kind 'parser')" in info.value.__notes__
    assert [chunk async for chunk in out_recv] == [1]
    with pytest.raises(trio.BrokenResourceError):
        in_send.send_nowait(3)


async def test_invoke_actor_adds_up_its_input_and_emits_once() -> None:
    """A non-streaming node is called once with the sum of its input chunks."""
    in_send, in_recv = open_edge(4)
    out_send, out_recv = open_edge(4)
    calls: list[str] = []

    async def shout(text: str) -> str:
        calls.append(text)
        return text.upper() + "!"

    for piece in ["ab", "c", "d"]:
        in_send.send_nowait(piece)
    in_send.close()
    await invoke_actor(shout, _scope(), in_recv, Emitter.open(Outlet.to(out_send)), DELTA)
    out_send.close()
    assert calls == ["abcd"]
    assert [chunk async for chunk in out_recv] == ["ABCD!"]


async def test_invoke_actor_does_not_run_on_an_empty_input_stream() -> None:
    """With no input chunk at all, a buffering node is never called and its output just ends."""
    in_send, in_recv = open_edge(4)
    out_send, out_recv = open_edge(4)
    calls: list[Any] = []

    async def record(value: Any) -> Any:
        calls.append(value)
        return value

    in_send.close()
    await invoke_actor(record, _scope(), in_recv, Emitter.open(Outlet.to(out_send)), DELTA)
    out_send.close()
    assert calls == []
    assert [chunk async for chunk in out_recv] == []


async def test_stream_actor_buffers_then_streams() -> None:
    """A chat-model-like node gets its whole input once, then streams several chunks."""
    in_send, in_recv = open_edge(4)
    out_send, out_recv = open_edge(8)

    async def words(text: str) -> AsyncGenerator[str, None]:
        for word in text.split():
            yield word

    for piece in ["one tw", "o thr", "ee"]:
        in_send.send_nowait(piece)
    in_send.close()
    await stream_actor(words, _scope(), in_recv, Emitter.open(Outlet.to(out_send)), DELTA)
    out_send.close()
    assert [chunk async for chunk in out_recv] == ["one", "two", "three"]


# -- backpressure through a whole run -----------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "bound"), [("default", 16), ("run config", 2), ("with_config", 2)]
)
async def test_generator_never_runs_more_than_a_few_bounds_ahead_of_a_slow_consumer(
    autojump_clock: trio.testing.MockClock, how: str, bound: int
) -> None:
    """With a consumer taking one chunk a second, an upstream generator is held back by the
    edges: produced - consumed never exceeds a few channel bounds (the default 16, or a
    ``bound`` given in the run's config or bound with ``with_config``)."""
    produced = 0

    async def source(chunks: AsyncIterator[Any]) -> AsyncGenerator[int, None]:
        nonlocal produced
        async for _ in chunks:
            for i in range(10 * bound + 50):
                produced += 1
                yield i

    async def relay(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            yield chunk

    # source -> relay -> sink: two bounded edges between the generator and the consumer.
    chain: Any = RunnableGenerator(source) | relay
    config = {"bound": bound} if how == "run config" else None
    if how == "with_config":
        chain = chain.with_config(bound=bound)
    consumed, lags = 0, []
    async for _ in chain.astream(None, config):
        consumed += 1
        lags.append(produced - consumed)
        await trio.sleep(1)
    assert consumed == 10 * bound + 50
    assert max(lags) <= 3 * bound
    assert max(lags) >= bound  # the producer did run ahead, up to the buffers' capacity


@pytest.mark.parametrize(
    ("bound", "error"), [(-1, ValueError), (math.inf, TypeError), (1.5, TypeError),
                         (2000, ValueError)]
)
async def test_run_config_bound_is_validated(bound: Any, error: type[Exception]) -> None:
    """A run's ``bound`` is checked by the config schema before any edge is opened."""

    async def relay(chunks: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for chunk in chunks:
            yield chunk

    with pytest.raises(error, match=r"^config\['bound'\] must be an integer from 0 to 1024, "
                                    rf"got {type(bound).__name__}: "):
        await RunnableGenerator(relay).ainvoke(1, {"bound": bound})
