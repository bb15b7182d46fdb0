"""``with_config``: a runnable with config bound around it.

A binding adds no actor and no run of its own: it only changes the slot its runnable is wired
into (run name, tags, metadata), so ``model.with_config(run_name="Docs")`` is the model's run,
named ``Docs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rillet.graphs.base import Runnable
from rillet.graphs.slots import Slot
from rillet.runtime.lowlevel import Outlet, RunConfig, Wiring

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["RunnableBinding"]


class RunnableBinding(Runnable[Any, Any]):
    """``bound`` with ``config`` bound around it (see :meth:`Runnable.with_config`)."""

    bound: Runnable[Any, Any]
    config: RunConfig

    def __init__(self, bound: Runnable[Any, Any], config: RunConfig) -> None:
        if isinstance(bound, RunnableBinding):  # flatten: the outer binding's keys win
            config = bound.config.merge(config)
            bound = bound.bound
        self.bound, self.config = bound, config

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.bound.kind

    def get_name(self) -> str:
        return self.config.run_name or self.bound.get_name()

    def output_mode(self, input_mode: str) -> str:
        return self.bound.output_mode(input_mode)

    def finalize(self, value: object) -> object:
        return self.bound.finalize(value)

    def _bound_config(self) -> RunConfig:
        return self.config

    def get_input_jsonschema(self) -> dict[str, object]:
        return self.bound.get_input_jsonschema()

    def get_output_jsonschema(self) -> dict[str, object]:
        return self.bound.get_output_jsonschema()

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        return self.bound._wire(w, out, slot.with_config(self.config), input_mode)

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        return await self.bound._ainvoke_in(input, slot.with_config(self.config))

    async def abatch(self, inputs: list[Any], config: Any = None, *,
                     return_exceptions: bool = False, max_concurrency: int | None = None,
                     **kwargs: Any) -> list[Any]:
        """Batch with the bound config; a bound ``max_concurrency`` limits the batch too."""
        return await super().abatch(
            inputs, config, return_exceptions=return_exceptions,
            max_concurrency=max_concurrency or self.config.max_concurrency, **kwargs)

    def get_graph(self) -> DrawableGraph:
        graph = self.bound.get_graph()
        if self.config.run_name is not None and len(graph.nodes) == 1:
            return graph.renamed(self.get_name())
        return graph

    def __getattr__(self, name: str) -> Any:
        # Component methods (a model's bind_tools, a retriever's k) stay reachable; a method
        # returning a new runnable (bind_tools) gets this binding's config around it too.
        if name in ("bound", "config"):
            raise AttributeError(name)
        attr = getattr(self.bound, name)
        if not callable(attr) or isinstance(attr, Runnable):
            return attr

        def rebound(*args: object, **kwargs: object) -> Any:
            result = attr(*args, **kwargs)
            return RunnableBinding(result, self.config) if isinstance(result, Runnable) else result

        return rebound

    def __repr__(self) -> str:
        return f"{self.bound!r}.with_config({self.config!r})"
