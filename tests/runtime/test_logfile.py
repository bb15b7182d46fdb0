from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from rillet.runtime.errors import TruncatedLogError, WireFormatError
from rillet.runtime.wire.codec import decode_value, encode_value
from rillet.runtime.wire.logfile import (
    MAX_RECORD_BYTES,
    LogContents,
    LogWriter,
    frame_record,
    iter_log,
    open_log_writer,
    read_log,
)
from rillet.runtime.wire.logformat import MAGIC

RECORDS: list[Any] = [
    {"seq": 0, "event": "run_started", "data": {"input": {"topic": "parrot"}}},
    "a plain string",
    [1, 2.5, None, True, b"\x00\xff"],
    {"seq": 1, "chunk": "é" * 40},
    {},
    -(2**63),
    {"seq": 2, "nested": [[[{"deep": "value"}]]]},
]


def write_log(
    path: Path, records: list[Any] = RECORDS, header: dict[str, Any] | None = None
) -> bytes:
    with LogWriter(path, header=header or {"run_id": "r1"}) as log:
        for record in records:
            log.write(record)
    return path.read_bytes()


def named(path: Path) -> str:
    """The log's name as error messages quote it, escaped for a regex."""
    return re.escape(repr(str(path)))


def record_ends(data: bytes) -> list[int]:
    """Byte offset where each complete frame ends (the header's first)."""
    offset, ends = len(MAGIC), []
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        if offset + 8 + length > len(data):
            break
        offset += 8 + length
        ends.append(offset)
    return ends


def test_records_come_back_with_the_header(tmp_path: Path) -> None:
    """A log holds the header (with the format version) and every record, in order."""
    path = tmp_path / "run.log"
    data = write_log(path)
    assert data.startswith(MAGIC)
    assert read_log(path) == LogContents(header={"rillet_log": 2, "run_id": "r1"}, records=RECORDS)
    assert read_log(str(path)).records == RECORDS
    assert read_log(path.read_bytes()).records == RECORDS
    with contextlib.closing(iter_log(path)) as records:
        assert list(records) == RECORDS


def test_pre_encoded_bytes_and_wire_trees_are_records(tmp_path: Path) -> None:
    """Bytes are framed as they are; trees from encode_value decode back exactly."""
    path = tmp_path / "run.log"
    with LogWriter(path) as log:
        log.write(msgpack.packb({"already": "packed"}))
        log.write(encode_value({"t": (1, 2)}))
    contents = read_log(path)
    assert contents.header == {"rillet_log": 2}
    assert contents.records[0] == {"already": "packed"}
    assert decode_value(contents.records[1]) == {"t": (1, 2)}


def test_a_borrowed_file_is_flushed_but_left_open() -> None:
    """Whoever opened the file closes it; the writer only flushes."""
    buffer = io.BytesIO()
    with LogWriter(buffer) as log:
        log.write("x")
    assert not buffer.closed
    assert read_log(buffer.getvalue()).records == ["x"]
    with pytest.raises(ValueError, match=r"^write to a closed LogWriter$"):
        log.write("y")


def test_the_version_key_is_reserved(tmp_path: Path) -> None:
    """The writer owns "rillet_log"; a bad header leaves no file behind."""
    path = tmp_path / "run.log"
    with pytest.raises(ValueError, match=r"^header key 'rillet_log' is reserved"):
        LogWriter(path, header={"rillet_log": 2})
    assert not path.exists()


def test_an_unpackable_record_is_refused_and_the_writer_goes_on(tmp_path: Path) -> None:
    """A record msgpack cannot pack (or too large for a frame) raises at write time and leaves
    no partial bytes."""
    path = tmp_path / "run.log"
    with LogWriter(path) as log:
        log.write("before")
        with pytest.raises(
            WireFormatError,
            match=r"^cannot write a record of type 'dict' to an event log: .*encode it with "
            r"rillet\.runtime\.wire\.encode_value first$",
        ):
            log.write({"big": [1, 2, object()]})
        with pytest.raises(WireFormatError, match=rf"^an event-log record is "
                           rf"{MAX_RECORD_BYTES + 1} bytes; the limit is {MAX_RECORD_BYTES}$"):
            log.write(b"x" * (MAX_RECORD_BYTES + 1))
        log.write("after")
    assert read_log(path).records == ["before", "after"]


