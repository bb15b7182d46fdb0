"""with_retry, with_fallbacks and with_config."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableLambda
from rillet.runtime import current_scope


class Flaky(Exception):
    """A failure worth retrying."""


def _fails_first(times: int, calls: list[float]) -> RunnableLambda:
    """A streaming function failing (before any chunk) on its first ``times`` calls."""

    async def stream(_: Any) -> AsyncGenerator[str, None]:
        calls.append(trio.current_time())
        if len(calls) <= times:
            raise Flaky(f"attempt {len(calls)}")
        for word in ["all", " good"]:
            yield word

    return RunnableLambda(stream)


# -- with_retry -----------------------------------------------------------------------------------


async def test_retry_before_the_first_chunk_then_stream_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failures before the first chunk are retried (waiting 1 s, then 2 s, each with up to 50 %
    jitter); the successful attempt streams its chunks exactly once."""
    calls: list[float] = []
    retried = _fails_first(2, calls).with_retry(stop_after_attempt=3)
    assert [c async for c in retried.astream(None)] == ["all", " good"]
    assert len(calls) == 3
    first_wait, second_wait = calls[1] - calls[0], calls[2] - calls[1]
    assert 1.0 <= first_wait <= 1.5
    assert 2.0 <= second_wait <= 3.0


async def test_retry_invoke_gives_up_after_the_last_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After ``stop_after_attempt`` failures the last attempt's exception propagates."""
    calls: list[float] = []
    retried = _fails_first(5, calls).with_retry(stop_after_attempt=3, wait_exponential_jitter=False)
    with pytest.raises(Flaky, match="attempt 3"):
        await retried.ainvoke(None)
    assert len(calls) == 3
    assert calls[0] == calls[-1]  # no waiting without backoff


async def test_no_retry_after_the_first_chunk(autojump_clock: trio.testing.MockClock) -> None:
    """A failure after a chunk was emitted propagates at once: retrying would repeat output."""
    attempts: list[int] = []

    async def breaks_midway(_: Any) -> AsyncGenerator[str, None]:
        attempts.append(1)
        yield "a"
        yield "b"
        raise Flaky("mid-stream")

    received: list[str] = []
    with pytest.raises(Flaky, match="mid-stream"):
        async for chunk in RunnableLambda(breaks_midway).with_retry().astream(None):
            received.append(chunk)
    assert received == ["a", "b"]
    assert attempts == [1]


