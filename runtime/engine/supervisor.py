"""The supervisor: owns each run's nursery, wires its actors, and hands the output to a reader.

A run lives in a trio *system task* that owns the run's cancel scope and nursery; the caller
only reads the run's sink channel. That is what lets ``astream`` be a plain async generator: it
never yields from inside a nursery (which corrupts trio's task tree when the caller breaks out),
and its ``finally`` cancels the run and waits for it, shielded, so leaving early stops every
actor promptly. The run task never raises: it stores the run's error for the reader, closes the
sink and sets ``done`` in ``finally``.

>>> # handle = launch_run(wire, [input], state=RunState())   # inside trio
>>> # async for chunk in handle.chunks(): ...
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, final

import trio

from rillet.runtime.engine.edges import DEFAULT_BOUND, Emitter, Outlet, Recv, Send, open_edge
from rillet.runtime.engine.scope import MISSING, RunScope, RunState
from rillet.runtime.engine.stages import Stage, StageInlet, actor_for, claim
from rillet.runtime.exports import NoPublicConstructor

__all__ = ["FeedSource", "RunHandle", "Wiring", "launch_run", "sole_error"]


class Wiring:
    """What a runnable needs to place its actors in one run: edges, scopes and the nursery.

    ``edge()`` remembers the original send ends; after wiring every producer holds its own
    clone and :meth:`seal` closes the originals, so end-of-stream reaches each consumer exactly
    when its last producer finishes. Leaf nodes are placed as stages (:meth:`place`), fused into
    their producer's actor or given their own (:mod:`.stages`).
    """

    def __init__(self, *, state: RunState, bound: int = DEFAULT_BOUND) -> None:
        self.state, self.bound = state, bound
        self.root: RunScope | None = None
        self._originals: list[Send] = []
        self._actors: list[tuple[Callable[..., Awaitable[object]], tuple[object, ...]]] = []
        self._inlets: list[StageInlet] = []

    def edge(self, bound: int | None = None) -> tuple[Send, Recv]:
        """A new edge; ``bound`` overrides the run's (a ``with_config(bound=...)`` subtree)."""
        send, recv = open_edge(self.bound if bound is None else bound)
        self._originals.append(send)
        return send, recv

    def actor(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start ``await fn(*args)`` as one of the run's actors when the run starts."""
        self._actors.append((fn, args))

    def place(self, hook: str, fn: Callable[[Any], Any], scope: RunScope, out: Outlet,
              input_mode: str, *, inline: bool = False) -> Outlet:
        """Place a leaf node; return the outlet its input must be sent to.

        Args:
            hook: how it consumes its input (``TRANSFORM``, ``STREAM`` or ``INVOKE``).
            fn: the node's hook with its scope bound.
            out: where its output goes (its own stream tap included); when that is an exclusive
                outlet to a node that may run inline, this node's actor runs that one too.
            inline: this node may itself run in its producer's actor: it never blocks while
                that producer could work (a prompt, a chat model after a prompt, a parser).
        """
        stage = Stage(hook, fn, scope, input_mode, out)
        free = scope.limiter is None  # a node holding a parallel's slot keeps its own actor
        if free:
            stage.next = claim(out)
        inlet = StageInlet(stage, self, inline=inline and free)
        self._inlets.append(inlet)
        return Outlet.to(inlet)

    def feed(self, inputs: FeedSource, entry: Outlet) -> None:
        """Send the run's inputs to ``entry``: a node waiting there takes them as its input
        stream directly (the feed fused into its actor); otherwise a feed actor sends them."""
        if not entry.ops and len(entry.targets) == 1:
            target = entry.targets[0]
            if (type(target) is StageInlet and not target.placed
                    and target.stage.scope.limiter is None):
                target.claimed = True
                fn, args = actor_for(target.stage.chain(), inputs)
                self.actor(fn, *args)
                return
        self.actor(_feed, inputs, Emitter.open(entry))

    def take_actors(self) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
        actors, self._actors = self._actors, []
        return actors

    def note_scope(self, scope: RunScope) -> RunScope:
        if scope.is_root and self.root is None:
            self.root = scope
        return scope

    def seal(self) -> None:
        stray = [inlet.stage.scope.name for inlet in self._inlets if not inlet.placed]
        assert not stray, f"nodes wired but never fed: {stray}"
        self._inlets.clear()
        for send in self._originals:
            send.close()
        self._originals.clear()


def sole_error(group: BaseException) -> BaseException | None:
    """The one error that failed a run: the first leaf that is not ``trio.Cancelled``."""
    if not isinstance(group, BaseExceptionGroup):
        return None if isinstance(group, trio.Cancelled) else group
    for leaf in group.exceptions:
        found = sole_error(leaf)
        if found is not None:
            return found
    return None


@final
class RunHandle(metaclass=NoPublicConstructor):
    """A running run: read its output with :meth:`chunks`, stop it with :meth:`cancel`.

    Made by :func:`launch_run` only (no public constructor).
    """

    def __init__(self, sink: Recv | None) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.root: RunScope | None = None
        self.done = trio.Event()
        self.cancel_scope = trio.CancelScope()

    def cancel(self) -> None:
        self.cancel_scope.cancel()

    async def wait(self) -> None:
        """Wait for the run to end; raise its error (the original exception) if it failed."""
        await self.done.wait()
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        """Cancel the run and wait until every actor has stopped (shielded)."""
        self.cancel()
        with trio.CancelScope(shield=True):
            await self.done.wait()
        if self.sink is not None:
            self.sink.close()

    async def chunks(self) -> AsyncIterator[Any]:
        """The run's output chunks; raises the run's error at the end. Cancels on early exit.

        A generator over :class:`~rillet.runtime.engine.streams.AsyncRunStream`, which reads the sink; its
        ``finally`` also waits until every actor has stopped.
        """
        from rillet.runtime.engine.streams import AsyncRunStream  # streams builds on this module

        assert self.sink is not None, "this run was started without a sink"
        stream: AsyncRunStream[Any] = AsyncRunStream(lambda: self)
        async with stream:
            async for chunk in stream:
                yield chunk


FeedSource = Iterable[Any] | AsyncIterator[Any]


def launch_run(
    wire: Callable[[Wiring, Outlet], Outlet],
    inputs: FeedSource,
    *,
    state: RunState,
    bound: int = DEFAULT_BOUND,
    sink: bool = True,
    start_input: object = MISSING,
    on_done: Callable[[RunHandle], object] | None = None,
) -> RunHandle:
    """Start a run in a system task and return its handle (sync; call inside trio).

    Args:
        wire: places the root runnable's actors, given the outlet its output goes to; returns
            the outlet its input must be sent to.
        inputs: the input stream (one value for ``invoke``/``stream``).
        state: shared by every run under the same root (buses, ``seq``).
        bound: capacity of every edge of the run.
        sink: False when nobody reads the output (``astream_events`` taps it instead).
        start_input: reported on the root's start event when known.
    """
    send, recv = open_edge(bound) if sink else (None, None)
    handle = RunHandle._create(recv)
    state.launched()
    trio.lowlevel.spawn_system_task(
        _run,
        handle,
        wire,
        inputs,
        state,
        bound,
        send,
        start_input,
        on_done,
        name=_task_name(wire),
        context=contextvars.copy_context(),
    )
    return handle


def _task_name(wire: Callable[..., object]) -> str:
    return f"rillet-run:{getattr(wire, '__qualname__', 'run')}"


async def _run(
    handle: RunHandle,
    wire: Callable[[Wiring, Outlet], Outlet],
    inputs: FeedSource,
    state: RunState,
    bound: int,
    sink: Send | None,
    start_input: object,
    on_done: Callable[[RunHandle], object] | None,
) -> None:
    try:
        with handle.cancel_scope:
            wiring = Wiring(state=state, bound=bound)
            entry = wire(wiring, Outlet.to(sink) if sink is not None else Outlet())
            handle.root = wiring.root
            if wiring.root is not None:  # the root's start precedes every child's
                await wiring.root.start(start_input)
            wiring.feed(inputs, entry)
            wiring.seal()
            if sink is not None:
                sink.close()
            actors = wiring.take_actors()
            if len(actors) == 1:  # one actor (a chain fused whole): no nursery needed
                fn, args = actors[0]
                await fn(*args)
            else:
                async with trio.open_nursery() as nursery:
                    for fn, args in actors:
                        nursery.start_soon(fn, *args)
    except BaseException as exc:  # noqa: BLE001 - a system task must never raise
        handle.error = sole_error(exc)
    finally:
        if sink is not None:
            sink.close()
        state.landed()
        handle.done.set()
        if on_done is not None:
            on_done(handle)


async def _feed(inputs: FeedSource, out: Emitter) -> None:
    """Send the run's input into the root's entry outlet, then end the stream."""
    with out:
        if isinstance(inputs, AsyncIterator):
            async for item in inputs:
                if not await out.send(item):
                    return
        else:
            for item in inputs:
                if not await out.send(item):
                    return
