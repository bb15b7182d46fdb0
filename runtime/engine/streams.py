"""Iterators over a run's output, async and sync, that cancel the run when left early.

:class:`AsyncRunStream` is what ``astream`` returns: an async iterator *object*, not an async
generator, so breaking out of ``async for`` needs no finalizer task: dropping or closing it
cancels the run at once (``RunHandle.cancel`` is synchronous), and ``aclose()`` also waits until
every actor has stopped. The run starts at the first ``__anext__``, like a generator.

:class:`SyncRunStream` is what ``stream`` returns: each ``next()`` that finds its local buffer
empty makes one hop to the trio loop and brings back every chunk that is already available (up
to 256), so a thread hop is paid per batch, not per chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import trio

from rillet.runtime.engine.bridge import call_soon_in_portal, is_portal_thread, run_sync
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.types import Event

__all__ = ["AsyncRunStream", "EventStream", "SyncRunStream"]

T = TypeVar("T")
_BATCH = 256


class AsyncRunStream(Generic[T]):
    """The output chunks of one run; see the module docstring.

    Example::

        async with chain.astream(x) as chunks:      # or plain `async for`
            async for chunk in chunks: ...
    """

    __slots__ = ("_launch", "_handle", "_count", "_closed")

    def __init__(self, launch: Callable[[], RunHandle]) -> None:
        self._launch = launch
        self._handle: RunHandle | None = None
        self._count = 0
        self._closed = False

    def __aiter__(self) -> AsyncRunStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        handle = self._handle
        if handle is None:
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
        if self._handle is not None:
            await self._handle.aclose()

    async def __aenter__(self) -> AsyncRunStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        _cancel_abandoned(self._handle)


def _cancel_abandoned(handle: RunHandle | None) -> None:
    """A stream dropped while its run still runs: cancel the run now (sync, no waiting)."""
    if handle is not None and not handle.done.is_set():
        try:
            handle.cancel()
        except RuntimeError:  # collected on a thread without a trio loop
            pass


class SyncRunStream(Iterator[T]):
    """A run's output for synchronous code; ``close()`` (or dropping it) cancels the run."""

    def __init__(self, launch: Callable[[], RunHandle]) -> None:
        self._launch = launch
        self._handle: RunHandle | None = None
        self._buffer: deque[Any] = deque()
        self._finished = False

    def __iter__(self) -> SyncRunStream[T]:
        return self

    def __next__(self) -> T:
        if self._buffer:
            return self._buffer.popleft()  # type: ignore[no-any-return]
        if self._finished:
            raise StopIteration
        batch, ended = run_sync(self._pull, method="stream()")
        self._buffer.extend(batch)
        if ended:
            self._finished = True
        if self._buffer:
            return self._buffer.popleft()  # type: ignore[no-any-return]
        raise StopIteration

    async def _pull(self) -> tuple[list[Any], bool]:
        if self._handle is None:
            self._handle = self._launch()
        handle = self._handle
        sink = handle.sink
        assert sink is not None
        batch: list[Any] = []
        try:
            batch.append(await sink.receive())
            while len(batch) < _BATCH:
                batch.append(sink.receive_nowait())
        except trio.WouldBlock:
            return batch, False
        except trio.EndOfChannel:
            if batch:
                return batch, False  # deliver these first; the next pull sees the end again
            self._finished = True  # the error below (if any) is raised once, then iteration ends
            await handle.wait()
            return batch, True
        except BaseException:
            await handle.aclose()
            raise
        return batch, False

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
        run_sync(handle.aclose, method="closing a stream")

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

    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._handle is None:
            if self._closed:
                raise StopAsyncIteration
            bus = EventBus()
            self._sub = bus.subscribe(policy=self._policy, bound=self._bound, accept=self._accept,
                                      prefilter=self._prefilter)
            self._handle = self._launch(bus, lambda _handle: bus.close())
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
        self._closed = True
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
