"""Handles users receive but never build: final, no public constructor; every statistics() is
sync and returns a frozen attrs snapshot."""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import pytest
import trio

from rillet.graphs import RunnableLambda
from rillet.runtime import (
    BusStatistics,
    EventBus,
    RunHandle,
    Subscription,
    SubscriptionStatistics,
    Worker,
    WorkerRun,
    WorkerStatistics,
)
from rillet.runtime.scaleout import InMemoryEventLog, InMemoryRunQueue, QueueGateway
from rillet.runtime.scaleout.gateway import GatewayStatistics
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutStatistics, ScaleoutWorker


@pytest.mark.parametrize("cls", [RunHandle, WorkerRun, Subscription])
def test_handles_have_no_public_constructor(cls: type) -> None:
    """Calling the class is a TypeError naming it; the library makes them."""
    with pytest.raises(TypeError, match=rf"^rillet\.runtime\.{cls.__name__} has no public "
                                        r"constructor; it is handed out by the library$"):
        cls()
    assert getattr(cls, "__final__", False)


async def test_the_library_still_hands_them_out() -> None:
    bus = EventBus()
    assert type(bus.subscribe()) is Subscription
    async with Worker() as worker:
        run = await worker.submit(RunnableLambda(abs), -1)
        assert type(run) is WorkerRun and type(run._handle) is RunHandle
        assert await run.result() == 1


def _check_snapshot(stats: Any, cls: type) -> None:
    assert type(stats) is cls and attrs.has(cls)
    field = attrs.fields(cls)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(stats, field, 0)


async def test_every_statistics_is_sync_and_frozen() -> None:
    """EventBus, Subscription, Worker, ScaleoutWorker and QueueGateway snapshots."""
    bus = EventBus()
    sub = bus.subscribe()
    queue, events = InMemoryRunQueue(), InMemoryEventLog()
    async with Worker() as worker:
        owners: list[tuple[Any, type]] = [
            (bus, BusStatistics), (sub, SubscriptionStatistics), (worker, WorkerStatistics),
            (ScaleoutWorker({}, queue, events), ScaleoutStatistics),
            (QueueGateway(ScaleoutClient(queue, events), {}), GatewayStatistics),
        ]
        for owner, cls in owners:
            assert not inspect.iscoroutinefunction(owner.statistics)
            _check_snapshot(owner.statistics(), cls)
    assert bus.statistics() == BusStatistics(subscribers=1, blocking=0)
    await trio.lowlevel.checkpoint()
