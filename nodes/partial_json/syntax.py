"""JSON's lexical rules as the partial-JSON modules share them: patterns, sentinels, numbers.

Internal to :mod:`rillet.nodes.partial_json`. ``NOTHING`` stands for "no value" where ``None``
is JSON ``null``; a number being read shows as its longest complete prefix, as LangChain's
re-parse shows it:

>>> [number_value(token) for token in ["12", "12.", "1.5e", "-0.25e+"]]
[12, 12, 1.5, -0.25]
>>> number_value("-") is NOTHING
True
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = [
    "ESCAPES",
    "HEX",
    "JSON_SPACE",
    "JSON_STARTS",
    "LITERALS",
    "NOTHING",
    "NUMBER",
    "NUMBER_PREFIX",
    "NUMBER_RUN",
    "PLAIN",
    "STRIP",
    "WORDS",
    "number_value",
    "skip",
]


NOTHING: Final[Any] = object()  # no value (None is JSON null)

STRIP: Final = " \n\r\t`"  # what LangChain strips from both ends besides str.strip()'s whitespace
JSON_SPACE: Final = re.compile(r"[ \t\n\r]+")
PLAIN: Final = re.compile(r'[^"\\]+')  # string content up to a quote or an escape
NUMBER_RUN: Final = re.compile(r"[0-9eE.+\-]+")
NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
NUMBER_PREFIX: Final = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][-+]?[0-9]*)?)?|[eE][-+]?[0-9]*)?)?")
JSON_STARTS: Final = frozenset('{["-0123456789tfn')
WORDS: Final = {"t": "true", "f": "false", "n": "null"}
LITERALS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}
ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                  "t": "\t"}
HEX: Final = frozenset("0123456789abcdefABCDEF")


def skip(pattern: re.Pattern[str], text: str, i: int) -> int:
    """Where a run of ``pattern`` starting at ``text[i]`` ends (``i`` if there is none)."""
    match = pattern.match(text, i)
    return i if match is None else match.end()


def number_value(token: str) -> object:
    """The number LangChain shows for a valid number prefix: its longest complete prefix."""
    end = len(token)
    if token.endswith(("e", "E")):
        end -= 1
    elif token.endswith(("e+", "e-", "E+", "E-")):
        end -= 2
    if token.endswith(".", 0, end):
        end -= 1
    token = token[:end]
    if not token or token == "-":
        return NOTHING
    if "." in token or "e" in token or "E" in token:
        return float(token)
    return int(token)