async def test_retry_only_for_the_listed_exception_types(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception outside ``retry_if_exception_type`` is not retried."""
    calls: list[int] = []

    async def wrong(_: Any) -> str:
        calls.append(1)
        raise KeyError("not retryable")

    retried = RunnableLambda(wrong).with_retry(retry_if_exception_type=(Flaky,))
    with pytest.raises(KeyError):
        await retried.ainvoke(None)
    assert calls == [1]


def test_retry_needs_at_least_one_attempt() -> None:
    """``stop_after_attempt`` below 1 is a ValueError."""
    with pytest.raises(ValueError, match="stop_after_attempt must be >= 1, got 0"):
        RunnableLambda(lambda x: x).with_retry(stop_after_attempt=0)


# -- with_fallbacks -------------------------------------------------------------------------------


async def test_fallback_used_when_the_primary_fails_before_its_first_chunk() -> None:
    """A primary failing before emitting anything hands the input to the fallback."""
    calls: list[float] = []
    primary = _fails_first(1, calls)
    with_fallback = primary.with_fallbacks([lambda x: f"fallback for {x}"])  # type: ignore[list-item]
    assert await with_fallback.ainvoke("q") == "fallback for q"
    assert len(calls) == 1


async def test_mid_stream_error_is_not_handed_to_the_fallback() -> None:
    """Once the primary emitted a chunk, its error propagates and the fallback never runs."""
    fallback_calls: list[Any] = []

    async def breaks_midway(_: Any) -> AsyncGenerator[str, None]:
        yield "partial"
        raise Flaky("mid-stream")

    def fallback(x: Any) -> str:
        fallback_calls.append(x)
        return "fallback"

    received: list[str] = []
    with pytest.raises(Flaky, match="mid-stream"):
        fallible = RunnableLambda(breaks_midway).with_fallbacks([fallback])  # type: ignore[list-item]
        async for chunk in fallible.astream(1):
            received.append(chunk)
    assert received == ["partial"]
    assert fallback_calls == []


async def test_fallbacks_tried_in_order_and_first_error_raised_when_all_fail() -> None:
    """Fallbacks run in turn; if every one fails, the primary's error is raised."""
    order: list[str] = []

    def failing(label: str, error: Exception) -> RunnableLambda:
        async def fail(_: Any) -> None:
            order.append(label)
            raise error

        return RunnableLambda(fail)

    chain = failing("primary", Flaky("p")).with_fallbacks(
        [failing("first", KeyError("f")), failing("second", ValueError("s"))]
    )
    with pytest.raises(Flaky, match="p"):
        await chain.ainvoke(None)
    assert order == ["primary", "first", "second"]


async def test_fallback_only_for_handled_exception_types() -> None:
    """An exception outside ``exceptions_to_handle`` propagates without trying fallbacks."""
    calls: list[float] = []
    chain = _fails_first(1, calls).with_fallbacks(
        [lambda x: "fallback"], exceptions_to_handle=(KeyError,)  # type: ignore[list-item]
    )
    with pytest.raises(Flaky):
        await chain.ainvoke(None)


def test_with_fallbacks_needs_a_fallback() -> None:
    """An empty fallback list is a ValueError."""
    with pytest.raises(ValueError, match="at least one fallback"):
        RunnableLambda(lambda x: x).with_fallbacks([])


# -- with_config ----------------------------------------------------------------------------------


def _seen_config(x: Any, config: dict[str, Any]) -> dict[str, Any]:
    scope = current_scope()
    assert scope is not None
    return {"name": scope.name, "tags": config["tags"], "metadata": config["metadata"]}


async def test_with_config_reaches_the_function() -> None:
    """``with_config(run_name, tags, metadata)``: the function's run carries the name and its
    ``config`` the tags and metadata."""
    bound = RunnableLambda(_seen_config).with_config(
        run_name="Docs", tags=["x"], metadata={"k": 1}
    )
    assert bound.get_name() == "Docs"
    assert await bound.ainvoke(None) == {"name": "Docs", "tags": ["x"], "metadata": {"k": 1}}


async def test_bound_config_merges_with_the_callers() -> None:
    """Bound tags and the caller's tags are both seen; metadata is merged."""
    bound = RunnableLambda(_seen_config).with_config(tags=["bound"], metadata={"b": 1})
    seen = await bound.ainvoke(None, {"tags": ["call"], "metadata": {"c": 2}})
    assert sorted(seen["tags"]) == ["bound", "call"]
    assert seen["metadata"] == {"b": 1, "c": 2}


async def test_with_config_on_a_chain_is_inherited_by_its_steps() -> None:
    """Tags and metadata bound on a chain reach a function inside it; the run name is the
    chain's, not the step's."""
    chain = (RunnableLambda(lambda x: x) | _seen_config).with_config(
        run_name="Outer", tags=["t"], metadata={"m": "v"}
    )
    seen = await chain.ainvoke(None)
    assert seen == {"name": "_seen_config", "tags": ["t"], "metadata": {"m": "v"}}
    assert chain.get_name() == "Outer"


async def test_run_name_names_the_failing_node() -> None:
    """A node renamed with ``run_name`` is reported under that name when it fails."""

    async def fail(_: Any) -> None:
        raise Flaky("named")

    with pytest.raises(Flaky) as info:
        await RunnableLambda(fail).with_config(run_name="Renamed").ainvoke(None)
    assert info.value.rillet_node == "Renamed"  # type: ignore[attr-defined]
