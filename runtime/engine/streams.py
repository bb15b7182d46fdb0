"""Iterators over a run's output, async and sync, that cancel the run when left early.

:class:`AsyncRunStream` is what ``astream`` returns: an async iterator *object*, not an async
generator, so breaking out of ``async for`` needs no finalizer task: dropping or closing it
cancels the run at once (``RunHandle.cancel`` is synchronous), and ``aclose()`` also waits until
every actor has stopped. The run starts at the first ``__anext__``, like a generator.

Iterated by an asyncio task, :class:`AsyncRunStream` and :class:`EventStream` hand out a
:class:`~rillet.runtime.engine.hosts_streams.HostedReader` instead (decided once, in
``__aiter__``, or at the first ``__anext__``): the run then lives in the loop's trio guest.
Under trio nothing changes.

:class:`SyncRunStream` is what ``stream`` returns: each ``next()`` that finds its local buffer
empty makes one hop to the trio loop and brings back a batch of chunks, so a thread hop is paid per batch, not per
chunk: the first batch at once, the next ones filled while the run keeps producing (up to
``HANDOFF_EDGES`` times the run's edge bound).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

import trio

from rillet.runtime.engine.bridge import call_soon_in_portal, is_portal_thread, run_sync
from rillet.runtime.engine.hosts import Host, foreign_host
from rillet.runtime.engine.hosts_streams import HostedReader, Pull, RenderingReader
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.types import Event

__all__ = ["AsyncRunStream", "EventStream", "SyncRunStream"]

T = TypeVar("T")
_BATCH = 256
#: A sync stream's hand-off to its thread holds up to this many edges' worth of chunks (128 at
#: the default bound): one thread hop per batch, and a slow reader still parks the run.
HANDOFF_EDGES = 8
# Schedule points a pump gives an empty sink before it wakes its reader: a chain of a few
# stages refills it within that many when it streams as fast as it can.
_REFILL_TRIES = 4


class AsyncRunStream(Generic[T]):
    """The output chunks of one run; see the module docstring.

    Example::

        async with chain.astream(x) as chunks:      # or plain `async for`
            async for chunk in chunks: ...
    """

    __slots__ = ("_launch", "_handle", "_count", "_closed", "_reader")
    #: A trio stream at heart: ``atransform`` from asyncio feeds it to a run as it is.
    trio_native: ClassVar[bool] = True

    def __init__(self, launch: Callable[[], RunHandle]) -> None:
        self._launch = launch
        self._handle: RunHandle | None = None
        self._count = 0
        self._closed = False
        self._reader: HostedReader[T] | None = None

    def __aiter__(self) -> Any:
        host = foreign_host()
        return self if host is None else self._hosted(host)

    def _hosted(self, host: Host) -> HostedReader[T]:
        if self._reader is None:
            launch = self._launch  # not self: the pump must not keep this stream alive

            def opener() -> tuple[Pull, Callable[[], Awaitable[None]]]:
                handle = launch()
                return functools.partial(take_chunks, handle), handle.aclose

            self._reader = HostedReader(host, opener)
        return self._reader

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        handle = self._handle
        if handle is None:
            host = foreign_host() if self._reader is None else self._reader.host
            if host is not None:  # an asyncio caller using __anext__ (or anext()) directly
                return await self._hosted(host).__anext__()
            handle = self._handle = self._launch()
        assert handle.sink is not None
        try:
            chunk = handle.sink.receive_nowait()
            self._count += 1
            if self._count >= _BATCH:
                self._count = 0
                await trio.lowlevel.checkpoint()
            return chunk  # type: ignore[no-any-return]
        except trio.WouldBlock:
            try:
                return await handle.sink.receive()  # type: ignore[no-any-return]
            except trio.EndOfChannel:
                pass
        except trio.EndOfChannel:
            pass
        except trio.ClosedResourceError:
            raise StopAsyncIteration from None
        self._closed = True
        await handle.done.wait()
        if handle.error is not None:
            raise handle.error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Cancel the run (if still running) and wait until every actor has stopped."""
        self._closed = True
        if self._reader is not None:
            await self._reader.aclose()
        elif self._handle is not None:
            await self._handle.aclose()

    async def __aenter__(self) -> AsyncRunStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        _cancel_abandoned(self._handle)


