"""Streams across the two loops of a host, each way through a bounded buffer.

**trio → asyncio** (``astream``, ``astream_events``, ``astream_log``, a worker run's output or
events, a subscription): a trio *pump* task reads the stream in batches and hands every batch
to the asyncio :class:`HostedReader`. At most ``bound`` items are in flight; then the pump
parks until the reader has taken them, so a slow asyncio consumer backpressures the run. The
reader takes items without awaiting while it has some, and waits on one future per empty
buffer, not per item.

Leaving early: ``break`` (the reader is dropped), ``task.cancel()`` and timeouts cancel the
pump at once, which closes the stream (the run is cancelled); ``aclose()`` and ``async with``
also wait until the trio side has stopped (every actor), shielded.

**asyncio → trio** (``atransform`` fed by an asyncio async iterator): :class:`AsyncioSource`
is the run's input; an asyncio task iterates the user's iterator and hands items to it,
``bound`` at most in flight; it is cancelled (and the iterator closed) when the run ends.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

from rillet.runtime.engine.hosts import (
    Host,
    crossing,
    foreign_host,
    settle,
    wait_uncancellable,
)
from rillet.runtime.events.bus import Subscription

__all__ = ["BOUND", "AsyncioSource", "HostedReader", "Pull", "RenderingReader", "hosted_iter",
           "pull_items"]

T = TypeVar("T")
#: Items in flight between the two loops, per stream and direction. Twice as many cost more
#: than they save: buffered events survive collections and set off full ones sooner.
BOUND = 128

#: ``pull(n, idle)`` takes at least one item and at most ``n``, awaiting the first; ``[]`` once
#: the stream ended; raises the stream's error. It calls ``idle()`` before it blocks: the reader
#: must then have what was delivered so far.
Pull = Callable[[int, Callable[[], None]], Awaitable[list[Any]]]
#: Called in trio when the pump starts: the stream's pull, and how to close it.
Opener = Callable[[], tuple[Pull, Callable[[], Awaitable[Any]]]]


def pull_items(it: AsyncIterator[object]) -> Pull:
    """A :data:`Pull` over any trio async iterator, one item per call."""

    async def pull(limit: int, idle: Callable[[], None]) -> list[object]:
        idle()
        try:
            return [await it.__anext__()]
        except StopAsyncIteration:
            return []

    return pull


def hosted_iter(it: AsyncIterator[T], close: Callable[[], Awaitable[Any]]) -> AsyncIterator[T]:
    """For ``__aiter__`` of a trio iterator: ``it`` itself under trio; under asyncio a reader
    pumping ``it`` in the loop's guest (``close`` ends ``it`` when the reader leaves)."""
    host = foreign_host()
    if host is None:
        return it
    return HostedReader(host, lambda: (pull_items(it), close))


async def _close_subscription(sub: Subscription) -> None:
    sub.close()


# A subscription read from asyncio pumps through a reader like the engine's own streams.
Subscription.asyncio_reader = lambda sub: hosted_iter(sub, lambda: _close_subscription(sub))


class _Pipe:
    """The shared state of one stream; each field is written by one side only."""

    __slots__ = ("bound", "credited", "delivered", "ended", "error", "host", "in_flight",
                 "items", "scope", "space", "stopped", "waiter")

    def __init__(self, host: Host, bound: int) -> None:
        self.host, self.bound = host, bound
        # asyncio side
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.delivered = self.credited = 0
        self.ended = False
        self.error: BaseException | None = None
        self.stopped: asyncio.Future[None] = host.loop.create_future()
        # trio side
        self.in_flight = 0
        self.space: trio.Event | None = None
        self.scope = trio.CancelScope()

    def deliver(self, batch: list[Any], wake: bool) -> None:  # asyncio side
        self.items.extend(batch)
        self.delivered += len(batch)
        if wake:
            self.wake()

    def finish(self, error: BaseException | None) -> None:  # asyncio side
        self.ended, self.error = True, error
        settle(self.stopped, None, None)
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            settle(waiter, None, None)

    def credit(self, taken: int) -> None:  # trio side
        self.in_flight -= taken
        space, self.space = self.space, None
        if space is not None:
            space.set()


