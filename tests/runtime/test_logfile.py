from __future__ import annotations

import contextlib
import io
import random
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from rillet.runtime.errors import TruncatedLogError, WireFormatError
from rillet.runtime.wire.codec import decode_value, encode_value
from rillet.runtime.wire.logfile import LogContents, LogWriter, iter_log, open_log_writer, read_log

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
    """Byte offset where each complete msgpack value ends (header first)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    ends = []
    for _ in unpacker:
        ends.append(unpacker.tell())
    return ends


def test_records_come_back_with_the_header(tmp_path: Path) -> None:
    """A log holds the header (with the format version) and every record, in order."""
    path = tmp_path / "run.log"
    write_log(path)
    assert read_log(path) == LogContents(header={"rillet_log": 1, "run_id": "r1"}, records=RECORDS)
    assert read_log(str(path)).records == RECORDS
    assert read_log(path.read_bytes()).records == RECORDS
    with contextlib.closing(iter_log(path)) as records:
        assert list(records) == RECORDS


def test_pre_encoded_bytes_and_wire_trees_are_records(tmp_path: Path) -> None:
    """Bytes are written as they are; trees from encode_value decode back exactly."""
    path = tmp_path / "run.log"
    with LogWriter(path) as log:
        log.write(msgpack.packb({"already": "packed"}))
        log.write(encode_value({"t": (1, 2)}))
    contents = read_log(path)
    assert contents.header == {"rillet_log": 1}
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
    """A record msgpack cannot pack raises at write time and leaves no partial bytes."""
    path = tmp_path / "run.log"
    with LogWriter(path) as log:
        log.write("before")
        with pytest.raises(
            WireFormatError,
            match=r"^cannot write a record of type 'dict' to an event log: .*encode it with "
            r"rillet\.runtime\.wire\.encode_value first$",
        ):
            log.write({"big": [1, 2, object()]})
        log.write("after")
    assert read_log(path).records == ["before", "after"]


def expected_cut(data: bytes, cut: int) -> tuple[int, list[Any]]:
    """Where a log cut at ``cut`` breaks, and the records complete before that."""
    ends = record_ends(data)
    complete = [end for end in ends if end <= cut]
    offset = complete[-1] if complete else 0
    return offset, RECORDS[: max(len(complete) - 1, 0)]


def test_a_log_cut_at_any_byte_keeps_every_complete_record(tmp_path: Path) -> None:
    """Cut anywhere, a log either reads as its complete records or names the cut record."""
    data = write_log(tmp_path / "full.log")
    ends = set(record_ends(data))
    path = tmp_path / "cut.log"
    for cut in range(len(data) + 1):
        offset, complete = expected_cut(data, cut)
        path.write_bytes(data[:cut])
        if cut in ends:
            assert read_log(path).records == complete
            continue
        for source in (path, data[:cut]):
            with pytest.raises(TruncatedLogError) as info:
                read_log(source)
            assert info.value.offset == offset <= cut
            assert info.value.events == complete
            assert f" at byte {offset}: " in str(info.value) or "is empty" in str(info.value)
        yielded: list[Any] = []
        with pytest.raises(TruncatedLogError) as info:
            yielded.extend(iter_log(path))
        assert info.value.offset == offset and info.value.events == []
        assert yielded == complete


def test_a_truncation_names_the_file_and_the_lost_bytes(tmp_path: Path) -> None:
    """The message says which log, where the broken record starts and how much is lost."""
    path = tmp_path / "run.log"
    data = write_log(path)
    path.write_bytes(data[:-3])
    offset = record_ends(data)[-2]
    lost = len(data) - 3 - offset
    with pytest.raises(
        TruncatedLogError,
        match=rf"^event log {named(path)} is truncated at byte {offset}: "
        rf"the log ends {lost} bytes into a record$",
    ):
        read_log(path)


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [(b"\xc1", "not valid msgpack"), (b"\xa2\xff\xfe", "a string is not valid UTF-8")],
    ids=["reserved-byte", "bad-utf8"],
)
def test_garbage_in_the_middle_is_malformed_at_its_offset(
    tmp_path: Path, garbage: bytes, reason: str
) -> None:
    """Garbage between records stops the read there, keeping the records before it."""
    data = write_log(tmp_path / "full.log")
    ends = record_ends(data)
    middle = ends[3]  # after the header and three records
    path = tmp_path / "bad.log"
    path.write_bytes(data[:middle] + garbage + data[middle:])
    message = rf"^event log {named(path)} is malformed at byte {middle}: {reason}$"
    with pytest.raises(TruncatedLogError, match=message) as info:
        read_log(path)
    assert info.value.offset == middle
    assert info.value.events == RECORDS[:3]
    with pytest.raises(TruncatedLogError, match=message):
        list(iter_log(path))


def test_random_corruption_never_escapes_as_another_error(tmp_path: Path) -> None:
    """Flipped bytes give records or a WireFormatError, never a stray msgpack exception."""
    data = write_log(tmp_path / "full.log")
    rng = random.Random(1234)
    for _ in range(300):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        with contextlib.suppress(WireFormatError):
            read_log(bytes(corrupt))


def test_an_empty_file_is_a_truncated_log(tmp_path: Path) -> None:
    """A writer that died before its header leaves an empty file: truncated at byte 0."""
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(
        TruncatedLogError,
        match=rf"^event log {named(path)} is empty: "
        r"expected a header record \{'rillet_log': 1, \.\.\.\}$",
    ) as info:
        read_log(path)
    assert (info.value.offset, info.value.events) == (0, [])
    with pytest.raises(TruncatedLogError, match="is empty"):
        list(iter_log(path))


@pytest.mark.parametrize(
    "first",
    [[1, 2], {"run_id": "r1"}, "rillet_log"],
    ids=["list", "map-without-version", "str"],
)
def test_a_file_without_a_header_is_not_a_log(tmp_path: Path, first: Any) -> None:
    """msgpack that does not start with the header is refused outright."""
    path = tmp_path / "other.msgpack"
    path.write_bytes(msgpack.packb(first) + msgpack.packb("record"))
    with pytest.raises(
        WireFormatError, match=rf"^{named(path)} is not a rillet event log: its first record is "
    ) as info:
        read_log(path)
    assert not isinstance(info.value, TruncatedLogError)
    with pytest.raises(WireFormatError, match="is not a rillet event log"):
        list(iter_log(path))


def test_another_format_version_is_refused() -> None:
    """A log from a newer rillet says which version it is."""
    data = msgpack.packb({"rillet_log": 2}) + msgpack.packb("record")
    with pytest.raises(
        WireFormatError,
        match=r"^event log '<bytes>' has format version 2; this rillet reads version 1$",
    ):
        read_log(data)


def chunks(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"seq": i, "chunk": "x" * 50} for i in range(start, start + n)]


async def test_async_writer_batches_records_into_the_file(tmp_path: Path) -> None:
    """Records reach the file in batches while the run goes on, and all of them on exit."""
    path = tmp_path / "run.log"
    async with open_log_writer(trio.Path(path), header={"run_id": "r1"}, buffer_bytes=1000) as log:
        for record in chunks(100):
            await log.write(record)
        # ~70 bytes a record and a 1000-byte buffer: all but the last batch is on disk.
        on_disk = read_log(path).records
        assert on_disk == chunks(len(on_disk)) and 85 <= len(on_disk) < 100
    contents = read_log(path)
    assert contents.header == {"rillet_log": 1, "run_id": "r1"}
    assert contents.records == chunks(100)


async def test_write_nowait_refuses_only_when_the_buffer_is_full(tmp_path: Path) -> None:
    """write_nowait never blocks: a full buffer is trio.WouldBlock, and the record is not taken."""
    path = tmp_path / "run.log"
    size = len(msgpack.packb(chunks(1)[0]))
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
