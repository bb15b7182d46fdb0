"""The change log behind ``PartialJsonParser.last_patch()``: JSON-Patch ops at the cost of
what changed, not of the document.

Internal to :mod:`rillet.nodes.partial_json`. The reader notes each change of the visible
value by path (``ADD``, ``REPLACE``, ``REMOVE`` and the value it replaced; ``GREW`` for a string
that grew in place); ``ops`` lists them as jsonpatch's ``make_patch`` would:

>>> changes = Changes()
>>> value = {"a": [1]}
>>> changes.settle([(value, 1), (value["a"], 1)], None)
>>> value["a"].append(2)
>>> changes.note(("a", 1), ADD, None)
>>> changes.changed(value), changes.ops(value)
(True, [{'op': 'add', 'path': '/a/1', 'value': 2}])
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Final, TypeAlias

from rillet.nodes.partial_json.syntax import NOTHING
from rillet.runtime.lowlevel import join_pointer

__all__ = ["ADD", "Changes", "GREW", "Key", "Path", "REMOVE", "REPLACE"]

Key: TypeAlias = str | int
Path: TypeAlias = tuple[Key, ...]

GREW: Final[object] = object()  # the old value of a growing string: always differs from the new one

# Kinds of change
ADD, REPLACE, REMOVE = range(3)


class Changes:
    """Changes to the visible value since it was last reported, by path, for ``last_patch``.

    Each path keeps its first old value; changes inside a container added since the last report
    are not recorded at all (its ``add`` op carries its final content). ``base`` keeps each
    container open at the last report with its length then, and ``base_tip`` the value being
    read then, so the reported value of a changed item can be rebuilt when jsonpatch needs it.
    """

    __slots__ = ("pending", "base", "base_tip")

    def __init__(self) -> None:
        self.pending: dict[Path, tuple[int, Any]] = {}
        self.base: list[tuple[Any, int]] = []
        self.base_tip: tuple[Any, ...] | None = None  # (length, high surrogate) or (number,)

    def settle(self, base: list[tuple[Any, int]], tip: tuple[object, ...] | None) -> None:
        """The value was reported: forget the changes; keep what was open then (see above)."""
        self.pending.clear()
        self.base, self.base_tip = base, tip

    def note(self, path: Path, kind: int, old: object) -> None:
        """Record a change at ``path``; ``old`` is the value it replaced (for ``REPLACE``)."""
        entry = self.pending.get(path)
        if entry is None:
            self.pending[path] = (kind, old)
        elif kind == ADD and entry[0] == REMOVE:
            self.pending[path] = (REPLACE, entry[1])
        elif kind == REMOVE:
            if entry[0] == ADD:
                del self.pending[path]
            else:
                self.pending[path] = (REMOVE, entry[1])

    def changed(self, root: object) -> bool:
        """Whether the value differs (``!=``, like LangChain) from the one last reported."""
        for path, (kind, old) in self.pending.items():
            if kind != REPLACE or old is GREW or _lookup(root, path) != old:
                return True
        return False

    def ops(self, root: Any) -> list[dict[str, Any]]:
        """The changes as JSON-Patch ops, as jsonpatch's ``make_patch`` would list them."""
        root_entry = self.pending.get(())
        if root_entry is not None:
            old = root_entry[1]
            if old is not GREW and type(old) is type(root) and old == root:
                return []
            return [{"op": "replace", "path": "", "value": _copy(root)}]
        by_parent: dict[Path, list[tuple[Path, int, Any]]] = {}
        for path, (kind, old) in self.pending.items():
            by_parent.setdefault(path[:-1], []).append((path, kind, old))
        # Every change sits in a container on the path open at the last report
        chain = sorted(by_parent, key=len)
        containers: list[Any] = []
        node, depth = root, 0
        for parent in chain:
            for key in parent[depth:]:
                node = node[key]
            containers.append(node)
            depth = len(parent)
        ops: list[dict[str, Any]] = []
        for level in reversed(range(len(chain))):
            parent, container = chain[level], containers[level]
            removed, added, replaced = [], [], []
            for path, kind, old in by_parent[parent]:
                pointer = join_pointer(*path)
                if kind == REMOVE:
                    removed.append({"op": "remove", "path": pointer})
                    continue
                value = container[path[-1]]
                if kind == ADD:
                    added.append({"op": "add", "path": pointer, "value": _copy(value)})
                elif old is GREW or type(old) is not type(value) or old != value:
                    replaced.append({"op": "replace", "path": pointer, "value": _copy(value)})
            # jsonpatch: objects list removed, added, then changed members (recursing); lists
            # their changed items, then appended or removed ones...
            if isinstance(container, dict):
                ops = removed + added + replaced + ops
                continue
            kept = self._kept_item(len(parent), container, replaced or level + 1 < len(chain))
            if kept is None:
                ops = replaced + ops + added + removed
            else:  # ...unless it pairs the reported last item with an equal item added after it
                first = self.base[len(parent)][1] - 1
                ops = [{"op": "add", "path": join_pointer(*parent, index),
                        "value": _copy(container[index])}
                       for index in range(first, len(container)) if index != kept]
        return ops

    def _kept_item(self, depth: int, items: list[Any], changed: object) -> int | None:
        """Where jsonpatch keeps the changed last item of the reported list ``items``.

        It matches items by their JSON: if a changed item now equals, as reported, an item
        added after it, it keeps it there and adds everything else (the last added item first,
        else the first one that matches).
        """
        last = self.base[depth][1] - 1
        nested = depth + 1 < len(self.base)
        if not changed or last < 0 or last + 1 >= len(items) or not (nested or self.base_tip):
            return None
        # Cheap filters first: the reported item is a container of known length, or a scalar
        kind, size = type(items[last]), self.base[depth + 1][1] if nested else 0
        reported: object = NOTHING
        candidates: list[int] = [len(items) - 1, *range(last + 1, len(items) - 1)]
        for index in candidates:
            item = items[index]
            if (type(item) is not kind or len(item) != size) if nested \
                    else isinstance(item, (dict, list)):
                continue
            if reported is NOTHING:
                reported = json.dumps(self._reported(depth + 1) if nested
                                      else self._reported_tip(items[last]), sort_keys=True)
            if json.dumps(item, sort_keys=True) == reported:
                return index
        return None

    def _reported(self, depth: int) -> Any:
        """The value the container open at ``depth`` had at the last report."""
        container, length = self.base[depth]
        if isinstance(container, list):
            value: Any = container[:length]
            last: Key = length - 1
        else:
            value = dict(itertools.islice(container.items(), length))
            last = next(reversed(value), "")
        if length and depth + 1 < len(self.base):
            value[last] = self._reported(depth + 1)
        elif length and self.base_tip is not None:
            value[last] = self._reported_tip(value[last])
        return value

    def _reported_tip(self, now: Any) -> object:
        assert self.base_tip is not None  # only called when a value was being read
        if len(self.base_tip) == 1:
            return self.base_tip[0]
        length, high = self.base_tip
        return now[: length - 1] + high if high else now[:length]




def _lookup(root: Any, path: Path) -> object:
    for key in path:
        root = root[key]
    return root


def _copy(value: object) -> object:
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value
