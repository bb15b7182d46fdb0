"""The event bus: broadcasts a run's lifecycle events to any number of subscribers.

Each subscriber reads through its own bounded channel and picks a policy for when it falls
behind:

- ``"drop_oldest"`` (the default of :meth:`EventBus.subscribe` and ``Worker.subscribe``) /
  ``"drop_newest"``: the run never waits; the subscriber loses the oldest buffered (or the
  newest) events and ``Subscription.dropped`` counts them. A subscription is a bystander of runs
  that somebody else consumes, so by default it cannot stall them — not even if it is never read.
- ``"block"`` (lossless): the run waits for the subscriber. What ``astream_events`` and
  ``astream_log`` use, because there the caller *is* the consumer: a slow one parks the
  producers instead of growing a queue. A run parked for more than
  :data:`BLOCKED_WARNING_AFTER` seconds logs ``event_subscriber_blocking`` (once per wait), and
  ``statistics().blocked_since`` says since when it waits.

A subscription ends (after its buffered events) when the bus closes, or with ``runs=n`` after
the n-th run it was subscribed to ends, so ``async for event in sub`` finishes with the run:

>>> bus = EventBus()
>>> sub = bus.subscribe(policy="drop_newest", bound=1)
>>> bus.active
True
>>> bus.subscribe(runs=1).statistics().policy
'drop_oldest'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, ClassVar, Final, final

import attrs
import sniffio
import trio

from rillet.runtime.exports import NoPublicConstructor
from rillet.runtime.logs import get_logger

if TYPE_CHECKING:
    from rillet.runtime.events.types import Event

__all__ = ["BLOCKED_WARNING_AFTER", "POLICIES", "BusStatistics", "EventBus", "Subscription",
           "SubscriptionStatistics"]

POLICIES: Final = ("block", "drop_oldest", "drop_newest")
#: Seconds a run may wait for a full ``block`` subscriber before it logs a warning.
BLOCKED_WARNING_AFTER: Final = 10.0


@attrs.frozen
class SubscriptionStatistics:
    """A snapshot of one subscription: events delivered, dropped and waiting in its channel."""

    delivered: int
    dropped: int
    buffered: int
    policy: str
    #: ``trio.current_time()`` since which a run waits for this (full, ``block``) subscriber.
    blocked_since: float | None = None
    #: How many times a run had to wait for it.
    waits: int = 0


@attrs.frozen
class BusStatistics:
    """A snapshot of one bus: its subscribers, and how many full ``block`` subscribers a run
    waits on (``blocking``)."""

    subscribers: int
    blocking: int


@final
class Subscription(metaclass=NoPublicConstructor):
    """One subscriber's view of a bus: an async iterator of events, closed when the bus closes.

    Made by :meth:`EventBus.subscribe` only (no public constructor); use it as a context
    manager so an abandoned subscriber stops costing the run anything.
    """

    #: How an asyncio task iterates a subscription (it cannot await trio's channels). The
    #: engine sets it (:mod:`rillet.runtime.engine.hosts_streams`): events cannot import it.
    asyncio_reader: ClassVar[Callable[[Subscription], AsyncIterator[Event]] | None] = None

    def __init__(
        self,
        bus: EventBus,
        *,
        policy: str,
        bound: int,
        accept: Callable[[Event], bool] | None,
        prefilter: Callable[[str, str, tuple[str, ...]], bool] | None = None,
        runs: int | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"subscription policy must be one of {list(POLICIES)}, got {policy!r}")
        if not isinstance(bound, int) or bound < 1:
            raise ValueError(f"subscription bound must be an int >= 1, got {bound!r}")
        if runs is not None and (not isinstance(runs, int) or runs < 1):
            raise ValueError(f"subscription runs must be None or an int >= 1, got {runs!r}")
        self.runs_left = runs
        self.blocked_since: float | None = None
        self.waits = 0
        self.policy, self.bound, self.accept = policy, bound, accept
        self.prefilter = prefilter
        self._bus = bus
        self._send, self._recv = trio.open_memory_channel["Event"](bound)
        # drop_oldest evicts from the buffer, so the bus keeps a receiving end of its own.
        self._evict = self._recv.clone() if policy == "drop_oldest" else None
        self.dropped = 0
        self.delivered = 0

    def __aiter__(self) -> AsyncIterator[Event]:
        reader = Subscription.asyncio_reader
        if sniffio.thread_local.name == "trio" or reader is None:
            return self
        return reader(self)

    async def __anext__(self) -> Event:
        # Take what is buffered without a schedule point; wait only when the buffer is empty.
        try:
            return self._recv.receive_nowait()
        except trio.WouldBlock:
            pass
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        try:
            event = await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        return event

    def receive_nowait(self) -> Event:
        """The next buffered event; raises ``trio.WouldBlock`` or ``trio.EndOfChannel``."""
        return self._recv.receive_nowait()

    def statistics(self) -> SubscriptionStatistics:
        return SubscriptionStatistics(
            delivered=self.delivered,
            dropped=self.dropped,
            buffered=self._recv.statistics().current_buffer_used,
            policy=self.policy,
            blocked_since=self.blocked_since,
            waits=self.waits,
        )

    def close(self) -> None:
        """Stop receiving; the bus forgets this subscriber at its next publish."""
        self._recv.close()
        if self._evict is not None:
            self._evict.close()
        self._bus._forget(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _end(self) -> None:
        self._send.close()

    def _offer_nowait(self, event: Event) -> bool:
        """Deliver without waiting; False when a ``block`` subscriber is full."""
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            if self.policy == "block":
                return False
            self.dropped += 1
            if self.policy == "drop_newest":
                return True
            assert self._evict is not None
            try:
                self._evict.receive_nowait()
            except trio.WouldBlock:  # the reader just emptied it
                pass
            self._send.send_nowait(event)
        self.delivered += 1
        return True

    async def _offer(self, event: Event) -> None:
        """Wait until a full ``block`` subscriber takes ``event``; warn when that takes long."""
        self.waits += 1
        self.blocked_since = trio.current_time()
        try:
            with trio.move_on_after(BLOCKED_WARNING_AFTER):
                await self._send.send(event)
                self.delivered += 1
                return
            get_logger().warning(
                "event_subscriber_blocking", waited=BLOCKED_WARNING_AFTER, bound=self.bound,
                hint="a policy='block' subscriber is not read; the run waits for it")
            await self._send.send(event)
            self.delivered += 1
        finally:
            self.blocked_since = None

    def _run_ended(self) -> bool:
        """Count one run off ``runs=``; True when this subscription has just ended."""
        if self.runs_left is None:
            return False
        self.runs_left -= 1
        if self.runs_left > 0:
            return False
        self._end()
        return True


class EventBus:
    """Broadcasts events to subscribers; see the module docstring for policies.

    A run decides once, when it starts, whether anybody listens (:attr:`active`); a run with no
    subscriber builds no event objects at all.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.closed = False

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def subscribe(
        self,
        *,
        policy: str = "drop_oldest",
        bound: int = 64,
        accept: Callable[[Event], bool] | None = None,
        prefilter: Callable[[str, str, tuple[str, ...]], bool] | None = None,
        runs: int | None = None,
    ) -> Subscription:
        """Add a subscriber; ``accept`` filters events before they take buffer space.

        Args:
            policy: ``"drop_oldest"`` (default: the run never waits for this subscriber),
                ``"drop_newest"`` or ``"block"`` (lossless; the run waits).
            bound: events buffered for this subscriber.
            prefilter: ``prefilter(name, kind, tags)`` says which *runs* may interest the
                subscriber at all: a run that no subscriber's prefilter wants builds no events.
            runs: end the subscription once this many runs (counted from their start, with
                this bus in their ``callbacks``) have ended; ``None``: when the bus closes.

        Example::

            monitor = bus.subscribe(runs=1)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(chain.ainvoke, x, {"callbacks": [bus]})
                async for event in monitor:    # ends after the run's last event
                    print(event.name, event.phase)
        """
        if self.closed:
            raise RuntimeError("cannot subscribe to a closed event bus")
        sub = Subscription._create(self, policy=policy, bound=bound, accept=accept,
                                   prefilter=prefilter, runs=runs)
        self._subscribers.append(sub)
        return sub

    def run_ended(self, subscribers: tuple[Subscription, ...]) -> None:
        """A run published to by ``subscribers`` (those present at its start) has ended: end
        the subscriptions that asked for ``runs=`` and have now seen that many."""
        for sub in subscribers:
            if sub._run_ended():
                self._forget(sub)

    def subscribers(self) -> tuple[Subscription, ...]:
        """The current subscriptions (a run takes this snapshot when it starts)."""
        return tuple(self._subscribers)

    def wants(self, name: str, kind: str, tags: tuple[str, ...]) -> bool:
        """Whether some subscriber may accept events of a run with this name, kind and tags."""
        return any(sub.prefilter is None or sub.prefilter(name, kind, tags)
                   for sub in self._subscribers)

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber, waiting only for full ``block`` subscribers.

        Does not checkpoint when nobody is full: an actor publishing a stream event and then
        sending its chunk keeps the per-chunk cost to plain function calls.
        """
        for sub in tuple(self._subscribers):  # a broken subscriber leaves mid-loop
            if sub.accept is not None and not sub.accept(event):
                continue
            try:
                if not sub._offer_nowait(event):
                    await sub._offer(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._forget(sub)

    def close(self) -> None:
        """End every subscription: each subscriber sees end-of-stream after its buffered events."""
        self.closed = True
        for sub in self._subscribers:
            sub._end()
        self._subscribers.clear()

    def _forget(self, sub: Subscription) -> None:
        try:
            self._subscribers.remove(sub)
        except ValueError:
            pass

    def statistics(self) -> BusStatistics:
        """A snapshot: subscribers, and how many full ``block`` subscribers a run waits on."""
        return BusStatistics(
            subscribers=len(self._subscribers),
            blocking=sum(sub.blocked_since is not None for sub in self._subscribers))
