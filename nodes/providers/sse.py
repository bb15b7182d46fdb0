"""Server-sent events: an incremental parser from network bytes to events.

It follows the WHATWG "event stream interpretation" rules, which is what every provider
relies on: lines end with CRLF, LF or CR (a CRLF split across two reads is still one line
end); a line starting with ``:`` is a comment (servers send them as keep-alives); ``data``
lines of one event are joined with ``\\n``; a blank line dispatches the event; an event with
no ``data`` line is not dispatched; a leading UTF-8 BOM is skipped. Bytes are split into
lines *before* decoding, so a multi-byte character cut between two reads decodes correctly.

At the end of the stream an event without its closing blank line is discarded, as the spec
says: a truncated event is never mistaken for a whole one.

>>> decoder = SSEDecoder()
>>> decoder.feed(b'event: ping\\r\\ndata: {"a"')
[]
>>> decoder.feed(b': 1}\\r\\n\\r\\ndata: [DONE]\\n\\n')
[ServerSentEvent(event='ping', data='{"a": 1}', id=None, retry=None), ServerSentEvent(event='message', data='[DONE]', id=None, retry=None)]
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM: Final = b"\xef\xbb\xbf"


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

    __slots__ = ("_buffer", "_skip_lf", "_started", "_event", "_data", "_last_id", "_retry",
                 "_has_data")

    def __init__(self) -> None:
        self._buffer = b""       # the start of a line whose end has not arrived yet
        self._skip_lf = False    # the last chunk ended with CR: a leading LF belongs to it
        self._started = False    # the BOM check is done
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse one more chunk; return the events it completed (often none, or several)."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        data = self._buffer + chunk
        if not self._started:
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._buffer = data  # could still be a BOM: wait for more
                return []
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM):]
        events: list[ServerSentEvent] = []
        start, size = 0, len(data)
        while start < size:
            cr, lf = data.find(b"\r", start), data.find(b"\n", start)
            if cr < 0 and lf < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, next_start = lf, lf + 1
            else:
                end, next_start = cr, cr + 1
                if cr + 1 == size:
                    self._skip_lf = True      # CR at the very end: a LF may follow next time
                elif data[cr + 1 : cr + 2] == b"\n":
                    next_start = cr + 2
            event = self._line(data[start:end].decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
            start = next_start
        self._buffer = data[start:]
        return events

    def close(self) -> None:
        """End of stream: forget any unterminated line or event (the spec discards them)."""
        self._buffer = b""
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
        self._retry = None
