"""Actors: one task per node, reading its inbox and writing its emitter.

Three shapes, one per kind of node:

- :func:`transform_actor` — streaming in and out (parsers, passthrough, generator functions):
  the node's async generator consumes the inbox as it fills;
- :func:`stream_actor` — buffers its whole input, then streams (chat models, generator lambdas);
- :func:`invoke_actor` — buffers its whole input, runs once, emits one chunk (prompts,
  retrievers, plain functions).

Every actor owns its two channel ends and closes them on every path; it moves every chunk that
is already available with ``receive_nowait``/``send_nowait`` and awaits only on an empty inbox
or a full outbox. An error is reported on the node's scope (error events), annotated with the
node's name and re-raised, which cancels the run's nursery.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager

import trio

from rillet.runtime.chunks import Accumulator
from rillet.runtime.engine.edges import Emitter, Recv
from rillet.runtime.engine.scope import RunScope

__all__ = ["Inbox", "annotate_error", "drain", "invoke_actor", "pump", "stream_actor",
           "transform_actor"]


class Inbox:
    """The input stream of a streaming node, as an async iterator.

    Starts the node's run at the first chunk (LangChain's lazy start) and, when somebody
    listens, adds up the chunks so the end event can report the whole input.
    """

    __slots__ = ("_recv", "_scope", "_acc")

    def __init__(self, recv: Recv, scope: RunScope, input_mode: str) -> None:
        self._recv, self._scope = recv, scope
        self._acc = Accumulator(input_mode) if scope.watched else None

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> object:
        try:
            chunk = self._recv.receive_nowait()
        except trio.WouldBlock:
            try:
                chunk = await self._recv.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if not self._scope.started:
            await self._scope.start()
        if self._acc is not None:
            self._acc.add(chunk)
        return chunk

    def record_input(self) -> None:
        if self._acc is not None and not self._acc.empty:
            self._scope.set_input(self._acc.value)


async def drain(recv: Recv, mode: str) -> Accumulator:
    """Add up a whole input stream (the buffering step of non-streaming nodes)."""
    acc = Accumulator(mode)
    while True:
        try:
            acc.add(recv.receive_nowait())
        except trio.WouldBlock:
            try:
                acc.add(await recv.receive())
            except trio.EndOfChannel:
                return acc
        except trio.EndOfChannel:
            return acc


def annotate_error(error: BaseException, scope: RunScope) -> None:
    """Attach the failing node's name: ``error.rillet_node`` and a note (innermost node wins)."""
    if getattr(error, "rillet_node", None) is None:
        try:
            error.rillet_node = scope.name  # type: ignore[attr-defined]
            error.rillet_run_id = scope.run_id  # type: ignore[attr-defined]
        except AttributeError:  # exceptions with __slots__
            pass
        error.add_note(f"(raised in rillet node {scope.name!r}, kind {scope.kind!r})")


async def pump(outputs: AsyncIterator[object], out: Emitter) -> bool:
    """Send every output chunk on; False when downstream hung up (the consumer left early).

    With one target and no ops the chunk goes straight in with ``send_nowait`` (no coroutine
    call per chunk); ``out.send`` handles a full channel, fan-out, taps and checkpoints.
    """
    direct = out.direct
    async for chunk in outputs:
        if direct is not None:
            try:
                direct.send_nowait(chunk)
                continue
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
        if not await out.send(chunk):
            return False
    return True


@asynccontextmanager
async def _limited(scope: RunScope) -> AsyncIterator[None]:
    """Hold the scope's concurrency limiter (a parallel's max_concurrency) while working."""
    if scope.limiter is None:
        yield
        return
    async with scope.limiter:
        yield


async def _fail(error: BaseException, scope: RunScope) -> None:
    if isinstance(error, trio.Cancelled):
        return
    annotate_error(error, scope)
    with trio.CancelScope(shield=True):
        await scope.fail(error)


async def transform_actor(
    transform: Callable[[AsyncIterator[object]], AsyncGenerator[object, None]],
    scope: RunScope,
    inbox: Recv,
    out: Emitter,
    input_mode: str,
) -> None:
    """Run a streaming node: chunks in, chunks out, concurrently with its neighbours."""
    scope.activate()
    with inbox, out:
        chunks = Inbox(inbox, scope, input_mode)
        try:
            async with aclosing(transform(chunks)) as outputs:
                if not await pump(outputs, out):
                    return  # downstream hung up (consumer left early): a stop, not a failure
            chunks.record_input()
            await scope.finish()
        except BaseException as error:
            await _fail(error, scope)
            raise


async def stream_actor(
    stream: Callable[[object], AsyncGenerator[object, None]],
    scope: RunScope,
    inbox: Recv,
    out: Emitter,
    input_mode: str,
) -> None:
    """Run a node that needs its whole input, then streams (a chat model)."""
    scope.activate()
    with inbox, out:
        try:
            acc = await drain(inbox, input_mode)
            if acc.empty:
                await scope.skip()
                return
            async with _limited(scope):
                await scope.start(acc.value)
                async with aclosing(stream(acc.value)) as outputs:
                    if not await pump(outputs, out):
                        return
            await scope.finish()
        except BaseException as error:
            await _fail(error, scope)
            raise


async def invoke_actor(
    invoke: Callable[[object], Awaitable[object]],
    scope: RunScope,
    inbox: Recv,
    out: Emitter,
    input_mode: str,
) -> None:
    """Run a non-streaming node: buffer the input, call once, emit one chunk."""
    scope.activate()
    with inbox, out:
        try:
            acc = await drain(inbox, input_mode)
            if acc.empty:
                await scope.skip()
                return
            async with _limited(scope):
                await scope.start(acc.value)
                result = await invoke(acc.value)
            if not await out.send(result):
                return
            await scope.finish(result)
        except BaseException as error:
            await _fail(error, scope)
            raise