async def _pump(pipe: _Pipe, opener: Opener) -> None:
    """The trio side of a stream: pull batches and hand them over; park while the buffer is
    full. The reader is woken by the first batch, then once half the bound is in flight or
    when the pull would block: not per batch, so a fast stream crosses in large batches."""
    error: BaseException | None = None
    close: Callable[[], Awaitable[Any]] | None = None
    host = pipe.host
    half = max(1, pipe.bound // 2)
    first = True

    def idle() -> None:
        host.to_loop(pipe.wake)

    try:
        with pipe.scope:
            pull, close = opener()
            while True:
                room = pipe.bound - pipe.in_flight
                if room <= 0:
                    pipe.space = trio.Event()
                    await pipe.space.wait()
                    continue
                batch = await pull(room, idle)
                if not batch:
                    break
                pipe.in_flight += len(batch)
                # The first batch wakes the reader at once: the first chunk is not kept waiting.
                woken = pipe.in_flight >= half or first
                host.to_loop(pipe.deliver, batch, woken, wake=woken)
                first = False
    except BaseException as exc:  # noqa: BLE001 - a system task must never raise
        error = crossing(exc)
    finally:
        if close is not None:
            with trio.CancelScope(shield=True):
                try:
                    await close()
                except BaseException as exc:  # noqa: BLE001 - reported to the reader
                    error = error or crossing(exc)
        pipe.host.to_loop(pipe.finish, error)


class HostedReader(Generic[T]):
    """An asyncio async iterator over a stream whose producer runs in trio (module docstring).

    Example::

        async for chunk in chain.astream(x):     # under asyncio, __aiter__ returns one of these
            ...
    """

    __slots__ = ("__weakref__", "_opener", "_pipe", "_raised")

    def __init__(self, host: Host, opener: Opener, *, bound: int | None = None) -> None:
        self._pipe = _Pipe(host, BOUND if bound is None else bound)
        self._opener: Opener | None = opener
        self._raised = False

    @property
    def host(self) -> Host:
        return self._pipe.host

    def __aiter__(self) -> HostedReader[T]:
        return self

    async def __anext__(self) -> T:
        items = self._pipe.items
        if items:
            return items.popleft()  # type: ignore[no-any-return]
        return await self._refill()

    async def _refill(self) -> T:
        pipe = self._pipe
        while not pipe.items:
            if pipe.ended:
                error, pipe.error = pipe.error, None
                if error is not None and not self._raised:
                    self._raised = True
                    raise error
                raise StopAsyncIteration
            if self._opener is not None:
                opener, self._opener = self._opener, None
                pipe.host.spawn(_pump, pipe, opener, context=contextvars.copy_context())
            taken = pipe.delivered - pipe.credited
            if taken:  # the buffer is empty: everything delivered has been consumed
                pipe.credited += taken
                pipe.host.to_trio(pipe.credit, taken)
            pipe.waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self._cancel()
                raise
            finally:
                pipe.waiter = None
        return pipe.items.popleft()  # type: ignore[no-any-return]

    def _cancel(self) -> None:
        if self._opener is None and not self._pipe.ended:
            self._pipe.host.to_trio(self._pipe.scope.cancel)

    async def aclose(self) -> None:
        """Stop the trio side (cancelling the stream if still running) and wait until it has
        stopped, even if this task is cancelled meanwhile."""
        pipe = self._pipe
        if self._opener is not None:  # never started: nothing runs
            self._opener = None
            pipe.ended = True
            return
        self._cancel()
        pipe.items.clear()
        await wait_uncancellable(pipe.stopped)

    async def __aenter__(self) -> HostedReader[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Dropped after a `break`: cancel now; nobody waits, as for a trio stream.
        pipe = self._pipe
        if self._opener is None and not pipe.ended:
            pipe.host.to_trio_threadsafe(pipe.scope.cancel)


class RenderingReader(HostedReader[T]):
    """A :class:`HostedReader` whose items are transformed as they are taken (``None``: skip),
    then ``finish()`` gives a last item after a clean end. Events cross raw and are rendered
    here: a rendered event then lives as briefly as under trio, which spares the collector."""

    __slots__ = ("_finish", "_transform")

    def __init__(self, host: Host, opener: Opener, transform: Callable[[Any], T | None],
                 finish: Callable[[], T | None] | None = None) -> None:
        super().__init__(host, opener)
        self._transform, self._finish = transform, finish

    async def __anext__(self) -> T:
        items, transform = self._pipe.items, self._transform
        while True:
            while items:
                out = transform(items.popleft())
                if out is not None:
                    return out
            try:
                item = await self._refill()
            except StopAsyncIteration:
                finish, self._finish = self._finish, None
                if finish is not None and not self._raised:
                    last = finish()
                    if last is not None:
                        return last
                raise
            out = transform(item)
            if out is not None:
                return out


class AsyncioSource:
    """The trio view of an asyncio async iterator: the input of a run that ``atransform``
    started from asyncio. See the module docstring.

    Example::

        async for out in chain.atransform(my_asyncio_generator()):   # under asyncio
            ...
    """

    def __init__(self, host: Host, source: AsyncIterator[object], *, bound: int = BOUND) -> None:
        self._host, self._source, self._bound = host, source, bound
        # trio side
        self._items: deque[Any] = deque()
        self._arrived: trio.Event | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._taken = 0
        # asyncio side
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._room: asyncio.Future[None] | None = None
        self._stopped = False

    @classmethod
    def wrap(cls, inputs: object) -> AsyncioSource | None:
        """A source for ``inputs`` when the caller is an asyncio task and ``inputs`` is an
        async iterator that is not already a trio one (rillet's own streams are)."""
        if not isinstance(inputs, AsyncIterator) or getattr(inputs, "trio_native", False):
            return None
        host = foreign_host()
        return None if host is None else cls(host, inputs)

    def __aiter__(self) -> AsyncioSource:
        return self

    async def __anext__(self) -> object:  # trio side
        while not self._items:
            if self._ended:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            if self._taken:
                taken, self._taken = self._taken, 0
                self._host.to_loop(self._credit, taken)
            if self._task is None and not self._stopped:
                self._host.to_loop(self._start)
            self._arrived = trio.Event()
            await self._arrived.wait()
        self._taken += 1
        return self._items.popleft()

    def stop(self, *_: object) -> None:
        """The run ended (trio side; a ``launch_run`` on_done callback): stop reading."""
        self._host.to_loop(self._cancel)

    # -- trio side, called from asyncio ------------------------------------------------------

    def _deliver(self, item: object) -> None:
        self._items.append(item)
        self._wake()

    def _finish(self, error: BaseException | None) -> None:
        self._ended, self._error = True, error
        self._wake()

    def _wake(self) -> None:
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            arrived.set()

    # -- asyncio side ----------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._stopped:
            self._task = asyncio.get_running_loop().create_task(self._fill(),
                                                                name="rillet-atransform-input")

    def _credit(self, taken: int) -> None:
        self._in_flight -= taken
        if self._room is not None:
            settle(self._room, None, None)

    def _cancel(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def _fill(self) -> None:
        error: BaseException | None = None
        loop = asyncio.get_running_loop()
        try:
            async for item in self._source:
                self._in_flight += 1
                self._host.to_trio(self._deliver, item)
                while self._in_flight >= self._bound:
                    self._room = loop.create_future()
                    try:
                        await self._room
                    finally:
                        self._room = None
        except asyncio.CancelledError:
            pass  # the run ended: nobody reads any more
        except BaseException as exc:  # noqa: BLE001 - the run's feed raises it
            error = exc
        finally:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except BaseException as exc:  # noqa: BLE001 - reported like an iteration error
                    error = error or exc
            self._host.to_trio(self._finish, error)
