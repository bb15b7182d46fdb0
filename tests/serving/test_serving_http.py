"""The HTTP server, started for real on a loopback port and driven with httpx."""

from __future__ import annotations

import httpx
import pytest
import trio
from http_helpers import body, decoded, frames
from serving_apps import JOKE, joke, make_ticks, pair

from rillet.runtime.engine.worker import Worker
from rillet.runtime.events.runlog import RunLogPatch
from rillet.runtime.serve.limits import ServerLimits
from rillet.runtime.serve.server import RunningServer, open_server
from rillet.runtime.wire.sse import JSON, MSGPACK

MEDIA = pytest.mark.parametrize("media", [JSON, MSGPACK])


@MEDIA
async def test_invoke_and_batch(client: httpx.AsyncClient, media: str) -> None:
    """/invoke answers {"output", "metadata"}; /batch keeps the order of its inputs."""
    reply = await client.post("/joke/invoke", **body({"input": {"topic": "x"}}, media))
    assert reply.status_code == 200 and reply.headers["content-type"] == media
    assert decoded(reply)["output"] == JOKE
    assert isinstance(decoded(reply)["metadata"]["run_id"], str)
    reply = await client.post("/joke/batch", **body(
        {"inputs": [{"topic": "a"}, "b"], "config": [{"tags": ["t"]}, {}]}, media))
    out = decoded(reply)
    assert out["output"] == [JOKE, JOKE] and len(set(out["metadata"]["run_ids"])) == 2


@MEDIA
async def test_stream_sends_metadata_data_and_end(client: httpx.AsyncClient, media: str) -> None:
    """One data frame per output chunk, between a metadata frame and an end frame."""
    reply = await client.post("/joke/stream", **body({"input": {"topic": "x"}}, media))
    got = frames(reply)
    assert got[0][0] == "metadata" and isinstance(got[0][1]["run_id"], str)
    assert got[-1] == ("end", None)
    assert [e for e, _ in got[1:-1]] == ["data"] * 7
    assert "".join(d for _, d in got[1:-1]) == JOKE


@MEDIA
async def test_stream_events_filters_on_the_server(client: httpx.AsyncClient, media: str) -> None:
    """stream_events sends astream_events dicts, filtered by the include_* of the body."""
    reply = await client.post("/joke/stream_events", **body(
        {"input": {"topic": "x"}, "include_types": ["chat_model"], "version": "v2"}, media))
    events = [d for e, d in frames(reply) if e == "data"]
    assert [ev["event"] for ev in events] == (
        ["on_chat_model_start"] + ["on_chat_model_stream"] * 7 + ["on_chat_model_end"])
    chunks = [ev["data"]["chunk"] for ev in events[1:-1]]
    # Message chunks round-trip when nodes registers them on the wire, else arrive as fields.
    assert "".join(getattr(c, "content", None) or c["content"] for c in chunks) == JOKE


@MEDIA
async def test_stream_log_patches_add_up_to_the_run_log(client: httpx.AsyncClient,
                                                        media: str) -> None:
    """stream_log sends JSON-patch ops whose sum is the run log, final output included."""
    reply = await client.post("/joke/stream_log", **body({"input": {"topic": "x"}}, media))
    patches = [RunLogPatch(*d["ops"]) for e, d in frames(reply) if e == "data"]
    log = sum(patches[1:], patches[0])
    assert log.state["final_output"] == JOKE
    assert sorted(log.state["logs"]) == ["ChatPromptTemplate", "ScriptedChatModel",
                                         "StrOutputParser"]


@MEDIA
async def test_metadata_endpoints(client: httpx.AsyncClient, media: str) -> None:
    """Schemas, the graph, the index and health answer GET in the negotiated format."""
    headers = {"accept": media}
    schema = decoded(await client.get("/joke/input_schema", headers=headers))
    assert schema["anyOf"][0]["required"] == ["topic"]
    assert "run_name" in decoded(await client.get("/joke/config_schema", headers=headers))[
        "properties"]
    output_schema = decoded(await client.get("/joke/output_schema", headers=headers))
    assert output_schema["title"] == "jokeOutput"
    graph = decoded(await client.get("/joke/graph", headers=headers))
    assert "ScriptedChatModel" in graph["mermaid"]
    assert "/joke/stream" in decoded(await client.get("/", headers=headers))["runnables"]["joke"]
    health = await client.get("/healthz", headers=headers)
    assert health.status_code == 200 and decoded(health)["status"] == "ok"


