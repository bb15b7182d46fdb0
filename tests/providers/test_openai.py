"""OpenAIChatModel and OpenAIEmbeddings against a loopback server speaking OpenAI's wire format.

Tests that wait (backoff, Retry-After, timeouts, pauses) run on trio's autojump clock: the
server and the client share the test's trio run, loopback bytes are readable as soon as they
are sent, so the clock only jumps when both sides are really waiting.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from loopback import (
    DROP,
    STALL,
    LoopbackServer,
    Pause,
    Reply,
    json_reply,
    openai_chunks,
    sse,
    sse_reply,
)

from rillet.nodes import (
    AIMessage,
    ChatPromptTemplate,
    HumanMessage,
    StrOutputParser,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.messages import AIMessageChunk
from rillet.nodes.providers import (
    MissingAPIKeyError,
    OpenAIChatModel,
    OpenAIEmbeddings,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RetryPolicy,
    Timeouts,
)

USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21,
         "prompt_tokens_details": {"cached_tokens": 4},
         "completion_tokens_details": {"reasoning_tokens": 0}}
FAST_RETRY = RetryPolicy(max_retries=2, initial_backoff=1.0, max_backoff=4.0)


def make_model(server: LoopbackServer, **options: Any) -> OpenAIChatModel:
    options.setdefault("api_key", "sk-test")
    options.setdefault("retry_policy", FAST_RETRY)
    return OpenAIChatModel("gpt-4o-mini", base_url=f"{server.url}/v1", **options)


async def collect(model: OpenAIChatModel, prompt: Any = "hi") -> list[AIMessageChunk]:
    return [chunk async for chunk in model.astream(prompt)]


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city.

    Args:
        city: the city name.
        unit: celsius or fahrenheit.
    """
    return "sunny"


# -- the happy path ---------------------------------------------------------------------------


async def test_text_tool_calls_and_usage_stream_as_chunks(server: LoopbackServer) -> None:
    """Text deltas, two parallel tool calls in fragments, finish_reason and usage."""
    server.reply(sse_reply(openai_chunks(
        text=["Let", " me", " check"],
        tool_calls=[("call_a", "get_weather", ['{"ci', 'ty": "Par', 'is"}']),
                    ("call_b", "get_weather", ['{"city":', ' "Oslo"}'])],
        usage=USAGE)))
    async with make_model(server) as model:
        chunks = await collect(model)
    assert [c.content for c in chunks[:3]] == ["Let", " me", " check"]
    assert {c.id for c in chunks} == {"chatcmpl-abc123"}
    assert [c.chunk_position for c in chunks].count("last") == 1 and chunks[-1].chunk_position
    assert sum(c.usage_metadata is not None for c in chunks) == 1  # once: no double counting
    total = chunks[0] + chunks[1:]
    assert total.content == "Let me check"
    assert [(t["name"], t["id"], t["index"], json.loads(t["args"]))
            for t in total.tool_call_chunks] == [
        ("get_weather", "call_a", 0, {"city": "Paris"}),
        ("get_weather", "call_b", 1, {"city": "Oslo"})]
    assert total.response_metadata == {"finish_reason": "tool_calls",
                                       "model_name": "gpt-4o-mini-2024-07-18",
                                       "system_fingerprint": "fp_1"}
    assert total.usage_metadata == {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21,
                                    "input_token_details": {"cache_read": 4},
                                    "output_token_details": {"reasoning": 0}}


async def test_the_summed_chunk_has_parsed_tool_calls(server: LoopbackServer) -> None:
    """Adding the chunks gives tool_calls whose args are dicts."""
    server.reply(sse_reply(openai_chunks(
        text=[], tool_calls=[("call_a", "get_weather", ['{"city": ', '"Paris"}'])])))
    async with make_model(server) as model:
        message = await model.ainvoke("weather?")
    assert message.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"},
                                   "id": "call_a", "type": "tool_call"}]


