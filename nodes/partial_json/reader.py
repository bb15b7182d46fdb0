"""The incremental reader: one JSON text, each character read once, into a live value.

Internal to :mod:`rillet.nodes.partial_json`. The value a ``Reader`` shows is LangChain's: the
longest prefix of the text that parses once the open string and brackets are closed. ``feed``
reads what it is given and stops after a complete root; ``state`` says what is expected next,
``DONE`` after a complete value, ``ERROR`` for a syntax error (``doomed`` if no prefix ever
parsed), ``MISMATCHED`` for a closing bracket of the wrong kind.

>>> reader = Reader(strip=False, changes=None)
>>> reader.feed('{"a": [1, "b', 0)
12
>>> reader.sync(); reader.flush(); reader.root
{'a': [1, 'b']}
>>> reader.feed('"]} tail', 0), reader.state == DONE, reader.root
(3, True, {'a': [1, 'b']})
"""

from __future__ import annotations

from typing import Any

from rillet.nodes.partial_json.changes import ADD, GREW, REMOVE, REPLACE, Changes, Key, Path
from rillet.nodes.partial_json.strings import CLOSED, FAILED, StringReader
from rillet.nodes.partial_json.syntax import (
    JSON_SPACE,
    LITERALS,
    NOTHING,
    NUMBER,
    NUMBER_PREFIX,
    NUMBER_RUN,
    WORDS,
    number_value,
    skip,
)

__all__ = ["DONE", "ERROR", "MISMATCHED", "Reader"]

# What a Reader expects next. Structural states first: feed() tests `state < _STRING`.
_VALUE, _FIRST_ITEM, _FIRST_KEY, _KEY, _COLON, _AFTER_VALUE = range(6)
_STRING, _KEY_STRING, _NUMBER_TOKEN, _LITERAL, DONE, ERROR, MISMATCHED = range(6, 13)


class _Frame:
    """An open container: the live object, where it sits, the member being read."""

    __slots__ = ("container", "is_list", "slot", "path", "key", "fresh")

    def __init__(self, container: Any, is_list: bool, slot: Key | None, path: Path) -> None:
        self.container = container
        self.is_list = is_list
        self.slot = slot  # its key in the parent container (None at the root)
        self.path = path
        self.key = ""  # objects: the member whose value is being read
        # Added since the last reported value: its add op will carry all of it
        self.fresh = True