def expected_cut(data: bytes, cut: int) -> tuple[int, list[Any]]:
    """Where a log cut at ``cut`` breaks, and the records complete before that."""
    complete = [end for end in record_ends(data) if end <= cut]
    offset = complete[-1] if complete else len(MAGIC)
    return offset, RECORDS[: max(len(complete) - 1, 0)]


def test_a_log_cut_at_any_byte_keeps_every_complete_record(tmp_path: Path) -> None:
    """Cut anywhere, a log either reads as its complete records or says where the cut record
    starts and how many bytes it skipped."""
    data = write_log(tmp_path / "full.log")
    ends = set(record_ends(data))
    path = tmp_path / "cut.log"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        if cut in ends:
            assert read_log(path).records == expected_cut(data, cut)[1]
            continue
        offset, complete = expected_cut(data, cut) if cut >= len(MAGIC) else (0, [])
        for source in (path, data[:cut]):
            with pytest.raises(TruncatedLogError) as info:
                read_log(source)
            assert (info.value.offset, info.value.skipped) == (offset, cut - offset)
            assert info.value.events == complete
        yielded: list[Any] = []
        with pytest.raises(TruncatedLogError) as info:
            yielded.extend(iter_log(path))
        assert info.value.offset == offset and info.value.events == []
        assert yielded == complete


def test_a_truncation_names_the_file_and_the_lost_bytes(tmp_path: Path) -> None:
    """The message says which log, where the broken record starts and what was skipped."""
    path = tmp_path / "run.log"
    data = write_log(path)
    path.write_bytes(data[:-3])
    offset = record_ends(data)[-2]
    length = len(data) - offset - 8
    with pytest.raises(
        TruncatedLogError,
        match=rf"^event log {named(path)} is truncated at byte {offset}: the log ends "
        rf"{length - 3} of {length} bytes into a record; skipped the last {length + 5} bytes$",
    ):
        read_log(path)


def test_every_single_bit_flip_is_caught_at_its_record(tmp_path: Path) -> None:
    """Flip any one bit after the prefix: the read keeps exactly the records before the damaged
    one and raises one TruncatedLogError there; nothing ever decodes wrong."""
    data = write_log(tmp_path / "full.log")
    ends = record_ends(data)
    for bit in range(len(MAGIC) * 8, len(data) * 8):
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        damaged = next(i for i, end in enumerate(ends) if bit // 8 < end)
        offset = ends[damaged - 1] if damaged else len(MAGIC)
        with pytest.raises(TruncatedLogError) as info:
            read_log(bytes(corrupt))
        assert info.value.events == RECORDS[: max(damaged - 1, 0)]
        assert (info.value.offset, info.value.skipped) == (offset, len(data) - offset)


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [(b"\xc1", "the log ends inside a record's frame"),
     (b"\x00\x00\x00\x03\x00\x00\x00\x00abc", "the record's checksum does not match"),
     (b"\xff" * 12, "a record claims 4294967295 bytes, over the 16777216-byte limit")],
    ids=["one-byte", "bad-checksum", "huge-length"],
)
def test_garbage_appended_keeps_every_record(tmp_path: Path, garbage: bytes,
                                             reason: str) -> None:
    """Garbage after the last record costs nothing written: every record is kept, and the
    error says what the garbage looked like and how much was skipped."""
    data = write_log(tmp_path / "full.log")
    path = tmp_path / "bad.log"
    path.write_bytes(data + garbage)
    kind = "truncated" if len(garbage) < 8 else "corrupt"
    with pytest.raises(TruncatedLogError, match=rf"^event log {named(path)} is {kind} at byte "
                       rf"{len(data)}: {re.escape(reason)}") as info:
        read_log(path)
    assert (info.value.events, info.value.skipped) == (RECORDS, len(garbage))


def test_garbage_in_the_middle_stops_the_read_there(tmp_path: Path) -> None:
    """Bytes inserted between records: the records before are kept, the rest skipped."""
    data = write_log(tmp_path / "full.log")
    middle = record_ends(data)[3]  # after the header and three records
    path = tmp_path / "bad.log"
    path.write_bytes(data[:middle] + b"\x00\x00\x00\x01\x00\x00\x00\x00\xc1" + data[middle:])
    with pytest.raises(TruncatedLogError, match=rf"^event log {named(path)} is corrupt at byte "
                       rf"{middle}: the record's checksum does not match; skipped") as info:
        read_log(path)
    assert info.value.offset == middle
    assert info.value.events == RECORDS[:3]
    with pytest.raises(TruncatedLogError, match="checksum does not match"):
        list(iter_log(path))


