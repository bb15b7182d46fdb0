"""LangChain's own algorithm, for the text the incremental reader hands over, and its
bracket pre-scan.

Internal to :mod:`rillet.nodes.partial_json`. ``lc_output`` is what ``JsonOutputParser``
computes from the whole text after every chunk (strip, ``json.loads``, else close the open
string and brackets and drop characters from the end until something parses, else parse what
follows a fence); the parser switches to it for text LangChain would repair in odd ways, so
those streams stay exact at LangChain's cost. ``BracketScan`` is the pre-scan of the same
algorithm, fed chunk by chunk:

>>> lc_output('Sure:\\n```json\\n{"a": [1, "b')
{'a': [1, 'b']}
>>> lc_partial('{"a": [1}') is MISMATCH
True
>>> scan = BracketScan()
>>> scan.feed('{"a": ["}', 0)
>>> scan.stack, scan.in_string
(['{', '['], True)
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from typing import Any, Final

from rillet.nodes.partial_json.syntax import NOTHING, PLAIN, STRIP, skip

__all__ = ["BracketScan", "MISMATCH", "lc_output", "lc_partial"]

MISMATCH: Final[Any] = object()  # LangChain's "mismatched closing bracket" result

_OUTSIDE_STRING: Final = re.compile(r'[^"{}\[\]]+')
_FENCE: Final = re.compile(r"```(json)?(.*)", re.DOTALL)
_ACTION_INPUT: Final = re.compile(r'("action_input"\:\s*")(.*?)(")', re.DOTALL)


class BracketScan:
    """LangChain's pre-scan of a text: string state and open brackets; a bad closer is final."""

    __slots__ = ("stack", "in_string", "escaped", "mismatch")

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.in_string = False
        self.escaped = False
        self.mismatch = False

    def feed(self, text: str, i: int) -> None:
        n = len(text)
        while i < n and not self.mismatch:
            if self.in_string:
                match = PLAIN.match(text, i)
                if match is not None:
                    self.escaped = False
                    i = match.end()
                    if i == n:
                        return
                char = text[i]
                if char == "\\":
                    self.escaped = not self.escaped
                elif self.escaped:
                    self.escaped = False
                else:
                    self.in_string = False
            else:
                i = skip(_OUTSIDE_STRING, text, i)
                if i == n:
                    return
                char = text[i]
                if char == '"':
                    self.in_string, self.escaped = True, False
                elif char == "{" or char == "[":
                    self.stack.append(char)
                elif self.stack and self.stack[-1] == ("[" if char == "]" else "{"):
                    self.stack.pop()
                else:
                    self.mismatch = True
            i += 1



def lc_output(text: str) -> Any:
    """``JsonOutputParser.parse_result(partial=True)``, with NOTHING for "no value"."""
    text = text.strip()
    try:
        value = _lc_markdown(text)
    except json.JSONDecodeError:
        return NOTHING
    return NOTHING if value is MISMATCH else value


def _lc_markdown(text: str) -> object:
    try:
        return _lc_json(text)
    except json.JSONDecodeError:
        fence = _FENCE.search(text)
    return _lc_json(text if fence is None else fence.group(2))


def _lc_json(text: str) -> object:
    return lc_partial(_ACTION_INPUT.sub(_escape_action_input, text.strip(STRIP)))


def _escape_action_input(match: re.Match[str]) -> str:
    # LangChain's repair for agents' multi-line "action_input" strings
    value = match.group(2).replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    value = re.sub(r'(?<!\\)"', r"\"", value)
    return match.group(1) + value + match.group(3)


def lc_partial(text: str) -> Any:
    """LangChain's ``parse_partial_json`` (``strict=False``), MISMATCH for a bad closer."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    pieces: list[str] = []
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        piece = char
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            elif char == "\n" and not escaped:
                piece = "\\n"
            elif char == "\\":
                escaped = not escaped
            else:
                escaped = False
        elif char == '"':
            in_string, escaped = True, False
        elif char == "{" or char == "[":
            closers.append("}" if char == "{" else "]")
        elif char == "}" or char == "]":
            if not closers or closers[-1] != char:
                return MISMATCH
            closers.pop()
        pieces.append(piece)
    if in_string:
        if escaped:
            pieces.pop()
        pieces.append('"')
    tail = "".join(reversed(closers))
    ends = list(itertools.accumulate(map(len, pieces)))
    while pieces:
        try:
            return json.loads("".join(pieces) + tail, strict=False)
        except json.JSONDecodeError as error:
            # Every longer candidate still holds the piece the decoder rejected: skip them
            cut = min(bisect.bisect_right(ends, error.pos), len(pieces) - 1)
            del pieces[cut:], ends[cut:]
    return json.loads(text, strict=False)
