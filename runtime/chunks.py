"""Adding stream chunks together: deltas add up, snapshots replace each other.

Most streams carry *deltas* (text pieces, message chunks, a parallel's ``{key: chunk}``) whose
``+``-sum is the whole output. Some carry *snapshots* (a partial-JSON parser's growing value),
each replacing the last; adding those would be wrong (LangChain does, and reports a 66-object list
as 17,688 elements). The runtime asks a node which it emits and uses an :class:`Accumulator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "DELTA",
    "SNAPSHOT",
    "Accumulator",
    "AddableDict",
    "add_chunks",
    "keyed",
    "register_nary_add",
    "sum_chunks",
]

DELTA: Final = "delta"
SNAPSHOT: Final = "snapshot"

class AddableDict(dict[str, Any]):
    """A dict that adds key-wise: what parallels and assign stream.

    >>> AddableDict(a="x") + AddableDict(a="y", b=2)
    {'a': 'xy', 'b': 2}

    A key missing or ``None`` on the left takes the right value; values of both sides are added
    with :func:`add_chunks` (so incompatible values: the newer one wins, as for any stream).
    A chunk may carry ``order``, the keys of the parallel that produced it: sums list those
    keys in that (declaration) order after any other keys, however the chunks arrived.
    """

    order: tuple[str, ...] | None = None

    def __add__(self, other: dict[str, Any]) -> AddableDict:
        if not isinstance(other, dict):
            return NotImplemented
        merged = AddableDict(self)
        for key, value in other.items():
            old = merged.get(key)
            merged[key] = value if old is None else add_chunks(old, value)
        return _ordered(merged, self.order or getattr(other, "order", None))

    def __radd__(self, other: dict[str, Any]) -> AddableDict:
        if not isinstance(other, dict):
            return NotImplemented
        return AddableDict(other) + self


def _ordered(merged: AddableDict, order: tuple[str, ...] | None) -> AddableDict:
    if not order:
        return merged
    ranked = set(order)
    result = AddableDict({k: v for k, v in merged.items() if k not in ranked})
    result.update((k, merged[k]) for k in order if k in merged)
    result.order = order
    return result


def keyed(key: str, order: tuple[str, ...] | None = None) -> Callable[[object], AddableDict]:
    """A function wrapping each chunk as ``{key: chunk}`` (a parallel branch, a graph fan-in);
    ``order`` (the parallel's keys) makes sums list keys in declaration order.

    >>> keyed("joke")("Why")
    {'joke': 'Why'}
    """
    if order is None:
        return lambda chunk: AddableDict({key: chunk})

    def wrap(chunk: object) -> AddableDict:
        wrapped = AddableDict({key: chunk})
        wrapped.order = order
        return wrapped

    return wrap


def add_chunks(left: Any, right: Any) -> Any:
    """``left + right`` when the two add up, else ``right`` (the newer value wins).

    >>> add_chunks("Hel", "lo"), add_chunks({"a": 1}, {"a": 2})
    ('Hello', {'a': 2})
    """
    try:
        return left + right
    except TypeError:
        return right


_NARY: set[type] = set()


def register_nary_add(cls: type) -> type:
    """Declare that ``first + [second, third, ...]`` adds a whole list at once for ``cls``.

    Message chunks re-derive merged state on every ``+``; adding a stream of them pairwise is
    quadratic. The runtime adds a buffered stream of such chunks in one call instead.
    """
    _NARY.add(cls)
    return cls


def sum_chunks(items: list[Any]) -> Any:
    """The ``+``-sum of a stream of chunks, in linear time where the types allow it.

    >>> sum_chunks(["a", "b", "c"]), sum_chunks([1, 2, 3]), sum_chunks([{"a": 1}, {"a": 2}])
    ('abc', 6, {'a': 2})

    Same result as adding left to right with :func:`add_chunks` semantics (when ``+`` fails,
    the newer value wins and later chunks replace rather than add).
    """
    if not items:
        return None
    first = items[0]
    if len(items) == 1:
        return first
    kind = type(first)
    if all(type(item) is kind for item in items):
        if kind is str:
            return "".join(items)
        if kind in _NARY:
            return first + items[1:]
        if kind is AddableDict:
            return _sum_dicts(items)
    total = first
    for index in range(1, len(items)):
        try:
            total = total + items[index]
        except TypeError:
            return items[-1]  # + failed: from here on the newest value replaces the rest
    return total


def _sum_dicts(items: list[AddableDict]) -> AddableDict:
    columns: dict[str, list[object]] = {}
    order = None
    for item in items:
        order = order or item.order
        for key, value in item.items():
            columns.setdefault(key, []).append(value)
    merged = AddableDict()
    for key, values in columns.items():
        # A None on the left takes the right value: drop Nones that precede a real value.
        while len(values) > 1 and values[0] is None:
            values.pop(0)
        merged[key] = values[0] if len(values) == 1 else sum_chunks(values)
    return _ordered(merged, order)


class Accumulator:
    """Builds "the whole output" of a stream: adds deltas, or keeps the last snapshot.

    >>> acc = Accumulator()
    >>> for piece in ["a", "b"]: acc.add(piece)
    >>> acc.value
    'ab'

    Deltas are kept and added in one go when :attr:`value` is read (see :func:`sum_chunks`),
    so building a 20,000-chunk message costs linear, not quadratic, time.
    """

    __slots__ = ("_items", "_snapshot", "count")

    def __init__(self, mode: str = DELTA) -> None:
        self._items: list[object] = []
        self._snapshot = mode == SNAPSHOT
        self.count = 0

    def add(self, chunk: object) -> None:
        self.count += 1
        if self._snapshot:
            self._items = [chunk]
        else:
            self._items.append(chunk)

    @property
    def empty(self) -> bool:
        return not self._items

    @property
    def value(self) -> Any:
        """The sum so far; ``None`` when nothing was added."""
        items = self._items
        if len(items) > 1:
            self._items = [sum_chunks(items)]
        return self._items[0] if self._items else None
