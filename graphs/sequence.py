"""``RunnableSequence``: steps joined output to input, every step its own actor.

All steps run at once: a chunk leaves step 1 while step 3 still works on the previous one, and
a full edge parks the steps before it. A buffering step (a prompt, a retriever, a plain
function) waits for its whole input, so streaming resumes after the last one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rillet.graphs.base import Runnable
from rillet.graphs.coerce import coerce_to_runnable
from rillet.graphs.invoking import invoked
from rillet.graphs.slots import Slot
from rillet.runtime.lowlevel import Outlet, RunScope, Wiring

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["RunnableSequence"]


class RunnableSequence(Runnable[Any, Any]):
    """Steps run as a pipeline; ``a | b | c`` builds one (nested sequences are flattened).

    >>> from rillet.graphs import RunnableLambda
    >>> RunnableSequence(RunnableLambda(lambda x: x + 1), lambda x: x * 2).invoke(1)
    4

    Raises:
        ValueError: with fewer than two steps.
    """

    steps: list[Runnable[Any, Any]]

    def __init__(self, *steps: object, name: str | None = None) -> None:
        flat: list[Runnable[Any, Any]] = []
        for step in steps:
            runnable = coerce_to_runnable(step)
            if isinstance(runnable, RunnableSequence) and runnable.name is None:
                flat.extend(runnable.steps)
            else:
                flat.append(runnable)
        if len(flat) < 2:
            raise ValueError(f"a RunnableSequence needs at least 2 steps, got {len(flat)}")
        self.steps = flat
        self.name = name

    @property
    def first(self) -> Runnable[Any, Any]:
        return self.steps[0]

    @property
    def last(self) -> Runnable[Any, Any]:
        return self.steps[-1]

    def output_mode(self, input_mode: str) -> str:
        mode = input_mode
        for step in self.steps:
            mode = step.output_mode(mode)
        return mode

    def finalize(self, value: object) -> object:
        return self.last.finalize(value)

    def get_input_jsonschema(self) -> dict[str, object]:
        return self.first.get_input_jsonschema()

    def get_output_jsonschema(self) -> dict[str, object]:
        return self.last.get_output_jsonschema()

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        scope = slot.make_scope(w, self, output_mode=self.output_mode(input_mode))
        modes = [input_mode]
        for step in self.steps[:-1]:
            modes.append(step.output_mode(modes[-1]))
        outlet = out.tapped(scope)
        last = len(self.steps) - 1
        for i in range(last, -1, -1):
            child = slot.child(scope, step_tag=f"seq:step:{i + 1}", entry=i == 0, exit=i == last)
            inlet = self.steps[i]._wire(w, outlet, child, modes[i])
            # Step i's inlet is fed by step i - 1 alone: it may run step i in its own actor.
            outlet = inlet.sole() if i else inlet
        return outlet

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        async def steps(scope: RunScope) -> Any:
            value = input
            for i, step in enumerate(self.steps):  # each step gets the last one's whole output
                value = await step._ainvoke_in(value, slot.child(scope, step_tag=f"seq:step:{i + 1}"))
            return value

        return await invoked(self, input, slot, steps)

    def __or__(self, other: object) -> RunnableSequence:
        return RunnableSequence(*self.steps, coerce_to_runnable(other), name=self.name)

    def __ror__(self, other: object) -> RunnableSequence:
        return RunnableSequence(coerce_to_runnable(other), *self.steps, name=self.name)

    def get_graph(self) -> DrawableGraph:
        from rillet.graphs.draw import DrawableGraph

        return DrawableGraph.chain([step.get_graph() for step in self.steps])

    def __repr__(self) -> str:
        return "\n| ".join(repr(step) for step in self.steps)
