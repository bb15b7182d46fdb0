"""Adding stream chunks together: deltas add up, snapshots replace each other.

Most streams carry *deltas* (text pieces, message chunks, a parallel's ``{key: chunk}``) whose
``+``-sum is the whole output. Some carry *snapshots* (a partial-JSON parser's growing value),
each replacing the last; adding those would be wrong (LangChain does, and reports a 66-object list
as 17,688 elements). The runtime asks a node which it emits and uses an :class:`Accumulator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["DELTA", "SNAPSHOT", "Accumulator", "AddableDict", "add_chunks", "keyed"]

DELTA: Final = "delta"
SNAPSHOT: Final = "snapshot"

_MISSING: Any = object()


class AddableDict(dict[str, Any]):
    """A dict that adds key-wise: what parallels and assign stream.

    >>> AddableDict(a="x") + AddableDict(a="y", b=2)
    {'a': 'xy', 'b': 2}

    A key missing or ``None`` on the left takes the right value; values of both sides are added
    with :func:`add_chunks` (so incompatible values: the newer one wins, as for any stream).
    """

    def __add__(self, other: dict[str, Any]) -> AddableDict:  # type: ignore[override]
        if not isinstance(other, dict):
            return NotImplemented
        merged = AddableDict(self)
        for key, value in other.items():
            old = merged.get(key)
            merged[key] = value if old is None else add_chunks(old, value)
        return merged

    def __radd__(self, other: dict[str, Any]) -> AddableDict:
        if not isinstance(other, dict):
            return NotImplemented
        return AddableDict(other) + self


def keyed(key: str) -> Callable[[Any], AddableDict]:
    """A function wrapping each chunk as ``{key: chunk}`` (a parallel branch, a graph fan-in).

    >>> keyed("joke")("Why")
    {'joke': 'Why'}
    """

    def wrap(chunk: Any) -> AddableDict:
        return AddableDict({key: chunk})

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


class Accumulator:
    """Builds "the whole output" of a stream: adds deltas, or keeps the last snapshot.

    >>> acc = Accumulator()
    >>> for piece in ["a", "b"]: acc.add(piece)
    >>> acc.value
    'ab'

    After the first failed ``+`` it stops adding and keeps replacing, so one odd chunk cannot
    make every later addition pay for a ``TypeError``.
    """

    __slots__ = ("_value", "_adding", "count")

    def __init__(self, mode: str = DELTA) -> None:
        self._value: Any = _MISSING
        self._adding = mode == DELTA
        self.count = 0

    def add(self, chunk: Any) -> None:
        self.count += 1
        if self._value is _MISSING or not self._adding:
            self._value = chunk
            return
        try:
            self._value = self._value + chunk
        except TypeError:
            self._adding = False
            self._value = chunk

    @property
    def empty(self) -> bool:
        return self._value is _MISSING

    @property
    def value(self) -> Any:
        """The sum so far; ``None`` when nothing was added."""
        return None if self._value is _MISSING else self._value
