"""Subscription defaults, blocked runs made visible, and subscriptions that end with the run."""

from __future__ import annotations

import inspect
from typing import Any

import trio
import trio.testing
from structlog.testing import capture_logs

from rillet.graphs import RunnableGenerator, RunnableLambda
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser
from rillet.runtime import EventBus, configure_logging
from rillet.runtime.engine.worker import Worker
from rillet.runtime.events.bus import BLOCKED_WARNING_AFTER
from rillet.runtime.events.types import RunFinished


def counting(n: int) -> Any:
    async def source(chunks: Any) -> Any:
        async for _ in chunks:
            for i in range(n):
                yield i

    return RunnableGenerator(source)


def joke() -> Any:
    return (ChatPromptTemplate.from_template("a joke about {topic}")
            | ScriptedChatModel(["Why did the parrot talk"]) | StrOutputParser())


async def drain(runnable: Any, value: Any, bus: EventBus) -> None:
    async for _ in runnable.astream(value, {"callbacks": [bus]}):
        pass


def test_bus_and_worker_subscriptions_share_one_default_policy() -> None:
    """EventBus.subscribe and Worker.subscribe both default to drop_oldest."""
    bus_default = inspect.signature(EventBus.subscribe).parameters["policy"].default
    worker_default = inspect.signature(Worker.subscribe).parameters["policy"].default
    assert bus_default == worker_default == "drop_oldest"


async def test_an_unread_default_subscription_never_stalls_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """bus.subscribe() that nobody reads: the run completes, the losses are counted."""
    bus = EventBus()
    sub = bus.subscribe()
    with trio.fail_after(60):
        await drain(counting(5_000), None, bus)
    assert sub.dropped > 4_000 and sub.statistics().buffered == 64


async def test_a_blocked_run_is_visible_in_statistics_and_logs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A full block subscriber: statistics say since when the run waits; a warning is logged
    after BLOCKED_WARNING_AFTER seconds; reading unblocks it."""
    bus = EventBus()
    sub = bus.subscribe(policy="block", bound=2)
    configure_logging(True)
    try:
        with capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, counting(100), None, bus)
                await trio.testing.wait_all_tasks_blocked()
                assert sub.statistics().blocked_since == trio.current_time()
                assert bus.statistics().blocking == 1
                await trio.sleep(BLOCKED_WARNING_AFTER + 1)
                assert [e["event"] for e in logs].count("event_subscriber_blocking") == 1
                with sub:
                    async for event in sub:
                        if isinstance(event, RunFinished) and not event.parent_ids:
                            break
    finally:
        configure_logging(False)
    assert sub.statistics().blocked_since is None and sub.statistics().waits >= 1
    assert sub.dropped == 0


async def test_a_run_scoped_subscription_ends_with_the_run() -> None:
    """subscribe(runs=1): `async for` ends after the run's last event, nested runs included."""
    async def nested(x: Any) -> Any:
        return await joke().ainvoke({"topic": x})

    bus = EventBus()
    monitor = bus.subscribe(runs=1, bound=1000)
    seen: list[Any] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, RunnableLambda(nested), "x", bus)
            async for event in monitor:
                seen.append(event)
    assert isinstance(seen[-1], RunFinished) and seen[-1].parent_ids == ()
    assert any(event.parent_ids for event in seen)  # the nested run did not end it early
    assert not bus.active  # the bus forgot it


async def test_a_run_scoped_subscription_ends_even_if_it_sees_none_of_the_runs_events() -> None:
    """runs=2 with a prefilter that wants nothing: it ends after the second run all the same."""
    bus = EventBus()
    monitor = bus.subscribe(runs=2, prefilter=lambda name, kind, tags: False)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async def two_runs() -> None:
                await drain(joke(), {"topic": "a"}, bus)
                await drain(joke(), {"topic": "b"}, bus)

            nursery.start_soon(two_runs)
            assert [event async for event in monitor] == []
