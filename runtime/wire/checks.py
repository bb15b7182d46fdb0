"""Checks a decoded tree passes before anything recurses into it: nesting, keys, ints, text.

Bodies from the network are checked here once, iteratively (no recursion, so a 100k-deep body
costs a short loop, not a ``RecursionError``), before
:func:`~rillet.runtime.wire.codec.decode_value` and every later step walk them recursively.
The rules:

- at most :data:`MAX_NESTING` levels of maps and lists, the outermost one included;
- map keys are strings (a wire tree carries other keys as tagged pairs);
- strings are valid Unicode (a lone surrogate such as ``"\\ud800"`` cannot be sent back);
- an ``{"__rillet__": "int"}`` holds at most as many digits as Python prints
  (``sys.get_int_max_str_digits()``, 4300 by default), so every error message can show it.

>>> check_tree({"input": [[1]]}, what="the body")
>>> check_tree([[[]]], what="the body", max_nesting=2)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
rillet.runtime.WireFormatError: the body nests deeper than 2 levels of lists and maps ...
"""

from __future__ import annotations

import math
import sys
from typing import Any, Final

from rillet.runtime.errors import WireFormatError

__all__ = ["MAX_NESTING", "check_tree"]

#: The one nesting limit: maps and lists within each other, in a request body or a frame.
MAX_NESTING: Final = 100
_TAG = "__rillet__"
_CONTAINERS = (dict, list)


def _max_int_bytes() -> int | None:
    digits = sys.get_int_max_str_digits()
    if digits == 0:
        return None
    # n bytes of two's complement hold about n * log10(256) digits; keep one byte of margin.
    return int(digits / math.log10(256)) - 1


def check_tree(tree: Any, *, what: str, max_nesting: int = MAX_NESTING) -> None:
    """Refuse ``tree`` unless it keeps the rules of the module docstring.

    Raises:
        WireFormatError: naming ``what`` and the rule it breaks.
    """
    if type(tree) not in _CONTAINERS:
        _check_scalar(tree, what)
        return
    max_int = _max_int_bytes()
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_nesting:
            raise WireFormatError(f"{what} nests deeper than {max_nesting} levels of lists and "
                                  f"maps (the limit)")
        if type(node) is dict:
            for key, value in node.items():
                if type(key) is not str:
                    raise WireFormatError(f"{what} has a map key that is not a string: "
                                          f"{type(key).__name__} {key!r:.40}")
                _check_text(key, what)
                if type(value) in _CONTAINERS:
                    stack.append((value, depth + 1))
                else:
                    _check_scalar(value, what)
            if max_int is not None and node.get(_TAG) == "int":
                raw = node.get("bytes")
                if isinstance(raw, bytes) and len(raw) > max_int:
                    raise WireFormatError(
                        f"{what} holds an integer of {len(raw)} bytes; integers may have at most "
                        f"{sys.get_int_max_str_digits()} digits")
        else:
            for value in node:
                if type(value) in _CONTAINERS:
                    stack.append((value, depth + 1))
                else:
                    _check_scalar(value, what)


def _check_scalar(value: Any, what: str) -> None:
    if type(value) is str:
        _check_text(value, what)


def _check_text(text: str, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise WireFormatError(f"{what} holds a string that is not valid Unicode (a lone "
                              f"surrogate {text[error.start]!r} at index {error.start})") from None

