"""What goes over HTTP: values as JSON or msgpack, server-sent events, content negotiation.

Values travel as ``rillet.runtime.wire.codec`` trees (``encode_value``), so a client decodes
exactly what a run produced (tuples, registered types such as documents). Two additions make any run
output sendable:

- an exception becomes ``wire.ErrorInfo`` (exceptions never go on the wire);
- a value of no wire type is sent as a plain description (an attrs instance as
  ``{"__type__": "ClassName", field: value, ...}``, anything else as its ``repr``), so one odd
  chunk degrades one value instead of failing the stream. Register the type with
  ``register_wire_type`` for an exact round trip.

JSON has no bytes and no NaN or infinities: they become
``{"__rillet__": "bytes", "base64": ...}`` and ``{"__rillet__": "float", "value": "NaN"}`` and
come back as themselves; a bare ``NaN`` token in a JSON body is refused. A stream is either SSE
(``event: data`` / ``event: end`` / ``event: error``, one JSON document per ``data:`` line)
or, with ``Accept: application/x-msgpack``, back-to-back msgpack maps
``{"event": ..., "data": ...}`` (msgpack values delimit themselves).

>>> sse_frame("data", to_tree({"a": (1, 2)}))
b'event: data\\ndata: {"a": {"__rillet__": "tuple", "items": [1, 2]}}\\n\\n'
>>> SSEParser().feed(b'event: end\\ndata: \\n\\n')
[('end', '')]
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Final

import attrs
import msgpack

from rillet.runtime.errors import WireFormatError
from rillet.runtime.wire.checks import check_tree
from rillet.runtime.wire.codec import decode_value, encode_value, error_info

__all__ = [
    "JSON",
    "MSGPACK",
    "MsgpackFrameParser",
    "SSEParser",
    "decode_body",
    "decode_lenient",
    "dumps",
    "frame",
    "negotiate",
    "sendable",
    "sse_frame",
    "to_tree",
]

JSON: Final = "application/json"
MSGPACK: Final = "application/x-msgpack"
SSE: Final = "text/event-stream"
_TAG = "__rillet__"
_NON_FINITE: Final = ("NaN", "Infinity", "-Infinity")
# What a client that asks for JSON or SSE may write in Accept; anything else is not ours.
_JSON_RANGES: Final = frozenset({JSON, SSE, "*/*", "application/*", "text/*"})


def to_tree(value: Any) -> Any:
    """``value`` as a msgpack-ready wire tree (see the module docstring).

    >>> to_tree({"error": KeyError("k")})
    {'error': {'__rillet__': 'ErrorInfo', 'type': 'KeyError', 'message': "'k'"}}

    Raises:
        WireFormatError: only when ``value`` nests too deeply to encode at all.
    """
    try:
        try:
            return encode_value(value)
        except WireFormatError:
            return encode_value(sendable(value))
    except RecursionError:
        raise WireFormatError(f"a {type(value).__name__} nests too deeply to send") from None


def sendable(value: Any) -> Any:
    """``value`` with what the wire cannot carry replaced (exceptions by ``ErrorInfo``, other
    unregistered values by a plain description); values that encode are kept as they are.

    >>> sendable([ValueError("bad"), object]) [0]
    ErrorInfo(type='ValueError', message='bad')
    """
    if isinstance(value, BaseException):
        return error_info(value)
    if isinstance(value, dict):  # also AddableDict and other dict subclasses
        return {key: sendable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [sendable(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    try:
        encode_value(value)
        return value
    except WireFormatError:
        pass
    if attrs.has(type(value)):
        fields = {f.name: sendable(getattr(value, f.name)) for f in attrs.fields(type(value))
                  if f.init}
        return {"__type__": type(value).__name__, **fields}
    return repr(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_TAG: "bytes", "base64": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _json_object_hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag == "bytes" and isinstance(obj.get("base64"), str) and len(obj) == 2:
        try:
            return base64.b64decode(obj["base64"], validate=True)
        except binascii.Error as error:
            raise WireFormatError(
                f'{{"{_TAG}": "bytes"}} needs base64 text in "base64", got '
                f"{obj['base64']!r:.40} ({error})") from None
    if tag == "float" and obj.get("value") in _NON_FINITE and len(obj) == 2:
        return float(obj["value"])
    return obj


def _refuse_constant(name: str) -> Any:
    raise WireFormatError(
        f'{name} is not a JSON number; send it as {{"{_TAG}": "float", "value": "{name}"}}')


def _finite(tree: Any) -> Any:
    """``tree`` with NaN and the infinities as tagged maps: standard JSON has no such numbers."""
    if isinstance(tree, float) and not math.isfinite(tree):
        return {_TAG: "float", "value": "NaN" if tree != tree else
                "Infinity" if tree > 0 else "-Infinity"}
    if isinstance(tree, dict):
        return {key: _finite(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_finite(value) for value in tree]
    return tree


def _json_text(tree: Any, *, ascii_only: bool) -> str:
    try:
        return json.dumps(tree, default=_json_default, ensure_ascii=ascii_only, allow_nan=False)
    except ValueError as error:
        if "Out of range float" not in str(error):
            raise
        return json.dumps(_finite(tree), default=_json_default, ensure_ascii=ascii_only)


def dumps(tree: Any, media_type: str) -> bytes:
    """Serialise a wire tree as JSON (one line of standard JSON) or msgpack.

    Bytes and non-finite floats travel in JSON as tagged maps that :func:`decode_body` turns
    back; a string with a lone surrogate is written with ``\\u`` escapes.

    Raises:
        WireFormatError: the tree nests too deeply to write, or msgpack cannot hold a value.
    """
    try:
        if media_type == MSGPACK:
            data: bytes = msgpack.packb(tree)
            return data
        try:
            return _json_text(tree, ascii_only=False).encode()
        except UnicodeEncodeError:
            return _json_text(tree, ascii_only=True).encode()
    except RecursionError:
        raise WireFormatError("a value nests too deeply to write") from None
    except (ValueError, TypeError, OverflowError) as error:
        raise WireFormatError(f"cannot write a value as {media_type}: {error}") from error


def decode_body(data: bytes, media_type: str, *, lenient: bool = False,
                max_nesting: int | None = None) -> Any:
    """Decode a request or response body (JSON or msgpack) back into values.

    ``lenient`` decodes values of unregistered types as descriptions (see
    :func:`decode_lenient`) instead of failing: what clients use. ``max_nesting`` refuses
    trees that break :func:`rillet.runtime.wire.checks.check_tree`'s rules before anything
    recurses into them: what servers use.

    Raises:
        WireFormatError: the bytes are not valid JSON/msgpack (``NaN`` and integers Python
            will not parse included), hold an unknown wire tag, or break ``max_nesting``.
    """
    if media_type == MSGPACK:
        try:
            tree = msgpack.unpackb(data, raw=False)
        except (ValueError, TypeError) as exc:  # msgpack's format errors are ValueErrors
            raise WireFormatError(
                f"not valid msgpack ({str(exc) or type(exc).__name__})") from exc
    else:
        try:
            tree = json.loads(data, object_hook=_json_object_hook,
                              parse_constant=_refuse_constant)
        except WireFormatError:
            raise
        except RecursionError:
            raise WireFormatError("not valid JSON here: it nests too deeply to parse") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WireFormatError(f"not valid JSON ({exc})") from exc
        except ValueError as exc:  # e.g. an integer past sys.get_int_max_str_digits()
            raise WireFormatError(f"not valid JSON here ({exc})") from exc
    if max_nesting is not None:
        check_tree(tree, what="the body", max_nesting=max_nesting)
    try:
        return decode_lenient(tree) if lenient else decode_value(tree)
    except RecursionError:
        raise WireFormatError("the body nests too deeply to decode") from None


def decode_lenient(tree: Any) -> Any:
    """``decode_value(tree)``, except that a tagged value of a type this process has not
    registered becomes a plain description (``{"__type__": tag, field: value, ...}``) instead
    of an error: a client need not import every module whose types a server sends.

    >>> decode_lenient({"__rillet__": "Unknown", "x": {"__rillet__": "tuple", "items": [1]}})
    {'__type__': 'Unknown', 'x': (1,)}
    """
    try:
        return decode_value(tree)
    except WireFormatError:
        pass
    if isinstance(tree, list):
        return [decode_lenient(item) for item in tree]
    if not isinstance(tree, dict):
        return decode_value(tree)
    if _TAG not in tree:
        return {key: decode_lenient(item) for key, item in tree.items()}
    fields = {key: decode_lenient(item) for key, item in tree.items() if key != _TAG}
    try:  # a known tag whose fields held the unknown value: rebuild it from decoded fields
        return decode_value({_TAG: tree[_TAG], **{k: encode_value(v) for k, v in fields.items()}})
    except WireFormatError:
        return {"__type__": tree[_TAG], **fields}


def sse_frame(event: str, tree: Any) -> bytes:
    """One server-sent event whose data is ``tree`` as one JSON line (``None``: empty data)."""
    data = b"" if tree is None else dumps(tree, JSON)
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def frame(event: str, tree: Any, media_type: str) -> bytes:
    """One stream frame in the negotiated format: SSE for JSON, a msgpack map otherwise."""
    if media_type == MSGPACK:
        packed: bytes = msgpack.packb({"event": event, "data": tree})
        return packed
    return sse_frame(event, tree)


def negotiate(accept: str | None) -> str | None:
    """The response format for an ``Accept`` header: ``JSON`` (also meaning SSE for streams),
    ``MSGPACK``, or ``None`` when the header accepts neither.

    >>> negotiate("application/x-msgpack"), negotiate(None), negotiate("text/html")
    ('application/x-msgpack', 'application/json', None)
    """
    if not accept:
        return JSON
    best: tuple[tuple[float, int, int], str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        choice = MSGPACK if media == MSGPACK else JSON if media in _JSON_RANGES else None
        if choice is None or quality <= 0:
            continue
        # Higher quality wins; at equal quality an exact type beats a wildcard, then the
        # earlier entry wins.
        rank = (quality, 0 if "*" in media else 1, -position)
        if best is None or rank > best[0]:
            best = (rank, choice)
    return None if best is None else best[1]


class SSEParser:
    """Incremental server-sent-events parser: feed bytes, get complete ``(event, data)``.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line data, comments (``:``) and
    frames split anywhere. The event name defaults to ``message``; ``max_frame`` bounds the
    bytes of one unfinished frame.
    """

    def __init__(self, *, max_frame: int = 16 * 1024 * 1024) -> None:
        self._pending = b""
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Add bytes; return every frame they completed.

        Raises:
            WireFormatError: one frame grew past ``max_frame`` bytes.
        """
        self._pending += data
        out: list[tuple[str, str]] = []
        while True:
            cut, skip = _line_end(self._pending)
            if cut < 0:
                break
            line = self._pending[:cut].decode("utf-8", errors="replace")
            self._pending = self._pending[cut + skip:]
            self._size += cut + skip
            if line == "":
                if self._data or self._event:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data, self._size = "", [], 0
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                self._event = value
            elif field == "data":
                self._data.append(value)
        if self._size + len(self._pending) > self.max_frame:
            raise WireFormatError(f"an SSE frame is larger than {self.max_frame} bytes")
        return out


def _line_end(buffer: bytes) -> tuple[int, int]:
    """Index of the first line end in ``buffer`` and its length; (-1, 0) if there is none."""
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr < 0:
        return lf, 1
    if lf >= 0 and lf < cr:
        return lf, 1
    if cr == len(buffer) - 1:
        return -1, 0  # a "\r" at the end may be the first half of "\r\n"
    return cr, 2 if buffer[cr + 1:cr + 2] == b"\n" else 1


class MsgpackFrameParser:
    """Incremental parser of a msgpack stream: feed bytes, get complete ``(event, tree)``.

    Raises:
        WireFormatError: the bytes are not msgpack, or a value is not an event map.
    """

    def __init__(self, *, max_frame: int = 16 * 1024 * 1024) -> None:
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max_frame)

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        try:
            self._unpacker.feed(data)
            values = list(self._unpacker)
        except (ValueError, msgpack.exceptions.BufferFull) as exc:
            raise WireFormatError(f"not a msgpack event stream: {exc}") from exc
        out = []
        for value in values:
            if not (isinstance(value, dict) and isinstance(value.get("event"), str)):
                raise WireFormatError(f"expected an event map, got {value!r:.80}")
            out.append((value["event"], value.get("data")))
        return out
