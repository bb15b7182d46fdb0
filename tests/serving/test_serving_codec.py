"""The HTTP codec: values as JSON/msgpack trees, SSE and msgpack frames, Accept negotiation,
and the checks requests go through before they may start a run."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serving_apps import joke

from rillet.runtime.chunks import AddableDict
from rillet.runtime.errors import WireFormatError
from rillet.runtime.lowlevel import RunConfig
from rillet.runtime.serve.requests import RequestRejected, check_config, check_input, input_schema
from rillet.runtime.wire.codec import ErrorInfo
from rillet.runtime.wire.sse import (
    JSON,
    MSGPACK,
    MsgpackFrameParser,
    SSEParser,
    decode_body,
    dumps,
    frame,
    negotiate,
    sse_frame,
    to_tree,
)


@pytest.mark.parametrize("media", [JSON, MSGPACK])
def test_values_round_trip_in_both_formats(media: str) -> None:
    """Tuples, bytes, big ints and nested dicts come back exactly."""
    value = {"t": (1, "a"), "b": b"\x00\xff", "n": 2**70, "nested": [{"k": None}]}
    assert decode_body(dumps(to_tree(value), media), media) == value


def test_what_the_wire_cannot_carry_is_described_not_fatal() -> None:
    """Exceptions become ErrorInfo; dict subclasses plain dicts; unknown objects their repr."""
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    tree = to_tree({"error": KeyError("k"), "parallel": AddableDict(a="x"), "odd": Odd()})
    assert decode_body(dumps(tree, JSON), JSON) == {
        "error": ErrorInfo(type="KeyError", message="'k'"), "parallel": {"a": "x"}, "odd": "<odd>"}


def test_sse_frames_parse_back_across_any_split() -> None:
    """Frames split anywhere, with CRLF or LF, comments and multi-line data, parse whole."""
    stream = (sse_frame("metadata", {"run_id": "r"}) + b": ping\r\n\r\n"
              + b"event: data\r\ndata: line1\r\ndata: line2\r\n\r\n" + sse_frame("end", None))
    for cut in range(len(stream) + 1):
        parser = SSEParser()
        frames = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert frames == [("metadata", '{"run_id": "r"}'), ("data", "line1\nline2"), ("end", "")]


@given(st.lists(st.binary(max_size=5), max_size=40))
def test_sse_parser_never_fails_on_arbitrary_bytes(pieces: list[bytes]) -> None:
    """Garbage yields frames or nothing, never an exception (the client decides what is bad)."""
    parser = SSEParser()
    for piece in pieces:
        parser.feed(piece)


def test_sse_parser_bounds_one_frame() -> None:
    """An endless frame is refused instead of buffered without limit."""
    with pytest.raises(WireFormatError, match="an SSE frame is larger than 100 bytes"):
        SSEParser(max_frame=100).feed(b"data: " + b"x" * 200)


def test_msgpack_frames_parse_back_and_reject_non_events() -> None:
    """A msgpack stream is back-to-back event maps; anything else is a WireFormatError."""
    data = frame("data", to_tree((1, 2)), MSGPACK) + frame("end", None, MSGPACK)
    parser = MsgpackFrameParser()
    assert parser.feed(data[:3]) == []
    assert parser.feed(data[3:]) == [("data", {"__rillet__": "tuple", "items": [1, 2]}),
                                     ("end", None)]
    with pytest.raises(WireFormatError, match="expected an event map, got 7"):
        MsgpackFrameParser().feed(b"\x07")


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, JSON), ("*/*", JSON), ("application/json", JSON), ("text/event-stream", JSON),
    ("application/x-msgpack", MSGPACK), ("application/x-msgpack;q=0.5, application/json", JSON),
    ("application/json;q=0.2, application/x-msgpack", MSGPACK),
    ("*/*, application/x-msgpack", MSGPACK), ("text/html", None),
    ("application/json;q=0", None),
])
def test_negotiation_picks_the_best_offered_format(accept: str | None, chosen: str | None) -> None:
    """Quality first, then exact types over wildcards; nothing acceptable gives None (406)."""
    assert negotiate(accept) == chosen


def test_config_over_http_is_checked_key_by_key() -> None:
    """Unknown keys and wrong types are refused with what was expected and what arrived."""
    assert check_config({"run_name": "r", "bound": 0}) == RunConfig(run_name="r", bound=0)
    with pytest.raises(RequestRejected, match=r"has keys \['callbacks'\] that are not accepted"):
        check_config({"callbacks": []})
    with pytest.raises(RequestRejected, match=r"config\['tags'\] must be a list of strings, "
                                              r"got str: 'x'"):
        check_config({"tags": "x"})
    with pytest.raises(RequestRejected, match=r"^422 InvalidConfig: config must be a dict "
                                              r"\(a JSON object\), got list: \[1\]$"):
        check_config([1])


def test_a_prompt_first_chain_gets_an_input_schema_from_its_variables() -> None:
    """The schema looks through the sequence to the prompt; one variable also takes a bare value."""
    schema = input_schema(joke)
    check_input(schema, {"topic": "x"})
    check_input(schema, "bare")
    with pytest.raises(RequestRejected, match=r"'input' is missing keys \['topic'\]; expected "
                                              r"keys \['topic'\], got \['subject'\]") as info:
        check_input(schema, {"subject": "x"})
    assert info.value.status == 422


def test_clients_decode_unregistered_types_as_descriptions() -> None:
    """A client without a server's types gets their fields instead of a WireFormatError."""
    tree = {"chunk": {"__rillet__": "NotHere", "content": "hi", "parts": {
        "__rillet__": "tuple", "items": [1, 2]}}, "known": {"__rillet__": "tuple", "items": []}}
    assert decode_body(dumps(tree, JSON), JSON, lenient=True) == {
        "chunk": {"__type__": "NotHere", "content": "hi", "parts": (1, 2)}, "known": ()}
    with pytest.raises(WireFormatError, match="unknown wire type 'NotHere'"):
        decode_body(dumps(tree, JSON), JSON)
