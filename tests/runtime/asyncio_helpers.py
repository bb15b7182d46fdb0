"""Helpers of the asyncio tests: run the same coroutine under trio and under asyncio, count
what a run produced, and settle a loop's trio guest without real time."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from rillet.runtime.engine.hosts import host_for


def under_both(make: Callable[[], Awaitable[Any]]) -> tuple[Any, Any]:
    """``make()`` awaited in a fresh ``trio.run`` and in a fresh ``asyncio.run``."""

    async def in_trio() -> Any:
        return await make()

    async def in_asyncio() -> Any:
        return await make()

    return trio.run(in_trio), asyncio.run(in_asyncio())


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalized_events(events: list[dict[str, Any]]) -> Counter[str]:
    """Events as comparable text: every run id replaced by its run's name and position among
    the runs of that name; a multiset, since concurrent actors may interleave either way."""
    labels: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for event in events:
        if event["run_id"] not in labels:
            seen[event["name"]] += 1
            labels[event["run_id"]] = f"<{event['name']}#{seen[event['name']]}>"
    out: Counter[str] = Counter()
    for event in events:
        text = repr(sorted_keys(event))
        out[_UUID.sub(lambda m: labels.get(m.group(0), "<other run>"), text)] += 1
    return out


def sorted_keys(value: Any) -> Any:
    """Dicts with their keys sorted: a parallel's merged output lists its keys in completion
    order, which differs from run to run (under trio too)."""
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value, key=repr)}
    if isinstance(value, list):
        return [sorted_keys(v) for v in value]
    return value


def without_ids(value: Any) -> str:
    """``repr(value)`` with dict keys sorted and every run id blanked (message ids carry
    them too)."""
    return _UUID.sub("<id>", repr(sorted_keys(value)))


async def guest_settled() -> None:
    """Inside ``asyncio.run``: wait until every task of this loop's trio guest is blocked."""
    await host_for(asyncio.get_running_loop()).call(trio.testing.wait_all_tasks_blocked)


async def guest_tasks() -> int:
    """Inside ``asyncio.run``: how many tasks the loop's trio guest has, once it settled."""
    host = host_for(asyncio.get_running_loop())

    async def count() -> int:
        await trio.testing.wait_all_tasks_blocked()
        return trio.lowlevel.current_statistics().tasks_living

    return await host.call(count)