async def take_chunks(handle: RunHandle, limit: int,
                      idle: Callable[[], None] | None = None, *, fill: bool = False) -> list[Any]:
    """At least one output chunk of ``handle``'s run and up to ``limit``, without a schedule
    point after the first; ``[]`` once the run has ended (then its error is raised).

    With ``idle`` (a :data:`~rillet.runtime.engine.hosts_streams.Pull` for a pump): an empty
    sink gets a few schedule points to refill before ``idle()`` is called and the wait begins.
    With ``fill`` (the sync bridge, which pays a thread hop per batch): after the first chunk
    the producers get a schedule point whenever the sink runs dry, for as long as each one
    refills it, up to ``limit``. A model that waits for its network stops the filling at once,
    so a paced stream still hands over every chunk as it comes.
    """
    sink = handle.sink
    assert sink is not None, "this run was started without a sink"
    batch: list[Any] = []
    try:
        if idle is not None:
            for _ in range(_REFILL_TRIES):
                if _drain(sink, batch, limit):
                    break
                await trio.lowlevel.checkpoint()  # the producers run; often they refill it
            else:
                idle()
        if not batch:
            batch.append(await sink.receive())
            _drain(sink, batch, limit)
        if fill:
            while len(batch) < limit:
                await trio.lowlevel.checkpoint()
                if not _drain(sink, batch, limit):
                    break
    except (trio.EndOfChannel, trio.ClosedResourceError):
        if not batch:  # deliver these first; the next call sees the end again
            await handle.wait()
    return batch


def _drain(sink: Any, batch: list[Any], limit: int) -> bool:
    """Move what ``sink`` holds into ``batch`` (up to ``limit``); True if it moved any.
    The end of the stream is raised only when ``batch`` is still empty."""
    start = len(batch)
    try:
        while len(batch) < limit:
            batch.append(sink.receive_nowait())
    except trio.WouldBlock:
        pass
    except (trio.EndOfChannel, trio.ClosedResourceError):
        if not batch:
            raise
    return len(batch) > start


def _cancel_abandoned(handle: RunHandle | None) -> None:
    """A stream dropped while its run still runs: cancel the run now (sync, no waiting)."""
    if handle is not None and not handle.done.is_set():
        try:
            handle.cancel()
        except RuntimeError:  # collected on a thread without a trio loop
            pass


class SyncRunStream(Iterator[T]):
    """A run's output for synchronous code; ``close()`` (or dropping it) cancels the run."""

    def __init__(self, launch: Callable[[], RunHandle], *, method: str = "stream()") -> None:
        self._launch, self._method = launch, method
        self._handle: RunHandle | None = None
        self._buffer: deque[Any] = deque()
        self._finished = False
        self._pulled = False
        self._limit = _BATCH

    def __iter__(self) -> SyncRunStream[T]:
        return self

    def __next__(self) -> T:
        if self._buffer:
            return self._buffer.popleft()  # type: ignore[no-any-return]
        if self._finished:
            raise StopIteration
        batch, ended = run_sync(self._pull, method=self._method)
        self._buffer.extend(batch)
        if ended:
            self._finished = True
        if self._buffer:
            return self._buffer.popleft()  # type: ignore[no-any-return]
        raise StopIteration

    async def _pull(self) -> tuple[list[Any], bool]:
        if self._handle is None:
            self._handle = self._launch()
            assert self._handle.sink is not None
            bound = self._handle.sink.statistics().max_buffer_size
            self._limit = min(_BATCH, HANDOFF_EDGES * max(1, int(bound)))
        handle = self._handle
        try:
            # The first batch goes back at once (time to first chunk); later ones fill up to
            # a few edges' worth: the hand-off is one more bounded buffer of the run.
            batch = await take_chunks(handle, self._limit, fill=self._pulled)
            self._pulled = True
        except BaseException:
            self._finished = True  # the run's error is raised once, then iteration ends
            await handle.aclose()
            raise
        return batch, not batch

    def close(self) -> None:
        """Cancel the run and wait until it has stopped."""
        self._finished = True
        self._buffer.clear()
        handle, self._handle = self._handle, None
        if handle is None or handle.done.is_set():
            return
        if is_portal_thread():  # collected on the loop's own thread: cannot block here
            call_soon_in_portal(handle.cancel)
            return
        run_sync(handle.aclose, method="closing a sync stream",
                 instead="an async stream (astream) and its aclose()")

    def __enter__(self) -> SyncRunStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to at collection time
            pass


