"""Drawing runnables: a small graph of labelled nodes, rendered as text or Mermaid.

>>> g = DrawableGraph.chain([DrawableGraph.single("prompt"), DrawableGraph.single("model")])
>>> print(g.draw_mermaid())
flowchart TD
    n0["prompt"]
    n1["model"]
    n0 --> n1
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import attrs

__all__ = ["DrawableGraph"]

_ids = itertools.count()


@attrs.frozen
class DrawableGraph:
    """Nodes (id -> label) and edges, with one first and one last node."""

    nodes: dict[str, str]
    edges: tuple[tuple[str, str], ...]
    first: str
    last: str

    @classmethod
    def single(cls, label: str) -> DrawableGraph:
        node = f"n{next(_ids)}"
        return cls({node: label}, (), node, node)

    @classmethod
    def chain(cls, parts: Sequence[DrawableGraph]) -> DrawableGraph:
        nodes: dict[str, str] = {}
        edges: list[tuple[str, str]] = []
        for i, part in enumerate(parts):
            nodes.update(part.nodes)
            edges.extend(part.edges)
            if i:
                edges.append((parts[i - 1].last, part.first))
        return cls(nodes, tuple(edges), parts[0].first, parts[-1].last)

    @classmethod
    def parallel(cls, name: str, branches: Mapping[str, DrawableGraph]) -> DrawableGraph:
        start, end = cls.single(f"{name}Input"), cls.single(f"{name}Output")
        nodes = {**start.nodes, **end.nodes}
        edges: list[tuple[str, str]] = []
        for part in branches.values():
            nodes.update(part.nodes)
            edges.extend(part.edges)
            edges += [(start.first, part.first), (part.last, end.first)]
        return cls(nodes, tuple(edges), start.first, end.first)

    @classmethod
    def from_edges(
        cls, labels: Mapping[str, str], edges: Sequence[tuple[str, str]], first: str, last: str
    ) -> DrawableGraph:
        return cls(dict(labels), tuple(edges), first, last)

    def renamed(self, label: str) -> DrawableGraph:
        return attrs.evolve(self, nodes={k: label for k in self.nodes})

    def _canonical(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Stable ids n0, n1, … in insertion order, so drawings do not depend on history."""
        rename = {old: f"n{i}" for i, old in enumerate(self.nodes)}
        labels = {rename[k]: v for k, v in self.nodes.items()}
        return labels, [(rename[a], rename[b]) for a, b in self.edges]

    def draw_mermaid(self) -> str:
        """A Mermaid ``flowchart TD``; paste it into any Mermaid renderer."""
        labels, edges = self._canonical()
        lines = ["flowchart TD"]
        lines += [f'    {node}["{_escape(label)}"]' for node, label in labels.items()]
        lines += [f"    {a} --> {b}" for a, b in edges]
        return "\n".join(lines)

    def layers(self) -> list[list[str]]:
        """Nodes grouped by longest distance from a source (the rows of the text drawing)."""
        labels, edges = self._canonical()
        depth = {node: 0 for node in labels}
        for _ in range(len(labels)):  # longest path by relaxation; graphs here are small DAGs
            changed = False
            for a, b in edges:
                if depth[b] < depth[a] + 1:
                    depth[b], changed = depth[a] + 1, True
            if not changed:
                break
        rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
        for node in labels:
            rows[depth[node]].append(node)
        return rows

    def draw_ascii(self) -> str:
        """Boxes row by row; a row's arrows are drawn under it, and any edge that is not a
        straight drop to the next row is spelled out (``a --> b``)."""
        labels, edges = self._canonical()
        rows = self.layers()
        out: list[str] = []
        for i, row in enumerate(rows):
            boxes = [_box(labels[node]) for node in row]
            width = sum(len(b[0]) for b in boxes) + 3 * (len(boxes) - 1)
            for line in range(3):
                out.append("   ".join(b[line] for b in boxes))
            if i + 1 == len(rows):
                break
            nxt = set(rows[i + 1])
            down = [(a, b) for a, b in edges if a in row and b in nxt]
            simple = len(row) == 1 and len(rows[i + 1]) == 1 and len(down) == 1
            centre = " " * (width // 2)
            out += [centre + "|", centre + "v"]
            if not simple:
                for a, b in edges:
                    if a in row:
                        out.append(f"  {labels[a]} --> {labels[b]}")
        return "\n".join(out)


def _box(label: str) -> tuple[str, str, str]:
    edge = "+" + "-" * (len(label) + 2) + "+"
    return edge, f"| {label} |", edge


def _escape(label: str) -> str:
    return label.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
