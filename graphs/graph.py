"""``Graph``: an explicit DAG of runnables, compiled to the same actors as any chain.

Nodes are named runnables; edges send a node's output stream to other nodes. A node with one
predecessor receives its stream as is; a node with several (a fan-in) receives
``{predecessor: chunk}`` dicts, so a buffering node gets ``{pred: whole_output, ...}``. Entry
nodes receive the graph's input; the exit node's output is the graph's (several exits: a dict
keyed by node). Every node is its own run named after the node, tagged ``graph:node:<name>``.

>>> from rillet.graphs import RunnableLambda
>>> g = (Graph()
...      .add_node("double", lambda x: x * 2).add_node("square", lambda x: x * x)
...      .add_node("total", lambda d: d["double"] + d["square"])
...      .add_edge("double", "total").add_edge("square", "total")
...      .set_entry("double", "square").set_exit("total"))
>>> g.invoke(3)
15
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import trio

from rillet.graphs.base import Runnable
from rillet.graphs.coerce import coerce_to_runnable
from rillet.graphs.invoking import gather, invoked
from rillet.graphs.slots import Slot
from rillet.runtime.errors import RilletError
from rillet.runtime.lowlevel import DELTA, Outlet, RunConfig, RunScope, Wiring, keyed

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["Graph", "GraphError"]


class GraphError(RilletError, ValueError):
    """A graph that cannot run: unknown nodes, a cycle, a node cut off from entry or exit."""


class Graph(Runnable[Any, Any]):
    """A DAG builder; every method returns the graph, so calls chain. See the module docstring.

    Validated when first run (or by :meth:`compile`), with errors naming the offending nodes.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.nodes: dict[str, Runnable[Any, Any]] = {}
        self.edges: list[tuple[str, str]] = []
        self.entries: list[str] = []
        self.exits: list[str] = []
        self._order: list[str] | None = None

    def add_node(self, name: str, runnable: object) -> Graph:
        if not isinstance(name, str) or not name:
            raise GraphError(f"node names must be non-empty str, got {name!r}")
        if name in self.nodes:
            raise GraphError(f"node {name!r} is already in the graph")
        self.nodes[name] = coerce_to_runnable(runnable)
        self._order = None
        return self

    def add_edge(self, source: str, target: str) -> Graph:
        for end in (source, target):
            if end not in self.nodes:
                raise GraphError(f"edge {source!r} -> {target!r}: unknown node {end!r}; "
                                 f"known: {sorted(self.nodes)}")
        if (source, target) in self.edges:
            raise GraphError(f"edge {source!r} -> {target!r} is already in the graph")
        self.edges.append((source, target))
        self._order = None
        return self

    def set_entry(self, *names: str) -> Graph:
        self.entries = self._known(names, "entry")
        self._order = None
        return self

    def set_exit(self, *names: str) -> Graph:
        self.exits = self._known(names, "exit")
        self._order = None
        return self

    def _known(self, names: tuple[str, ...], role: str) -> list[str]:
        if not names:
            raise GraphError(f"set_{role} needs at least one node name")
        for name in names:
            if name not in self.nodes:
                raise GraphError(f"{role} node {name!r} is not in the graph; known: {sorted(self.nodes)}")
        return list(names)

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def compile(self) -> Graph:
        """Validate now (cycles, reachability, entry and exit); returns the graph."""
        if self._order is not None:
            return self
        if not self.entries or not self.exits:
            raise GraphError("a graph needs set_entry(...) and set_exit(...) before it can run")
        for entry in self.entries:
            if self.predecessors(entry):
                raise GraphError(f"entry node {entry!r} must not have incoming edges")
        indegree = {n: len(self.predecessors(n)) for n in self.nodes}
        ready = [n for n in self.nodes if indegree[n] == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for nxt in self.successors(node):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(self.nodes):
            raise GraphError(f"the graph has a cycle through {sorted(set(self.nodes) - set(order))}")
        reached = self._closure(self.entries, self.successors)
        if cut := sorted(set(self.nodes) - reached):
            raise GraphError(f"nodes {cut} cannot be reached from the entry {self.entries}")
        leading = self._closure(self.exits, self.predecessors)
        if dead := sorted(set(self.nodes) - leading):
            raise GraphError(f"nodes {dead} have no path to the exit {self.exits}")
        self._order = order
        return self

    @staticmethod
    def _closure(start: list[str], step: Any) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def output_mode(self, input_mode: str) -> str:
        if len(self.exits) != 1:
            return DELTA
        return self._modes(input_mode)[self.exits[0]][1]

    def _modes(self, input_mode: str) -> dict[str, tuple[str, str]]:
        """(input mode, output mode) of every node."""
        order = self.compile()._order or []
        modes: dict[str, tuple[str, str]] = {}
        for node in order:
            preds = self.predecessors(node)
            if not preds:
                in_mode = input_mode
            elif len(preds) == 1:
                in_mode = modes[preds[0]][1]
            else:
                in_mode = DELTA
            modes[node] = (in_mode, self.nodes[node].output_mode(in_mode))
        return modes

    def finalize(self, value: object) -> object:
        if len(self.exits) == 1:
            return self.nodes[self.exits[0]].finalize(value)
        return value

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        modes = self._modes(input_mode)
        order = self._order or []
        scope = slot.make_scope(w, self, output_mode=self.output_mode(input_mode))
        graph_out = out.tapped(scope)
        inlets: dict[str, Outlet] = {}
        for node in reversed(order):
            targets: list[Outlet] = []
            for nxt in self.successors(node):
                inlet = inlets[nxt]
                targets.append(inlet.mapped(keyed(node)) if len(self.predecessors(nxt)) > 1
                               else inlet)
            if node in self.exits:
                targets.append(graph_out.mapped(keyed(node)) if len(self.exits) > 1
                               else graph_out)
            child = slot.child(scope, step_tag=f"graph:node:{node}", entry=node in self.entries,
                               exit=node in self.exits).with_config(RunConfig(run_name=node))
            inlets[node] = self.nodes[node]._wire(w, Outlet.to(*targets), child, modes[node][0])
        return Outlet.to(*(inlets[e] for e in self.entries))

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        self.compile()

        async def nodes(scope: RunScope) -> Any:
            results: dict[str, Any] = {}
            done = {node: trio.Event() for node in self.nodes}

            async def run(node: str) -> Any:
                preds = self.predecessors(node)
                for pred in preds:
                    await done[pred].wait()
                value = (input if not preds else results[preds[0]] if len(preds) == 1
                         else {pred: results[pred] for pred in preds})
                child = slot.child(scope, step_tag=f"graph:node:{node}").with_config(
                    RunConfig(run_name=node))
                results[node] = await self.nodes[node]._ainvoke_in(value, child)
                done[node].set()

            await gather({node: functools.partial(run, node) for node in self._order or []})
            if len(self.exits) == 1:
                return results[self.exits[0]]
            return {exit: results[exit] for exit in self.exits}

        return await invoked(self, input, slot, nodes)

    def get_graph(self) -> DrawableGraph:
        from rillet.graphs.draw import DrawableGraph

        self.compile()
        # Ids unique to this graph, so two graphs with the same node names draw apart.
        ids = {n: f"{n}#{id(self):x}" for n in self.nodes}
        labels = {ids[n]: n for n in self.nodes}
        edges = [(ids[a], ids[b]) for a, b in self.edges]
        first, last = ids[self.entries[0]], ids[self.exits[0]]
        # Several entries (exits) hang off one input (output) node, so a graph embedded in a
        # chain connects to all of them, not only to the first.
        if len(self.entries) > 1:
            first = f"{self.get_name()}Input#{id(self):x}"
            labels = {first: f"{self.get_name()}Input", **labels}
            edges += [(first, ids[entry]) for entry in self.entries]
        if len(self.exits) > 1:
            last = f"{self.get_name()}Output#{id(self):x}"
            labels[last] = f"{self.get_name()}Output"
            edges += [(ids[exit], last) for exit in self.exits]
        return DrawableGraph.from_edges(labels, edges, first, last)
