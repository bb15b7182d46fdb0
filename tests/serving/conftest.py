"""Fixtures of the serving tests: a real server on a loopback port, and HTTP helpers.

These tests use real sockets, so they never use the autojump clock; every wait is bounded
with ``trio.fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from serving_apps import failing, joke

from runtime.server import RunningServer, open_server
from runtime.sse_codec import JSON, MSGPACK, MsgpackFrameParser, SSEParser, decode_body, dumps
from runtime.wire import decode_value, encode_value
from runtime.worker import Worker


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """``joke`` and ``failing`` served on 127.0.0.1 at a free port."""
    async with Worker(max_concurrent_runs=8, max_queued=8, shutdown_timeout=1) as worker:
        async with open_server({"joke": joke, "failing": failing}, worker=worker) as running:
            yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http


def body(payload: Any, media: str) -> dict[str, Any]:
    """httpx keyword arguments posting ``payload`` in ``media`` and accepting the same."""
    return {"content": dumps(encode_value(payload), media),
            "headers": {"content-type": media, "accept": media}}


def decoded(response: httpx.Response) -> Any:
    media = MSGPACK if response.headers["content-type"].startswith(MSGPACK) else JSON
    return decode_body(response.content, media)


def frames(response: httpx.Response) -> list[tuple[str, Any]]:
    """The decoded frames of a whole streamed response (SSE or msgpack)."""
    if response.headers["content-type"].startswith(MSGPACK):
        return [(event, decode_value(data)) for event, data in
                MsgpackFrameParser().feed(response.content)]
    assert response.headers["content-type"].startswith("text/event-stream")
    return [(event, decode_body(data.encode(), JSON) if data else None)
            for event, data in SSEParser().feed(response.content)]
