"""Edges: bounded channels between actors, and the outlets that route a node's output.

An *edge* is a ``trio.open_memory_channel(bound)``. An :class:`Outlet` describes where a node's
output goes: a tree of per-chunk operations (stream taps of enclosing runs, key-wrapping maps) and
targets (other nodes' inboxes). Wiring happens backwards, so a fan-out (a parallel's input, a
graph node with several successors) needs no tee actor, and a fan-in needs no merge actor: each
producer holds its own clone of the consumer's send channel, and the consumer sees end-of-stream
exactly when the last clone closes.

>>> send, recv = open_edge(2)
>>> send.send_nowait("a"); recv.receive_nowait()
'a'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Union

import attrs
import trio

if TYPE_CHECKING:
    from rillet.runtime.engine.scope import RunScope
    from rillet.runtime.engine.stages import StageInlet

__all__ = ["DEFAULT_BOUND", "SKIP", "Emitter", "Outlet", "check_bound", "open_edge"]

DEFAULT_BOUND: Final = 16
# Checkpoint at least this often, so a busy actor never starves other runs or cancellation.
CHECKPOINT_EVERY: Final = 256

SKIP: Final[object] = type("SKIP", (), {"__repr__": lambda self: "SKIP"})()
"""A map op returns this to drop a chunk (e.g. ``pick`` of a key the chunk lacks)."""

Send = trio.MemorySendChannel[Any]
Recv = trio.MemoryReceiveChannel[Any]


def open_edge(bound: int = DEFAULT_BOUND) -> tuple[Send, Recv]:
    """A bounded edge. ``bound`` 0 makes every send a rendezvous.

    Raises:
        TypeError: for a non-integer bound (``math.inf`` would make the edge unbounded).
        ValueError: for a negative bound.
    """
    return trio.open_memory_channel[Any](check_bound(bound))


def check_bound(bound: object) -> int:
    """``bound`` if it is a valid edge bound (see :func:`open_edge`), else the error."""
    if isinstance(bound, bool) or not isinstance(bound, int):
        if isinstance(bound, float) and math.isinf(bound):
            raise TypeError("edge bound must be a finite int; rillet has no unbounded edges")
        raise TypeError(f"edge bound must be an int, got {type(bound).__name__}: {bound!r}")
    if bound < 0:
        raise ValueError(f"edge bound must be >= 0, got {bound}")
    return bound


@attrs.frozen
class Tap:
    """Report each chunk as a stream chunk of ``scope`` (and add it to that run's output)."""

    scope: RunScope


@attrs.frozen
class Map:
    """Replace each chunk by ``fn(chunk)``; :data:`SKIP` drops it."""

    fn: Callable[[object], object]


Op = Union[Tap, Map]


@attrs.frozen
class Outlet:
    """Where chunks go: ``ops`` applied in order, then every target receives the result.

    A target is a send channel owned by the wiring (cloned per producer at
    :meth:`Emitter.open`), another outlet with ops of its own (a per-target key wrap), or a
    node not placed yet (a :class:`~rillet.runtime.engine.stages.StageInlet`).

    ``exclusive``: one producer only will ever send here, nothing but its own chunks (a
    sequence hands each step's inlet to the step before it): that producer may run the node it
    feeds in its own actor. A stream tap keeps the outlet exclusive; a map (a key wrap shared by
    branches) does not.
    """

    ops: tuple[Op, ...] = ()
    targets: tuple[Union[Send, Outlet, StageInlet], ...] = ()
    exclusive: bool = False

    @classmethod
    def to(cls, *targets: Union[Send, Outlet, StageInlet]) -> Outlet:
        return cls((), tuple(targets))

    def tapped(self, scope: RunScope) -> Outlet:
        """This outlet with ``scope``'s stream tap first; unchanged when nobody listens."""
        if not scope.watched:
            return self
        return Outlet((Tap(scope), *self.ops), self.targets, self.exclusive)

    def mapped(self, fn: Callable[[object], object]) -> Outlet:
        return Outlet((Map(fn), *self.ops), self.targets)

    def sole(self) -> Outlet:
        """This outlet, marked as fed by one producer (see ``exclusive``)."""
        return attrs.evolve(self, exclusive=True)


class Emitter:
    """A producer's handle on an :class:`Outlet`: owns its channel clones, closes them on exit.

    ``await emitter.send(chunk)`` applies the ops and delivers to each target, moving the chunk
    with ``send_nowait`` and awaiting only when a target is full. It returns False once every
    target has hung up (the consumer left early): for the producer, a stop, not a failure.
    """

    __slots__ = ("_ops", "_targets", "_live", "_single", "_count")

    def __init__(self, ops: tuple[Op, ...], targets: list[Union[Send, Emitter]]) -> None:
        self._ops = ops
        self._targets = targets
        self._live = len(targets)
        self._single: Send | None = (
            targets[0] if len(targets) == 1 and not ops and not isinstance(targets[0], Emitter)
            else None
        )
        self._count = 0

    @classmethod
    def open(cls, outlet: Outlet) -> Emitter:
        targets: list[Union[Send, Emitter]] = [
            cls.open(t) if isinstance(t, Outlet) else t.clone() for t in outlet.targets
        ]
        return cls(outlet.ops, targets)

    async def send(self, chunk: object) -> bool:
        self._count += 1
        if self._count >= CHECKPOINT_EVERY:
            self._count = 0
            await trio.lowlevel.checkpoint()
        single = self._single
        if single is not None:
            try:
                single.send_nowait(chunk)
            except trio.WouldBlock:
                try:
                    await single.send(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return self._lost(0)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return self._lost(0)
            return True
        return await self._deliver(chunk)

    async def _deliver(self, chunk: object) -> bool:
        for op in self._ops:
            if type(op) is Tap:
                await op.scope.emit_chunk(chunk)
            else:
                chunk = op.fn(chunk)  # type: ignore[union-attr]
                if chunk is SKIP:
                    return True
        if not self._targets:
            return True
        for i, target in enumerate(self._targets):
            if target is None:
                continue
            if isinstance(target, Emitter):
                if not await target._deliver(chunk):
                    self._lost(i)
                continue
            try:
                target.send_nowait(chunk)
            except trio.WouldBlock:
                try:
                    await target.send(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._lost(i)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._lost(i)
        return self._live > 0

    def _lost(self, index: int) -> bool:
        if self._targets[index] is not None:
            self._targets[index] = None  # type: ignore[call-overload]
            self._live -= 1
        self._single = None
        return self._live > 0

    @property
    def alive(self) -> bool:
        """False once every target has hung up (an emitter with no targets stays alive)."""
        return self._live > 0 or not self._targets

    @property
    def direct(self) -> Send | None:
        """The one channel this emitter feeds when it applies no ops, else ``None``.

        Actors send to it with ``send_nowait`` inline and fall back to :meth:`send` only on
        ``WouldBlock``. They still yield regularly: a bounded channel fills after ``bound``
        chunks unless its reader runs, and the reader runs only when they wait.
        """
        return self._single

    def close(self) -> None:
        for target in self._targets:
            if target is not None:
                target.close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
