r"""Event-log files: writers, and the readers of :mod:`.logformat`.

Format version 2 (:mod:`.logformat` has the details and the readers)::

    b"rillet\x00\x02"                         8 bytes: the format and its version
    [length: u32 BE][crc32: u32 BE][payload]   one frame per record; payload is one msgpack value
    ...

The first record is the header ``{"rillet_log": 2, ...}`` (the format version plus whatever the
writer passed, e.g. the run id); every later record is whatever the writer wrote: bytes that are
already one msgpack value, or a msgpack-ready tree such as
``rillet.runtime.wire.codec.encode_value(event)``. Readers return records as trees; decode them
with ``rillet.runtime.wire.codec.decode_value``. A record is at most :data:`MAX_RECORD_BYTES`.

The checksum (zlib's CRC-32) catches every flipped bit and garbage in the middle; the length
catches a log cut short. Readers stop at the first bad frame and raise ``TruncatedLogError``
naming the byte offset where it starts, how many bytes were skipped, and holding every good
record before it, so nothing already written is lost::

    try:
        records = read_log("run.log").records
    except TruncatedLogError as exc:
        records = exc.events            # and exc.skipped bytes after exc.offset were not read

Logs of format version 1 (back-to-back msgpack records, no frames: rillet before checksums) are
still read, with the old, weaker detection: a damaged v1 record may decode wrong unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, BinaryIO

import msgpack
import trio

from rillet.runtime.errors import WireFormatError
from rillet.runtime.wire.logformat import (
    MAGIC,
    MAX_RECORD_BYTES,
    LogContents,
    frame_record,
    header_record,
    iter_log,
    read_log,
    read_log_header,
)

__all__ = [
    "MAX_RECORD_BYTES",
    "AsyncLogWriter",
    "LogContents",
    "LogWriter",
    "frame_record",
    "iter_log",
    "open_log_writer",
    "read_log",
    "read_log_header",
]

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
        first = header_record(header)  # checked first, so a bad header leaves no file
        self._packer = msgpack.Packer()
        self._owns_file = isinstance(path_or_file, (str, os.PathLike))
        self._file: BinaryIO = (
            open(path_or_file, "wb")  # noqa: SIM115 -- the writer owns it; close() closes it
            if isinstance(path_or_file, (str, os.PathLike))
            else path_or_file
        )
        self._closed = False
        self.write_packed(MAGIC)
        self.write(first)

    def write(self, record: Any) -> None:
        """Append one record: bytes holding one msgpack value, or a msgpack-ready tree.

        Raises:
            WireFormatError: the tree holds a value msgpack cannot pack, or is larger than
                ``MAX_RECORD_BYTES``.
            ValueError: the writer is closed.
        """
        self.write_packed(_pack(self._packer, record))

    def write_packed(self, data: bytes) -> None:
        """Append ``data``: zero or more whole frames (:func:`frame_record`), back to back.

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


def _pack(packer: Any, record: Any) -> bytes:
    """``record`` (bytes of one msgpack value, or a tree) framed for the log."""
    if isinstance(record, bytes):
        return frame_record(record)
    try:
        data: bytes = packer.pack(record)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireFormatError(
            f"cannot write a record of type {type(record).__name__!r} to an event log: {exc}; "
            f"encode it with rillet.runtime.wire.encode_value first"
        ) from exc
    return frame_record(data)
