"""Unknown fields in a request body are refused with 422, like every other bad field."""

from __future__ import annotations

import httpx
import pytest
from serving_apps import JOKE, joke

from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.server import open_server


@pytest.mark.parametrize(("url", "payload", "message"), [
    ("/joke/stream_events", {"input": {"topic": "x"}, "include_type": ["parser"]},
     "unknown field 'include_type' in the stream_events request body; expected some of"),
    ("/joke/stream_log", {"input": {"topic": "x"}, "difff": False},
     "unknown field 'difff' in the stream_log request body"),
    ("/joke/invoke", {"input": {"topic": "x"}, "confg": {"tags": ["a"]}},
     "unknown field 'confg' in the invoke request body"),
    ("/joke/batch", {"inputs": [{"topic": "x"}], "version": "v1"},
     "unknown field 'version' in the batch request body"),
    ("/joke/invoke", {"input": {"topic": "x"}, "kwargs": {"a": 1}}, "'kwargs' is not supported"),
])
async def test_an_unknown_body_field_is_a_422(url: str, payload: object, message: str) -> None:
    """A misspelt filter or option is refused instead of silently ignored."""
    async with Worker() as worker, open_server({"joke": joke}, worker=worker) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
            reply = await client.post(url, json=payload)
            assert reply.status_code == 422
            assert reply.json()["type"] == "InvalidRequest"
            assert message in reply.json()["message"]
            ok = await client.post("/joke/invoke", json={"input": {"topic": "x"}, "kwargs": {}})
            assert ok.json()["output"] == JOKE
