"""``RunnablePassthrough`` and friends: pass the input on, add keys to it, pick keys from it.

``RunnablePassthrough.assign(k=runnable)`` fans its input out two ways: the input's own keys
go straight to the consumer (a map on the upstream actor's outlet, no actor of its own) while
the assigned keys stream from a ``RunnableParallel`` as they are produced.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from rillet.graphs.base import Runnable
from rillet.graphs.invoking import invoked
from rillet.graphs.parallel import RunnableParallel
from rillet.graphs.slots import Slot
from rillet.runtime import Accumulator, AddableDict
from rillet.runtime.errors import NodeInputError
from rillet.runtime.lowlevel import (
    DELTA,
    SKIP,
    Outlet,
    RunScope,
    Wiring,
    annotate_error,
    await_user,
)

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["RunnableAssign", "RunnablePassthrough", "RunnablePick"]


class RunnablePassthrough(Runnable[Any, Any]):
    """Streams its input through unchanged; ``func`` (optional) sees the whole input at the end.

    >>> RunnablePassthrough().invoke({"q": "hi"})
    {'q': 'hi'}
    """

    def __init__(self, func: Callable[[object], object] | None = None, *, name: str | None = None):
        self.func = func
        self.name = name
        self.runs_inline = func is None  # a function runs in a worker thread: it may block

    def output_mode(self, input_mode: str) -> str:
        return input_mode

    async def _atransform(
        self, chunks: AsyncIterator[object], ctx: RunScope
    ) -> AsyncGenerator[object, None]:
        if self.func is None:
            async for chunk in chunks:
                yield chunk
            return
        total = Accumulator()
        async for chunk in chunks:
            total.add(chunk)
            yield chunk
        if not total.empty:
            result = (
                self.func(total.value) if inspect.iscoroutinefunction(self.func)
                else await trio.to_thread.run_sync(self.func, total.value)
            )
            if inspect.isawaitable(result):
                await await_user(result, node=ctx.name, func=self.func)

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        if self.func is not None:
            result = (self.func(input) if inspect.iscoroutinefunction(self.func)
                      else await trio.to_thread.run_sync(self.func, input))
            if inspect.isawaitable(result):
                await await_user(result, node=ctx.name, func=self.func)
        return input

    @staticmethod
    def assign(**mapping: object) -> RunnableAssign:
        """Merge new keys, computed from the input dict, into it.

        >>> RunnablePassthrough.assign(n=lambda d: len(d["q"])).invoke({"q": "hello"})
        {'q': 'hello', 'n': 5}
        """
        return RunnableAssign(mapping)


class RunnableAssign(Runnable[dict[str, Any], dict[str, Any]]):
    """The input dict plus keys computed by a :class:`RunnableParallel` on the same input."""

    def __init__(self, mapper: RunnableParallel | Mapping[str, Any]) -> None:
        self.mapper = mapper if isinstance(mapper, RunnableParallel) else RunnableParallel(mapper)
        self.name = None

    def get_name(self) -> str:
        return self.name or f"RunnableAssign<{','.join(self.mapper.steps)}>"

    def output_mode(self, input_mode: str) -> str:
        return DELTA

    def finalize(self, value: object) -> object:
        # Input keys come first, then the assigned keys in declaration order (chunk order).
        return self.mapper.finalize(value)

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        scope = slot.make_scope(w, self, output_mode=DELTA)
        tapped = out.tapped(scope)
        keys = frozenset(self.mapper.steps)

        def own_keys(chunk: object) -> object:
            if not isinstance(chunk, dict):
                error = NodeInputError(
                    node=scope.name, expected="a dict (RunnablePassthrough.assign() adds keys to it)",
                    got=chunk,
                )
                # Raised on the upstream actor's outlet (assign's own keys need no actor of
                # their own), so name the assign node before the upstream's name is attached.
                annotate_error(error, scope)
                raise error
            kept = AddableDict({k: v for k, v in chunk.items() if k not in keys})
            return kept if kept else SKIP

        mapper = self.mapper._wire(
            w, tapped, slot.child(scope, entry=True, exit=True), input_mode
        )
        return Outlet.to(tapped.mapped(own_keys), mapper)

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        async def merged(scope: RunScope) -> dict[str, Any]:
            if not isinstance(input, dict):
                raise NodeInputError(
                    node=scope.name,
                    expected="a dict (RunnablePassthrough.assign() adds keys to it)", got=input)
            return {**input, **await self.mapper._ainvoke_in(input, slot.child(scope))}

        return await invoked(self, input, slot, merged)

    def get_graph(self) -> DrawableGraph:
        return self.mapper.get_graph()


class RunnablePick(Runnable[dict[str, Any], Any]):
    """Pick one key (its value) or several keys (a dict of those present), chunk by chunk.

    >>> RunnablePick("a").invoke({"a": 1, "b": 2})
    1
    """

    runs_inline = True

    def __init__(self, keys: str | list[str]) -> None:
        self.keys = keys
        self.name = None

    def get_name(self) -> str:
        keys = [self.keys] if isinstance(self.keys, str) else self.keys
        return self.name or f"RunnablePick<{','.join(keys)}>"

    async def _atransform(
        self, chunks: AsyncIterator[object], ctx: RunScope
    ) -> AsyncGenerator[object, None]:
        async for chunk in chunks:
            if not isinstance(chunk, dict):
                raise NodeInputError(node=ctx.name, expected="a dict", got=chunk)
            if isinstance(self.keys, str):
                if chunk.get(self.keys) is not None:
                    yield chunk[self.keys]
            else:
                picked = AddableDict({k: chunk[k] for k in self.keys if k in chunk})
                if picked:
                    yield picked

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        if not isinstance(input, dict):
            raise NodeInputError(node=ctx.name, expected="a dict", got=input)
        if isinstance(self.keys, str):
            return input.get(self.keys)
        return {k: input[k] for k in self.keys if k in input} or None
