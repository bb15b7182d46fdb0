r"""The event-log format, version 2, and its readers (the writers are in :mod:`.logfile`).

A magic prefix, then framed records, each with its length and checksum::

    b"rillet\x00\x02"                         8 bytes: the format and its version
    [length: u32 BE][crc32: u32 BE][payload]   one frame per record; payload is one msgpack value
    ...

The first record is the header ``{"rillet_log": 2, ...}``. The checksum (zlib's CRC-32) catches
every flipped bit and garbage in the middle; the length catches a log cut short. Readers stop at
the first bad frame and raise ``TruncatedLogError`` naming the byte offset where it starts, how
many bytes were skipped, and holding every good record before it.

Logs of format version 1 (back-to-back msgpack records, no frames: rillet before checksums) are
still read, with the old, weaker detection: a damaged v1 record may decode wrong unnoticed.

>>> read_log(MAGIC + frame_record(b"\x81\xaarillet_log\x02") + frame_record(b"\xa1x"))
LogContents(header={'rillet_log': 2}, records=['x'])
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import msgpack

from rillet.runtime.errors import TruncatedLogError, WireFormatError

__all__ = ["MAGIC", "MAX_RECORD_BYTES", "LogContents", "frame_record", "header_record", "iter_log",
           "read_log", "read_log_header"]

_VERSION_KEY = "rillet_log"
_VERSION = 2
MAGIC: Final = b"rillet\x00\x02"
#: The largest record a log holds (16 MiB, as the server's stream frames); a frame claiming
#: more is damage.
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024
_FRAME = struct.Struct(">II")
_READ_SIZE = 64 * 1024
_MISSING = object()


def frame_record(payload: bytes) -> bytes:
    r"""One record's frame: its length, its CRC-32, then the payload (one msgpack value).

    >>> frame_record(b"\xa1x")
    b'\x00\x00\x00\x02\xa8\x1bfY\xa1x'

    Raises:
        WireFormatError: the payload is larger than ``MAX_RECORD_BYTES``.
    """
    if len(payload) > MAX_RECORD_BYTES:
        raise WireFormatError(f"an event-log record is {len(payload)} bytes; the limit is "
                              f"{MAX_RECORD_BYTES}")
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@attrs.frozen
class LogContents:
    """A whole event log: its header (including ``"rillet_log"``) and its records as trees."""

    header: dict[str, Any]
    records: list[Any]


def read_log(path_or_bytes: str | os.PathLike[str] | bytes) -> LogContents:
    """Read a whole event log from a path or from its bytes.

    Example::

        read_log("run.log").records     # -> [{'seq': 0}]

    Raises:
        TruncatedLogError: the log is damaged or ends inside a record; ``.offset`` is where
            the bad record starts, ``.events`` the records before it, ``.skipped`` the bytes
            not read.
        WireFormatError: the data is not a rillet event log (no header, or another version).
    """
    if isinstance(path_or_bytes, bytes):
        name, data = "<bytes>", path_or_bytes
    else:
        name, data = os.fspath(path_or_bytes), Path(path_or_bytes).read_bytes()
    header, records = _read(io.BytesIO(data), name)
    events: list[Any] = []
    try:
        for record in records:
            events.append(record)
    except TruncatedLogError as exc:
        exc.events = events
        raise
    return LogContents(header=header, records=events)


def read_log_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of the event log at ``path`` (including ``"rillet_log"``), reading no record.

    Example::

        read_log_header("run.log")      # -> {'rillet_log': 2, 'run_id': 'r1'}

    Raises:
        TruncatedLogError: the file is empty. WireFormatError: it is not a rillet event log.
    """
    with open(path, "rb") as file:
        header, _ = _read(file, os.fspath(path))
    return header


def iter_log(path: str | os.PathLike[str]) -> Generator[Any, None, None]:
    """Yield the records of the event log at ``path`` one by one, in constant memory.

    The header is checked before the first record. Close the iterator (``contextlib.closing``)
    if you stop early, to close the file at once.

    Example::

        for record in iter_log("run.log"):
            print(decode_value(record))

    Raises:
        TruncatedLogError: as ``read_log``, except that ``.events`` is empty: every record
            before the broken one has been yielded already.
        WireFormatError: the file is not a rillet event log.
    """
    name = os.fspath(path)
    with open(path, "rb") as file:
        _, records = _read(file, name)
        yield from records


