"""Event-log files: a header record, then one msgpack record per event, back to back.

msgpack values delimit themselves, so a log needs no framing of its own and a reader can
resume from any record boundary. The first record is the header ``{"rillet_log": 1, ...}``
(the format version plus whatever the writer passed, e.g. the run id); every later record
is whatever the writer wrote: bytes that are already one msgpack value, or a msgpack-ready
tree such as ``rillet.runtime.wire.codec.encode_value(event)``. Readers return records as trees; decode
them with ``rillet.runtime.wire.codec.decode_value``.

A writer that dies mid-record leaves a truncated log. Readers then raise
``TruncatedLogError`` naming the byte offset where the broken record starts and holding
every complete record before it, so nothing already written is lost::

    try:
        records = read_log("run.log").records
    except TruncatedLogError as exc:
        records = exc.events
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import attrs
import msgpack
import trio

from rillet.runtime.errors import TruncatedLogError, WireFormatError

__all__ = [
    "AsyncLogWriter",
    "LogContents",
    "LogWriter",
    "iter_log",
    "open_log_writer",
    "read_log",
    "read_log_header",
]

_MAGIC = "rillet_log"
_VERSION = 1
_READ_SIZE = 64 * 1024
_MISSING = object()


@attrs.frozen
class LogContents:
    """A whole event log: its header (including ``"rillet_log"``) and its records as trees."""

    header: dict[str, Any]
    records: list[Any]


class LogWriter:
    """Write an event log to a path or a binary file, one record per ``write``.

    A path is opened (and truncated) here and closed by ``close``; a file passed in is only
    flushed, since whoever opened it closes it. Writes go through the file's own buffer:
    ``flush`` hands them to the OS. Blocking, so from trio use ``open_log_writer``.

    Example::

        with LogWriter("run.log", header={"run_id": "r1"}) as log:
            log.write(encode_value(event))

    Raises:
        ValueError: ``header`` has a ``"rillet_log"`` key (the writer sets it).
    """

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | BinaryIO,
        *,
        header: Mapping[str, Any] | None = None,
    ) -> None:
        header_record = _header_record(header)  # checked first, so a bad header leaves no file
        self._packer = msgpack.Packer()
        self._owns_file = isinstance(path_or_file, (str, os.PathLike))
        self._file: BinaryIO = (
            open(path_or_file, "wb")  # noqa: SIM115 -- the writer owns it; close() closes it
            if isinstance(path_or_file, (str, os.PathLike))
            else path_or_file
        )
        self._closed = False
        self.write(header_record)

    def write(self, record: Any) -> None:
        """Append one record: bytes holding one msgpack value, or a msgpack-ready tree.

        Raises:
            WireFormatError: the tree holds a value msgpack cannot pack.
            ValueError: the writer is closed.
        """
        self.write_packed(_pack(self._packer, record))

    def write_packed(self, data: bytes) -> None:
        """Append ``data``: zero or more whole msgpack records, back to back.

        Raises:
            ValueError: the writer is closed.
        """
        if self._closed:
            raise ValueError("write to a closed LogWriter")
        self._file.write(data)

    def flush(self) -> None:
        """Hand every record written so far to the OS (no fsync)."""
        self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._file.flush()
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncLogWriter:
    """Write an event log from trio: records collect in memory and go to the file in a
    worker thread once ``buffer_bytes`` have collected, so the loop never waits for the disk
    per record. Made by ``open_log_writer``, which flushes the rest on exit.

    Example::

        async with open_log_writer("run.log", header={"run_id": "r1"}) as log:
            for event in events:
                try:
                    log.write_nowait(encode_value(event))
                except trio.WouldBlock:
                    await log.write(encode_value(event))
    """

    def __init__(self, writer: LogWriter, *, buffer_bytes: int) -> None:
        self._writer = writer
        self._buffer = bytearray()
        self._buffer_bytes = buffer_bytes
        self._packer = msgpack.Packer()
        # One thread write at a time, in buffer order: this is what keeps records in order.
        self._flush_lock = trio.Lock()
        self._closed = False

    def write_nowait(self, record: Any) -> None:
        """Append one record to the buffer without blocking (see ``LogWriter.write``).

        Raises:
            trio.WouldBlock: the buffer is full; ``await write(...)`` or ``flush()`` instead.
            trio.ClosedResourceError: the writer is closed.
            WireFormatError: the tree holds a value msgpack cannot pack.
        """
        if self._closed:
            raise trio.ClosedResourceError("write to a closed AsyncLogWriter")
        if len(self._buffer) >= self._buffer_bytes:
            raise trio.WouldBlock
        self._buffer += _pack(self._packer, record)

    async def write(self, record: Any) -> None:
        """Append one record; write the buffer out in a thread if it is full.

        Like trio's own operations, a write that raises ``trio.Cancelled`` did not happen.

        Raises:
            trio.ClosedResourceError: the writer is closed.
            WireFormatError: the tree holds a value msgpack cannot pack.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("write to a closed AsyncLogWriter")
        self._buffer += _pack(self._packer, record)
        if len(self._buffer) >= self._buffer_bytes:
            # The record is in the buffer now, so this call must not report Cancelled.
            with trio.CancelScope(shield=True):
                await self.flush()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def flush(self) -> None:
        """Write every buffered record to the file and hand it to the OS, in a thread."""
        async with self._flush_lock:
            if not self._buffer:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
            # Shielded: the records have left the buffer, so a cancel here would lose them.
            # The write is bounded by buffer_bytes plus what arrived while we waited.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._write_and_flush, data)

    async def aclose(self) -> None:
        """Flush and close the file, even if cancelled; closing twice is harmless."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            try:
                await self.flush()
            finally:
                await trio.to_thread.run_sync(self._writer.close)

    def _write_and_flush(self, data: bytes) -> None:
        self._writer.write_packed(data)
        self._writer.flush()


@asynccontextmanager
async def open_log_writer(
    path: str | os.PathLike[str],
    *,
    header: Mapping[str, Any] | None = None,
    buffer_bytes: int = 64 * 1024,
) -> AsyncIterator[AsyncLogWriter]:
    """Open an event log at ``path`` for writing from trio; on exit, flush and close it.

    The exit flushes even when the body raised or was cancelled: the log of a failed run is
    the one worth reading.

    Example::

        async with open_log_writer("run.log", header={"run_id": "r1"}) as log:
            await log.write({"seq": 0})

    Args:
        path: the file to create (or truncate).
        header: extra header fields, e.g. ``{"run_id": ...}``.
        buffer_bytes: how many bytes collect before a thread writes them; 0 writes each
            record as it comes.

    Raises:
        ValueError: ``buffer_bytes`` is negative, or ``header`` has a ``"rillet_log"`` key.
    """
    if buffer_bytes < 0:
        raise ValueError(f"buffer_bytes must be >= 0, got {buffer_bytes}")
    writer = await trio.to_thread.run_sync(partial(LogWriter, path, header=header))
    log = AsyncLogWriter(writer, buffer_bytes=buffer_bytes)
    try:
        yield log
    finally:
        await log.aclose()


def read_log(path_or_bytes: str | os.PathLike[str] | bytes) -> LogContents:
    """Read a whole event log from a path or from its bytes.

    Example::

        read_log("run.log").records     # -> [{'seq': 0}]

    Raises:
        TruncatedLogError: the log ends inside a record, or a record is not valid msgpack;
            ``.offset`` is where that record starts, ``.events`` the records before it.
        WireFormatError: the data is not a rillet event log (no header, or another version).
    """
    if isinstance(path_or_bytes, bytes):
        name, data = "<bytes>", path_or_bytes
    else:
        name, data = os.fspath(path_or_bytes), Path(path_or_bytes).read_bytes()
    # A BytesIO (which shares the bytes) rather than Unpacker.feed: feed is capped at
    # max_buffer_size (100 MiB) in all, a file only per record.
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

        read_log_header("run.log")      # -> {'rillet_log': 1, 'run_id': 'r1'}

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
    """Check the header; return it and an iterator over the records after it."""
    objects = _objects(file, name)
    header = next(objects, _MISSING)
    if header is _MISSING:
        raise TruncatedLogError(
            f"event log {name!r} is empty: expected a header record {{'rillet_log': 1, ...}}",
            offset=0,
            events=[],
        )
    if not isinstance(header, dict) or _MAGIC not in header:
        raise WireFormatError(
            f"{name!r} is not a rillet event log: its first record is "
            f"{type(header).__name__} {header!r:.60}, expected a header {{'rillet_log': 1, ...}}"
        )
    version = header[_MAGIC]
    if type(version) is not int or version != _VERSION:
        raise WireFormatError(
            f"event log {name!r} has format version {version!r}; "
            f"this rillet reads version {_VERSION}"
        )
    return header, objects


def _objects(file: BinaryIO, name: str) -> Iterator[Any]:
    """Yield each complete msgpack value in ``file``; raise at the first broken one."""
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
            raise TruncatedLogError(
                f"event log {name!r} is malformed at byte {end}: {_reason(exc)}",
                offset=end,
                events=[],
            ) from exc
        end = unpacker.tell()
        yield value
    # The unpacker has read to end of file; bytes past the last value are a partial record.
    lost = file.tell() - end
    if lost:
        raise TruncatedLogError(
            f"event log {name!r} is truncated at byte {end}: "
            f"the log ends {lost} byte{'s' if lost > 1 else ''} into a record",
            offset=end,
            events=[],
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "a string is not valid UTF-8"
    if isinstance(exc, msgpack.FormatError):
        return "not valid msgpack"
    if isinstance(exc, msgpack.StackError):
        return "values nest too deeply"
    if isinstance(exc, msgpack.exceptions.BufferFull):
        return "a record is larger than the reader's buffer"
    if isinstance(exc, TypeError):
        return f"a map key cannot be a Python dict key ({exc})"
    return str(exc) or type(exc).__name__


def _header_record(header: Mapping[str, Any] | None) -> dict[str, Any]:
    if header is not None and _MAGIC in header:
        raise ValueError(f"header key {_MAGIC!r} is reserved for the log format version")
    return {_MAGIC: _VERSION, **(header or {})}


def _pack(packer: Any, record: Any) -> bytes:
    if isinstance(record, bytes):
        return record
    try:
        data: bytes = packer.pack(record)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireFormatError(
            f"cannot write a record of type {type(record).__name__!r} to an event log: {exc}; "
            f"encode it with rillet.runtime.wire.encode_value first"
        ) from exc
    return data
