"""Handles of runs that a :class:`~rillet.runtime.engine.worker.Worker` accepted.

A :class:`WorkerRun` is already running when ``submit`` returns it. What it publishes is fixed
at submission, because a run decides once, when it starts, who listens:

- ``submit(..., events=False)`` (default): read the output with :meth:`WorkerRun.stream` or
  :meth:`WorkerRun.result`; nothing is built for events unless the worker bus has subscribers.
- ``submit(..., events=True)``: read lifecycle events with :meth:`WorkerRun.events` (lossless:
  an unread run parks once its event buffer is full); :meth:`WorkerRun.result` drains them and
  returns the root run's output.

Leaving any of these readers early cancels the run, as leaving ``astream`` does. A run that was
cancelled (by :meth:`WorkerRun.cancel`, or by a worker shutting down past its deadline) ends its
readers with :class:`RunCancelled`, never with a silently truncated output.

>>> # run = await worker.submit(chain, {"topic": "parrot"})
>>> # async for token in run.stream(): print(token, end="")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self, Unpack, cast, final

import trio

from rillet.runtime.chunks import DELTA, Accumulator
from rillet.runtime.engine.hosts import hosted
from rillet.runtime.engine.hosts_streams import hosted_iter
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.errors import RunCancelled
from rillet.runtime.events.bus import Subscription
from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.events.render import render_event
from rillet.runtime.events.types import Event, RunFinished
from rillet.runtime.exports import NoPublicConstructor

if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import Launchable

__all__ = ["RunCancelled", "RunEvents", "RunOutput", "WorkerRun"]

_BATCH = 256


@final
class WorkerRun(metaclass=NoPublicConstructor):
    """One run accepted by a worker: stream its output or events, wait for it, cancel it.

    Made by :meth:`Worker.submit` only (no public constructor).

    Example::

        run = await worker.submit(chain, {"topic": "parrot"})
        print(await run.result())
    """

    def __init__(
        self,
        handle: RunHandle,
        *,
        run_id: str,
        name: str,
        runnable: Launchable,
        subscription: Subscription | None,
    ) -> None:
        self.run_id, self.name = run_id, name
        self._handle, self._sub, self._runnable = handle, subscription, runnable
        self._reader: str | None = None
        #: Why the run was cancelled; the first reason given wins.
        self.cancel_reason: str | None = None

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<WorkerRun {self.name!r} {self.run_id[:8]} {state}>"

    @property
    def done(self) -> bool:
        """True once every actor of the run has stopped."""
        return self._handle.done.is_set()

    @property
    def publishes_events(self) -> bool:
        """True when the run was submitted with ``events=True``."""
        return self._sub is not None

    def cancel(self, reason: str = "cancelled by its caller") -> None:
        """Cancel the run now (sync); readers then end with :class:`RunCancelled`."""
        if not self.done and self.cancel_reason is None:
            self.cancel_reason = reason
        self._handle.cancel()

    @hosted
    async def aclose(self) -> None:
        """Cancel the run if it still runs, and wait (shielded) until every actor stopped."""
        if not self.done and self.cancel_reason is None:
            self.cancel_reason = "its reader left before it finished"
        await self._handle.aclose()
        if self._sub is not None:
            self._sub.close()

    @hosted
    async def wait(self) -> None:
        """Wait for the end; raise the run's error, or :class:`RunCancelled`.

        A run submitted with ``events=True`` waits for its events to be read: use
        :meth:`result` (which reads them) when you only want the end.
        """
        await self._handle.done.wait()
        self._raise_outcome()

    def stream(self) -> RunOutput:
        """The run's output chunks (once per run), raising the run's error at the end.

        Raises:
            RuntimeError: the run was submitted with ``events=True``, or its output is
                already being read.
        """
        self._claim("stream()", wants_events=False)
        return RunOutput(self.receive_chunks, self.aclose)

    def events(
        self,
        *,
        version: str | None = "v2",
        **filters: Unpack[FilterOptions],
    ) -> RunEvents:
        """The run's lifecycle events: LangChain-shaped dicts, or raw ``Event``s (``version=None``).

        Filters work as in ``astream_events``. After the last event the run's error (if any)
        is raised.

        Raises:
            RuntimeError: the run was submitted without ``events=True`` (a run decides when it
                starts whether anybody listens), or its events are already being read.
        """
        if version not in ("v1", "v2", None):
            raise ValueError(f"events version must be 'v1', 'v2' or None, got {version!r}")
        self._claim("events()", wants_events=True)
        event_filter = EventFilter.from_options(filters)
        render = (lambda e: e) if version is None else (lambda e: render_event(e, version))
        return RunEvents(self, render, event_filter.as_predicate())

    @hosted
    async def result(self) -> Any:
        """Wait for the whole output (the chunks added up, or the root's reported output).

        Raises:
            the run's own error, or RunCancelled.
        """
        runnable = self._runnable
        if self._sub is None:
            self._claim("result()", wants_events=False)
            acc = Accumulator(runnable.output_mode(DELTA))
            try:
                while batch := await self.receive_chunks(_BATCH):
                    for chunk in batch:
                        acc.add(chunk)
            finally:
                await self.aclose()
            return runnable.finalize(acc.value)
        self._claim("result()", wants_events=True)
        output: object = None
        try:
            while batch := await self.receive_events(_BATCH):
                for event in batch:
                    if isinstance(event, RunFinished) and event.run_id == self.run_id:
                        output = event.data.get("output")
        finally:
            await self.aclose()
        return runnable.finalize(output)

    # -- batched readers (the server moves every available item per write) ----------------

    async def receive_chunks(self, limit: int) -> list[Any]:
        """At least one output chunk and up to ``limit``; ``[]`` at the end (or the error).

        The batched reader under :meth:`stream` (the server writes each batch at once); use
        it instead of ``stream()``, not with it.
        """
        sink = self._handle.sink
        assert sink is not None, "this run publishes events, not output"
        try:
            batch = [await sink.receive()]
        except (trio.EndOfChannel, trio.ClosedResourceError):
            await self.wait()
            return []
        try:
            while len(batch) < limit:
                batch.append(sink.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        return batch

    async def receive_events(self, limit: int) -> list[Event]:
        """At least one event and up to ``limit``; ``[]`` at the end (or the error).

        The batched reader under :meth:`events` (raw events, unfiltered).
        """
        sub = self._sub
        assert sub is not None, "this run publishes output, not events"
        try:
            batch = [await sub.__anext__()]
        except StopAsyncIteration:
            await self.wait()
            return []
        try:
            while len(batch) < limit:
                batch.append(sub.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        return batch

    def _claim(self, method: str, *, wants_events: bool) -> None:
        if wants_events and self._sub is None:
            raise RuntimeError(
                f"{method} needs a run submitted with events=True: a run decides when it "
                f"starts whether anybody listens"
            )
        if not wants_events and self._sub is not None:
            raise RuntimeError(
                f"{method} reads output, but this run was submitted with events=True and "
                f"publishes events instead; use events() or result()"
            )
        if self._reader is not None:
            raise RuntimeError(
                f"{method}: this run is already read by {self._reader}; a run is read once"
            )
        self._reader = method

    def _raise_outcome(self) -> None:
        handle = self._handle
        if handle.error is not None:
            raise handle.error
        if handle.cancel_scope.cancelled_caught:
            raise RunCancelled(self.run_id, reason=self.cancel_reason or "cancelled")


class _BatchReader:
    """An async iterator object (not a generator) over batches a run hands out; leaving
    ``async for`` needs no finalizer, and :meth:`aclose` cancels the run."""

    def __init__(self, receive: Callable[[int], Awaitable[list[Any]]],
                 close: Callable[[], Awaitable[None]]) -> None:
        self._receive, self._close = receive, close
        self._buffer: list[Any] = []
        self._closed = False

    async def _next_batch(self) -> bool:
        if self._closed:
            return False
        batch = await self._receive(_BATCH)
        if not batch:
            self._closed = True
            return False
        batch.reverse()  # popped from the end: oldest first
        self._buffer = batch
        return True

    async def aclose(self) -> None:
        """Cancel the run if it still runs and wait until it stopped."""
        self._closed = True
        self._buffer.clear()
        await self._close()

    def __aiter__(self) -> Any:
        # From asyncio: a reader that pumps this one in the loop's guest.
        return hosted_iter(cast("AsyncIterator[Any]", self), self.aclose)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RunOutput(_BatchReader):
    """The output chunks of one :class:`WorkerRun`; see :meth:`WorkerRun.stream`."""

    async def __anext__(self) -> Any:
        if not self._buffer and not await self._next_batch():
            raise StopAsyncIteration
        return self._buffer.pop()


class RunEvents(_BatchReader):
    """The events of one :class:`WorkerRun`, filtered and rendered; see :meth:`WorkerRun.events`."""

    def __init__(
        self,
        run: WorkerRun,
        render: Callable[[Event], object],
        accept: Callable[[Event], bool] | None,
    ) -> None:
        super().__init__(run.receive_events, run.aclose)
        self._render, self._accept = render, accept

    async def __anext__(self) -> Any:
        while self._buffer or await self._next_batch():
            event = self._buffer.pop()
            if self._accept is not None and not self._accept(event):
                continue
            out = self._render(event)
            if out is not None:
                return out
        raise StopAsyncIteration
