"""Malformed input gets a 400/422 JSON answer that says what is wrong, never a plain 500
(issue 20.4), and the server goes on serving."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgpack
import pytest
from serving_apps import JOKE, echo, joke, pair, undrawable

from rillet.graphs import RunnableLambda
from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.server import open_server
from rillet.runtime.wire.checks import MAX_NESTING
from rillet.runtime.wire.sse import JSON, MSGPACK, decode_body


def _deep_json(levels: int) -> bytes:
    return b'{"input": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def _deep_msgpack(levels: int) -> bytes:
    """``{"input": [[...]]}`` by hand: msgpack's packer itself stops at 512 levels."""
    return b"\x81\xa5input" + b"\x91" * (levels - 2) + b"\x90"


def _nested_output(_: object) -> object:
    value: list[Any] = []
    for _ in range(5_000):
        value = [value]
    return value


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    served = {"joke": joke, "pair": pair, "echo": echo, "undrawable": undrawable,
              "deep": RunnableLambda(_nested_output, name="deep")}
    async with Worker() as worker, open_server(served, worker=worker) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            yield http


MSGPACK_BODY = {"content-type": MSGPACK}
CASES = [
    pytest.param(b'{"input": ' + b"7" * 5000 + b"}", {}, 400,
                 "request body could not be decoded: not valid JSON here (Exceeds the limit (4300 "
                 "digits) for integer string conversion", id="json-int-over-4300-digits"),
    pytest.param(b'{"input": {"__rillet__": "bytes", "base64": "a"}}', {}, 400,
                 'request body could not be decoded: {"__rillet__": "bytes"} needs base64 text in '
                 '"base64", got \'a\'', id="bad-base64"),
    pytest.param(msgpack.packb({"input": {"__rillet__": "int", "bytes": b"\x7f" * 5000}}),
                 MSGPACK_BODY, 400, "the body holds an integer of 5000 bytes; integers may have "
                 "at most 4300 digits", id="tagged-int-too-long-to-print"),
    pytest.param(msgpack.packb({b"input": 1, "config": {}}), MSGPACK_BODY, 400,
                 "the body has a map key that is not a string: bytes b'input'",
                 id="msgpack-mixed-key-types"),
    pytest.param(msgpack.packb({"input": {1: "x"}}), MSGPACK_BODY, 400,
                 "not valid msgpack (int is not allowed for map key", id="msgpack-int-key"),
    pytest.param(_deep_json(MAX_NESTING + 1), {}, 400,
                 "the body nests deeper than 100 levels of lists and maps (the limit)",
                 id="json-101-deep"),
    pytest.param(_deep_json(100_000), {}, 400, "not valid JSON here: it nests too deeply to parse",
                 id="json-100k-deep"),
    pytest.param(_deep_msgpack(600), MSGPACK_BODY, 400,
                 "the body nests deeper than 100 levels of lists and maps (the limit)",
                 id="msgpack-600-deep"),
    pytest.param(_deep_msgpack(5000), MSGPACK_BODY, 400, "not valid msgpack",
                 id="msgpack-past-its-own-stack"),
    pytest.param(b'{"input": NaN}', {}, 400, 'NaN is not a JSON number; send it as '
                 '{"__rillet__": "float", "value": "NaN"}', id="json-nan"),
    pytest.param(b'{"input": -Infinity}', {}, 400, "-Infinity is not a JSON number",
                 id="json-infinity"),
    pytest.param(b'{"input": "\\ud800"}', {}, 400, "holds a string that is not valid Unicode "
                 "(a lone surrogate '\\ud800' at index 0)", id="lone-surrogate"),
    pytest.param(b'{"input": "x", "\xff": 1}', {}, 400, "not valid JSON", id="non-utf8"),
    pytest.param(b'{"input": {"a": 1, "b": 2}, "config": {"callbacks": [], "x": 1}}', {}, 422,
                 "'config' has keys ['callbacks', 'x'] that are not accepted over HTTP",
                 id="unknown-config-keys"),
]


@pytest.mark.parametrize(("content", "headers", "status", "message"), CASES)
async def test_malformed_bodies_get_a_clear_json_4xx(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int,
    message: str,
) -> None:
    """The answer is JSON with the error shape and a message naming what is wrong."""
    for path in ("/echo/invoke", "/pair/stream", "/echo/stream_events"):
        reply = await client.post(path, content=content, headers=headers)
        assert reply.status_code == status, (path, reply.text)
        assert reply.headers["content-type"] == JSON
        problem = reply.json()
        assert set(problem) == {"status_code", "type", "message"}
        assert message in problem["message"]
    assert (await client.post("/joke/invoke", json={"input": {"topic": "x"}})).json()[
        "output"] == JOKE


async def test_the_nesting_limit_is_exact(client: httpx.AsyncClient) -> None:
    """A body exactly MAX_NESTING deep is served (and echoed back whole), one more is not."""
    for body, media in ((_deep_json(MAX_NESTING), JSON), (_deep_msgpack(MAX_NESTING), MSGPACK)):
        reply = await client.post("/echo/invoke", content=body,
                                  headers={"content-type": media, "accept": media})
        assert reply.status_code == 200
        value = decode_body(reply.content, media)["output"]
        depth = 1
        while value:
            value, depth = value[0], depth + 1
        assert depth == MAX_NESTING - 1  # the body's outer map holds the input


async def test_non_finite_floats_are_sent_as_standard_json(client: httpx.AsyncClient) -> None:
    """NaN and infinities (from msgpack, which has them) come back as standard JSON that
    decodes to the same floats."""
    body = msgpack.packb({"input": [math.nan, math.inf, -math.inf, 1.5]})
    reply = await client.post("/echo/invoke", content=body, headers={"content-type": MSGPACK})
    assert reply.status_code == 200
    assert "NaN" not in reply.text.replace('"NaN"', "")  # only inside the tagged map
    json.loads(reply.text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    nan, inf, minus, plain = decode_body(reply.content, JSON)["output"]
    assert math.isnan(nan) and (inf, minus, plain) == (math.inf, -math.inf, 1.5)


async def test_an_output_too_deep_to_encode_is_a_json_error(client: httpx.AsyncClient) -> None:
    """A run whose output nests past what can be encoded fails with a clear error: a JSON 500
    for invoke, an error frame for a stream."""
    reply = await client.post("/deep/invoke", json={"input": 1})
    assert reply.status_code == 500
    assert reply.json() == {"status_code": 500, "type": "WireFormatError",
                            "message": "a dict nests too deeply to send"}
    stream = await client.post("/deep/stream", json={"input": 1})
    assert "event: error" in stream.text and "nests too deeply to send" in stream.text


async def test_a_bug_in_an_endpoint_is_a_json_500_without_a_traceback(
    client: httpx.AsyncClient,
) -> None:
    """Whatever escapes an endpoint is answered in the error shape; the next request works."""
    reply = await client.get("/undrawable/graph")
    assert reply.status_code == 500
    assert reply.json() == {"status_code": 500, "type": "InternalServerError",
                            "message": "the server failed on this request (RuntimeError); it "
                                       "goes on serving other requests"}
    assert "Traceback" not in reply.text
    assert (await client.get("/healthz")).status_code == 200