class Reader:
    """One JSON text, read incrementally into a live value.

    The value shown is LangChain's: the longest prefix of the text that parses once the open
    string and brackets are closed. That is every finished member of every open container, plus
    the value being read if it is a string (without a trailing partial escape) or a number with a
    valid prefix. ``feed`` changes the containers in place and records each change in ``changes``;
    the string being read is joined only when someone looks (``flush``).
    """

    def __init__(self, *, strip: bool, changes: Changes | None) -> None:
        self.state = _VALUE
        self.frames: list[_Frame] = []
        self.root: object = None
        self.has_root = False
        self.doomed = False  # failed before any prefix parsed (a root like `tru` or `-`)
        self.version = 0  # bumped on every visible change, for the snapshot cache
        self._strip = strip  # hide trailing whitespace/backticks, as LangChain strips the text
        self._changes = changes
        self._string = StringReader()  # the string being read
        # The number or literal being read
        self._token = ""
        self._word = ""
        # The string or number being read is shown as it grows: the "tip"
        self._tip_shown = False
        self._tip_ever = False
        self._tip_sig = (0, 0)  # (visible length, pairs joined) of the tip string
        self._tip_dirty = False  # its slot holds an older string
        self._snap: object = None
        self._snap_version = -1

    def feed(self, text: str, i: int) -> int:
        """Read ``text[i:]``; return where reading stopped (the end, or after a complete root)."""
        n = len(text)
        while i < n:
            state = self.state
            if state < _STRING:
                i = skip(JSON_SPACE, text, i)
                if i < n:
                    i = self._structural(text, i)
            elif state < _NUMBER_TOKEN:
                i, outcome = self._string.read(text, i, n)
                if outcome == CLOSED:
                    self._close_string()
                elif outcome == FAILED:
                    self._fail(text[i])
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
            value = number_value(self._token)
            if value is not NOTHING:
                self._show_number(value)

    def flush(self) -> None:
        """Put the string being read into its slot (``sync`` only marks it changed)."""
        if self._tip_dirty and self.state == _STRING:
            whole = self._string.join()
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
            tip = (length, self._string.trailing_high(length))
        elif self._tip_shown and self.state == _NUMBER_TOKEN:
            tip = (self._slot(),)
        base = [(frame.container, len(frame.container)) for frame in self.frames]
        self._changes.settle(base, tip)

    def snapshot(self) -> Any:
        self.flush()
        if self._snap_version != self.version:
            snap: object = self.root
            if self.frames:
                slot: Key | None = None
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
                    self.state = MISMATCHED
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
            word = WORDS.get(char)
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
            self.state = MISMATCHED  # LangChain's pre-scan gives up on the whole text
        else:
            self._fail(char)

    def _fail(self, char: str) -> None:
        # A root literal or number that never became a value: no prefix of this text will ever
        # parse (unless it is -Infinity, which json.loads accepts)
        self.doomed = not self.frames and (self.state == _LITERAL or (
            self.state == _NUMBER_TOKEN and NUMBER.match(self._token) is None and char != "I"))
        self.state = ERROR

    def _open(self, is_list: bool) -> None:
        container: object = [] if is_list else {}
        slot: Key | None = None
        path: Path = ()
        if self.frames:
            parent = self.frames[-1]
            slot = len(parent.container) if parent.is_list else parent.key
            path = parent.path + (slot,)
        self._show(container, new=True, old=None)
        self.frames.append(_Frame(container, is_list, slot, path))
        self.state = _FIRST_ITEM if is_list else _FIRST_KEY

    def _close(self) -> None:
        self.frames.pop()
        self.state = _AFTER_VALUE if self.frames else DONE

    def _after_value(self) -> None:
        self.state = _AFTER_VALUE if self.frames else DONE
        self._tip_shown = self._tip_dirty = False

    # -- showing values: every change of the visible value goes through these

    def _show(self, value: Any, *, new: bool, old: Any) -> None:
        """Set the value at the current position; record it (``old``: the value it replaces)."""
        self.version += 1
        if not self.frames:
            self.root, self.has_root = value, True
            if self._changes is not None:
                self._changes.note((), REPLACE, old)
            return
        frame = self.frames[-1]
        container = frame.container
        key: Key
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
            self._changes.note(frame.path + (key,), ADD if new else REPLACE, old)

    def _hide(self) -> None:
        """Remove the string being read from view (it ends in a partial \\u escape)."""
        self.version += 1
        if not self.frames:
            self.root, self.has_root = None, False  # LangChain has no value; nothing to record
            return
        frame = self.frames[-1]
        container = frame.container
        key: Key
        if frame.is_list:
            key = len(container) - 1
            container.pop()
        else:
            key = frame.key
            del container[key]
        if self._changes is not None and not frame.fresh:
            self._changes.note(frame.path + (key,), REMOVE, GREW)

    def _touch(self) -> None:
        """The string being read grew; ``flush`` will put the new text in its slot."""
        self.version += 1
        if self._changes is None:
            return
        if not self.frames:
            self._changes.note((), REPLACE, GREW)
            return
        frame = self.frames[-1]
        if not frame.fresh:
            key = len(frame.container) - 1 if frame.is_list else frame.key
            self._changes.note(frame.path + (key,), REPLACE, GREW)

    def _put(self, value: Any) -> None:
        """Refresh the current slot without a visible change (the tip string, joined late)."""
        if not self.frames:
            self.root = value
        elif self.frames[-1].is_list:
            self.frames[-1].container[-1] = value
        else:
            frame = self.frames[-1]
            frame.container[frame.key] = value

    def _slot(self) -> object:
        if not self.frames:
            return self.root
        frame = self.frames[-1]
        return frame.container[-1] if frame.is_list else frame.container[frame.key]

    # -- strings

    def _begin_string(self, *, key: bool) -> None:
        self._string.begin(track=self._strip and not key)
        self._tip_shown = self._tip_ever = self._tip_dirty = False
        self.state = _KEY_STRING if key else _STRING

    def _close_string(self) -> None:
        string = self._string
        text = "".join(string.pieces)
        if self.state == _KEY_STRING:
            frame = self.frames[-1]
            if text in frame.container:
                self._fail("")  # a repeated key: leave LangChain's odd repairs to the re-parse
                return
            frame.key = text
            self.state = _COLON
            return
        if not self._tip_shown:
            self._show(text, new=True, old=GREW if self._tip_ever else None)
        elif (string.decoded, string.joined) != self._tip_sig:
            self._show(text, new=False, old=GREW)
        else:
            self._put(text)
        self._after_value()

    def _sync_string(self) -> None:
        visible = self._string.shown()
        if visible is None:
            # A partial \u escape: LangChain's parse fails inside the string and backs up to
            # before this member
            if self._tip_shown:
                self._hide()
                self._tip_shown = self._tip_dirty = False  # its slot is gone: nothing to flush
            return
        sig = (visible, self._string.joined)
        if not self._tip_shown:
            self._show("", new=True, old=GREW if self._tip_ever else None)
            self._tip_shown = self._tip_ever = True
        elif sig == self._tip_sig:
            return
        else:
            self._touch()
        self._tip_sig = sig
        self._tip_dirty = True

    # -- numbers and literals

    def _read_number(self, text: str, i: int, n: int) -> int:
        match = NUMBER_RUN.match(text, i)
        end = i if match is None else match.end()
        self._token += text[i:end]
        if end == n:
            if not NUMBER_PREFIX.fullmatch(self._token):
                self._fail("")
            return end
        if not NUMBER.fullmatch(self._token):
            self._bad(text[end])
            return end
        self._show_number(number_value(self._token))
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
        self._show(LITERALS[self._word], new=True, old=None)
        self._after_value()
        return i + len(got)

