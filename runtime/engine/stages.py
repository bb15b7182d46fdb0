"""Stages: nodes placed lazily, so consecutive ones can share one actor (fusing).

A leaf node is wired as a :class:`Stage` behind a :class:`StageInlet`, a target of its
producer's outlet. Nothing runs it yet; what happens next depends on the producer:

- a producer that is the only one feeding it (a sequence's previous step, or the run's feed)
  and sends it nothing but its own chunks may **claim** it when the node is ``inline`` (it
  cannot block while its producer could work: a prompt, a chat model after its prompt, a
  parser): the two then run in one actor, the node's code pulling chunks straight from the
  producer's generator — no task, no channel, no hand-off between them;
- any other producer (a fan-out, a fan-in, a node that is not inline) **materializes** it when
  the producer's emitter is opened: the stage (with whatever it claimed) gets its bounded inbox
  edge and an actor of its own, exactly as before fusing existed.

Inside a fused actor every node keeps its own run scope and lifecycle: a streaming node starts
at its first input chunk and accumulates its input for its end event; a buffering node adds up
its whole input, starts, then runs; stream taps and maps between two nodes apply as on an edge;
the current run (for nested runs and custom events) is the node whose code is executing; an
error is reported on the node that raised it (error events, ``rillet_node``) and travels out
through the nodes after it, which end without events as if cancelled. Leaving early or a
cancellation closes every node's generator, last node first, so their ``finally`` blocks run.

>>> # w.place(TRANSFORM, parse, scope, out, "delta", inline=True) -> Outlet.to(StageInlet)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final

import trio

from rillet.runtime.chunks import Accumulator
from rillet.runtime.engine.actors import (
    annotate_error,
    invoke_actor,
    pump,
    stream_actor,
    transform_actor,
)
from rillet.runtime.engine.edges import SKIP, Emitter, Outlet, Recv, Send, Tap
from rillet.runtime.engine.scope import MISSING, RunScope, current_variable

if TYPE_CHECKING:
    from rillet.runtime.engine.supervisor import Wiring

__all__ = ["INVOKE", "STREAM", "TRANSFORM", "Stage", "StageInlet", "run_stages"]

#: How a node consumes its input: as a stream, whole then streaming, whole then one output.
TRANSFORM: Final = "transform"
STREAM: Final = "stream"
INVOKE: Final = "invoke"

_ACTORS: Final[dict[str, Callable[..., Awaitable[None]]]] = {
    TRANSFORM: transform_actor, STREAM: stream_actor, INVOKE: invoke_actor}
_current = current_variable()


class Stage:
    """One node as wiring sees it: its hook, scope and outlet, and the stage it claimed."""

    __slots__ = ("hook", "fn", "scope", "input_mode", "out", "next")

    def __init__(self, hook: str, fn: Callable[[Any], Any], scope: RunScope, input_mode: str,
                 out: Outlet) -> None:
        self.hook, self.fn, self.scope, self.input_mode = hook, fn, scope, input_mode
        #: Where this node's output goes; with ``next`` set, its ops apply between the two.
        self.out = out
        self.next: Stage | None = None

    def chain(self) -> list[Stage]:
        """This stage and every stage fused after it, in order."""
        stages = [self]
        while stages[-1].next is not None:
            stages.append(stages[-1].next)
        return stages


class StageInlet:
    """An outlet target standing for a stage not placed yet (see the module docstring)."""

    __slots__ = ("stage", "inline", "claimed", "_wiring", "_send")

    def __init__(self, stage: Stage, wiring: Wiring, *, inline: bool) -> None:
        self.stage, self.inline, self._wiring = stage, inline, wiring
        self.claimed = False
        self._send: Send | None = None

    @property
    def placed(self) -> bool:
        return self.claimed or self._send is not None

    def claimable(self) -> bool:
        """Whether a producer may run this stage in its own actor (it is its only feeder)."""
        return self.inline and not self.placed

    def open(self) -> Send:
        """Place the stage (and what it claimed) in an actor of its own; its inbox's send end.

        The send end is the wiring's original: producers clone it, and sealing closes it.
        """
        if self._send is None:
            stage = self.stage
            send, recv = self._wiring.edge(stage.scope.config.bound)
            self._send = send
            fn, args = actor_for(stage.chain(), recv)
            self._wiring.actor(fn, *args)
        return self._send

    def clone(self) -> Send:
        """What :meth:`Emitter.open` asks every target for: a clone of the inbox's send end."""
        return self.open().clone()


def claim(out: Outlet) -> Stage | None:
    """The stage ``out`` feeds, taken over by its producer, if ``out`` allows that: an exclusive
    outlet whose one target is a claimable inlet."""
    if not out.exclusive or len(out.targets) != 1:
        return None
    target = out.targets[0]
    if type(target) is not StageInlet or not target.claimable():
        return None
    # A node holding a parallel's concurrency slot keeps an actor of its own.
    target.claimed = True
    return target.stage


def actor_for(stages: list[Stage], source: Recv | Iterable[Any] | AsyncIterator[Any],
              ) -> tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]:
    """The actor running ``stages`` on ``source``: a plain actor for one stage fed by a channel
    (the unfused case), :func:`run_stages` otherwise."""
    out = Emitter.open(stages[-1].out)
    if len(stages) == 1 and isinstance(source, trio.MemoryReceiveChannel):
        stage = stages[0]
        return _ACTORS[stage.hook], (stage.fn, stage.scope, source, out, stage.input_mode)
    return run_stages, (stages, source, out)