async def test_the_request_carries_auth_flags_tools_and_converted_messages(
    server: LoopbackServer,
) -> None:
    """POST /chat/completions with the bearer key, stream flags, tools and every role."""
    server.reply(sse_reply(openai_chunks()))
    model = make_model(server, temperature=0.2, max_tokens=50, stop=["\n\n"],
                       extra_body={"seed": 7}).bind_tools([get_weather],
                                                          tool_choice="get_weather")
    history = [
        SystemMessage("Be brief."),
        HumanMessage("Weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"},
                                   "id": "call_a"}]),
        ToolMessage("sunny", tool_call_id="call_a"),
    ]
    async with model:
        await collect(model, history)
    [exchange] = server.exchanges
    assert (exchange.method, exchange.path) == ("POST", "/v1/chat/completions")
    assert exchange.headers["authorization"] == "Bearer sk-test"
    body = exchange.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_a", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_a"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "the city name."},
            "unit": {"type": "string", "default": "celsius",
                     "description": "celsius or fahrenheit."}},
            "required": ["city"]}}}]
    assert {key: body[key] for key in ("model", "stream", "stream_options", "temperature",
                                       "max_tokens", "stop", "seed", "tool_choice")} == {
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.2, "max_tokens": 50, "stop": ["\n\n"], "seed": 7,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}


