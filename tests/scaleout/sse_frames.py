"""Reading a gateway's SSE responses in the scale-out tests: frames, data frames, ended runs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from rillet.runtime.wire.sse import SSEParser

Frame = tuple[str, Any]


def frames(parser: SSEParser, chunk: bytes) -> list[Frame]:
    """The frames ``chunk`` completed, their data decoded from JSON."""
    return [(event, json.loads(data) if data else None) for event, data in parser.feed(chunk)]


async def until_data(reply: httpx.Response, count: int) -> list[Frame]:
    """The frames of a streamed ``reply`` until ``count`` data frames arrived."""
    parser, seen = SSEParser(), []
    async for chunk in reply.aiter_bytes():
        seen += frames(parser, chunk)
        if [event for event, _ in seen].count("data") >= count:
            break
    return seen


async def follow_events(http: httpx.AsyncClient, params: dict[str, str], seen: list[Frame], *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Read ``GET /events`` into ``seen`` until cancelled; started once its metadata frame (the
    subscription is live) has arrived."""
    async with http.stream("GET", "/events", params=params) as reply:
        parser, chunks = SSEParser(), reply.aiter_bytes()
        while not seen:
            seen.extend(frames(parser, await chunks.__anext__()))
        task_status.started()
        async for chunk in chunks:
            seen.extend(frames(parser, chunk))


def ended(seen: list[Frame]) -> set[str]:
    """Run ids whose root chain ended, among ``/events`` data frames."""
    return {data["run_id"] for event, data in seen if event == "data"
            and data["event"] == "on_chain_end" and data["name"] == "RunnableSequence"}