def _damage(data: bytes, how: str, at: int, garbage: bytes) -> tuple[bytes, int]:
    """``data`` damaged one way, and the first byte the damage touches."""
    at = len(MAGIC) + at % (len(data) - len(MAGIC) + 1)
    if how == "flip":
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:], at
    if how == "cut":
        return data[:at], at
    if how == "insert":
        return data[:at] + garbage + data[at:], at
    return data + garbage, len(data)


#: ``RILLET_FUZZ_SCALE=100 python -m bench.soak fuzz`` runs the fuzz tests 100 times longer.
FUZZ_SCALE = float(os.environ.get("RILLET_FUZZ_SCALE", "1"))


@settings(max_examples=int(300 * FUZZ_SCALE), deadline=None)
@given(records=st.lists(st.recursive(
           st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
           | st.binary(max_size=20), lambda inner: st.lists(inner, max_size=4)
           | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=10)
           .filter(lambda record: not isinstance(record, bytes)),  # bytes: one packed value
           max_size=12),
       how=st.sampled_from(["flip", "cut", "insert", "append"]), at=st.integers(0, 10**6),
       garbage=st.binary(min_size=1, max_size=40))
def test_damaged_logs_keep_every_record_before_the_damage(
    records: list[Any], how: str, at: int, garbage: bytes,
) -> None:
    """Fuzz: truncated, flipped, inserted or appended bytes. The read keeps exactly the records
    whose frames end before the damage, then raises one TruncatedLogError, whose offset plus
    skipped bytes is the whole log; never an other error, never a wrong record."""
    buffer = io.BytesIO()
    with LogWriter(buffer, header={"run_id": "fuzz"}) as log:
        for record in records:
            log.write(record)
    data = buffer.getvalue()
    damaged, first = _damage(data, how, at, garbage)
    try:
        contents = read_log(damaged)
    except TruncatedLogError as error:
        kept = [end for end in record_ends(data) if end <= first]
        assert error.events == records[: max(len(kept) - 1, 0)]
        assert error.offset + error.skipped == len(damaged)
        assert error.skipped > 0 or error.offset == len(MAGIC)  # or the header itself is gone
        return
    assert how == "cut" and first in record_ends(data)  # cut at a record boundary
    assert contents.records == records[: record_ends(data).index(first)]


def test_an_empty_file_is_a_truncated_log(tmp_path: Path) -> None:
    """A writer that died before its header leaves an empty file: truncated at byte 0."""
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(
        TruncatedLogError,
        match=rf"^event log {named(path)} is empty: "
        r"expected the format prefix and a header record \{'rillet_log': 2, \.\.\.\}$",
    ) as info:
        read_log(path)
    assert (info.value.offset, info.value.events, info.value.skipped) == (0, [], 0)
    with pytest.raises(TruncatedLogError, match="is empty"):
        list(iter_log(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [(msgpack.packb([1, 2]), "it starts with"), (b"PK\x03\x04zip", "it starts with"),
     (msgpack.packb({"run_id": "r1"}), "its first record is dict"),
     (MAGIC + frame_record(msgpack.packb("rillet_log")), "its first record is str")],
    ids=["msgpack-list", "other-file", "v1-map-without-version", "v2-without-header"],
)
def test_a_file_without_a_header_is_not_a_log(tmp_path: Path, content: bytes,
                                              message: str) -> None:
    """A file that does not start like a log is refused outright, not read as damage."""
    path = tmp_path / "other.bin"
    path.write_bytes(content + msgpack.packb("record"))
    with pytest.raises(WireFormatError, match=rf"^{named(path)} is not a rillet event log: "
                                              rf"{message}") as info:
        read_log(path)
    assert not isinstance(info.value, TruncatedLogError)
    with pytest.raises(WireFormatError, match="is not a rillet event log"):
        list(iter_log(path))


@pytest.mark.parametrize("data", [msgpack.packb({"rillet_log": 3}),
                                  MAGIC + frame_record(msgpack.packb({"rillet_log": 3}))],
                         ids=["v1-layout", "v2-layout"])
def test_another_format_version_is_refused(data: bytes) -> None:
    """A log from a newer rillet says which version it is."""
    with pytest.raises(
        WireFormatError,
        match=r"^event log '<bytes>' has format version 3; this rillet reads versions 1 and 2$",
    ):
        read_log(data + msgpack.packb("record"))


def test_a_version_1_log_is_still_read() -> None:
    """Logs written before checksums (back-to-back msgpack) read as before; a cut one keeps
    its complete records and says how much it skipped."""
    old = msgpack.packb({"rillet_log": 1, "run_id": "r1"}) + b"".join(
        msgpack.packb(record) for record in RECORDS)
    assert read_log(old) == LogContents(header={"rillet_log": 1, "run_id": "r1"}, records=RECORDS)
    with pytest.raises(TruncatedLogError, match=r"is truncated at byte \d+: the log ends inside a "
                                                r"record; skipped the last 3 bytes$") as info:
        read_log(old + msgpack.packb("more")[:3])
    assert info.value.events == RECORDS


def chunks(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"seq": i, "chunk": "x" * 50} for i in range(start, start + n)]