async def test_environment_variables_supply_key_and_base_url(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL are read when no argument is given."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    server.reply(sse_reply(openai_chunks()))
    async with OpenAIChatModel("gpt-4o-mini") as model:
        await collect(model)
    assert server.exchanges[0].headers["authorization"] == "Bearer sk-from-env"


def test_openai_itself_needs_a_key_but_a_local_server_does_not() -> None:
    """The missing key is reported at construction, naming the variable."""
    with pytest.raises(MissingAPIKeyError, match="set OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o-mini")
    local = OpenAIChatModel("llama3.2", base_url="http://127.0.0.1:11434/v1")
    assert "authorization" not in local.client.headers
    assert repr(local) == "OpenAIChatModel(model='llama3.2', base_url='http://127.0.0.1:11434/v1')"


async def test_crlf_events_cut_across_chunks_parse_the_same(server: LoopbackServer) -> None:
    """CRLF line endings and HTTP chunks cut mid-event give the same message."""
    raw = b"".join(openai_chunks(text=["Bonjour", " à", " tous"], usage=USAGE, newline="\r\n"))
    server.reply(sse_reply([raw[i:i + 7] for i in range(0, len(raw), 7)]))
    async with make_model(server) as model:
        chunks = await collect(model)
    total = chunks[0] + chunks[1:]
    assert total.content == "Bonjour à tous"
    assert total.usage_metadata is not None and total.usage_metadata["total_tokens"] == 21


async def test_reasoning_and_refusal_deltas_go_to_additional_kwargs(
    server: LoopbackServer,
) -> None:
    """Servers streaming reasoning_content (DeepSeek, vLLM) and refusals keep them apart."""
    def chunk(delta: dict[str, Any]) -> bytes:
        return sse({"id": "chatcmpl-r", "model": "deepseek-r1", "choices": [
            {"index": 0, "delta": delta, "finish_reason": None}]})
    server.reply(sse_reply([
        chunk({"reasoning_content": "Think"}), chunk({"reasoning": "ing."}),
        chunk({"content": "No."}), chunk({"refusal": "I can't."}),
        sse({"id": "chatcmpl-r", "choices": [{"index": 0, "delta": {},
                                              "finish_reason": "stop"}]}),
        sse("[DONE]")]))
    async with make_model(server, stream_usage=False) as model:
        chunks = await collect(model)
    total = chunks[0] + chunks[1:]
    assert total.content == "No."
    assert total.additional_kwargs == {"reasoning_content": "Thinking.", "refusal": "I can't."}
    assert total.usage_metadata is None
    assert "stream_options" not in server.exchanges[0].json()


# -- failures ---------------------------------------------------------------------------------


async def test_an_http_error_raises_the_provider_message_without_retrying(
    server: LoopbackServer,
) -> None:
    """A 401 is not retried; the error carries status, type, message and request id."""
    server.reply(json_reply(401, {"error": {"message": "Incorrect API key provided: sk-test.",
                                            "type": "invalid_request_error",
                                            "code": "invalid_api_key"}},
                            headers={"x-request-id": "req_42"}))
    async with make_model(server) as model:
        with pytest.raises(ProviderError) as caught:
            await collect(model)
    error = caught.value
    assert (error.status, error.error_type, error.request_id, error.attempts) == (
        401, "invalid_api_key", "req_42", 1)
    assert error.provider_message == "Incorrect API key provided: sk-test."
    assert str(error).startswith("openai: HTTP 401 (invalid_api_key): Incorrect API key")
    assert len(server.exchanges) == 1


async def test_a_429_then_success_waits_as_retry_after_says(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """The retry waits exactly the Retry-After seconds, then the stream succeeds."""
    server.reply(json_reply(429, {"error": {"message": "Rate limit reached", "type": "requests",
                                            "code": "rate_limit_exceeded"}},
                            headers={"retry-after": "3"}),
                 sse_reply(openai_chunks(text=["ok"])))
    start = trio.current_time()
    async with make_model(server) as model:
        chunks = await collect(model)
    assert trio.current_time() - start == pytest.approx(3.0)
    assert (chunks[0] + chunks[1:]).content == "ok"
    assert len(server.exchanges) == 2


async def test_5xx_is_retried_with_backoff_up_to_max_retries(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Three 503s with max_retries=2: two jittered waits (1 s, 2 s), then the error."""
    server.reply(*[json_reply(503, {"error": {"message": "Service overloaded"}})] * 3)
    start = trio.current_time()
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match=r"HTTP 503: Service overloaded \[after 3 "
                                                r"attempts\]") as caught:
            await collect(model)
    waited = trio.current_time() - start
    assert 0.75 * 3.0 <= waited <= 3.0
    assert caught.value.attempts == 3 and len(server.exchanges) == 3


async def test_x_should_retry_false_stops_retries(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """The provider's own x-should-retry header overrides the status rule."""
    server.reply(json_reply(500, {"error": {"message": "do not retry"}},
                            headers={"x-should-retry": "false"}))
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match="do not retry"):
            await collect(model)
    assert len(server.exchanges) == 1


async def test_a_refused_connection_is_retried_then_reported(
    closed_port: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Connection refused is retried; the final error names the URL and the attempts."""
    model = OpenAIChatModel("m", base_url=f"http://127.0.0.1:{closed_port}/v1", api_key="k",
                            max_retries=1)
    async with model:
        with pytest.raises(ProviderConnectionError, match=r"could not connect to "
                           r"http://127\.0\.0\.1:\d+/v1: .* \[after 2 attempts\]") as caught:
            await collect(model)
    assert caught.value.error_type == "connect_error" and caught.value.status is None


async def test_a_connect_timeout_fires_after_the_connect_timeout(
    unanswered_port: int, autojump_clock: trio.testing.MockClock
) -> None:
    """A server that never accepts makes a ProviderTimeout after exactly `connect` seconds."""
    model = OpenAIChatModel("m", base_url=f"http://127.0.0.1:{unanswered_port}/v1",
                            api_key="k", max_retries=0, timeout=Timeouts(connect=2.0))
    start = trio.current_time()
    async with model:
        with pytest.raises(ProviderTimeout, match="could not connect within 2 s") as caught:
            await collect(model)
    assert caught.value.error_type == "connect_timeout"
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_a_connection_lost_before_the_first_event_is_retried(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """No reply at all, then headers but no body: both retried, the third try succeeds."""
    server.reply(Reply(close_before_reply=True), sse_reply([DROP]),
                 sse_reply(openai_chunks(text=["fine"])))
    async with make_model(server) as model:
        chunks = await collect(model)
    assert (chunks[0] + chunks[1:]).content == "fine"
    assert len(server.exchanges) == 3


async def test_a_connection_dropped_mid_stream_is_an_error_not_a_retry(
    server: LoopbackServer,
) -> None:
    """After the first token a broken stream raises; the output is never repeated."""
    events = openai_chunks(text=["one", " two", " three"])
    server.reply(sse_reply([*events[:4], DROP]), sse_reply(openai_chunks()))
    seen: list[str] = []
    async with make_model(server) as model:
        with pytest.raises(ProviderConnectionError, match="the connection broke after 4 "
                                                          "events") as caught:
            async for chunk in model.astream("count"):
                seen.append(chunk.text)
    assert caught.value.error_type == "connection_broken"
    assert seen == ["one", " two", " three"]  # each exactly once
    assert len(server.exchanges) == 1


async def test_a_stall_past_the_read_timeout_fails_and_hangs_up(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Silence longer than the idle read timeout raises, and the server sees the hang-up."""
    events = openai_chunks(text=["slow"])
    server.reply(sse_reply([*events[:2], STALL]))
    start = trio.current_time()
    async with make_model(server, timeout=Timeouts(read=5.0)) as model:
        with pytest.raises(ProviderTimeout, match="sent nothing for 5 s after 2 events"):
            await collect(model)
    assert trio.current_time() - start == pytest.approx(5.0)
    [exchange] = server.exchanges
    with trio.fail_after(30):
        await exchange.ended.wait()
    assert exchange.disconnected and exchange.events_sent == 2


async def test_an_error_event_mid_stream_raises_the_provider_message(
    server: LoopbackServer,
) -> None:
    """A data object with an "error" key ends the stream with the server's words."""
    events = openai_chunks(text=["par"])
    server.reply(sse_reply([*events[:2], sse({"error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error"}})]))
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match=r"^openai: server_error: error event "
                                                r"mid-stream: The server had an error"):
            await collect(model)


async def test_a_stream_cut_before_done_and_finish_reason_is_an_error(
    server: LoopbackServer,
) -> None:
    """A cleanly closed stream without [DONE] or finish_reason is incomplete: it raises."""
    events = openai_chunks(text=["half"])
    server.reply(sse_reply(events[:2]))
    async with make_model(server) as model:
        with pytest.raises(ProviderConnectionError, match="ended before \\[DONE\\]"):
            await collect(model)


async def test_a_finish_reason_without_done_is_accepted(server: LoopbackServer) -> None:
    """Servers that stop after finish_reason and never send [DONE] still work."""
    server.reply(sse_reply(openai_chunks(text=["whole"], done=False)))
    async with make_model(server) as model:
        chunks = await collect(model)
    assert chunks[-1].response_metadata["finish_reason"] == "stop"


async def test_a_json_body_where_a_stream_was_expected_is_an_error(
    server: LoopbackServer,
) -> None:
    """A server that ignores stream: true is reported, not misread."""
    server.reply(json_reply(200, {"id": "x", "choices": [{"message": {"content": "hi"}}]}))
    async with make_model(server) as model:
        with pytest.raises(ProviderError, match="expected an event stream, got JSON"):
            await collect(model)


# -- cancellation and the connection pool -----------------------------------------------------


def slow_stream(count: int) -> list[Any]:
    events = openai_chunks(text=[f" w{i}" for i in range(count)])
    return [events[0], *[item for event in events[1:] for item in (event, Pause(1.0))]]


async def test_breaking_out_early_closes_the_connection_at_once(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """A consumer that stops after two chunks makes the server see a disconnect."""
    server.reply(sse_reply(slow_stream(50)), sse_reply(openai_chunks(text=["again"])))
    async with make_model(server) as model:
        taken = []
        async with model.astream("go") as chunks:
            async for chunk in chunks:
                taken.append(chunk.content)
                if len(taken) == 2:
                    break
        first = server.exchanges[0]
        with trio.fail_after(30):
            await first.ended.wait()
        assert taken == [" w0", " w1"]
        assert first.disconnected and first.events_sent < 10
        assert server.open_connections == 0  # nothing leaked
        assert (await model.ainvoke("again")).content == "again"  # the pool still works


async def test_a_cancelled_run_closes_the_connection(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Cancelling the caller (a deadline) mid-stream hangs up on the server too."""
    server.reply(sse_reply(slow_stream(50)))
    async with make_model(server) as model:
        with trio.move_on_after(3.5):
            await collect(model)
        [exchange] = server.exchanges
        with trio.fail_after(30):
            await exchange.ended.wait()
    assert exchange.disconnected and exchange.events_sent < 10


async def test_one_connection_pool_per_model_instance(server: LoopbackServer) -> None:
    """Calls of one model (and its bind_tools copies) reuse a connection; another model
    instance has its own pool."""
    server.reply(*[sse_reply(openai_chunks()) for _ in range(4)])
    model = make_model(server)
    other = make_model(server)
    async with model, other:
        await model.ainvoke("1")
        await model.ainvoke("2")
        await model.bind_tools([get_weather]).ainvoke("3")
        await other.ainvoke("4")
    assert [e.connection for e in server.exchanges] == [1, 1, 1, 2]


# -- as a rillet component --------------------------------------------------------------------


async def test_it_emits_the_same_events_as_any_chat_model(server: LoopbackServer) -> None:
    """on_chat_model_start / stream / end, with the provider and model in the metadata."""
    server.reply(sse_reply(openai_chunks(text=["A", "B"], usage=USAGE)))
    chain = ChatPromptTemplate.from_template("say {x}") | make_model(server)
    events = [event async for event in chain.astream_events({"x": "AB"}, version="v2",
                                                           include_types=["chat_model"])]
    assert [e["event"] for e in events] == ["on_chat_model_start", "on_chat_model_stream",
                                            "on_chat_model_stream", "on_chat_model_stream",
                                            "on_chat_model_end"]
    assert {e["name"] for e in events} == {"OpenAIChatModel"}
    assert events[0]["metadata"]["ls_provider"] == "openai"
    assert events[0]["metadata"]["ls_model_name"] == "gpt-4o-mini"
    output = events[-1]["data"]["output"]
    assert output.content == "AB" and output.usage_metadata["total_tokens"] == 21


async def test_a_prompt_model_parser_chain_streams_tokens(server: LoopbackServer) -> None:
    """prompt | model | StrOutputParser streams the provider's text deltas."""
    server.reply(sse_reply(openai_chunks(text=["Once", " upon", " a", " time"])))
    chain = ChatPromptTemplate.from_template("story about {topic}") | make_model(
        server) | StrOutputParser()
    tokens = [token async for token in chain.astream({"topic": "rivers"})]
    assert "".join(tokens) == "Once upon a time"
    assert server.exchanges[0].json()["messages"] == [
        {"role": "user", "content": "story about rivers"}]


# -- embeddings -------------------------------------------------------------------------------


def embedding_reply(vectors: list[list[float]]) -> Reply:
    # Out of order on purpose: the client must sort by index.
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return json_reply(200, {"object": "list", "data": data[::-1], "model": "emb",
                            "usage": {"prompt_tokens": 3, "total_tokens": 3}})


async def test_embeddings_are_batched_and_returned_in_order(server: LoopbackServer) -> None:
    """Five texts with batch_size=2 make three requests; vectors come back in text order."""
    server.reply(embedding_reply([[1.0], [2.0]]), embedding_reply([[3.0], [4.0]]),
                 embedding_reply([[5.0]]), embedding_reply([[9.0, 9.5]]))
    async with OpenAIEmbeddings("text-embedding-3-small", base_url=f"{server.url}/v1",
                                api_key="sk-test", batch_size=2, dimensions=2) as embeddings:
        vectors = await embeddings.aembed_documents(["a", "b", "c", "d", "e"])
        query = await embeddings.aembed_query("q")
    assert vectors == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    assert query == [9.0, 9.5]
    assert [e.json()["input"] for e in server.exchanges] == [["a", "b"], ["c", "d"], ["e"], ["q"]]
    assert server.exchanges[0].path == "/v1/embeddings"
    assert server.exchanges[0].json()["dimensions"] == 2


async def test_sync_embeddings_work_from_a_worker_thread(server: LoopbackServer) -> None:
    """embed_documents (sync) called from a thread trio started runs on this loop."""
    server.reply(embedding_reply([[0.5], [0.25]]))
    embeddings = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key="k")
    async with embeddings:
        vectors = await trio.to_thread.run_sync(embeddings.embed_documents, ["x", "y"])
    assert vectors == [[0.5], [0.25]]


async def test_embeddings_retry_a_429_and_report_a_wrong_count(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Embedding requests share the retry policy; a short answer is an error."""
    server.reply(json_reply(429, {"error": {"message": "slow down"}},
                            headers={"retry-after-ms": "1500"}),
                 embedding_reply([[1.0]]))
    embeddings = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key="k")
    async with embeddings:
        with pytest.raises(ProviderError, match="asked for 2 embeddings, got 1"):
            await embeddings.aembed_documents(["a", "b"])
    assert len(server.exchanges) == 2


async def test_each_retry_is_logged_once_when_logging_is_on(
    server: LoopbackServer, autojump_clock: trio.testing.MockClock
) -> None:
    """One structlog line per retry, with the reason and the wait; nothing else at warning."""
    from structlog.testing import capture_logs

    from rillet.runtime.logs import configure_logging

    server.reply(json_reply(503, {"error": {"message": "busy"}}, headers={"retry-after": "2"}),
                 sse_reply(openai_chunks(text=["ok"])))
    model = make_model(server)
    configure_logging(True)
    try:
        with capture_logs() as logs:
            async with model:
                await collect(model)
    finally:
        configure_logging(False)
    retries = [entry for entry in logs if entry["event"] == "provider_request_retried"]
    assert retries == [{"event": "provider_request_retried", "provider": "openai", "attempt": 1,
                        "reason": "HTTP 503", "delay": 2.0, "log_level": "warning"}]