def _read(file: BinaryIO, name: str) -> tuple[dict[str, Any], Iterator[Any]]:
    """Check the format and the header; return it and an iterator over the records after it."""
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    start = file.read(len(MAGIC))
    if start == MAGIC:
        records = _frames(file, name, size)
    elif start and start[0] in _V1_FIRST_BYTES:
        file.seek(0)  # format version 1: a msgpack map first, no magic
        records = _objects(file, name, size)
    elif MAGIC.startswith(start):
        raise _broken(name, "empty" if not start else "truncated", 0, size,
                      "expected the format prefix and a header record {'rillet_log': 2, ...}")
    else:
        raise WireFormatError(f"{name!r} is not a rillet event log: it starts with {start!r}, "
                              f"expected {MAGIC!r}")
    header = next(records, _MISSING)
    if header is _MISSING:
        raise _broken(name, "empty", len(MAGIC), size,
                      "expected a header record {'rillet_log': 2, ...}")
    if not isinstance(header, dict) or _VERSION_KEY not in header:
        raise WireFormatError(
            f"{name!r} is not a rillet event log: its first record is "
            f"{type(header).__name__} {header!r:.60}, expected a header {{'rillet_log': 2, ...}}"
        )
    version = header[_VERSION_KEY]
    if type(version) is not int or version != (_VERSION if start == MAGIC else 1):
        raise WireFormatError(
            f"event log {name!r} has format version {version!r}; this rillet reads versions "
            f"1 and {_VERSION}"
        )
    return header, records


#: How a msgpack map starts (fixmap, map16, map32): what a version 1 log begins with.
_V1_FIRST_BYTES: Final = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


def _broken(name: str, how: str, offset: int, size: int, reason: str) -> TruncatedLogError:
    skipped = size - offset
    where = "is empty" if how == "empty" and not size else f"is {how} at byte {offset}"
    lost = f"; skipped the last {skipped} byte{'s' if skipped != 1 else ''}" if skipped else ""
    return TruncatedLogError(f"event log {name!r} {where}: {reason}{lost}", offset=offset,
                             events=[], skipped=skipped)


def _frames(file: BinaryIO, name: str, size: int) -> Iterator[Any]:
    """Yield each record of a version 2 log after the magic; raise at the first bad frame."""
    offset = len(MAGIC)
    while True:
        head = file.read(_FRAME.size)
        if not head:
            return
        if len(head) < _FRAME.size:
            raise _broken(name, "truncated", offset, size, "the log ends inside a record's frame")
        length, crc = _FRAME.unpack(head)
        if length > MAX_RECORD_BYTES:
            raise _broken(name, "corrupt", offset, size, f"a record claims {length} bytes, over "
                          f"the {MAX_RECORD_BYTES}-byte limit (a damaged length)")
        payload = file.read(length)
        if len(payload) < length:
            raise _broken(name, "truncated", offset, size, f"the log ends {len(payload)} of "
                          f"{length} bytes into a record")
        if zlib.crc32(payload) != crc:
            raise _broken(name, "corrupt", offset, size, "the record's checksum does not match")
        try:
            value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise _broken(name, "malformed", offset, size, _reason(exc)) from exc
        yield value
        offset += _FRAME.size + length


def _objects(file: BinaryIO, name: str, size: int) -> Iterator[Any]:
    """Yield each complete msgpack value of a version 1 log; raise at the first broken one."""
    unpacker = msgpack.Unpacker(file, raw=False, strict_map_key=False, read_size=_READ_SIZE)
    # Where the last complete value ended. Unpacker.tell() after a failure or at the end of
    # the data counts bytes of the broken value too, so only read it after a success.
    end = 0
    while True:
        try:
            value = next(unpacker)
        except StopIteration:
            break
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise _broken(name, "malformed", end, size, _reason(exc)) from exc
        end = unpacker.tell()
        yield value
    if size > end:  # the unpacker read to the end; bytes past the last value are a partial one
        raise _broken(name, "truncated", end, size, "the log ends inside a record")


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "a string is not valid UTF-8"
    if isinstance(exc, msgpack.ExtraData):
        return "a record holds more than one msgpack value"
    if isinstance(exc, msgpack.FormatError):
        return "not valid msgpack"
    if isinstance(exc, msgpack.StackError):
        return "values nest too deeply"
    if isinstance(exc, msgpack.exceptions.BufferFull):
        return "a record is larger than the reader's buffer"
    if isinstance(exc, TypeError):
        return f"a map key cannot be a Python dict key ({exc})"
    return str(exc) or type(exc).__name__


def header_record(header: Mapping[str, Any] | None) -> dict[str, Any]:
    """The header record a writer starts with: the format version, then ``header``.

    Raises:
        ValueError: ``header`` has the reserved ``"rillet_log"`` key.
    """
    if header is not None and _VERSION_KEY in header:
        raise ValueError(f"header key {_VERSION_KEY!r} is reserved for the log format version")
    return {_VERSION_KEY: _VERSION, **(header or {})}
