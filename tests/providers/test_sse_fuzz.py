"""Fuzzing provider event streams (issue 16): random mixes of good chunks, broken JSON, garbage
bytes, missing ``[DONE]``, resets, stalls and 429/5xx answers with Retry-After, against the
OpenAI and Anthropic adapters. Each example is its own trio run on the autojump clock, with a
loopback server scripted by hypothesis."""

from __future__ import annotations

import functools
import os
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from loopback import (
    DROP,
    STALL,
    LoopbackServer,
    Pause,
    Reply,
    anthropic_events,
    json_reply,
    openai_chunks,
    sse_reply,
)

from rillet.nodes.providers import (
    AnthropicChatModel,
    OpenAIChatModel,
    ProviderError,
    RetryPolicy,
    Timeouts,
)

FUZZ_SCALE = float(os.environ.get("RILLET_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(120 * FUZZ_SCALE), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
GOOD = {"openai": openai_chunks(text=["Hel", "lo"]),
        "anthropic": anthropic_events(text=["Hel", "lo"])}
NOISE = st.one_of(
    st.sampled_from([b"data: {not json\n\n", b"data: [DONE]\n\n", b": keep-alive\n",
                     b"event: error\ndata: {\"error\": {\"message\": \"boom\"}}\n\n",
                     b"data: {\"choices\": \"nope\"}\n\n", b"\r\n\r\n", b"data: \xff\xfe\n\n",
                     b'event: message_delta\ndata: {"delta": 3}\n\n']),
    st.binary(max_size=40),
    st.floats(0.1, 20).map(Pause),
    st.just(DROP), st.just(STALL))
ERRORS = st.lists(st.tuples(st.sampled_from([429, 500, 502, 503, 529]),
                            st.sampled_from([None, "0", "2", "x", "1e9"])), max_size=2)


def _script(provider: str, keep: list[bool], noise: list[tuple[int, Any]]) -> list[Any]:
    items = [item for item, kept in zip(GOOD[provider], keep, strict=False) if kept]
    for at, item in noise:
        items.insert(at % (len(items) + 1), item)
    return items


async def _run(provider: str, replies: list[Reply]) -> tuple[str, Any]:
    server = LoopbackServer()
    server.reply(*replies)
    options: dict[str, Any] = {
        "api_key": "k", "base_url": None, "timeout": Timeouts(read=5.0, stream=120.0),
        "retry_policy": RetryPolicy(max_retries=1, initial_backoff=0.5, max_backoff=2.0)}
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, server.handle, 0,
                                                          host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        if provider == "openai":
            model: Any = OpenAIChatModel("gpt-4o-mini", **{**options,
                                                           "base_url": f"{server.url}/v1"})
        else:
            model = AnthropicChatModel("claude-x", **{**options, "base_url": server.url})
        try:
            async with model:
                chunks = [chunk async for chunk in model.astream("hi")]
            outcome: tuple[str, Any] = ("ok", "".join(str(c.content) for c in chunks))
        except ProviderError as error:
            outcome = ("error", error)
        nursery.cancel_scope.cancel()
    return outcome


@FUZZ
@example(provider="anthropic", keep=[False] * 12, errors=[],  # found by this test: AttributeError
         noise=[(0, b'event: message_delta\ndata: {"delta": 3}\n\n')])
@given(provider=st.sampled_from(["openai", "anthropic"]),
       keep=st.lists(st.booleans(), min_size=12, max_size=12),
       noise=st.lists(st.tuples(st.integers(0, 100), NOISE), max_size=4), errors=ERRORS)
def test_a_broken_provider_stream_ends_in_text_or_one_clear_error(
    provider: str, keep: list[bool], noise: list[tuple[int, Any]],
    errors: list[tuple[int, str | None]],
) -> None:
    """Whatever the provider sends, the model returns text or raises one ProviderError naming
    the provider, in bounded (mock) time: never another exception, never a hang."""
    replies = [json_reply(status, {"error": {"message": "slow down"}},
                          {"retry-after": wait} if wait else None) for status, wait in errors]
    replies.append(sse_reply(_script(provider, keep, noise)))
    clock = trio.testing.MockClock(autojump_threshold=0)
    kind, value = trio.run(_run, provider, replies, clock=clock)
    event(kind if kind == "ok" else f"error {getattr(value, 'error_type', None)}")
    if kind == "error":
        assert str(value).startswith(provider) and value.provider_message
    else:
        assert isinstance(value, str)
    assert clock.current_time() < 600  # read timeouts and the stream limit bound every wait
