"""From asyncio, leaving a run early cancels it: ``break``, ``aclose()``, ``async with``,
``task.cancel()``, ``asyncio.wait_for`` and ``asyncio.timeout``; errors cross as the original
exception; a slow consumer backpressures the run. Promptness is counted in chunks, not time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
from asyncio_helpers import guest_settled

from rillet.graphs import RunnableGenerator
from rillet.runtime.engine.hosts_streams import BOUND

#: Chunks that may sit between a producer and a reader: the bridge's buffer, plus a bounded
#: edge (16) before and after each of the chain's two steps.
SLACK = BOUND + 3 * 16 + 2


@attrs.define
class Ticks:
    """An endless producer that counts what it yielded and says when its ``finally`` ran."""

    produced: int = 0
    closed: bool = False
    done: asyncio.Event | None = None

    def chain(self) -> Any:
        async def ticks(chunks: AsyncIterator[Any]) -> AsyncIterator[int]:
            try:
                async for _ in chunks:
                    while True:
                        self.produced += 1
                        yield self.produced
                        await trio.lowlevel.checkpoint()
            finally:
                self.closed = True
                if self.done is not None:
                    self.done.set()  # same thread: the guest runs on the asyncio loop

        async def double(chunks: AsyncIterator[int]) -> AsyncIterator[int]:
            async for n in chunks:
                yield 2 * n

        return RunnableGenerator(ticks) | RunnableGenerator(double)

    async def wait_closed(self) -> None:
        """Bounded: the run must stop on its own, this only waits for it."""
        assert self.done is not None
        await asyncio.wait_for(self.done.wait(), 30)


async def _ticks() -> Ticks:
    return Ticks(done=asyncio.Event())


def test_break_without_aclose_cancels_the_run() -> None:
    """Leaving ``async for`` with break (the stream is dropped) stops the producer."""

    async def main() -> tuple[int, int]:
        ticks = await _ticks()
        consumed = 0
        async for _ in ticks.chain().astream(0):
            consumed += 1
            if consumed == 5:
                break
        await ticks.wait_closed()
        return consumed, ticks.produced

    consumed, produced = asyncio.run(main())
    assert consumed == 5 and produced <= consumed + SLACK


@pytest.mark.parametrize("how", ["aclose", "async with", "astream_events aclose"])
def test_aclose_waits_until_every_actor_stopped(how: str) -> None:
    """After aclose() (or leaving ``async with``) returns, the producer's finally has run."""

    async def main() -> bool:
        ticks = await _ticks()
        chain = ticks.chain()
        if how == "aclose":
            stream: Any = chain.astream(0)
            await anext(stream)
            await stream.aclose()
        elif how == "async with":
            async with chain.astream(0) as stream:
                async for _ in stream:
                    break
        else:
            events = chain.astream_events(0, version="v2")
            async for event in events:
                if event["event"] == "on_chain_stream":
                    break
            await events.aclose()
        return ticks.closed  # no waiting in between

    assert asyncio.run(main()) is True


@pytest.mark.parametrize("method", ["astream", "ainvoke", "astream_events"])
def test_task_cancel_cancels_the_run(method: str) -> None:
    """Cancelling the asyncio task that reads (or awaits) a run cancels the run."""

    async def main() -> tuple[int, bool]:
        ticks = await _ticks()
        chain = ticks.chain()
        started = asyncio.Event()
        ticks.produced = 0

        async def consume() -> None:
            if method == "ainvoke":
                started.set()
                await chain.ainvoke(0)
            stream = chain.astream(0) if method == "astream" else chain.astream_events(0)
            async for _ in stream:
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        at_cancel = ticks.produced
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await ticks.wait_closed()
        return ticks.produced - at_cancel, task.cancelled()

    produced_after, cancelled = asyncio.run(main())
    assert cancelled and produced_after <= SLACK


@pytest.mark.parametrize("how", ["wait_for", "timeout"])
def test_timeouts_cancel_the_run(how: str) -> None:
    """asyncio.wait_for and asyncio.timeout stop an endless stream and its producer."""

    async def main() -> tuple[int, int]:
        ticks = await _ticks()
        stream = ticks.chain().astream(0)
        consumed = 0
        if how == "wait_for":
            async def read_all() -> None:
                nonlocal consumed
                async for _ in stream:
                    consumed += 1

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(read_all(), 0.01)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(None) as deadline:
                    async for _ in stream:
                        consumed += 1
                        deadline.reschedule(asyncio.get_running_loop().time())  # expire now
        await ticks.wait_closed()
        return consumed, ticks.produced

    consumed, produced = asyncio.run(main())
    assert consumed > 0 and produced <= consumed + SLACK


class Boom(ValueError):
    """The error a step raises, to see it cross unchanged."""


def _failing_chain() -> Any:
    async def explode(chunks: AsyncIterator[int]) -> AsyncIterator[int]:
        async for n in chunks:
            if n >= 3:  # streamed: the fourth number; invoked: their sum
                raise Boom("three")
            yield n

    async def numbers(chunks: AsyncIterator[Any]) -> AsyncIterator[int]:
        async for _ in chunks:
            for n in range(5):
                yield n

    return RunnableGenerator(numbers) | RunnableGenerator(explode)


@pytest.mark.parametrize("method", ["ainvoke", "abatch", "astream", "astream_events",
                                    "astream_log"])
def test_errors_cross_as_the_original_exception(method: str) -> None:
    """A step's error reaches the asyncio caller as that exception, naming the node; a stream
    delivers the chunks before it first."""

    async def main() -> tuple[BaseException, list[Any]]:
        chain = _failing_chain()
        got: list[Any] = []
        try:
            if method == "ainvoke":
                await chain.ainvoke(0)
            elif method == "abatch":
                await chain.abatch([0])
            else:
                async for item in getattr(chain, method)(0):
                    got.append(item)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            return error, got
        raise AssertionError("no error")

    error, got = asyncio.run(main())
    assert type(error) is Boom and str(error) == "three"
    assert getattr(error, "rillet_node", None) == "explode"
    if method == "astream":
        assert got == [0, 1, 2]
    if method == "astream_events":  # the error events come before the error itself
        assert [e["name"] for e in got if e["event"] == "on_chain_error"] == [
            "explode", "RunnableSequence"]


def test_a_slow_consumer_backpressures_the_run() -> None:
    """A reader that stops taking chunks parks the producer within a bound of what it took."""

    async def main() -> list[tuple[int, int]]:
        ticks = await _ticks()
        stream = ticks.chain().astream(0)
        seen: list[tuple[int, int]] = []
        consumed = 0
        for step in (1, 300, 1000):
            while consumed < step:
                await anext(stream)
                consumed += 1
            await guest_settled()  # the producer runs until it parks: then every task blocks
            seen.append((consumed, ticks.produced))
        await stream.aclose()
        return seen

    for consumed, produced in asyncio.run(main()):
        assert consumed <= produced <= consumed + SLACK, (consumed, produced)
