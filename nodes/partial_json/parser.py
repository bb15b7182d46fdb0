"""The parser API: :class:`PartialJsonParser` for a stream, :func:`parse_json_markdown` for a
whole model output, :func:`parse_partial_json` for tool-call arguments.

The parser finds where the JSON starts (after whitespace, or after prose before a fence),
feeds it to the incremental :class:`~rillet.nodes.partial_json.reader.Reader`, watches the
text after it, and switches to LangChain's own re-parse
(:mod:`rillet.nodes.partial_json.reparse`) for text LangChain would repair in odd ways:

>>> parser = PartialJsonParser()
>>> [parser.feed(chunk) for chunk in ["Sure!\\n", "```json\\n[1, ", "2]\\n```"]]
[False, True, True]
>>> parser.value()
[1, 2]
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from rillet.nodes.partial_json.changes import Changes
from rillet.nodes.partial_json.reader import DONE, ERROR, MISMATCHED, Reader
from rillet.nodes.partial_json.reparse import MISMATCH, BracketScan, lc_output, lc_partial
from rillet.nodes.partial_json.syntax import JSON_SPACE, JSON_STARTS, NOTHING, skip
from rillet.runtime.lowlevel import make_patch

__all__ = ["PartialJsonParser", "parse_json_markdown", "parse_partial_json"]

_UNICODE_SPACE: Final = re.compile(r"\s+")  # exactly str.isspace(), so exactly str.strip()
_STRIP_RUN: Final = re.compile(r"[ \n\r\t`]+")

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
        self._reader: Reader | None = None
        self._trail: BracketScan | None = None  # the text after a complete value
        self._outer: BracketScan | None = None  # the prose before a fence, when it matters
        self._fence = -1  # offset of the first ```
        self._fence_tail = ""
        self._changes = Changes()
        self._reported = False  # the last feed() returned True
        self._reported_size = -1  # text length when feed() last returned True
        self._patch: list[dict[str, object]] | None = None
        self._reparsed: object = NOTHING  # _REPARSE mode: the value of the last re-parse
        self._reparse_base: object = NOTHING  # _REPARSE mode: the last reported value
        self._patch_base: object = None  # _REPARSE mode: the value reported before that

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
            return self._reparsed is not NOTHING
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
            if self._reparsed is NOTHING:
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

    def last_patch(self) -> list[dict[str, object]]:
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
                i = skip(_UNICODE_SPACE, text, i)
                if i == len(text):
                    return
                self._mode = _LEAD_STRIP
            elif mode == _LEAD_STRIP or mode == _CONTENT_LEAD:
                i = skip(_STRIP_RUN, text, i)
                if i == len(text):
                    return
                self._start_value(text[i], base + i)
            elif mode == _DIRECT or mode == _CONTENT:
                reader = self._reader
                assert reader is not None  # set with these modes
                i = reader.feed(text, i)
                if reader.state == DONE:
                    self._trail = BracketScan()
                    self._mode = _TRAIL
                elif reader.state == MISMATCHED:
                    self._mode = _DEAD
                elif reader.state == ERROR:
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
                outer = BracketScan()
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
        if char in JSON_STARTS:
            self._reader = Reader(strip=True, changes=self._changes)
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
        if self._reparse_base is NOTHING:  # just switched: what LangChain emitted last, once
            self._reader = self._trail = self._outer = None
            base = lc_output(self.text()[: self._reported_size]) if self._reported_size >= 0 \
                else None
            self._reparse_base = None if base is NOTHING else base
        value = lc_output(self.text())
        self._reparsed = value
        if value is NOTHING or value is None or value == self._reparse_base:
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
    i = skip(JSON_SPACE, text, 0)
    if i < len(text) and text[i] in JSON_STARTS:
        reader = Reader(strip=False, changes=None)
        end = reader.feed(text, i)
        if reader.state == DONE:
            trail = BracketScan()
            trail.feed(text, end)
            if not trail.stack and not trail.mismatch:
                return reader.root
        elif reader.state < DONE:
            reader.sync()
            if reader.has_root:
                reader.flush()
                return reader.root
            raise ValueError(f"no JSON value in {text!r:.80}")
    # Malformed: LangChain's own algorithm, on the whole text
    try:
        value = lc_partial(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"no JSON value in {text!r:.80}") from error
    if value is MISMATCH:
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
