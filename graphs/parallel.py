"""``RunnableParallel``: the same input to every branch, outputs merged as ``{key: chunk}``.

The input is fanned out by the upstream actor itself (one bounded channel per branch) and each
branch's last actor sends its key-wrapped chunks straight to the parallel's consumer: no tee and
no merge actor, and chunks arrive in completion order. ``invoke`` returns the merged dict in
declaration order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from rillet.graphs.base import Runnable
from rillet.graphs.coerce import coerce_to_runnable
from rillet.graphs.invoking import gather, invoked
from rillet.graphs.slots import Slot
from rillet.runtime.lowlevel import DELTA, Outlet, RunScope, Wiring, keyed

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["RunnableParallel"]


class RunnableParallel(Runnable[Any, dict[str, Any]]):
    """Run branches concurrently on one input; stream ``{key: chunk}`` dicts as they arrive.

    >>> from rillet.graphs import RunnableLambda
    >>> RunnableParallel(a=RunnableLambda(lambda x: x + 1), b=lambda x: x * 2).invoke(3)
    {'a': 4, 'b': 6}

    Raises:
        ValueError: with no branches.
    """

    def __init__(
        self, steps: Mapping[str, object] | None = None, *, name: str | None = None,
        **kwargs: object,
    ) -> None:
        merged = {**(steps or {}), **kwargs}
        if not merged:
            raise ValueError("a RunnableParallel needs at least one branch")
        bad = [k for k in merged if not isinstance(k, str)]
        if bad:
            raise TypeError(f"RunnableParallel keys must be str, got {bad!r:.80}")
        self.steps = {key: coerce_to_runnable(value) for key, value in merged.items()}
        self.name = name

    def get_name(self) -> str:
        return self.name or f"RunnableParallel<{','.join(self.steps)}>"

    def output_mode(self, input_mode: str) -> str:
        return DELTA

    def finalize(self, value: object) -> object:
        # Keys are already in declaration order (the chunks carry it); finalize each branch.
        if not isinstance(value, dict):
            return value
        return {k: self.steps[k].finalize(v) if k in self.steps else v for k, v in value.items()}

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        scope = slot.make_scope(w, self, output_mode=DELTA)
        merged = out.tapped(scope)
        limit = scope.config.max_concurrency
        # Branches' nodes hold the limiter while they work (after buffering their input, so
        # a waiting branch never blocks the fan-out): at most `limit` branches busy at once.
        limiter = trio.CapacityLimiter(limit) if limit and limit < len(self.steps) else None
        order = tuple(self.steps)
        entries = [
            step._wire(
                w,
                merged.mapped(keyed(key, order)),
                slot.child(scope, step_tag=f"map:key:{key}", entry=True, exit=True,
                           limiter=limiter),
                input_mode,
            )
            for key, step in self.steps.items()
        ]
        return Outlet.to(*entries)

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        async def branches(scope: RunScope) -> dict[str, Any]:
            # A branch holds a max_concurrency slot for its whole invocation.
            calls = {key: functools.partial(step._ainvoke_in, input,
                                            slot.child(scope, step_tag=f"map:key:{key}"))
                     for key, step in self.steps.items()}
            return await gather(calls, scope.config.max_concurrency)

        return await invoked(self, input, slot, branches)

    def get_graph(self) -> DrawableGraph:
        from rillet.graphs.draw import DrawableGraph

        return DrawableGraph.parallel(
            self.get_name(), {k: v.get_graph() for k, v in self.steps.items()}
        )

