"""Provider event streams that never end properly (issue 20.6): a line that never ends, bytes
that trickle, a stream that goes on for ever. Each fails with a clear error, in bounded time
and memory, and the connection is closed. Loopback server, autojump clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from loopback import LoopbackServer, Pause, openai_chunks, sse_reply

from rillet.nodes.providers import OpenAIChatModel, ProviderError, ProviderTimeout, Timeouts
from rillet.nodes.providers.sse import MAX_EVENT_BYTES, ServerSentEvent, SSEDecoder
from rillet.runtime.errors import WireFormatError


def make_model(server: LoopbackServer, **options: Any) -> OpenAIChatModel:
    return OpenAIChatModel("gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test",
                           max_retries=0, **options)


async def collect(model: OpenAIChatModel) -> list[Any]:
    return [chunk async for chunk in model.astream("hi")]


def test_an_event_past_the_cap_is_refused_after_the_events_before_it() -> None:
    """A line that never ends grows only to ``max_event_bytes``; the events before it are
    delivered, then the decoder refuses with a message saying why."""
    decoder = SSEDecoder(max_event_bytes=64 * 1024)
    assert decoder.feed(b"data: fine\n\ndata: ") == [ServerSentEvent(data="fine")]
    with pytest.raises(WireFormatError, match=r"^an event of the stream is larger than 65536 "
                                              r"bytes \(65542 so far without its end\)"):
        for _ in range(100):
            decoder.feed(b"x" * 1024)
    assert MAX_EVENT_BYTES == 16 * 1024 * 1024


def test_many_lines_in_one_chunk_and_one_line_in_many_chunks_parse_alike() -> None:
    """However the bytes are cut, the same events come out (and lines are counted)."""
    stream = b"".join(b"data: %d\r\n\r\n" % i for i in range(2000)) + b"data: " + b"y" * 5000
    whole = SSEDecoder()
    events = whole.feed(stream + b"\n\n")
    cut = SSEDecoder()
    pieces = [stream[i:i + 7] for i in range(0, len(stream), 7)] + [b"\n\n"]
    assert [e for piece in pieces for e in cut.feed(piece)] == events
    assert len(events) == 2001 and events[-1].data == "y" * 5000
    assert whole.lines == cut.lines == 4002


async def test_a_line_too_long_for_a_frame_fails_the_stream(server: LoopbackServer) -> None:
    """A provider sending one endless ``data:`` line is cut off at 16 MiB, not buffered."""
    server.reply(sse_reply([b"data: " + b"z" * (MAX_EVENT_BYTES + 1024)]))
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match=r"^openai: event_too_large: an event of the "
                                                r"stream is larger than 16777216 bytes"):
            await collect(model)


async def _times_out_and_hangs_up(server: LoopbackServer, every_second: bytes, timeouts: Timeouts,
                                  match: str) -> float:
    """Two good chunks, then ``every_second`` once a second for ever: the model must raise
    ``ProviderTimeout`` matching ``match`` and the server see the hang-up; the time it took."""
    events = openai_chunks(text=["ok"])
    opening = [b"data: "] if every_second == b"x" else []  # a line begun, never ended
    server.reply(sse_reply([*events[:2], *opening,
                            *[item for _ in range(10_000) for item in (Pause(1.0),
                                                                       every_second)]]))
    start = trio.current_time()
    async with make_model(server, timeout=timeouts) as model:
        with pytest.raises(ProviderTimeout, match=match):
            await collect(model)
    took = trio.current_time() - start
    [exchange] = server.exchanges
    with trio.fail_after(30):
        await exchange.ended.wait()
    assert exchange.disconnected
    return took


async def test_bytes_that_trickle_without_a_line_hit_the_idle_timeout(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock,
) -> None:
    """One byte a second never ends a line: the idle timeout fires after ``read`` seconds
    although the socket is never silent for that long."""
    took = await _times_out_and_hangs_up(
        server, b"x", Timeouts(read=5.0),
        r"^openai: idle_timeout: sent no complete line for 5 s: \d+ bytes trickled in")
    assert took == pytest.approx(5.0, abs=1.1)


async def test_a_stream_that_goes_on_for_ever_hits_the_total_time_limit(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock,
) -> None:
    """Keep-alive comments every second keep a stream from idling, not from ending: after
    ``Timeouts.stream`` it fails, and the server sees the hang-up."""
    took = await _times_out_and_hangs_up(
        server, b": alive\n", Timeouts(read=5.0, stream=30.0),
        r"^openai: stream_timeout: the stream took longer than 30 s in all")
    assert took == pytest.approx(30.0, abs=1.1)
