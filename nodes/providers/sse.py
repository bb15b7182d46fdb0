"""Server-sent events: an incremental parser from network bytes to events.

It follows the WHATWG "event stream interpretation" rules, which is what every provider
relies on: lines end with CRLF, LF or CR (a CRLF split across two reads is still one line
end); a line starting with ``:`` is a comment (servers send them as keep-alives); ``data``
lines of one event are joined with ``\\n``; a blank line dispatches the event; an event with
no ``data`` line is not dispatched; a leading UTF-8 BOM is skipped. Bytes are split into
lines *before* decoding, so a multi-byte character cut between two reads decodes correctly.

At the end of the stream an event without its closing blank line is discarded, as the spec
says: a truncated event is never mistaken for a whole one.

Parsing is linear in the bytes fed, however they are cut: only the new chunk is searched for
line ends, and an unfinished line waits as a list of pieces, joined once when it ends. One event
(its lines, with the unfinished one) may hold at most ``max_event_bytes`` (16 MiB, as the
server side's frames); past that :meth:`SSEDecoder.feed` raises ``WireFormatError`` instead of
buffering a stream that never ends its line. :attr:`SSEDecoder.lines` counts complete lines,
so a reader can tell a stream that makes progress from one that trickles bytes.

>>> decoder = SSEDecoder()
>>> decoder.feed(b'event: ping\\r\\ndata: {"a"')
[]
>>> decoder.feed(b': 1}\\r\\n\\r\\ndata: [DONE]\\n\\n')
[ServerSentEvent(event='ping', data='{"a": 1}', id=None, retry=None), ServerSentEvent(event='message', data='[DONE]', id=None, retry=None)]
"""

from __future__ import annotations

from typing import Final

import attrs

from rillet.runtime.errors import WireFormatError

__all__ = ["MAX_EVENT_BYTES", "SSEDecoder", "ServerSentEvent"]

_BOM: Final = b"\xef\xbb\xbf"
#: The most bytes one event may take (its lines, including an unfinished one).
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is ``"message"`` when the server sent no ``event:`` line; ``id`` is the last
    event id seen so far on the stream (it carries over, per the spec); ``retry`` is the
    reconnection time in milliseconds when this event set one.

    >>> ServerSentEvent(data="hi").event
    'message'
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns chunks of an event stream, cut anywhere, into :class:`ServerSentEvent` objects.

    Call :meth:`feed` with each chunk read from the network and :meth:`close` at the end.

    Example::

        decoder = SSEDecoder()
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                handle(event)
        decoder.close()   # an unterminated last event is dropped
    """

    __slots__ = ("_partial", "_partial_size", "_skip_lf", "_started", "_event", "_data",
                 "_last_id", "_retry", "_has_data", "_event_size", "max_event_bytes", "lines")

    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._partial: list[bytes] = []  # the start of a line whose end has not arrived yet
        self._partial_size = 0
        self._skip_lf = False    # the last chunk ended with CR: a leading LF belongs to it
        self._started = False    # the BOM check is done
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._event_size = 0     # bytes of the complete lines of the event being read
        self._last_id: str | None = None
        self._retry: int | None = None
        self.max_event_bytes = max_event_bytes
        #: Complete lines so far (blank ones and comments too): progress, not bytes.
        self.lines = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse one more chunk; return the events it completed (often none, or several).

        Raises:
            WireFormatError: one event grew past ``max_event_bytes``.
        """
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if not self._started:
            head = b"".join(self._partial) + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._partial, self._partial_size = [head], len(head)  # maybe a BOM: wait
                return []
            self._started = True
            self._partial, self._partial_size = [], 0
            chunk = head[len(_BOM):] if head.startswith(_BOM) else head
        events: list[ServerSentEvent] = []
        start, size = 0, len(chunk)
        cr, lf = chunk.find(b"\r"), chunk.find(b"\n")  # searched again only once passed
        while start < size and (cr >= 0 or lf >= 0):
            if cr < 0 or (0 <= lf < cr):
                end, next_start = lf, lf + 1
            else:
                end, next_start = cr, cr + 1
                if cr + 1 == size:
                    self._skip_lf = True      # CR at the very end: a LF may follow next time
                elif chunk[cr + 1 : cr + 2] == b"\n":
                    next_start = cr + 2
            line = chunk[start:end]
            if self._partial:
                line = b"".join([*self._partial, line])
                self._partial, self._partial_size = [], 0
            self._event_size += len(line)
            self._check_size()
            self.lines += 1
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
            start = next_start
            if 0 <= cr < start:
                cr = chunk.find(b"\r", start)
            if 0 <= lf < start:
                lf = chunk.find(b"\n", start)
        if start < size:
            self._partial.append(chunk[start:])
            self._partial_size += size - start
            self._check_size()
        return events

    def _check_size(self) -> None:
        held = self._event_size + self._partial_size
        if held > self.max_event_bytes:
            raise WireFormatError(f"an event of the stream is larger than {self.max_event_bytes} "
                                  f"bytes ({held} so far without its end); the stream is not "
                                  f"well-formed")

    def close(self) -> None:
        """End of stream: forget any unterminated line or event (the spec discards them)."""
        self._partial, self._partial_size = [], 0
        self._skip_lf = False
        self._reset_event()

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: keep-alive traffic
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        # Any other field is ignored, as the spec says.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_data:
            self._reset_event()
            return None
        event = ServerSentEvent(event=self._event or "message", data="\n".join(self._data),
                                id=self._last_id, retry=self._retry)
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event = ""
        self._data = []
        self._has_data = False
        self._event_size = 0
        self._retry = None
