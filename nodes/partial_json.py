"""Partial JSON: LangChain's ``JsonOutputParser`` stream, read in linear time.

LangChain re-parses all the text so far after every chunk (reference §4.1): strip it, try
``json.loads``, else close the open string and brackets and drop characters from the end until
something parses; when nothing does, parse what follows a ```` ``` ```` fence. That costs
O(n²) over a stream. :class:`PartialJsonParser` reads each character once into a live Python
value and reports the same sequence of values:

>>> parser = PartialJsonParser()
>>> [parser.snapshot() for chunk in ['{"n": 1', '2.', '5, "s": "ab', 'c"}'] if parser.feed(chunk)]
[{'n': 1}, {'n': 12}, {'n': 12.5, 's': 'ab'}, {'n': 12.5, 's': 'abc'}]

What LangChain's re-parse shows, and so what the parser shows: a string as soon as its opening
quote arrives, growing; a key only once its value shows; a number as its longest valid prefix
(``12.`` is 12); ``true``/``false``/``null`` once complete; a string ending in a partial ``\\u``
escape hides its whole member until the escape is complete; trailing whitespace and backticks of
the whole text are cut, even inside an open string; a mismatched closing bracket means no value
from then on; text before the JSON means no value unless a fence follows.

Exactness and cost. Well-formed JSON, optionally fenced (```` ```json ````), preceded by
whitespace or by prose before a fence, followed by prose: exact, O(1) amortized per character.
Anything LangChain would repair in odd ways (a syntax error, ``NaN``, a repeated key, prose after
the JSON that leaves brackets open) switches the parser, for the rest of the stream, to re-running
LangChain's algorithm on the whole text per chunk: still exact, as slow as LangChain.

Verified against ``langchain-core`` 1.8.1 (``JsonOutputParser().transform``, ``diff`` off and on)
on 20,500 random documents: 10,000 split at random points, half of them damaged (garbage,
truncation, prose and fences around them), and 10,500 well-formed ones full of small numbers, in
fixed-size chunks of 1-30 characters; the compat tests repeat this on 1.8.3. The emitted values
are identical in all of them (``repr``-equal, so ``1``, ``1.0`` and ``True`` are told apart). The
``diff=True`` op lists are identical too, except in 20 documents (0.1%), where they lead to the
same values by other ops: jsonpatch turned a changed list item and an equal value added elsewhere
in the same chunk into a ``move``, or the text was malformed (re-parsing diffs with
:func:`rillet.runtime.wire.jsonpatch.make_patch`). Like LangChain, changes are judged with ``==``: after ``1``
the chunk ``.0`` reports nothing, though ``value()`` is then ``1.0``.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from typing import Any, Final

from rillet.runtime.wire.jsonpatch import join_pointer, make_patch

__all__ = ["PartialJsonParser", "parse_json_markdown", "parse_partial_json"]

_Key = str | int
_Path = tuple[_Key, ...]

_NOTHING: Final[Any] = object()  # no value (None is JSON null)
_GREW: Final[Any] = object()  # the old value of a growing string: always differs from the new one
_MISMATCH: Final[Any] = object()  # LangChain's "mismatched closing bracket" result

_STRIP: Final = " \n\r\t`"  # what LangChain strips from both ends besides str.strip()'s whitespace
_UNICODE_SPACE: Final = re.compile(r"\s+")  # exactly str.isspace(), so exactly str.strip()
_STRIP_RUN: Final = re.compile(r"[ \n\r\t`]+")
_JSON_SPACE: Final = re.compile(r"[ \t\n\r]+")
_PLAIN: Final = re.compile(r'[^"\\]+')  # string content up to a quote or an escape
_NUMBER_RUN: Final = re.compile(r"[0-9eE.+\-]+")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_NUMBER_PREFIX: Final = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][-+]?[0-9]*)?)?|[eE][-+]?[0-9]*)?)?")
_OUTSIDE_STRING: Final = re.compile(r'[^"{}\[\]]+')
_FENCE: Final = re.compile(r"```(json)?(.*)", re.DOTALL)
_ACTION_INPUT: Final = re.compile(r'("action_input"\:\s*")(.*?)(")', re.DOTALL)
_JSON_STARTS: Final = frozenset('{["-0123456789tfn')
_WORDS: Final = {"t": "true", "f": "false", "n": "null"}
_LITERALS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")

# What a _Reader expects next. Structural states first: feed() tests `state < _STRING`.
_VALUE, _FIRST_ITEM, _FIRST_KEY, _KEY, _COLON, _AFTER_VALUE = range(6)
_STRING, _KEY_STRING, _NUMBER_TOKEN, _LITERAL, _DONE, _ERROR, _MISMATCHED = range(6, 13)

# Changes recorded for last_patch()
_ADD, _REPLACE, _REMOVE = range(3)

# PartialJsonParser modes: where the text so far has put us
_LEAD_SPACE, _LEAD_STRIP, _DIRECT, _TRAIL, _FENCE_SEARCH, _FENCE_LANG, _CONTENT_LEAD, _CONTENT, \
    _REPARSE, _DEAD = range(10)


class PartialJsonParser:
    """Feed text chunks; after each feed, :meth:`value` is what LangChain's lenient parse of the
    accumulated (stripped) text gives, and :meth:`feed` says whether LangChain would emit it.

    >>> parser = PartialJsonParser()
    >>> for chunk in ['```json\\n{"countries": [{"name": "Fr', 'ance"}', ']}\\n```']:
    ...     if parser.feed(chunk):
    ...         print(parser.last_patch())
    [{'op': 'replace', 'path': '', 'value': {'countries': [{'name': 'Fr'}]}}]
    [{'op': 'replace', 'path': '/countries/0/name', 'value': 'France'}]
    >>> parser.value()
    {'countries': [{'name': 'France'}]}

    A streaming node emits ``snapshot()`` (or ``last_patch()`` in diff mode) whenever ``feed``
    returns True; it never needs to compare values itself.
    """

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._size = 0
        self._mode = _LEAD_SPACE
        self._direct_start = 0  # offset of the text LangChain parses first (after the lead strip)
        self._reader: _Reader | None = None
        self._trail: _BracketScan | None = None  # the text after a complete value
        self._outer: _BracketScan | None = None  # the prose before a fence, when it matters
        self._fence = -1  # offset of the first ```
        self._fence_tail = ""
        self._changes = _Changes()
        self._reported = False  # the last feed() returned True
        self._reported_size = -1  # text length when feed() last returned True
        self._patch: list[dict[str, Any]] | None = None
        self._reparsed: Any = _NOTHING  # _REPARSE mode: the value of the last re-parse
        self._reparse_base: Any = _NOTHING  # _REPARSE mode: the last reported value
        self._patch_base: Any = None  # _REPARSE mode: the value reported before that

    def feed(self, text: str) -> bool:
        """Add ``text``; True iff the value changed since the last True, so LangChain would emit.

        LangChain emits after a chunk when its parse is not None and differs (``!=``) from what
        it emitted last; so this is False while there is no value, for ``null`` and for changes
        like ``1`` -> ``1.0``.

        >>> parser = PartialJsonParser()
        >>> [parser.feed(chunk) for chunk in ['{"a', '": ', '"', "x", '"}']]
        [True, False, True, True, False]

        Raises:
            ValueError: a number has more digits than ``int()`` accepts (as in LangChain).
        """
        if self._reported:
            self._reported = False
            self._patch = None
            if self._reader is not None:
                self._reader.settle()
        offset = self._size
        self._chunks.append(text)
        self._size += len(text)
        self._find_fence(text, offset)
        if self._outer is not None and self._mode not in (_REPARSE, _DEAD):
            self._outer.feed(text, 0)
            if self._outer.mismatch:
                self._mode = _DEAD
        if self._mode not in (_REPARSE, _DEAD):
            self._advance(text, 0, offset)
            self._check()
        if self._mode == _REPARSE:
            changed = self._reparse()
        else:
            reader = self._reader
            changed = reader is not None and self.has_value() and self._changes.changed(reader.root)
        if changed:
            self._reported = True
            self._reported_size = self._size
        return changed

    def has_value(self) -> bool:
        """Whether LangChain's parse of the text so far gives a value (``null`` counts).

        >>> parser = PartialJsonParser()
        >>> parser.feed("Sure! ")
        False
        >>> parser.has_value()
        False
        """
        if self._mode == _REPARSE:
            return self._reparsed is not _NOTHING
        return self._mode in (_DIRECT, _CONTENT, _TRAIL) and self._reader is not None \
            and self._reader.has_root

    def value(self) -> Any:
        """The current value, live: the parser's own object, changed in place by later feeds.

        Cheap (O(1), plus joining the string being read): for a look, or when the caller copies
        what it keeps. Do not mutate it. :meth:`snapshot` gives a value later feeds leave alone.

        Raises:
            LookupError: there is no value (see :meth:`has_value`).
        """
        if self._mode == _REPARSE:
            if self._reparsed is _NOTHING:
                raise self._no_value()
            return self._reparsed
        reader = self._reader
        if reader is None or not self.has_value():
            raise self._no_value()
        reader.flush()
        return reader.root

    def snapshot(self) -> Any:
        """The current value, as an object later feeds never change.

        Finished parts (closed containers, complete strings) are shared between snapshots, so a
        snapshot costs the depth plus the sizes of the open containers, not the document; treat
        it as read-only too. Repeated calls without a change return the same object.

        >>> parser = PartialJsonParser()
        >>> _ = parser.feed('[{"a": 1}, ')
        >>> first = parser.snapshot()
        >>> _ = parser.feed('2]')
        >>> first, parser.snapshot(), first[0] is parser.snapshot()[0]
        ([{'a': 1}], [{'a': 1}, 2], True)

        Raises:
            LookupError: there is no value (see :meth:`has_value`).
        """
        if self._mode == _REPARSE:
            return self.value()  # a fresh parse each feed, never mutated
        reader = self._reader
        if reader is None or not self.has_value():
            raise self._no_value()
        return reader.snapshot()

    def last_patch(self) -> list[dict[str, Any]]:
        """JSON-Patch ops from the value reported before the last feed to the current value.

        What LangChain's ``diff=True`` emits: ``[]`` unless the last :meth:`feed` returned True;
        the first report is a ``replace`` of the path ``""``. Built from the changes the parser
        made, so it costs what changed, not the document. Values in the ops are copies; the list
        is cached until the next feed (do not mutate it).

        >>> parser = PartialJsonParser()
        >>> for chunk in ['{"a": [', '1, 22', ']}']:
        ...     if parser.feed(chunk):
        ...         print(parser.last_patch())
        [{'op': 'replace', 'path': '', 'value': {'a': []}}]
        [{'op': 'add', 'path': '/a/0', 'value': 1}, {'op': 'add', 'path': '/a/1', 'value': 22}]
        """
        if not self._reported:
            return []
        if self._patch is None:
            if self._mode == _REPARSE:
                self._patch = make_patch(self._patch_base, self._reparsed)
            else:
                reader = self._reader
                assert reader is not None  # reported, so a reader holds the value
                reader.flush()
                self._patch = self._changes.ops(reader.root)
        return self._patch

    def text(self) -> str:
        """All text fed so far.

        >>> parser = PartialJsonParser()
        >>> _ = parser.feed('{"a"'), parser.feed(": 1}")
        >>> parser.text()
        '{"a": 1}'
        """
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def _no_value(self) -> LookupError:
        return LookupError(f"no JSON value in the text so far: {self.text()!r:.80}")

    def _find_fence(self, text: str, offset: int) -> None:
        if self._fence >= 0:
            return
        window = self._fence_tail + text  # a fence may straddle chunks
        found = window.find("```")
        if found >= 0:
            self._fence = offset - len(self._fence_tail) + found
        else:
            self._fence_tail = window[-2:]

    def _advance(self, text: str, i: int, base: int) -> None:
        """Read ``text[i:]`` (``base`` is the offset of ``text`` in the whole text)."""
        while True:
            mode = self._mode
            if mode == _LEAD_SPACE:
                i = _skip(_UNICODE_SPACE, text, i)
                if i == len(text):
                    return
                self._mode = _LEAD_STRIP
            elif mode == _LEAD_STRIP or mode == _CONTENT_LEAD:
                i = _skip(_STRIP_RUN, text, i)
                if i == len(text):
                    return
                self._start_value(text[i], base + i)
            elif mode == _DIRECT or mode == _CONTENT:
                reader = self._reader
                assert reader is not None  # set with these modes
                i = reader.feed(text, i)
                if reader.state == _DONE:
                    self._trail = _BracketScan()
                    self._mode = _TRAIL
                elif reader.state == _MISMATCHED:
                    self._mode = _DEAD
                elif reader.state == _ERROR:
                    if not reader.doomed:
                        self._mode = _REPARSE
                    elif mode == _CONTENT:
                        self._mode = _DEAD
                    else:  # no prefix of this text parses: LangChain goes looking for a fence
                        self._reader = None
                        self._mode = _FENCE_SEARCH
                else:
                    return
            elif mode == _TRAIL:
                assert self._trail is not None  # set with this mode
                self._trail.feed(text, i)
                if self._trail.mismatch:
                    self._mode = _DEAD
                return
            elif mode == _FENCE_SEARCH:
                if self._fence < 0:
                    return
                self._mode = _FENCE_LANG
            elif mode == _FENCE_LANG:
                whole = self.text()
                lang = whole[self._fence + 3: self._fence + 7]
                if len(lang) < 4 and "json".startswith(lang):
                    return  # "```js" may still become "```json"
                start = self._fence + 3 + (4 if lang == "json" else 0)
                # LangChain scans all the stripped text first: a mismatched bracket in the prose
                # means no value; prose leaving a string or bracket open keeps mattering
                outer = _BracketScan()
                outer.feed(whole[self._direct_start: start], 0)
                text, i, base = whole[start:], 0, start
                if outer.in_string or outer.stack or outer.mismatch:
                    self._outer = outer
                    outer.feed(text, 0)
                    if outer.mismatch:
                        self._mode = _DEAD
                        return
                self._mode = _CONTENT_LEAD
            else:
                return

    def _start_value(self, char: str, offset: int) -> None:
        content = self._mode == _CONTENT_LEAD
        if not content:
            self._direct_start = offset
        if char in _JSON_STARTS:
            self._reader = _Reader(strip=True, changes=self._changes)
            self._mode = _CONTENT if content else _DIRECT
        elif char == "N" or char == "I":
            self._mode = _REPARSE  # NaN, Infinity: json.loads takes them
        else:
            self._mode = _DEAD if content else _FENCE_SEARCH

    def _check(self) -> None:
        """After reading a chunk: settle the value being read, or give up on reading."""
        mode, reader = self._mode, self._reader
        if reader is not None and (mode == _DIRECT or mode == _CONTENT):
            reader.sync()
            if mode == _DIRECT and not reader.has_root and self._fence >= 0:
                # LangChain then parses what follows the fence, even a fence inside the string
                self._mode = _REPARSE
        elif mode == _TRAIL and self._trail is not None and self._trail.stack:
            self._mode = _REPARSE  # it truncates the value to fit the brackets left open

    def _reparse(self) -> bool:
        if self._reparse_base is _NOTHING:  # just switched: what LangChain emitted last, once
            self._reader = self._trail = self._outer = None
            base = _lc_output(self.text()[: self._reported_size]) if self._reported_size >= 0 \
                else None
            self._reparse_base = None if base is _NOTHING else base
        value = _lc_output(self.text())
        self._reparsed = value
        if value is _NOTHING or value is None or value == self._reparse_base:
            return False
        self._patch_base, self._reparse_base = self._reparse_base, value
        return True


def parse_partial_json(text: str) -> Any:
    """Leniently parse a possibly incomplete JSON text (LangChain's ``parse_partial_json``).

    For tool-call arguments as they stream; no stripping, no fences.

    >>> [parse_partial_json(text) for text in ['{"q', '{"query": "ca', '{"x": 1']]
    [{}, {'query': 'ca'}, {'x': 1}]

    Raises:
        ValueError: nothing parses (``''``, ``'tr'``, ``'Sure {'``), or a closing bracket does
            not match (LangChain returns None for that).
    """
    i = _skip(_JSON_SPACE, text, 0)
    if i < len(text) and text[i] in _JSON_STARTS:
        reader = _Reader(strip=False, changes=None)
        end = reader.feed(text, i)
        if reader.state == _DONE:
            trail = _BracketScan()
            trail.feed(text, end)
            if not trail.stack and not trail.mismatch:
                return reader.root
        elif reader.state < _DONE:
            reader.sync()
            if reader.has_root:
                reader.flush()
                return reader.root
            raise ValueError(f"no JSON value in {text!r:.80}")
    # Malformed: LangChain's own algorithm, on the whole text
    try:
        value = _lc_partial(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"no JSON value in {text!r:.80}") from error
    if value is _MISMATCH:
        raise ValueError(f"mismatched closing bracket in {text!r:.80}")
    return value


def parse_json_markdown(text: str) -> Any:
    """Parse a whole model output: what ``JsonOutputParser().invoke(text)`` returns.

    Strips whitespace and backticks, reads a ```` ```json ```` fence (prose before it is fine),
    and is lenient on incomplete JSON like LangChain.

    >>> parse_json_markdown('```json\\n{"a": "b"}\\n```'), parse_json_markdown('{"a": "b')
    ({'a': 'b'}, {'a': 'b'})
    >>> parse_json_markdown('Sure! {"a": 1}')
    Traceback (most recent call last):
      ...
    ValueError: no JSON value in 'Sure! {"a": 1}'

    Raises:
        ValueError: no JSON found (LangChain raises ``OutputParserException``; for a mismatched
            closing bracket it returns None instead).
    """
    parser = PartialJsonParser()
    parser.feed(text)
    if not parser.has_value():
        raise ValueError(f"no JSON value in {text!r:.80}")
    return parser.value()


class _Frame:
    """An open container: the live object, where it sits, the member being read."""

    __slots__ = ("container", "is_list", "slot", "path", "key", "fresh")

    def __init__(self, container: Any, is_list: bool, slot: _Key | None, path: _Path) -> None:
        self.container = container
        self.is_list = is_list
        self.slot = slot  # its key in the parent container (None at the root)
        self.path = path
        self.key = ""  # objects: the member whose value is being read
        # Added since the last reported value: its add op will carry all of it
        self.fresh = True


class _Reader:
    """One JSON text, read incrementally into a live value.

    The value shown is LangChain's: the longest prefix of the text that parses once the open
    string and brackets are closed. That is every finished member of every open container, plus
    the value being read if it is a string (without a trailing partial escape) or a number with a
    valid prefix. ``feed`` changes the containers in place and records each change in ``changes``;
    the string being read is joined only when someone looks (``flush``).
    """

    def __init__(self, *, strip: bool, changes: _Changes | None) -> None:
        self.state = _VALUE
        self.frames: list[_Frame] = []
        self.root: Any = None
        self.has_root = False
        self.doomed = False  # failed before any prefix parsed (a root like `tru` or `-`)
        self.version = 0  # bumped on every visible change, for the snapshot cache
        self._strip = strip  # hide trailing whitespace/backticks, as LangChain strips the text
        self._changes = changes
        # The string being read
        self._pieces: list[str] = []
        self._decoded = 0
        self._escape = ""  # "\\", "\\u", "\\u1"...: an escape not complete yet
        self._high = 0  # a high surrogate from a \u escape, which a \u low surrogate may join
        self._joined = 0  # surrogate pairs joined: they change the last character
        self._track = False
        self._spaces = 0  # trailing str.isspace() characters ...
        self._stripped = 0  # ... and the _STRIP run before them, if it ends in a backtick
        self._strip_run = 0  # trailing _STRIP characters
        # The number or literal being read
        self._token = ""
        self._word = ""
        # The string or number being read is shown as it grows: the "tip"
        self._tip_shown = False
        self._tip_ever = False
        self._tip_sig = (0, 0)  # (visible length, pairs joined) of the tip string
        self._tip_dirty = False  # its slot holds an older string
        self._snap: Any = None
        self._snap_version = -1

    def feed(self, text: str, i: int) -> int:
        """Read ``text[i:]``; return where reading stopped (the end, or after a complete root)."""
        n = len(text)
        while i < n:
            state = self.state
            if state < _STRING:
                i = _skip(_JSON_SPACE, text, i)
                if i < n:
                    i = self._structural(text, i)
            elif state < _NUMBER_TOKEN:
                i = self._read_string(text, i, n)
            elif state == _NUMBER_TOKEN:
                i = self._read_number(text, i, n)
            elif state == _LITERAL:
                i = self._read_literal(text, i, n)
            else:
                break
        return i

    def sync(self) -> None:
        """Show the string or number being read as LangChain would at the end of the text."""
        if self.state == _STRING:
            self._sync_string()
        elif self.state == _NUMBER_TOKEN:
            value = _number_value(self._token)
            if value is not _NOTHING:
                self._show_number(value)

    def flush(self) -> None:
        """Put the string being read into its slot (``sync`` only marks it changed)."""
        if self._tip_dirty and self.state == _STRING:
            whole = "".join(self._pieces)
            self._pieces = [whole]
            visible = self._tip_sig[0]
            self._put(whole if visible == len(whole) else whole[:visible])
            self._tip_dirty = False

    def settle(self) -> None:
        """The value was reported: later changes are relative to it."""
        for frame in self.frames:
            frame.fresh = False  # changes inside containers open now need ops of their own
        if self._changes is None:
            return
        tip: tuple[Any, ...] | None = None
        if self._tip_shown and self.state == _STRING:
            length = self._tip_sig[0]
            # Only a \u high surrogate at the very end can still change (joined to a pair)
            high = self._pieces[-1][-1] if self._high and length == self._decoded else ""
            tip = (length, high)
        elif self._tip_shown and self.state == _NUMBER_TOKEN:
            tip = (self._slot(),)
        base = [(frame.container, len(frame.container)) for frame in self.frames]
        self._changes.settle(base, tip)

    def snapshot(self) -> Any:
        self.flush()
        if self._snap_version != self.version:
            snap: Any = self.root
            if self.frames:
                slot: _Key | None = None
                for frame in reversed(self.frames):
                    mine = frame.container.copy()
                    if slot is not None:
                        mine[slot] = snap
                    snap, slot = mine, frame.slot
            self._snap, self._snap_version = snap, self.version
        return self._snap

    def _structural(self, text: str, i: int) -> int:
        char, state = text[i], self.state
        if state == _AFTER_VALUE:
            if char == ",":
                self.state = _VALUE if self.frames[-1].is_list else _KEY
                return i + 1
            if char == "]" or char == "}":
                if self.frames[-1].is_list == (char == "]"):
                    self._close()
                else:
                    self.state = _MISMATCHED
                return i + 1
        elif state == _VALUE or state == _FIRST_ITEM:
            if char == '"':
                self._begin_string(key=False)
                return i + 1
            if char == "{" or char == "[":
                self._open(char == "[")
                return i + 1
            if char == "-" or "0" <= char <= "9":
                self._token = ""
                self._tip_shown = self._tip_ever = False
                self.state = _NUMBER_TOKEN
                return i
            word = _WORDS.get(char)
            if word is not None:
                self._word, self._token = word, ""
                self.state = _LITERAL
                return i
            if char == "]" and state == _FIRST_ITEM:
                self._close()
                return i + 1
        elif state == _FIRST_KEY or state == _KEY:
            if char == '"':
                self._begin_string(key=True)
                return i + 1
            if char == "}" and state == _FIRST_KEY:
                self._close()
                return i + 1
        elif char == ":":  # _COLON
            self.state = _VALUE
            return i + 1
        self._bad(char)
        return i

    def _bad(self, char: str) -> None:
        if (char == "]" or char == "}") and (
                not self.frames or self.frames[-1].is_list != (char == "]")):
            self.state = _MISMATCHED  # LangChain's pre-scan gives up on the whole text
        else:
            self._fail(char)

    def _fail(self, char: str) -> None:
        # A root literal or number that never became a value: no prefix of this text will ever
        # parse (unless it is -Infinity, which json.loads accepts)
        self.doomed = not self.frames and (self.state == _LITERAL or (
            self.state == _NUMBER_TOKEN and _NUMBER.match(self._token) is None and char != "I"))
        self.state = _ERROR

    def _open(self, is_list: bool) -> None:
        container: Any = [] if is_list else {}
        slot: _Key | None = None
        path: _Path = ()
        if self.frames:
            parent = self.frames[-1]
            slot = len(parent.container) if parent.is_list else parent.key
            path = parent.path + (slot,)
        self._show(container, new=True, old=None)
        self.frames.append(_Frame(container, is_list, slot, path))
        self.state = _FIRST_ITEM if is_list else _FIRST_KEY

    def _close(self) -> None:
        self.frames.pop()
        self.state = _AFTER_VALUE if self.frames else _DONE

    def _after_value(self) -> None:
        self.state = _AFTER_VALUE if self.frames else _DONE
        self._tip_shown = self._tip_dirty = False

    # -- showing values: every change of the visible value goes through these

    def _show(self, value: Any, *, new: bool, old: Any) -> None:
        """Set the value at the current position; record it (``old``: the value it replaces)."""
        self.version += 1
        if not self.frames:
            self.root, self.has_root = value, True
            if self._changes is not None:
                self._changes.note((), _REPLACE, old)
            return
        frame = self.frames[-1]
        container = frame.container
        key: _Key
        if frame.is_list:
            if new:
                container.append(value)
            else:
                container[-1] = value
            key = len(container) - 1
        else:
            key = frame.key
            container[key] = value
        if self._changes is not None and not frame.fresh:
            self._changes.note(frame.path + (key,), _ADD if new else _REPLACE, old)

    def _hide(self) -> None:
        """Remove the string being read from view (it ends in a partial \\u escape)."""
        self.version += 1
        if not self.frames:
            self.root, self.has_root = None, False  # LangChain has no value; nothing to record
            return
        frame = self.frames[-1]
        container = frame.container
        key: _Key
        if frame.is_list:
            key = len(container) - 1
            container.pop()
        else:
            key = frame.key
            del container[key]
        if self._changes is not None and not frame.fresh:
            self._changes.note(frame.path + (key,), _REMOVE, _GREW)

    def _touch(self) -> None:
        """The string being read grew; ``flush`` will put the new text in its slot."""
        self.version += 1
        if self._changes is None:
            return
        if not self.frames:
            self._changes.note((), _REPLACE, _GREW)
            return
        frame = self.frames[-1]
        if not frame.fresh:
            key = len(frame.container) - 1 if frame.is_list else frame.key
            self._changes.note(frame.path + (key,), _REPLACE, _GREW)

    def _put(self, value: Any) -> None:
        """Refresh the current slot without a visible change (the tip string, joined late)."""
        if not self.frames:
            self.root = value
        elif self.frames[-1].is_list:
            self.frames[-1].container[-1] = value
        else:
            frame = self.frames[-1]
            frame.container[frame.key] = value

    def _slot(self) -> Any:
        if not self.frames:
            return self.root
        frame = self.frames[-1]
        return frame.container[-1] if frame.is_list else frame.container[frame.key]

    # -- strings

    def _begin_string(self, *, key: bool) -> None:
        self._pieces = []
        self._decoded = self._high = self._joined = 0
        self._escape = ""
        self._track = self._strip and not key
        self._spaces = self._stripped = self._strip_run = 0
        self._tip_shown = self._tip_ever = self._tip_dirty = False
        self.state = _KEY_STRING if key else _STRING

    def _read_string(self, text: str, i: int, n: int) -> int:
        while i < n:
            if self._escape:
                i = self._read_escape(text, i, n)
                if self.state == _ERROR:
                    return i
                continue
            match = _PLAIN.match(text, i)
            if match is not None:
                run = match.group()
                self._pieces.append(run)
                self._decoded += len(run)
                self._high = 0
                if self._track:
                    self._strip_tail(run)
                i = match.end()
                if i == n:
                    return i
            if text[i] == '"':
                self._close_string()
                return i + 1
            self._escape = "\\"
            i += 1
        return i

    def _read_escape(self, text: str, i: int, n: int) -> int:
        escape = self._escape
        if escape == "\\":
            char = text[i]
            if char == "u":
                self._escape = "\\u"
                return i + 1
            decoded = _ESCAPES.get(char)
            if decoded is None:
                self._fail(char)
                return i
            self._escape = ""
            self._add_escaped(decoded)
            return i + 1
        digits = text[i: i + 6 - len(escape)]
        for k, char in enumerate(digits):
            if char not in _HEX:
                self._fail(char)
                return i + k
        escape += digits
        if len(escape) < 6:
            self._escape = escape
            return n
        self._escape = ""
        code = int(escape[2:], 16)
        if self._high and 0xDC00 <= code <= 0xDFFF:
            # json.loads joins a \u high surrogate and the \u low one right after it
            pair = chr(0x10000 + ((self._high - 0xD800) << 10) + (code - 0xDC00))
            self._pieces[-1] = self._pieces[-1][:-1] + pair
            self._joined += 1
            self._high = 0
        else:
            self._add_escaped(chr(code))
            if 0xD800 <= code <= 0xDBFF:
                self._high = code
        return i + len(digits)

    def _add_escaped(self, char: str) -> None:
        self._pieces.append(char)
        self._decoded += 1
        self._high = 0
        # The text now ends in an escape, which LangChain's strip never cuts into
        self._spaces = self._stripped = self._strip_run = 0

    def _strip_tail(self, run: str) -> None:
        """Track how much of the text's end ``text.strip().strip(_STRIP)`` would cut."""
        spaces = len(run) - len(run.rstrip())
        strippable = len(run) - len(run.rstrip(_STRIP))
        if spaces == len(run):
            self._spaces += spaces
        else:
            body = run[: len(run) - spaces]
            if body[-1] == "`":  # the second strip cuts backticks and what precedes them
                cut = len(body) - len(body.rstrip(_STRIP))
                self._stripped = self._strip_run + cut if cut == len(body) else cut
            else:
                self._stripped = 0
            self._spaces = spaces
        self._strip_run = self._strip_run + strippable if strippable == len(run) else strippable

    def _close_string(self) -> None:
        text = "".join(self._pieces)
        self._pieces = []
        if self.state == _KEY_STRING:
            frame = self.frames[-1]
            if text in frame.container:
                self._fail("")  # a repeated key: leave LangChain's odd repairs to the re-parse
                return
            frame.key = text
            self.state = _COLON
            return
        if not self._tip_shown:
            self._show(text, new=True, old=_GREW if self._tip_ever else None)
        elif (self._decoded, self._joined) != self._tip_sig:
            self._show(text, new=False, old=_GREW)
        else:
            self._put(text)
        self._after_value()

    def _sync_string(self) -> None:
        if self._escape and self._escape != "\\":
            # A partial \u escape: LangChain's parse fails inside the string and backs up to
            # before this member
            if self._tip_shown:
                self._hide()
                self._tip_shown = self._tip_dirty = False  # its slot is gone: nothing to flush
            return
        visible = self._decoded
        if self._track and not self._escape:  # a dangling backslash is dropped, not stripped
            visible -= self._spaces + self._stripped
        sig = (visible, self._joined)
        if not self._tip_shown:
            self._show("", new=True, old=_GREW if self._tip_ever else None)
            self._tip_shown = self._tip_ever = True
        elif sig == self._tip_sig:
            return
        else:
            self._touch()
        self._tip_sig = sig
        self._tip_dirty = True

    # -- numbers and literals

    def _read_number(self, text: str, i: int, n: int) -> int:
        match = _NUMBER_RUN.match(text, i)
        end = i if match is None else match.end()
        self._token += text[i:end]
        if end == n:
            if not _NUMBER_PREFIX.fullmatch(self._token):
                self._fail("")
            return end
        if not _NUMBER.fullmatch(self._token):
            self._bad(text[end])
            return end
        self._show_number(_number_value(self._token))
        self._after_value()
        return end

    def _show_number(self, value: Any) -> None:
        if not self._tip_shown:
            self._show(value, new=True, old=None)
            self._tip_shown = True
            return
        old = self._slot()
        if type(old) is not type(value) or old != value:
            self._show(value, new=False, old=old)

    def _read_literal(self, text: str, i: int, n: int) -> int:
        rest = self._word[len(self._token):]
        got = text[i: i + len(rest)]
        if not rest.startswith(got):
            k = next(k for k, (a, b) in enumerate(zip(got, rest)) if a != b)
            self._bad(got[k])
            return i + k
        self._token += got
        if len(got) < len(rest):
            return n
        self._show(_LITERALS[self._word], new=True, old=None)
        self._after_value()
        return i + len(got)


class _Changes:
    """Changes to the visible value since it was last reported, by path, for ``last_patch``.

    Each path keeps its first old value; changes inside a container added since the last report
    are not recorded at all (its ``add`` op carries its final content). ``base`` keeps each
    container open at the last report with its length then, and ``base_tip`` the value being
    read then, so the reported value of a changed item can be rebuilt when jsonpatch needs it.
    """

    __slots__ = ("pending", "base", "base_tip")

    def __init__(self) -> None:
        self.pending: dict[_Path, tuple[int, Any]] = {}
        self.base: list[tuple[Any, int]] = []
        self.base_tip: tuple[Any, ...] | None = None  # (length, high surrogate) or (number,)

    def settle(self, base: list[tuple[Any, int]], tip: tuple[Any, ...] | None) -> None:
        self.pending.clear()
        self.base, self.base_tip = base, tip

    def note(self, path: _Path, kind: int, old: Any) -> None:
        entry = self.pending.get(path)
        if entry is None:
            self.pending[path] = (kind, old)
        elif kind == _ADD and entry[0] == _REMOVE:
            self.pending[path] = (_REPLACE, entry[1])
        elif kind == _REMOVE:
            if entry[0] == _ADD:
                del self.pending[path]
            else:
                self.pending[path] = (_REMOVE, entry[1])

    def changed(self, root: Any) -> bool:
        """Whether the value differs (``!=``, like LangChain) from the one last reported."""
        for path, (kind, old) in self.pending.items():
            if kind != _REPLACE or old is _GREW or _lookup(root, path) != old:
                return True
        return False

    def ops(self, root: Any) -> list[dict[str, Any]]:
        """The changes as JSON-Patch ops, as jsonpatch's ``make_patch`` would list them."""
        root_entry = self.pending.get(())
        if root_entry is not None:
            old = root_entry[1]
            if old is not _GREW and type(old) is type(root) and old == root:
                return []
            return [{"op": "replace", "path": "", "value": _copy(root)}]
        by_parent: dict[_Path, list[tuple[_Path, int, Any]]] = {}
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
                if kind == _REMOVE:
                    removed.append({"op": "remove", "path": pointer})
                    continue
                value = container[path[-1]]
                if kind == _ADD:
                    added.append({"op": "add", "path": pointer, "value": _copy(value)})
                elif old is _GREW or type(old) is not type(value) or old != value:
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

    def _kept_item(self, depth: int, items: list[Any], changed: Any) -> int | None:
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
        reported: Any = _NOTHING
        candidates: list[int] = [len(items) - 1, *range(last + 1, len(items) - 1)]
        for index in candidates:
            item = items[index]
            if (type(item) is not kind or len(item) != size) if nested \
                    else isinstance(item, (dict, list)):
                continue
            if reported is _NOTHING:
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
            last: _Key = length - 1
        else:
            value = dict(itertools.islice(container.items(), length))
            last = next(reversed(value), "")
        if length and depth + 1 < len(self.base):
            value[last] = self._reported(depth + 1)
        elif length and self.base_tip is not None:
            value[last] = self._reported_tip(value[last])
        return value

    def _reported_tip(self, now: Any) -> Any:
        assert self.base_tip is not None  # only called when a value was being read
        if len(self.base_tip) == 1:
            return self.base_tip[0]
        length, high = self.base_tip
        return now[: length - 1] + high if high else now[:length]


class _BracketScan:
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
                match = _PLAIN.match(text, i)
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
                i = _skip(_OUTSIDE_STRING, text, i)
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


def _skip(pattern: re.Pattern[str], text: str, i: int) -> int:
    match = pattern.match(text, i)
    return i if match is None else match.end()


def _number_value(token: str) -> Any:
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
        return _NOTHING
    if "." in token or "e" in token or "E" in token:
        return float(token)
    return int(token)


def _lookup(root: Any, path: _Path) -> Any:
    for key in path:
        root = root[key]
    return root


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


# -- LangChain's algorithm, re-implemented for the cases the reader hands over


def _lc_output(text: str) -> Any:
    """``JsonOutputParser.parse_result(partial=True)``, with _NOTHING for "no value"."""
    text = text.strip()
    try:
        value = _lc_markdown(text)
    except json.JSONDecodeError:
        return _NOTHING
    return _NOTHING if value is _MISMATCH else value


def _lc_markdown(text: str) -> Any:
    try:
        return _lc_json(text)
    except json.JSONDecodeError:
        fence = _FENCE.search(text)
    return _lc_json(text if fence is None else fence.group(2))


def _lc_json(text: str) -> Any:
    return _lc_partial(_ACTION_INPUT.sub(_escape_action_input, text.strip(_STRIP)))


def _escape_action_input(match: re.Match[str]) -> str:
    # LangChain's repair for agents' multi-line "action_input" strings
    value = match.group(2).replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    value = re.sub(r'(?<!\\)"', r"\"", value)
    return match.group(1) + value + match.group(3)


def _lc_partial(text: str) -> Any:
    """LangChain's ``parse_partial_json`` (``strict=False``), _MISMATCH for a bad closer."""
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
                return _MISMATCH
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