async def test_async_writer_batches_records_into_the_file(tmp_path: Path) -> None:
    """Records reach the file in batches while the run goes on, and all of them on exit."""
    path = tmp_path / "run.log"
    async with open_log_writer(trio.Path(path), header={"run_id": "r1"}, buffer_bytes=1000) as log:
        for record in chunks(100):
            await log.write(record)
        # ~80 bytes a framed record and a 1000-byte buffer: all but the last batch is on disk.
        on_disk = read_log(path).records
        assert on_disk == chunks(len(on_disk)) and 85 <= len(on_disk) < 100
    contents = read_log(path)
    assert contents.header == {"rillet_log": 2, "run_id": "r1"}
    assert contents.records == chunks(100)


async def test_write_nowait_refuses_only_when_the_buffer_is_full(tmp_path: Path) -> None:
    """write_nowait never blocks: a full buffer is trio.WouldBlock, and the record is not taken."""
    path = tmp_path / "run.log"
    size = len(frame_record(msgpack.packb(chunks(1)[0])))
    async with open_log_writer(path, buffer_bytes=3 * size) as log:
        written = 0
        with pytest.raises(trio.WouldBlock):
            for record in chunks(10):
                log.write_nowait(record)
                written += 1
        assert written == 3
        await log.write(chunks(1, start=written)[0])
        log.write_nowait(chunks(1, start=written + 1)[0])  # the write emptied the buffer
    assert read_log(path).records == chunks(written + 2)


async def test_exit_flushes_even_when_the_body_fails(tmp_path: Path) -> None:
    """The log of a failed run is the one worth reading."""
    path = tmp_path / "run.log"
    with pytest.raises(RuntimeError, match=r"^node failed$"):
        async with open_log_writer(path) as log:
            await log.write("started")
            raise RuntimeError("node failed")
    assert read_log(path).records == ["started"]
    with pytest.raises(trio.ClosedResourceError):
        await log.write("too late")
    with pytest.raises(trio.ClosedResourceError):
        log.write_nowait("too late")


async def test_a_cancelled_write_did_not_happen_and_earlier_ones_did(tmp_path: Path) -> None:
    """Cancel mid-run: exactly the writes that returned are in the log."""
    path = tmp_path / "run.log"
    returned = 0
    async with open_log_writer(path, buffer_bytes=300) as log:
        with trio.CancelScope() as scope:
            for record in chunks(1000):
                if record["seq"] == 500:
                    scope.cancel()
                await log.write(record)
                returned += 1
    assert scope.cancelled_caught and returned == 500
    assert read_log(path).records == chunks(500)


async def test_concurrent_writers_lose_and_reorder_nothing(tmp_path: Path) -> None:
    """Several tasks share a writer; each task's records stay in its own order."""
    path = tmp_path / "run.log"
    async with open_log_writer(path, buffer_bytes=256) as log:

        async def writer(task: int) -> None:
            for i in range(200):
                await log.write([task, i])

        async with trio.open_nursery() as nursery:
            for task in range(4):
                nursery.start_soon(writer, task)
    records = read_log(path).records
    assert sorted(map(tuple, records)) == [(t, i) for t in range(4) for i in range(200)]
    for task in range(4):
        assert [i for t, i in records if t == task] == list(range(200))


async def test_buffer_bytes_must_not_be_negative(tmp_path: Path) -> None:
    """A negative buffer is a caller error, caught before any file is made."""
    with pytest.raises(ValueError, match=r"^buffer_bytes must be >= 0, got -1$"):
        async with open_log_writer(tmp_path / "run.log", buffer_bytes=-1):
            pass  # pragma: no cover
    assert not (tmp_path / "run.log").exists()
