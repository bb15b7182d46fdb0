"""The worker-wide event feed: every run's events, from every worker, for ``GET /events``.

Behind a queue gateway no process sees every run, so workers publish what they store to one
capped feed (:class:`EventFeed`; :class:`~rillet.runtime.scaleout.redis_feed.RedisEventFeed` on
Redis, :class:`InMemoryEventFeed` in one process) — but only while somebody listens: a reader
marks the feed as listened to (:meth:`EventFeed.listen`, refreshed every few seconds), and each
worker checks that once per poll and decides per run, when it starts, whether to publish it,
as an in-process run decides whether anybody subscribes. So runs that start about a poll after
the first reader arrives are in the feed, whole; nobody listening costs one check a second.

Every item carries the feed's own sequence number: a reader that falls more than the cap behind
(or that Redis trimmed) sees a gap and counts it as ``dropped``, which ``GET /events`` reports
as it does for an in-process drop policy. :class:`FeedSubscription` is that reader, shaped like
:class:`~rillet.runtime.events.bus.Subscription` so the endpoint serves both the same way.

>>> feed = InMemoryEventFeed(cap=1000)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import trio

from rillet.runtime.errors import StoreUnavailable
from rillet.runtime.events.types import Event

__all__ = ["LISTEN_TTL", "EventFeed", "FeedSubscription", "InMemoryEventFeed"]

#: Seconds a ``listen`` mark lasts; readers refresh it at a third of that.
LISTEN_TTL: Final = 10.0


class EventFeed(Protocol):
    """Where workers publish events and gateways read them; methods may raise
    ``StoreUnavailable``."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Append ``events`` (one run's batch, in order) to the feed."""

    async def read(self, after: str | None, *, count: int, timeout: float
                   ) -> tuple[str, list[tuple[int, Event]]]:
        """Up to ``count`` items after cursor ``after``, waiting up to ``timeout`` s for the
        first; returns the new cursor and ``(sequence number, event)`` pairs. ``after=None``
        returns at once with the cursor of the newest item and no items: read from there on."""

    async def listen(self) -> None:
        """Mark the feed as listened to for ``LISTEN_TTL`` seconds."""

    async def listening(self) -> bool:
        """Whether some reader marked the feed within the last ``LISTEN_TTL`` seconds."""


class InMemoryEventFeed:
    """An :class:`EventFeed` in this process's memory: the newest ``cap`` items (trio's clock)."""

    def __init__(self, *, cap: int = 10_000) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        self._items: deque[tuple[int, Event]] = deque(maxlen=cap)
        self._next = 1
        self._listened = -math.inf
        self._changed = trio.Event()

    async def publish(self, events: Sequence[Event]) -> None:
        await trio.lowlevel.checkpoint()
        for event in events:
            self._items.append((self._next, event))
            self._next += 1
        self._changed.set()
        self._changed = trio.Event()

    async def read(self, after: str | None, *, count: int, timeout: float
                   ) -> tuple[str, list[tuple[int, Event]]]:
        if after is None:
            await trio.lowlevel.checkpoint()
            return str(self._next - 1), []
        start = int(after)
        with trio.move_on_after(timeout):
            while self._next - 1 <= start:
                await self._changed.wait()
        await trio.lowlevel.checkpoint()
        found = [item for item in self._items if item[0] > start][:count]
        return str(found[-1][0] if found else start), found

    async def listen(self) -> None:
        await trio.lowlevel.checkpoint()
        self._listened = trio.current_time()

    async def listening(self) -> bool:
        await trio.lowlevel.checkpoint()
        return trio.current_time() - self._listened < LISTEN_TTL


class FeedSubscription:
    """One ``GET /events`` reader of an :class:`EventFeed`, shaped like a ``Subscription``.

    It reads at its own pace and never slows a run; past ``bound`` items behind it loses the
    oldest, as ``drop_oldest`` does (``drop_newest`` behaves the same here: the feed itself is
    what drops). An outage is retried every second, and the reader simply waits.

    Example::

        with FeedSubscription(feed, policy="drop_oldest", bound=256, accept=None) as sub:
            async for event in sub: ...
    """

    def __init__(self, feed: EventFeed, *, policy: str, bound: int,
                 accept: Callable[[Event], bool] | None) -> None:
        self.policy, self.bound, self.dropped = policy, bound, 0
        self._feed, self._accept = feed, accept
        self._buffer: deque[Event] = deque()
        self._cursor: str | None = None
        self._last: int | None = None
        self._listened = -math.inf
        self._closed = False

    def __aiter__(self) -> FeedSubscription:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
        return self._buffer.popleft()

    def receive_nowait(self) -> Event:
        """The next buffered event; raises ``trio.WouldBlock`` when none is."""
        if not self._buffer:
            raise trio.WouldBlock
        return self._buffer.popleft()

    async def _fill(self) -> None:
        try:
            if trio.current_time() - self._listened >= LISTEN_TTL / 3:
                await self._feed.listen()
                self._listened = trio.current_time()
            self._cursor, items = await self._feed.read(self._cursor, count=self.bound,
                                                        timeout=LISTEN_TTL / 3)
        except StoreUnavailable:
            await trio.sleep(1.0)
            return
        for number, event in items:
            if self._last is not None and number > self._last + 1:
                self.dropped += number - self._last - 1
            self._last = number
            if self._accept is None or self._accept(event):
                self._buffer.append(event)

    def close(self) -> None:
        self._closed = True
        self._buffer.clear()

    def __enter__(self) -> FeedSubscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