async def run_stages(stages: list[Stage], source: Recv | Iterable[Any] | AsyncIterator[Any],
                     out: Emitter) -> None:
    """Run fused stages in this task: each node pulls from the one before it, the last one's
    output goes to ``out``."""
    failure = _Failure()
    token = _current.set(stages[-1].scope)
    try:
        with out:
            async with AsyncExitStack() as stack:
                if isinstance(source, trio.MemoryReceiveChannel):
                    stack.enter_context(source)
                upstream: AsyncIterator[Any] = _chunks_of(source)
                up_scope: RunScope | None = None
                for index, stage in enumerate(stages):
                    last = index == len(stages) - 1
                    node = _Node(stage, upstream, up_scope, failure, () if last else stage.out.ops)
                    stack.push_async_callback(node.aclose)
                    upstream, up_scope = node, stage.scope
                await pump(upstream, out)
    finally:
        _current.reset(token)


class _Failure:
    """The error a node of this actor reported, so the nodes after it do not report it again."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None


class _Node:
    """One fused node's output stream, driving the node's lifecycle as an actor would."""

    __slots__ = ("_stage", "_scope", "_upstream", "_up_scope", "_failure", "_ops", "_gen",
                 "_inbox", "_result", "_done")

    def __init__(self, stage: Stage, upstream: AsyncIterator[Any], up_scope: RunScope | None,
                 failure: _Failure, ops: tuple[Any, ...]) -> None:
        self._stage, self._scope = stage, stage.scope
        self._upstream, self._up_scope = upstream, up_scope
        self._failure, self._ops = failure, ops
        self._gen: Any = None
        self._inbox: _Inbox | None = None
        self._result: Any = _NOTHING
        self._done = False

    def __aiter__(self) -> _Node:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._done:
                raise StopAsyncIteration
            try:
                chunk = await self._next()
            except StopAsyncIteration:
                self._done = True
                await self._finish()
                raise
            except BaseException as error:
                self._done = True
                await self._fail(error)
                raise
            for op in self._ops:
                if type(op) is Tap:
                    await op.scope.emit_chunk(chunk)
                else:
                    chunk = op.fn(chunk)
                    if chunk is SKIP:
                        break
            else:
                return chunk

    async def _next(self) -> Any:
        gen = self._gen
        if gen is not None:
            return await gen.__anext__()
        stage, scope = self._stage, self._scope
        if stage.hook == TRANSFORM:
            self._inbox = _Inbox(self._upstream, self._up_scope, scope, stage.input_mode)
            gen = self._gen = stage.fn(self._inbox)
            return await gen.__anext__()
        if self._result is not _NOTHING:  # an invoked node's one output went out
            raise StopAsyncIteration
        acc = await self._drain()
        if acc.empty:
            await scope.skip()
            self._done = True
            raise StopAsyncIteration
        await scope.start(acc.value)
        if stage.hook == STREAM:
            gen = self._gen = stage.fn(acc.value)
            return await gen.__anext__()
        self._result = await stage.fn(acc.value)
        return self._result

    async def _drain(self) -> Accumulator:
        acc = Accumulator(self._stage.input_mode)
        token = _current.set(self._up_scope) if self._up_scope is not None else None
        try:
            async for chunk in self._upstream:
                acc.add(chunk)
        finally:
            if token is not None:
                _current.reset(token)
        return acc

    async def _finish(self) -> None:
        scope = self._scope
        if scope.ended:  # skipped: an empty input
            return
        if self._inbox is not None:
            self._inbox.record_input()
        await scope.finish(MISSING if self._result is _NOTHING else self._result)

    async def _fail(self, error: BaseException) -> None:
        if isinstance(error, (trio.Cancelled, GeneratorExit)) or error is self._failure.error:
            return  # a stop, or an error a node before this one raised and reported
        self._failure.error = error
        annotate_error(error, self._scope)
        with trio.CancelScope(shield=True):
            await self._scope.fail(error)

    async def aclose(self) -> None:
        gen, self._gen = self._gen, None
        self._done = True
        if gen is not None:
            await gen.aclose()


class _Inbox:
    """A fused streaming node's input: the stream of the node before it, pulled with that
    node as the current run, starting this node at the first chunk (as ``actors.Inbox``)."""

    __slots__ = ("_upstream", "_up_scope", "_scope", "_acc")

    def __init__(self, upstream: AsyncIterator[Any], up_scope: RunScope | None, scope: RunScope,
                 input_mode: str) -> None:
        self._upstream, self._up_scope, self._scope = upstream, up_scope, scope
        self._acc = Accumulator(input_mode) if scope.watched else None

    def __aiter__(self) -> _Inbox:
        return self

    async def __anext__(self) -> Any:
        if self._up_scope is not None:
            token = _current.set(self._up_scope)
            try:
                chunk = await self._upstream.__anext__()
            finally:
                _current.reset(token)
        else:
            chunk = await self._upstream.__anext__()
        scope = self._scope
        if not scope.started:
            await scope.start()
        if self._acc is not None:
            self._acc.add(chunk)
        return chunk

    def record_input(self) -> None:
        if self._acc is not None and not self._acc.empty:
            self._scope.set_input(self._acc.value)


class _Items:
    """The run's own inputs (the feed, fused into the first actor) as an async iterator."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self._items: Iterator[Any] = iter(items)

    def __aiter__(self) -> _Items:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


class _Channel:
    """A stage group's inbox, read without a schedule point while chunks are buffered."""

    __slots__ = ("_recv",)

    def __init__(self, recv: Recv) -> None:
        self._recv = recv

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> Any:
        try:
            return self._recv.receive_nowait()
        except trio.WouldBlock:
            try:
                return await self._recv.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


def _chunks_of(source: Recv | Iterable[Any] | AsyncIterator[Any]) -> AsyncIterator[Any]:
    if isinstance(source, trio.MemoryReceiveChannel):
        return _Channel(source)
    if isinstance(source, AsyncIterator):
        return source
    return _Items(source)


_NOTHING: Final[Any] = object()
