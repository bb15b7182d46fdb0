"""``RunnableBranch``: route the input to the first branch whose condition holds."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator
from typing import Any

import trio

from rillet.graphs.base import Runnable
from rillet.graphs.coerce import coerce_to_runnable
from rillet.runtime.lowlevel import RunScope, await_user

__all__ = ["RunnableBranch"]


class RunnableBranch(Runnable[Any, Any]):
    """``RunnableBranch((cond, runnable), ..., default)``: streams the chosen branch.

    A condition is a runnable or a function (sync, or async) of the input; the chosen branch
    runs as a child run and its chunks stream through.

    >>> from rillet.graphs import RunnableLambda
    >>> b = RunnableBranch((lambda x: x > 0, lambda x: "pos"), lambda x: "not pos")
    >>> b.invoke(3), b.invoke(-1)
    ('pos', 'not pos')

    Raises:
        ValueError: without a default, or with a branch that is not a (condition, runnable) pair.
    """

    def __init__(self, *branches: object, name: str | None = None) -> None:
        if len(branches) < 2:
            raise ValueError("RunnableBranch needs at least one (condition, runnable) and a default")
        *pairs, default = branches
        self.branches: list[tuple[Any, Runnable[Any, Any]]] = []
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError(
                    f"RunnableBranch branches must be (condition, runnable) pairs, got {pair!r:.80}"
                )
            self.branches.append((pair[0], coerce_to_runnable(pair[1])))
        self.default = coerce_to_runnable(default)
        self.name = name

    async def _check(self, condition: Any, input: object) -> bool:
        if isinstance(condition, Runnable):
            return bool(await condition.ainvoke(input))
        if inspect.iscoroutinefunction(condition):
            return bool(await await_user(condition(input), node=self.get_name(), func=condition))
        return bool(await trio.to_thread.run_sync(condition, input))

    async def _choose(self, input: object) -> Runnable[Any, Any]:
        for condition, runnable in self.branches:
            if await self._check(condition, input):
                return runnable
        return self.default

    async def _astream(self, input: object, ctx: RunScope) -> AsyncGenerator[object, None]:
        chosen = await self._choose(input)
        async with chosen.astream(input) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _ainvoke_whole(self, input: object, ctx: RunScope) -> object:
        return await (await self._choose(input)).ainvoke(input)
