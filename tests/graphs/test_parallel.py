"""RunnableParallel: one input to every branch, ``{key: chunk}`` chunks as branches produce."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import reduce
from operator import add
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableBranch, RunnableLambda, RunnableParallel
from rillet.nodes import ScriptedChatModel, StrOutputParser


def _talker(text: str, delay: float) -> Any:
    return ScriptedChatModel(responses=[text], delay=delay) | StrOutputParser()


async def test_parallel_streams_key_chunks_as_branches_produce_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each chunk is a one-key dict from the branch that produced it; branches interleave,
    and the chunks add up to what ``ainvoke`` returns."""
    parallel = RunnableParallel(
        joke=_talker("why did the chicken cross", 1.0),
        poem=_talker("roses are red violets blue", 1.5),
    )
    chunks = [chunk async for chunk in parallel.astream("go")]
    assert all(len(chunk) == 1 for chunk in chunks)
    keys = [next(iter(chunk)) for chunk in chunks]
    switches = sum(a != b for a, b in zip(keys, keys[1:]))
    assert switches >= 3  # interleaved, not one branch after the other
    assert "".join(c["joke"] for c in chunks if "joke" in c) == "why did the chicken cross"
    assert "".join(c["poem"] for c in chunks if "poem" in c) == "roses are red violets blue"
    assert reduce(add, chunks) == await parallel.ainvoke("go")


async def test_invoke_result_keeps_declaration_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``ainvoke`` lists keys in declaration order even when later branches finish first."""

    def after(seconds: float, value: str) -> Any:
        async def wait(_: Any) -> str:
            await trio.sleep(seconds)
            return value

        return wait

    parallel = RunnableParallel(first=after(3, "a"), second=after(2, "b"), third=after(1, "c"))
    streamed = [next(iter(chunk)) async for chunk in parallel.astream(None)]
    assert streamed == ["third", "second", "first"]  # completion order while streaming
    result = await parallel.ainvoke(None)
    assert list(result) == ["first", "second", "third"]
    assert result == {"first": "a", "second": "b", "third": "c"}


def _reverse_finishing_parallel() -> RunnableParallel:
    """Branches declared first, second, third that finish third, second, first."""

    def after(seconds: float, value: str) -> Any:
        async def wait(_: Any) -> str:
            await trio.sleep(seconds)
            return value

        return wait

    return RunnableParallel(first=after(3, "a"), second=after(2, "b"), third=after(1, "c"))


async def _passthrough(x: Any) -> Any:
    return x


WRAPPERS = {
    "sequence": lambda p: RunnableLambda(_passthrough) | p,
    "with_config": lambda p: p.with_config(tags=["t"]),
    "with_retry": lambda p: p.with_retry(),
    "with_fallbacks": lambda p: p.with_fallbacks([lambda x: {}]),
    "branch": lambda p: RunnableBranch((lambda x: True, p), lambda x: {}),
    "lambda returning it": lambda p: RunnableLambda(lambda x: p),
}


@pytest.mark.parametrize("wrap", list(WRAPPERS.values()), ids=list(WRAPPERS))
async def test_wrapped_parallel_invoke_keeps_declaration_order(
    autojump_clock: trio.testing.MockClock, wrap: Any
) -> None:
    """Whatever wraps or routes to a parallel, ``ainvoke`` gives its keys in declaration
    order, as ``RunnableParallel.ainvoke`` itself does."""
    result = await wrap(_reverse_finishing_parallel()).ainvoke(None)
    assert list(result) == ["first", "second", "third"]


async def test_every_branch_gets_the_same_input_and_runs_concurrently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Branches run at the same time: three one-second branches take one second."""
    seen: list[Any] = []

    async def slow(x: Any) -> Any:
        seen.append(x)
        await trio.sleep(1)
        return x

    start = trio.current_time()
    parallel = RunnableParallel(a=slow, b=slow, c=slow)
    assert await parallel.ainvoke({"q": 1}) == {"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 1}}
    assert trio.current_time() - start == 1
    assert seen == [{"q": 1}] * 3


async def test_a_streaming_input_is_fanned_out_to_every_branch() -> None:
    """A parallel after a streaming step gives each streaming branch every chunk."""

    async def tokens(_: Any) -> AsyncGenerator[str, None]:
        for token in ["a", "b", "c"]:
            yield token

    async def upper(chunks: Any) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            yield chunk.upper()

    async def count(chunks: Any) -> AsyncGenerator[int, None]:
        async for _ in chunks:
            yield 1

    composed = RunnableLambda(tokens) | RunnableParallel(up=upper, n=count)
    total: Any = None
    async for chunk in composed.astream(None):
        total = chunk if total is None else total + chunk
    assert total == {"up": "ABC", "n": 3}
    # invoke hands each step the whole output (LangChain's result): one chunk per branch.
    assert await composed.ainvoke(None) == {"up": "ABC", "n": 1}


async def test_max_concurrency_bounds_parallel_branches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``max_concurrency`` in the config (or bound with ``with_config``) limits how many
    branches run at once, as ``with_config`` documents ("bounds parallel branches")."""
    active = peak = 0

    async def slow(x: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await trio.sleep(1)
        active -= 1
        return x

    parallel = RunnableParallel({f"k{i}": slow for i in range(4)})
    assert await parallel.ainvoke(1, {"max_concurrency": 2}) == {f"k{i}": 1 for i in range(4)}
    assert peak == 2
    peak = 0
    await parallel.with_config(max_concurrency=2).ainvoke(1)
    assert peak == 2


def test_parallel_needs_branches_with_string_keys() -> None:
    """An empty parallel is a ValueError, a non-str key a TypeError."""
    with pytest.raises(ValueError, match="at least one branch"):
        RunnableParallel({})
    with pytest.raises(TypeError, match="keys must be str"):
        RunnableParallel({1: lambda x: x})  # type: ignore[dict-item]


def test_parallel_accepts_a_mapping_and_keywords() -> None:
    """Branches can come as a mapping, as keywords, or both (sync invoke)."""
    parallel = RunnableParallel({"a": lambda x: x + 1}, b=lambda x: x * 2)
    assert parallel.invoke(5) == {"a": 6, "b": 10}


async def _one_second(x: Any) -> Any:
    await trio.sleep(1)
    return x


async def _invoke_inner(x: Any) -> Any:
    return await RunnableLambda(_one_second).ainvoke(x)


async def _returns_runnable(x: Any) -> Any:
    return RunnableLambda(_one_second)


async def _always(x: Any) -> bool:
    return True


# Async functions only: the autojump clock would jump to the deadline while a thread runs.
NESTING = {
    "with_retry": lambda: RunnableLambda(_one_second).with_retry(),
    "branch": lambda: RunnableBranch((_always, _one_second), _one_second),
    "lambda returning a runnable": lambda: RunnableLambda(_returns_runnable),
    "async function invoking a runnable": lambda: RunnableLambda(_invoke_inner),
}


@pytest.mark.parametrize("make", list(NESTING.values()), ids=list(NESTING))
async def test_max_concurrency_with_branches_that_start_child_runs(
    autojump_clock: trio.testing.MockClock, make: Any
) -> None:
    """A branch whose node runs another runnable as a child run (retry, branch, a function
    calling ``ainvoke``) finishes under ``max_concurrency=1``: the child run does not wait
    for the slot its own parent holds."""
    parallel = RunnableParallel(a=make(), b=_one_second)
    with trio.fail_after(60):
        assert await parallel.ainvoke(7, {"max_concurrency": 1}) == {"a": 7, "b": 7}
    assert trio.current_time() == 2  # one branch after the other
