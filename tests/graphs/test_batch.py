"""batch / abatch: order, max_concurrency, exceptions in place, per-input configs."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableLambda


class Bad(Exception):
    """Raised for the inputs a test marks as bad."""


def _tracked() -> tuple[RunnableLambda, dict[str, int]]:
    """A runnable that takes ``x`` seconds for input ``x`` and records peak concurrency."""
    stats = {"active": 0, "peak": 0}

    async def slow(x: int) -> int:
        stats["active"] += 1
        stats["peak"] = max(stats["peak"], stats["active"])
        try:
            await trio.sleep(x)
        finally:
            stats["active"] -= 1
        return x * 10

    return RunnableLambda(slow), stats


async def test_abatch_keeps_input_order(autojump_clock: trio.testing.MockClock) -> None:
    """Results are in input order even when later inputs finish first."""
    runnable, _ = _tracked()
    assert await runnable.abatch([3, 1, 2]) == [30, 10, 20]


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_peak_concurrency_equals_max_concurrency(
    autojump_clock: trio.testing.MockClock, limit: int
) -> None:
    """With ``max_concurrency=n`` exactly n inputs run at once (never more, and the limit is
    actually used)."""
    runnable, stats = _tracked()
    inputs = [1] * 7
    start = trio.current_time()
    assert await runnable.abatch(inputs, max_concurrency=limit) == [10] * 7
    assert stats["peak"] == limit
    assert trio.current_time() - start == -(-7 // limit)  # ceil(7 / limit) one-second waves


async def test_max_concurrency_from_config(autojump_clock: trio.testing.MockClock) -> None:
    """``max_concurrency`` is also read from the config (a single dict or the first of a
    list)."""
    runnable, stats = _tracked()
    await runnable.abatch([1] * 5, {"max_concurrency": 2})
    assert stats["peak"] == 2
    stats["peak"] = 0
    await runnable.abatch([1] * 5, [{"max_concurrency": 2}] + [{}] * 4)
    assert stats["peak"] == 2


async def test_max_concurrency_bound_with_with_config(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``with_config(max_concurrency=n)`` bounds a batch, as ``with_config`` documents."""
    runnable, stats = _tracked()
    await runnable.with_config(max_concurrency=2).abatch([1] * 5)
    assert stats["peak"] == 2


async def test_without_a_limit_every_input_runs_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no max_concurrency, all inputs run concurrently."""
    runnable, stats = _tracked()
    await runnable.abatch([1] * 6)
    assert stats["peak"] == 6


async def test_return_exceptions_puts_each_failure_in_place() -> None:
    """``return_exceptions=True`` returns every result, with exceptions where inputs failed."""

    async def check(x: int) -> int:
        if x % 2:
            raise Bad(f"bad {x}")
        return x * 10

    results = await RunnableLambda(check).abatch([1, 2, 3, 4], return_exceptions=True)
    assert [type(r) for r in results] == [Bad, int, Bad, int]
    assert [str(r) if isinstance(r, Bad) else r for r in results] == ["bad 1", 20, "bad 3", 40]


async def test_without_return_exceptions_the_original_error_is_raised() -> None:
    """A failing input makes ``abatch`` raise that input's exception, bare."""

    async def check(x: int) -> int:
        if x == 2:
            raise Bad("two")
        return x

    with pytest.raises(Bad, match="two") as info:
        await RunnableLambda(check).abatch([1, 2, 3])
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_a_list_of_configs_gives_each_input_its_own() -> None:
    """A list of configs applies one per input."""

    def tags(x: int, config: dict[str, Any]) -> list[str]:
        return list(config["tags"])

    result = await RunnableLambda(tags).abatch([1, 2], [{"tags": ["a"]}, {"tags": ["b"]}])
    assert result == [["a"], ["b"]]
    assert await RunnableLambda(tags).abatch([1, 2], {"tags": ["both"]}) == [["both"], ["both"]]


async def test_config_list_of_the_wrong_length_is_a_value_error() -> None:
    """One config per input, or one for all: anything else is a ValueError saying so."""
    with pytest.raises(ValueError, match="batch got 1 configs for 2 inputs"):
        await RunnableLambda(lambda x: x).abatch([1, 2], [{}])


def test_sync_batch_keeps_order_and_returns_exceptions() -> None:
    """Sync ``batch`` behaves like ``abatch``: order kept, exceptions in place, a config list
    of the wrong length rejected."""

    def check(x: int) -> int:
        if x < 0:
            raise Bad(f"negative {x}")
        return x + 1

    runnable = RunnableLambda(check)
    assert runnable.batch([3, 1, 2], max_concurrency=2) == [4, 2, 3]
    results = runnable.batch([1, -1, 2], return_exceptions=True)
    assert results[0] == 2 and results[2] == 3
    assert isinstance(results[1], Bad) and str(results[1]) == "negative -1"
    with pytest.raises(ValueError, match="configs for 3 inputs"):
        runnable.batch([1, 2, 3], [{}, {}])


def test_empty_batch_is_an_empty_list() -> None:
    """No inputs, no results."""
    assert RunnableLambda(lambda x: x).batch([]) == []
