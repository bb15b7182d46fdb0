"""AnthropicChatModel against a loopback server speaking Anthropic's Messages stream."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from loopback import (
    LoopbackServer,
    Pause,
    anthropic_events,
    json_reply,
    sse,
    sse_reply,
)

from rillet.nodes import AIMessage, HumanMessage, StrOutputParser, SystemMessage, ToolMessage
from rillet.nodes.messages import AIMessageChunk
from rillet.nodes.providers import (
    AnthropicChatModel,
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderError,
    RetryPolicy,
)


def make_model(server: LoopbackServer, **options: Any) -> AnthropicChatModel:
    options.setdefault("api_key", "sk-ant-test")
    options.setdefault("retry_policy", RetryPolicy(max_retries=2, initial_backoff=1.0))
    return AnthropicChatModel("claude-sonnet-4-5", base_url=server.url, **options)


async def collect(model: AnthropicChatModel, prompt: Any = "hi") -> list[AIMessageChunk]:
    return [chunk async for chunk in model.astream(prompt)]


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


async def test_thinking_text_tool_use_and_cumulative_usage(server: LoopbackServer) -> None:
    """The whole event flow, pings included, adds up to one message; usage counts once."""
    server.reply(sse_reply(anthropic_events(
        thinking=["Let me", " think."], text=["I'll", " check."],
        tool=("toolu_01", "get_weather", ['{"city":', ' "Paris"}']),
        output_tokens=(3, 10, 17))))
    async with make_model(server) as model:
        chunks = await collect(model)
    assert {c.id for c in chunks} == {"msg_01XYZ"}
    assert [c.chunk_position for c in chunks].count("last") == 1
    assert sum(c.usage_metadata is not None for c in chunks) == 1
    total = chunks[0] + chunks[1:]
    assert total.text == "I'll check."
    assert total.content == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAh", "index": 0},
        "I'll check."]
    [call] = total.tool_call_chunks
    assert (call["name"], call["id"], call["index"]) == ("get_weather", "toolu_01", 2)
    assert json.loads(call["args"]) == {"city": "Paris"}
    assert total.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"},
                                 "id": "toolu_01", "type": "tool_call"}]
    # message_delta usage is cumulative (3, 10, 17): the last is taken, never the sum.
    assert total.usage_metadata == {"input_tokens": 30, "output_tokens": 17, "total_tokens": 47,
                                    "input_token_details": {"cache_read": 5,
                                                            "cache_creation": 0}}
    assert total.response_metadata == {"stop_reason": "tool_use", "stop_sequence": None,
                                       "model_name": "claude-sonnet-4-5-20250929"}


async def test_the_request_has_headers_system_field_and_tool_blocks(
    server: LoopbackServer,
) -> None:
    """x-api-key, anthropic-version, system out of the messages, tool turns as blocks."""
    server.reply(sse_reply(anthropic_events()))
    model = make_model(server, max_tokens=300, temperature=0.0, stop=["END"]).bind_tools(
        [get_weather], tool_choice="get_weather")
    thinking = {"type": "thinking", "thinking": "Two cities.", "signature": "sig", "index": 0}
    history = [
        SystemMessage("You are terse."),
        HumanMessage("Weather in Paris and Oslo?"),
        AIMessage([thinking, "Checking both."], tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_1"},
            {"name": "get_weather", "args": {"city": "Oslo"}, "id": "toolu_2"}]),
        ToolMessage("sunny", tool_call_id="toolu_1"),
        ToolMessage("failed", tool_call_id="toolu_2", status="error"),
        SystemMessage("Answer in French."),
    ]
    async with model:
        await collect(model, history)
    [exchange] = server.exchanges
    assert (exchange.method, exchange.path) == ("POST", "/v1/messages")
    assert exchange.headers["x-api-key"] == "sk-ant-test"
    assert exchange.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in exchange.headers
    body = exchange.json()
    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
             "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [  # both results in one turn, as Anthropic requires
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "failed",
             "is_error": True}]},
    ]
    assert {key: body[key] for key in ("model", "max_tokens", "stream", "temperature",
                                       "stop_sequences", "tool_choice")} == {
        "model": "claude-sonnet-4-5", "max_tokens": 300, "stream": True, "temperature": 0.0,
        "stop_sequences": ["END"], "tool_choice": {"type": "tool", "name": "get_weather"}}
    assert body["tools"] == [{"name": "get_weather", "description": "Current weather in a city.",
                              "input_schema": {"type": "object",
                                               "properties": {"city": {"type": "string"}},
                                               "required": ["city"]}}]


def test_a_missing_key_is_reported_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """No api_key and no ANTHROPIC_API_KEY: a clear error naming the variable."""
    with pytest.raises(MissingAPIKeyError, match="set ANTHROPIC_API_KEY"):
        AnthropicChatModel("claude-sonnet-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert AnthropicChatModel("claude-sonnet-4-5").client.headers["x-api-key"] == "from-env"


async def test_an_error_event_mid_stream_raises_anthropics_message(
    server: LoopbackServer,
) -> None:
    """An `error` event after some text fails the stream with the provider's words."""
    events = anthropic_events(text=["Par", "tial"])
    server.reply(sse_reply([*events[:5], sse({"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}, "error")]))
    seen: list[str] = []
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match=r"^anthropic: overloaded_error: error event "
                                                r"mid-stream: Overloaded") as caught:
            async for chunk in model.astream("hi"):
                seen.append(chunk.text)
    assert caught.value.status is None and caught.value.error_type == "overloaded_error"
    assert "".join(seen) == "Partial"
    assert len(server.exchanges) == 1


async def test_an_overloaded_529_is_retried(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """HTTP 529 before the stream starts is retried with backoff, then succeeds."""
    server.reply(json_reply(529, {"type": "error", "error": {"type": "overloaded_error",
                                                             "message": "Overloaded"}}),
                 sse_reply(anthropic_events(text=["ok"])))
    async with make_model(server) as model:
        chunks = await collect(model)
    assert (chunks[0] + chunks[1:]).text == "ok"
    assert len(server.exchanges) == 2


async def test_an_http_error_names_anthropics_error_type(server: LoopbackServer) -> None:
    """A 400 carries Anthropic's error type and message, without retries."""
    server.reply(json_reply(400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: must be at most 64000"}},
        headers={"request-id": "req_011"}))
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match=r"^anthropic: HTTP 400 \(invalid_request_error\)"
                                                r": max_tokens: must be at most 64000 "
                                                r"\[request req_011\]"):
            await collect(model)
    assert len(server.exchanges) == 1


async def test_a_stream_without_message_stop_is_an_error(server: LoopbackServer) -> None:
    """A stream that ends cleanly but before message_stop is incomplete."""
    server.reply(sse_reply(anthropic_events(stop=False)))
    async with make_model(server) as model:
        with pytest.raises(ProviderConnectionError, match="ended before message_stop"):
            await collect(model)


async def test_crlf_events_cut_anywhere_and_unknown_events_are_read_right(
    server: LoopbackServer,
) -> None:
    """CRLF endings, cuts mid-event and an event type from the future change nothing."""
    events = anthropic_events(text=["Grüß", " Gott"])
    events.insert(3, sse({"type": "content_block_wiggle", "index": 0}, "content_block_wiggle"))
    raw = b"".join(events).replace(b"\n", b"\r\n")
    server.reply(sse_reply([raw[i:i + 5] for i in range(0, len(raw), 5)]))
    async with make_model(server) as model:
        chunks = await collect(model)
    total = chunks[0] + chunks[1:]
    assert total.content == "Grüß Gott"
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 17


async def test_a_parser_chain_streams_text_without_thinking(server: LoopbackServer) -> None:
    """model | StrOutputParser yields the answer's text; thinking stays in the message."""
    server.reply(sse_reply(anthropic_events(thinking=["hmm"], text=["Blue", " sky"])))
    chain = make_model(server) | StrOutputParser()
    assert "".join([token async for token in chain.astream("why?")]) == "Blue sky"


async def test_it_emits_the_same_events_as_any_chat_model(server: LoopbackServer) -> None:
    """on_chat_model_start / stream / end, with provider and model name in the metadata."""
    server.reply(sse_reply(anthropic_events(text=["A", "B"])))
    events = [event async for event in make_model(server).astream_events("hi", version="v2")]
    names = [e["event"] for e in events]
    assert names[0] == "on_chat_model_start" and names[-1] == "on_chat_model_end"
    assert set(names[1:-1]) == {"on_chat_model_stream"}
    assert events[0]["metadata"]["ls_provider"] == "anthropic"
    assert events[-1]["data"]["output"].content == "AB"


async def test_breaking_out_early_hangs_up_on_the_server(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Leaving the stream after the first chunk closes the connection at once."""
    events = anthropic_events(text=[f" w{i}" for i in range(40)])
    server.reply(sse_reply([item for event in events for item in (event, Pause(1.0))]))
    async with make_model(server) as model:
        async with model.astream("go") as chunks:
            async for _ in chunks:
                break
        [exchange] = server.exchanges
        with trio.fail_after(30):
            await exchange.ended.wait()
    assert exchange.disconnected and exchange.events_sent < 10
    assert server.open_connections == 0
