"""The SSE parser: line endings, chunk boundaries anywhere, comments, multi-line data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rillet.nodes.providers.sse import ServerSentEvent, SSEDecoder


def feed_all(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    decoder.close()
    return events


def test_each_blank_line_dispatches_one_event() -> None:
    """A data line and a blank line make an event of type "message"."""
    assert feed_all(b"data: one\n\ndata: two\n\n") == [
        ServerSentEvent(data="one"), ServerSentEvent(data="two")]


def test_crlf_cr_and_lf_line_endings_are_equivalent() -> None:
    """CRLF (Anthropic behind some proxies), CR and LF all end lines."""
    expected = [ServerSentEvent(event="ping", data="{}")]
    for newline in (b"\r\n", b"\r", b"\n"):
        assert feed_all(b"event: ping" + newline + b"data: {}" + newline + newline) == expected


def test_a_crlf_split_between_two_reads_is_one_line_end() -> None:
    """A CR ending one read and the LF starting the next make one line end, not two."""
    assert feed_all(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [
        ServerSentEvent(data="a"), ServerSentEvent(data="b")]


def test_an_event_split_mid_field_waits_for_the_rest() -> None:
    """Nothing is dispatched until the blank line arrives."""
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"choices": [') == []
    assert decoder.feed(b'1]}\n') == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data='{"choices": [1]}')]


def test_a_multibyte_character_cut_between_reads_decodes_whole() -> None:
    """Bytes are split into lines before decoding, so UTF-8 survives any cut."""
    raw = "data: héllo ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert feed_all(raw[:cut], raw[cut:]) == [ServerSentEvent(data="héllo ✓")]


def test_comments_are_skipped() -> None:
    """Lines starting with a colon are keep-alives, not events."""
    assert feed_all(b": keep-alive\n\n: another\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_data_lines_join_with_newlines() -> None:
    """Several data lines of one event join with \\n; only one leading space is stripped."""
    assert feed_all(b"data: line 1\ndata:line 2\ndata:  indented\n\n") == [
        ServerSentEvent(data="line 1\nline 2\n indented")]


def test_id_carries_over_and_retry_is_read() -> None:
    """The last event id applies to later events; retry must be digits."""
    events = feed_all(b"id: 7\nretry: 1500\ndata: a\n\nretry: soon\ndata: b\n\n")
    assert [(e.id, e.retry) for e in events] == [("7", 1500), ("7", None)]


def test_an_event_without_data_is_not_dispatched() -> None:
    """An event line alone resets the type and dispatches nothing."""
    assert feed_all(b"event: ping\n\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_a_leading_bom_is_skipped_even_when_cut() -> None:
    """The UTF-8 byte-order mark at the very start is not part of the first field."""
    assert feed_all(b"\xef\xbb", b"\xbfdata: x\n\n") == [ServerSentEvent(data="x")]


def test_an_unterminated_last_event_is_discarded() -> None:
    """A stream cut before the blank line loses the partial event, never half-dispatches it."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: whole\n\ndata: cut") == [ServerSentEvent(data="whole")]
    decoder.close()
    assert decoder.feed(b"\n\n") == []


STREAM = (
    "event: message_start\r\ndata: {\"a\": \"é\"}\r\n\r\n"
    ": comment\n\n"
    "data: first\ndata: second\n\n"
    "id: 3\revent: x\rdata: y\r\r"
    "data: [DONE]\n\n"
).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_of_a_stream_gives_the_same_events(cuts: list[int]) -> None:
    """Feeding the stream cut at arbitrary byte offsets gives exactly the uncut result."""
    bounds = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in zip(bounds, bounds[1:])]
    assert feed_all(*pieces) == feed_all(STREAM)
    assert [e.data for e in feed_all(STREAM)] == ['{"a": "é"}', "first\nsecond", "y", "[DONE]"]