async def test_a_failing_run_reports_its_error(client: httpx.AsyncClient) -> None:
    """Before the first byte: a 500 body; after it: an error frame after the metadata."""
    reply = await client.post("/failing/invoke", json={"input": 1})
    assert reply.status_code == 500
    assert reply.json() == {"status_code": 500, "type": "ValueError", "message": "cannot handle 1"}
    got = frames(await client.post("/failing/stream", json={"input": 1}))
    assert [e for e, _ in got] == ["metadata", "error"]
    assert got[1][1]["type"] == "ValueError"


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"content": b"{not json"}, 400, "request body could not be decoded: not valid JSON"),
    ({"content": b"\xc1", "headers": {"content-type": MSGPACK}}, 400, "not valid msgpack"),
    ({"content": b"", "headers": {"content-type": JSON}}, 400, "request body is empty"),
    ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415,
     "Content-Type must be application/json or application/x-msgpack, got 'text/plain'"),
    ({"json": [1, 2]}, 422, "request body must be an object like"),
    ({"json": {"inputs": 1}}, 422, "request body must have an 'input' key, got keys ['inputs']"),
    ({"json": {"input": ["x"]}, "url": "/pair/invoke"}, 422,
     "'input' must be an object with keys ['a', 'b'], got list: ['x']"),
    ({"json": {"input": {"topic": "x"}, "config": {"tags": 5}}}, 422,
     "config['tags'] must be a list of strings, got int: 5"),
    ({"json": {"input": "x"}, "headers": {"accept": "text/html"}}, 406, "Accept must allow"),
    ({"content": b"x" * 2000}, 413, "request body is 2000 bytes; this server accepts at most 1000"),
])
async def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(
    kwargs: dict[str, object], status: int, message: str,
) -> None:
    """Each refusal names what was expected and what arrived; the next request still works."""
    served = {"joke": joke, "pair": pair}
    async with Worker() as worker, open_server(served, worker=worker,
                                               limits=ServerLimits(max_body_bytes=1000)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            url = kwargs.pop("url", "/joke/invoke")
            reply = await client.post(url, **kwargs)  # type: ignore[arg-type]
            assert reply.status_code == status
            assert message in reply.json()["message"]
            ok = await client.post("/joke/invoke", json={"input": {"topic": "x"}})
            assert ok.json()["output"] == JOKE


async def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    """A body without Content-Length is counted as it arrives and refused past the limit."""
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 500

    async with Worker() as worker, open_server({"joke": joke}, worker=worker,
                                               limits=ServerLimits(max_body_bytes=1000)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            reply = await client.post("/joke/invoke", content=chunks())
    assert reply.status_code == 413
    assert reply.json()["message"] == "request body exceeds 1000 bytes (serve --max-body-bytes)"


async def test_405_and_404_are_json_too(client: httpx.AsyncClient) -> None:
    assert (await client.get("/joke/invoke")).json()["type"] == "MethodNotAllowed"
    missing = await client.post("/nope/invoke", json={})
    assert missing.status_code == 404
    assert missing.json()["message"] == "no endpoint at /nope/invoke; see GET / for what is served"


async def test_a_bearer_token_guards_every_endpoint() -> None:
    """Without the right token every path answers 401; with it, everything works."""
    async with Worker() as worker, open_server({"joke": joke}, worker=worker,
                                               token="s3cret") as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            for method, path in [("POST", "/joke/invoke"), ("GET", "/healthz"),
                                 ("GET", "/events"), ("GET", "/joke/input_schema")]:
                reply = await client.request(method, path)
                assert reply.status_code == 401, path
                assert reply.headers["www-authenticate"] == "Bearer"
            wrong = await client.get("/healthz", headers={"authorization": "Bearer nope"})
            assert wrong.json()["message"] == "wrong bearer token"
            ok = await client.post("/joke/invoke", json={"input": {"topic": "x"}},
                                   headers={"authorization": "Bearer s3cret"})
            assert ok.json()["output"] == JOKE


async def test_client_disconnect_cancels_the_run() -> None:
    """Closing the connection mid-stream stops the run: its generator's finally runs."""
    ticking, state = make_ticks(10_000, 0.01)
    async with Worker() as worker, open_server({"ticks": ticking}, worker=worker) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            async with client.stream("POST", "/ticks/stream", json={"input": 1}) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data: \"2"):
                        break
        with trio.fail_after(5):
            await state.closed.wait()
            await worker.wait_idle()
        assert state.produced < 100


async def test_a_slow_client_parks_its_run() -> None:
    """A client that stops reading fills the socket buffers, then the run waits: bounded."""
    ticking, state = make_ticks(100_000, 0, size=16 * 1024)
    async with Worker() as worker, open_server({"ticks": ticking}, worker=worker) as running:
        port = int(running.url.rsplit(":", 1)[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        request = (b'POST /ticks/stream HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n'
                   b'content-length: 12\r\n\r\n{"input": 1}')
        async with stream:
            await stream.send_all(request)
            await stream.receive_some(1024)  # the headers; then the client stops reading
            produced = -1
            with trio.fail_after(5):
                while produced != state.produced:  # wait until production stops
                    produced = state.produced
                    await trio.sleep(0.2)
            assert produced * 16 * 1024 < 64 * 1024 * 1024  # what sockets and edges hold
            assert worker.statistics().running == 1
        with trio.fail_after(5):
            await state.closed.wait()  # hanging up cancels the parked run


async def test_a_full_worker_answers_503() -> None:
    """With the only slot taken and no queue, a new run is refused with Retry-After."""
    ticking, state = make_ticks(10_000, 0.01)
    async with Worker(max_concurrent_runs=1, max_queued=0, shutdown_timeout=0) as worker:
        async with open_server({"ticks": ticking, "joke": joke}, worker=worker) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
                async with client.stream("POST", "/ticks/stream", json={"input": 1}) as reply:
                    await reply.aiter_lines().__anext__()
                    busy = await client.post("/joke/invoke", json={"input": {"topic": "x"}})
                    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
                    assert busy.json()["type"] == "WorkerBusy"


@MEDIA
async def test_the_events_channel_carries_every_run(server: RunningServer,
                                                    client: httpx.AsyncClient,
                                                    media: str) -> None:
    """GET /events streams the events of runs started by other clients, filtered."""
    params = {"include_types": "chain", "policy": "drop_oldest", "bound": "100"}
    async with client.stream("GET", "/events", params=params,
                             headers={"accept": media}) as feed:
        from rillet.runtime.wire.codec import decode_value
        from rillet.runtime.wire.sse import MsgpackFrameParser, SSEParser, decode_body

        parser = MsgpackFrameParser() if media == MSGPACK else SSEParser()
        chunks = feed.aiter_bytes()
        seen: list[tuple[str, object]] = []
        with trio.fail_after(5):
            while not seen:  # the metadata frame: the subscription is live
                seen += parser.feed(await chunks.__anext__())
            run = await client.post("/joke/invoke", json={"input": {"topic": "x"}})
            run_id = run.json()["metadata"]["run_id"]
            events: list[dict[str, object]] = []
            while not any(e["event"] == "on_chain_end" and e["run_id"] == run_id for e in events):
                for event, data in parser.feed(await chunks.__anext__()):
                    if event == "data":
                        value = decode_value(data) if media == MSGPACK else decode_body(
                            data.encode(), JSON)
                        events.append(value)
        await chunks.aclose()
    assert events[0]["event"] == "on_chain_start" and events[0]["run_id"] == run_id
    assert {e["name"] for e in events} == {"RunnableSequence"}


async def test_shutdown_drains_running_streams_and_refuses_new_runs() -> None:
    """While draining: a running stream completes, a new request gets 503 'shutting down'."""
    ticking, state = make_ticks(20, 0.02)
    async with Worker(shutdown_timeout=5) as worker:
        async with open_server({"ticks": ticking, "joke": joke}, worker=worker) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
                async with client.stream("POST", "/ticks/stream", json={"input": 1}) as reply:
                    lines = reply.aiter_lines()
                    await lines.__anext__()
                    worker.stop_accepting()
                    refused = await client.post("/joke/invoke", json={"input": {"topic": "x"}})
                    assert refused.status_code == 503
                    assert refused.json()["message"] == ("worker is shutting down and accepts "
                                                         "no new runs")
                    health = await client.get("/healthz")
                    assert (health.status_code, health.json()["status"]) == (503, "draining")
                    rest = [line async for line in lines]
    assert "event: end" in rest and state.produced == 20


async def test_a_stream_cut_by_the_shutdown_deadline_ends_with_an_error_frame() -> None:
    """Past shutdown_timeout the run is cancelled and its client is told so, not left hanging."""
    ticking, state = make_ticks(10_000, 0.01)
    async with Worker(shutdown_timeout=0.2) as worker:
        async with open_server({"ticks": ticking}, worker=worker) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
                async with client.stream("POST", "/ticks/stream", json={"input": 1}) as reply:
                    lines = reply.aiter_lines()
                    await lines.__anext__()
                    with trio.fail_after(5):
                        await worker.shutdown()
                    rest = [line async for line in lines]
    assert "event: error" in rest
    error = rest[rest.index("event: error") + 1]
    assert '"type": "RunCancelled"' in error and "the worker shut down before it finished" in error
    assert state.closed.is_set()
