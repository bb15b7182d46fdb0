"""HTTP helpers of the serving tests: bodies in either format, decoded replies and frames."""

from __future__ import annotations

from typing import Any

import httpx

from rillet.runtime.wire.codec import decode_value, encode_value
from rillet.runtime.wire.sse import JSON, MSGPACK, MsgpackFrameParser, SSEParser, decode_body, dumps


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
