"""One JSON string as it streams in: decoded pieces, an escape not complete yet, and how much
of its end LangChain's strip would cut.

Internal to :mod:`rillet.nodes.partial_json`: the reader hands each string's text to a
``StringReader`` and decides from ``shown()`` what LangChain's re-parse would show of it.

>>> string = StringReader()
>>> string.begin(track=True)
>>> string.read('caf\\\\u00e9 ` ', 0, 12), string.shown()
((12, 0), 4)
>>> string.read('!"', 0, 2), string.join()
((2, 1), 'café ` !')
"""

from __future__ import annotations

from rillet.nodes.partial_json.syntax import ESCAPES, HEX, PLAIN, STRIP

__all__ = ["CLOSED", "FAILED", "OPEN", "StringReader"]

# What StringReader.read ran into: the end of the text, the closing quote, a bad escape
OPEN, CLOSED, FAILED = range(3)


class StringReader:
    """The string being read, decoded piece by piece: ``begin`` starts one (the reader makes
    one ``StringReader`` and reuses it for every string, so reading a string allocates none)."""

    __slots__ = ("pieces", "decoded", "escape", "high", "joined", "track", "spaces", "stripped",
                 "strip_run")

    def begin(self, *, track: bool) -> None:
        """Start a string; ``track``: follow what LangChain's strip of the text would cut."""
        self.pieces: list[str] = []
        self.decoded = 0
        self.escape = ""  # "\\", "\\u", "\\u1"...: an escape not complete yet
        self.high = 0  # a high surrogate from a \u escape, which a \u low surrogate may join
        self.joined = 0  # surrogate pairs joined: they change the last character
        self.track = track
        self.spaces = 0  # trailing str.isspace() characters ...
        self.stripped = 0  # ... and the STRIP run before them, if it ends in a backtick
        self.strip_run = 0  # trailing STRIP characters

    def read(self, text: str, i: int, n: int) -> tuple[int, int]:
        """Decode ``text[i:n]``: ``(n, OPEN)`` while the string goes on, ``(after the quote,
        CLOSED)`` at its end, ``(where, FAILED)`` at a character no escape allows."""
        while i < n:
            if self.escape:
                i = self._read_escape(text, i, n)
                if i < 0:
                    return ~i, FAILED
                continue
            match = PLAIN.match(text, i)
            if match is not None:
                run = match.group()
                self.pieces.append(run)
                self.decoded += len(run)
                self.high = 0
                if self.track:
                    self._strip_tail(run)
                i = match.end()
                if i == n:
                    return i, OPEN
            if text[i] == '"':
                return i + 1, CLOSED
            self.escape = "\\"
            i += 1
        return i, OPEN

    def shown(self) -> int | None:
        """How many characters LangChain's re-parse shows at the end of the text; None while
        the text ends in a partial \\u escape (the parse fails inside the string)."""
        if self.escape and self.escape != "\\":
            return None
        if self.track and not self.escape:  # a dangling backslash is dropped, not stripped
            return self.decoded - self.spaces - self.stripped
        return self.decoded

    def join(self) -> str:
        """The decoded text so far (kept as one piece)."""
        whole = "".join(self.pieces)
        self.pieces = [whole]
        return whole

    def trailing_high(self, length: int) -> str:
        """The \\u high surrogate ending the first ``length`` characters, if it is the last
        character read: only it can still change (joined to a pair). Else ``""``."""
        return self.pieces[-1][-1] if self.high and length == self.decoded else ""

    def _read_escape(self, text: str, i: int, n: int) -> int:
        """Read an escape's next characters; ``~where`` for a character it cannot hold."""
        escape = self.escape
        if escape == "\\":
            char = text[i]
            if char == "u":
                self.escape = "\\u"
                return i + 1
            decoded = ESCAPES.get(char)
            if decoded is None:
                return ~i
            self.escape = ""
            self._add_escaped(decoded)
            return i + 1
        digits = text[i: i + 6 - len(escape)]
        for k, char in enumerate(digits):
            if char not in HEX:
                return ~(i + k)
        escape += digits
        if len(escape) < 6:
            self.escape = escape
            return n
        self.escape = ""
        code = int(escape[2:], 16)
        if self.high and 0xDC00 <= code <= 0xDFFF:
            # json.loads joins a \u high surrogate and the \u low one right after it
            pair = chr(0x10000 + ((self.high - 0xD800) << 10) + (code - 0xDC00))
            self.pieces[-1] = self.pieces[-1][:-1] + pair
            self.joined += 1
            self.high = 0
        else:
            self._add_escaped(chr(code))
            if 0xD800 <= code <= 0xDBFF:
                self.high = code
        return i + len(digits)

    def _add_escaped(self, char: str) -> None:
        self.pieces.append(char)
        self.decoded += 1
        self.high = 0
        # The text now ends in an escape, which LangChain's strip never cuts into
        self.spaces = self.stripped = self.strip_run = 0

    def _strip_tail(self, run: str) -> None:
        """Track how much of the text's end ``text.strip().strip(STRIP)`` would cut."""
        spaces = len(run) - len(run.rstrip())
        strippable = len(run) - len(run.rstrip(STRIP))
        if spaces == len(run):
            self.spaces += spaces
        else:
            body = run[: len(run) - spaces]
            if body[-1] == "`":  # the second strip cuts backticks and what precedes them
                cut = len(body) - len(body.rstrip(STRIP))
                self.stripped = self.strip_run + cut if cut == len(body) else cut
            else:
                self.stripped = 0
            self.spaces = spaces
        self.strip_run = self.strip_run + strippable if strippable == len(run) else strippable