class EventStream(Generic[T]):
    """A run's lifecycle events, transformed (rendered to dicts, or run-log patches).

    The run starts at the first ``__anext__`` with a private bus whose one subscriber is this
    stream (``policy="block"`` by default: a slow reader parks the run, nothing piles up).
    Leaving early cancels the run like :class:`AsyncRunStream`; after the last event, the run's
    error (if any) is raised — after its error events were delivered.
    """

    def __init__(
        self,
        launch: Callable[[EventBus, Callable[[RunHandle], None]], RunHandle],
        transform: Callable[[Event], T | None],
        *,
        policy: str = "block",
        bound: int = 64,
        accept: Callable[[Event], bool] | None = None,
        prefilter: Callable[[str, str, tuple[str, ...]], bool] | None = None,
        finish: Callable[[], T | None] | None = None,
    ) -> None:
        self._launch, self._transform, self._finish = launch, transform, finish
        self._policy, self._bound, self._accept = policy, bound, accept
        self._prefilter = prefilter
        self._handle: RunHandle | None = None
        self._sub: Subscription | None = None
        self._closed = False
        self._reader: HostedReader[T] | None = None

    #: A trio stream at heart: ``atransform`` from asyncio feeds it to a run as it is.
    trio_native: ClassVar[bool] = True

    def __aiter__(self) -> Any:
        host = foreign_host()
        return self if host is None else self._hosted(host)

    def _hosted(self, host: Host) -> HostedReader[T]:
        if self._reader is None:
            options = self._options()  # not self: the pump must not keep this stream alive

            def opener() -> tuple[Pull, Callable[[], Awaitable[None]]]:
                handle, sub = _open_events(*options)

                async def close() -> None:
                    await handle.aclose()
                    sub.close()

                return functools.partial(take_events, handle, sub), close

            # Raw events cross; the reader renders each as it is taken, so rendered events
            # live as briefly as under trio.
            self._reader = RenderingReader(host, opener, self._transform, self._finish)
        return self._reader

    def _options(self) -> tuple[Any, ...]:
        return self._launch, self._policy, self._bound, self._accept, self._prefilter

    async def __anext__(self) -> T:
        if self._handle is None:
            if self._closed:
                raise StopAsyncIteration
            host = foreign_host() if self._reader is None else self._reader.host
            if host is not None:  # an asyncio caller using __anext__ (or anext()) directly
                return await self._hosted(host).__anext__()
            self._handle, self._sub = _open_events(*self._options())
        assert self._sub is not None
        while True:
            try:
                event = await self._sub.__anext__()
            except StopAsyncIteration:
                break
            out = self._transform(event)
            if out is not None:
                return out
        if not self._closed:
            self._closed = True
            await self._handle.done.wait()
            if self._handle.error is not None:
                raise self._handle.error
            if self._finish is not None:
                last = self._finish()
                if last is not None:
                    return last
        raise StopAsyncIteration

    @property
    def dropped(self) -> int:
        """Events this stream lost (only with a ``drop_*`` policy)."""
        return 0 if self._sub is None else self._sub.dropped

    async def aclose(self) -> None:
        """Cancel the run (if still running) and wait until every actor has stopped."""
        self._closed = True
        if self._reader is not None:
            await self._reader.aclose()
        if self._handle is not None:
            await self._handle.aclose()
        if self._sub is not None:
            self._sub.close()

    async def __aenter__(self) -> EventStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        _cancel_abandoned(self._handle)


def _open_events(
    launch: Callable[[EventBus, Callable[[RunHandle], None]], RunHandle], policy: str,
    bound: int, accept: Callable[[Event], bool] | None,
    prefilter: Callable[[str, str, tuple[str, ...]], bool] | None,
) -> tuple[RunHandle, Subscription]:
    """Start a run whose events go to a private bus with one subscriber (trio side)."""
    bus = EventBus()
    sub = bus.subscribe(policy=policy, bound=bound, accept=accept, prefilter=prefilter)
    return launch(bus, lambda _handle: bus.close()), sub


async def take_events(handle: RunHandle, sub: Subscription, limit: int,
                      idle: Callable[[], None]) -> list[Event]:
    """A :data:`~rillet.runtime.engine.hosts_streams.Pull` of raw events: what is buffered
    (after a few schedule points if nothing is), else ``idle()`` and the next one; ``[]`` at
    the end, raising the run's error."""
    batch: list[Event] = []
    for _ in range(_REFILL_TRIES):  # as take_chunks: the producers may refill it
        _drain_events(sub, batch, limit)
        if batch:
            return batch
        await trio.lowlevel.checkpoint()
    idle()
    try:
        batch.append(await sub.__anext__())
    except StopAsyncIteration:
        await handle.wait()
        return []
    _drain_events(sub, batch, limit)
    return batch


def _drain_events(sub: Subscription, batch: list[Event], limit: int) -> None:
    try:
        while len(batch) < limit:
            batch.append(sub.receive_nowait())
    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
        pass  # the end (if it is one) is seen again by the next __anext__
