"""Fuzzing the HTTP server (issue 16): random bodies and headers on every endpoint.

One server runs for the whole module in a thread of its own (its own trio run), so hypothesis
drives it with plain synchronous requests. Whatever arrives, the answer is one of the statuses
a client can act on, in the error shape when it is an error, never a 500; a body that decodes
comes back exactly from ``echo``; and after every example the server still serves.

``RILLET_FUZZ_SCALE=50 python -m bench.soak fuzz`` runs the same properties 50 times longer.
"""

from __future__ import annotations

import json
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_apps import JOKE, echo, joke, pair

from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.limits import ServerLimits
from rillet.runtime.serve.server import open_server
from rillet.runtime.wire.checks import MAX_NESTING
from rillet.runtime.wire.codec import encode_value
from rillet.runtime.wire.sse import JSON, MSGPACK, decode_body, dumps

# Falsifying examples can be 400 kB bodies: hypothesis warns about their repr.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
FUZZ_SCALE = float(os.environ.get("RILLET_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(200 * FUZZ_SCALE), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
#: What a client may get back; 500 is not among them: the served graphs never fail.
STATUSES = {200, 400, 404, 405, 406, 408, 413, 415, 422, 501, 503}
# Idle connections outlive the module: a pooled connection the server closed just as the client
# reuses it is an HTTP race of its own, not what this module tests.
LIMITS = ServerLimits(max_body_bytes=256 * 1024, body_timeout=2.0, max_streams=50,
                      keep_alive_timeout=3600)
PATHS = ["/echo/invoke", "/echo/batch", "/echo/stream", "/echo/stream_events", "/echo/stream_log",
         "/joke/invoke", "/pair/stream", "/echo/input_schema", "/joke/output_schema",
         "/joke/config_schema", "/joke/graph", "/events", "/healthz", "/", "/nope/invoke",
         "/echo/nope"]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A server on loopback in a thread with its own trio run, for the whole module."""
    started: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()

    async def serve() -> None:
        stop = trio.Event()
        async with Worker(max_concurrent_runs=32, max_queued=64, shutdown_timeout=1) as worker:
            async with open_server({"echo": echo, "joke": joke, "pair": pair}, worker=worker,
                                   limits=LIMITS) as running:
                started.put((running.url, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    base, token, stop = started.get(timeout=30)
    try:
        yield base
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(20)


@pytest.fixture(scope="module")
def http(url: str) -> Iterator[httpx.Client]:
    """One client for every example (it reconnects after the server closed a connection)."""
    with httpx.Client(base_url=url, timeout=20) as client:
        yield client


def values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """JSON-ish values, with the edges: 64-bit and huge ints, NaN, long and odd strings."""
    leaves = (st.none() | st.booleans() | st.integers() | st.integers(-(10**30), 10**30)
              | st.floats() | st.text(max_size=30) | st.binary(max_size=20))
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=5)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                        max_leaves=max_leaves)


def _deep(levels: int, opener: bytes, closer: bytes) -> bytes:
    return b'{"input": ' + opener * levels + closer * levels + b"}"


CONFIGS = st.none() | st.dictionaries(
    st.sampled_from(["tags", "metadata", "run_name", "run_id", "bound", "max_concurrency",
                     "recursion_limit", "configurable", "callbacks", "unknown"]),
    values(5), max_size=4)
REQUESTS = st.builds(lambda i, c, extra: {"input": i, "config": c, **extra}, values(), CONFIGS,
                     st.dictionaries(st.sampled_from(["inputs", "version", "diff",
                                                      "include_names", "stream_mode"]),
                                     values(4), max_size=2))
BODIES = st.one_of(
    st.binary(max_size=300),
    REQUESTS.map(lambda r: json.dumps(encode_value(r), default=repr).encode()),
    REQUESTS.map(lambda r: msgpack.packb(encode_value(r), default=repr)),
    st.integers(1, 200_000).map(lambda n: _deep(n, b"[", b"]")),
    st.integers(1, 2_000).map(lambda n: _deep(n, b'{"a":', b"}")),
    st.integers(4000, 6000).map(lambda n: b'{"input": ' + b"9" * n + b"}"),
    st.sampled_from([b"NaN", b'{"input": Infinity}', b'{"input": "\\udfff"}', b"",
                     b'{"input": {"__rillet__": "bytes", "base64": "@@"}}',
                     b'{"input": {"__rillet__": "tuple"}}', b"\xef\xbb\xbf{}"]),
    st.integers(1, 4096).map(lambda extra: b'{"input": "' + b"x" * (LIMITS.max_body_bytes + extra)
                             + b'"}'),
)
MEDIA = st.sampled_from([None, JSON, MSGPACK, "text/plain", "application/json; charset=latin-1",
                         "application/x-msgpack; q=0.1", "*/*", "", "application/"])


def _read(client: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response,
                                                                               bytes]:
    """The response and its body; of a stream only its first bytes (``/events`` never ends)."""
    with client.stream(method, path, **kwargs) as response:
        if response.headers.get("content-type", "").startswith(("text/event-stream", MSGPACK)) \
                and "content-length" not in response.headers:
            chunks = response.iter_bytes()
            return response, next(chunks, b"")
        return response, response.read()


def _check_answer(response: httpx.Response, content: bytes) -> None:
    assert response.status_code in STATUSES, (response.status_code, content[:300])
    if response.status_code == 200:
        return
    media = MSGPACK if response.headers.get("content-type", "").startswith(MSGPACK) else JSON
    problem = decode_body(content, media)
    assert set(problem) == {"status_code", "type", "message"}, problem
    assert problem["status_code"] == response.status_code and problem["message"]


def _still_serving(client: httpx.Client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_after_all_that_the_server_still_runs_graphs(http: httpx.Client) -> None:
    """Last in the module: a real run still works and nothing is left running."""
    reply = http.post("/joke/invoke", json={"input": {"topic": "x"}})
    assert reply.status_code == 200 and reply.json()["output"] == JOKE
    for _ in range(200):
        if http.get("/healthz").json()["running"] == 0:
            break
        time.sleep(0.01)  # runs of dropped streams unwind in the server's thread
    assert http.get("/healthz").json()["running"] == 0


@FUZZ
@given(path=st.sampled_from(PATHS), method=st.sampled_from(["POST", "GET", "PUT"]),
       body=BODIES, content_type=MEDIA, accept=MEDIA)
def test_any_body_on_any_endpoint_gets_an_answer_a_client_can_act_on(
    http: httpx.Client, path: str, method: str, body: bytes, content_type: str | None,
    accept: str | None,
) -> None:
    """Random, malformed, deep, huge or non-UTF-8 bodies with any Content-Type and Accept:
    never a 500, errors in the error shape, and the server keeps serving."""
    headers = {key: value for key, value in (("content-type", content_type),
                                             ("accept", accept)) if value is not None}
    try:
        response, content = _read(http, method, path, content=body, headers=headers)
    except (httpx.WriteError, httpx.LocalProtocolError, httpx.RemoteProtocolError):
        # The server refused at once (413, 404, 405) and closed while a body larger than the
        # socket buffers was still being sent: HTTP allows that (and the client's kernel may
        # then drop the answer it had already received).
        assert len(body) > 64 * 1024
    else:
        _check_answer(response, content)
    _still_serving(http)


@FUZZ
@given(value=values(40), media=st.sampled_from([JSON, MSGPACK]))
def test_what_decodes_comes_back_exactly(http: httpx.Client, value: Any, media: str) -> None:
    """A valid body of any value is echoed back as exactly that value, in either format
    (NaN compared as NaN); a body past the nesting limit is refused with 400."""
    body = dumps(encode_value({"input": value}), media)
    reply = http.post("/echo/invoke", content=body,
                      headers={"content-type": media, "accept": media})
    if _depth(value) + 1 > MAX_NESTING:
        assert reply.status_code == 400
        return
    assert reply.status_code == 200, reply.text
    assert _same(decode_body(reply.content, media)["output"], value)


_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip)  # h11 (the client) refuses values with outer spaces


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(["accept", "content-type", "authorization",
                                                "x-forwarded-for", "expect", "cookie",
                                                "accept-encoding", "te", "range"]),
                               _HEADER_TEXT, max_size=5),
       query=st.dictionaries(st.sampled_from(["policy", "bound", "version", "include_names",
                                              "include_types", "exclude_tags", "x"]),
                             _HEADER_TEXT, max_size=4))
def test_any_headers_and_query_get_an_answer_a_client_can_act_on(
    http: httpx.Client, headers: dict[str, str], query: dict[str, str],
) -> None:
    """Odd header values and /events queries: a clear answer, never a 500."""
    for method, path in (("POST", "/echo/invoke"), ("GET", "/events"), ("GET", "/healthz")):
        response, content = _read(http, method, path, headers=headers, params=query,
                                  content=b'{"input": 1}' if method == "POST" else None)
        _check_answer(response, content)


@FUZZ
@given(head=st.binary(max_size=200), length=st.sampled_from(["", "0", "5", "-1", "1e3", "²",
                                                             "99999999999999999999", " 7"]))
def test_raw_request_garbage_never_gets_a_500(url: str, http: httpx.Client, head: bytes,
                                             length: str) -> None:
    """Bytes that are barely HTTP (a broken request line, odd Content-Length): the server
    answers 4xx or closes, and goes on serving."""
    port = int(url.rsplit(":", 1)[1])
    request = (b"POST /echo/invoke HTTP/1.1\r\nhost: x\r\n" + head.replace(b"\r\n\r\n", b"")
               + (f"\r\ncontent-length: {length}".encode() if length else b"")
               + b"\r\nconnection: close\r\n\r\n{\"input\": 1}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if answer:
        assert not answer.startswith(b"HTTP/1.1 500"), answer[:300]
    _still_serving(http)


def _depth(value: Any) -> int:
    """Levels of the value's wire tree (what the nesting limit counts)."""
    tree, deepest, stack = encode_value(value), 0, [(encode_value(value), 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict)
                                                   else node))
    return deepest if tree is not None else 0


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(
            map(_same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            _same(got[k], want[k]) for k in want)
    return bool(got == want) and type(got) is type(want)
