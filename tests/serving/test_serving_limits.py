"""The limits that protect a server (issues 20 and 16): connections that close, slow bodies
and readers cut off, remote readers that cannot stall runs, a cap on open streams.

Real sockets on loopback, so real time: every wait is bounded with ``trio.fail_after`` and the
limits under test are set to fractions of a second.
"""

from __future__ import annotations

import json
import socket

import attrs
import httpx
import pytest
import trio
from http_helpers import open_raw, port_of, read_response, read_until_closed, request_bytes
from serving_apps import JOKE, joke, make_ticks

from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.limits import ServerLimits
from rillet.runtime.serve.server import RunningServer, open_server

BODY = b'{"input": {"topic": "x"}}'


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _json_body(response: bytes) -> dict[str, object]:
    body = response.partition(b"\r\n\r\n")[2]
    parsed: dict[str, object] = json.loads(body)
    return parsed


@pytest.mark.parametrize("path", ["/joke/invoke", "/joke/stream", "/joke/batch"])
async def test_connection_close_is_honoured_after_a_run_endpoint(server: RunningServer,
                                                                 path: str) -> None:
    """With ``Connection: close`` the server closes the socket as soon as it has answered."""
    body = b'{"inputs": [{"topic": "x"}]}' if path.endswith("batch") else BODY
    async with await open_raw(port_of(server.url)) as stream:
        await stream.send_all(request_bytes("POST", path, body, connection="close"))
        with trio.fail_after(5):
            response = await read_until_closed(stream)
    assert _status(response) == 200 and b"Why" in response


async def test_an_idle_keep_alive_connection_closes_after_the_keep_alive_timeout() -> None:
    """Without ``Connection: close`` the connection serves the next request, then closes once it
    has been idle for ``keep_alive_timeout``."""
    limits = ServerLimits(keep_alive_timeout=0.2)
    async with Worker() as worker, open_server({"joke": joke}, worker=worker,
                                               limits=limits) as running:
        async with await open_raw(port_of(running.url)) as stream:
            for _ in range(2):
                await stream.send_all(request_bytes("POST", "/joke/invoke", BODY))
                with trio.fail_after(5):
                    response = await read_response(stream)
                assert _status(response) == 200 and JOKE.encode() in response
            with trio.fail_after(5):
                assert await read_until_closed(stream) == b""


async def test_a_slow_request_body_gets_408_and_the_connection_closes() -> None:
    """A body still incomplete ``body_timeout`` after the headers is refused, not waited for."""
    async with Worker() as worker, open_server({"joke": joke}, worker=worker,
                                               limits=ServerLimits(body_timeout=0.3)) as running:
        async with await open_raw(port_of(running.url)) as stream:
            head = request_bytes("POST", "/joke/invoke", content_length="100")
            await stream.send_all(head + b'{"inp')  # ...and the rest never comes
            with trio.fail_after(5):
                response = await read_until_closed(stream)
        assert _status(response) == 408
        assert _json_body(response) == {
            "status_code": 408, "type": "RequestTimeout",
            "message": "the request body did not arrive within 0.3 s (5 bytes came; serve "
                       "--body-timeout)"}
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            ok = await client.post("/joke/invoke", content=BODY)
        assert ok.json()["output"] == JOKE


async def test_a_remote_reader_cannot_stall_the_runs() -> None:
    """``policy=block`` is refused over HTTP; an /events reader that never reads loses events
    but every run still completes."""
    ticking, _ = make_ticks(2000, 0, size=1024)
    async with Worker() as worker, open_server({"ticks": ticking, "joke": joke},
                                               worker=worker) as running:
        port = port_of(running.url)
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            refused = await client.get("/events", params={"policy": "block", "bound": "1"})
            assert refused.status_code == 422
            assert refused.json()["message"].startswith(
                "policy must be one of ['drop_oldest', 'drop_newest'] over HTTP, got 'block': a "
                "remote reader that stopped reading would park every run of this server")
            async with await open_raw(port, receive_buffer=4096) as deaf:
                await deaf.send_all(request_bytes("GET", "/events?bound=1"))
                assert _status(await deaf.receive_some(4096)) == 200  # then it stops reading
                with trio.fail_after(20):
                    for _ in range(6):  # megabytes of events: far more than the sockets hold
                        reply = await client.post("/ticks/invoke", json={"input": 1})
                        assert reply.status_code == 200
                    assert (await client.post("/joke/invoke", content=BODY)).json()[
                        "output"] == JOKE


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux only")
async def test_a_client_that_stops_reading_is_cut_off_after_the_idle_timeout() -> None:
    """A stream whose client acknowledges nothing for ``idle_timeout`` loses its connection, and
    so its run, instead of parking it for ever."""
    ticking, state = make_ticks(10**9, 0, size=16 * 1024)
    async with Worker() as worker, open_server({"ticks": ticking}, worker=worker,
                                               limits=ServerLimits(idle_timeout=0.5)) as running:
        async with await open_raw(port_of(running.url), receive_buffer=4096) as stream:
            await stream.send_all(request_bytes("POST", "/ticks/stream", b'{"input": 1}'))
            with trio.fail_after(20):
                await state.closed.wait()  # the run was cancelled while the client held on
                await worker.wait_idle()
        assert worker.statistics().running == 0


async def test_streams_beyond_max_streams_get_503_with_retry_after() -> None:
    """Open streams are capped; past the cap a stream is refused at once, other endpoints work."""
    ticking, _ = make_ticks(10_000, 0.01)
    async with Worker() as worker, open_server({"ticks": ticking, "joke": joke}, worker=worker,
                                               limits=ServerLimits(max_streams=2)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            async with client.stream("POST", "/ticks/stream", json={"input": 1}) as one, \
                    client.stream("GET", "/events") as two:
                lines = one.aiter_lines(), two.aiter_lines()  # kept: a dropped iterator hangs up
                for reader in lines:
                    await reader.__anext__()
                busy = await client.post("/ticks/stream", json={"input": 1})
                assert (busy.status_code, busy.headers["retry-after"]) == (503, "1")
                assert busy.json()["type"] == "TooManyStreams"
                assert (await client.get("/events")).status_code == 503
                assert (await client.post("/joke/invoke", content=BODY)).status_code == 200
                health = (await client.get("/healthz")).json()
                assert health["streams"] == 2
            with trio.fail_after(5):
                while (await client.get("/healthz")).json()["streams"]:
                    await trio.sleep(0.01)
            async with client.stream("POST", "/ticks/stream", json={"input": 1}) as again:
                assert again.status_code == 200


def test_limits_have_the_documented_defaults_and_are_checked() -> None:
    """The defaults the README's limits table gives; a limit of zero is caught at once."""
    assert attrs.asdict(ServerLimits()) == {
        "max_body_bytes": 1024 * 1024, "body_timeout": 30.0, "max_streams": 1000,
        "idle_timeout": 60.0, "keep_alive_timeout": 5.0, "ping_interval": 15.0}
    with pytest.raises(ValueError, match=r"^'body_timeout' must be > 0.0: 0$"):
        ServerLimits(body_timeout=0)


async def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every token check goes through hmac.compare_digest, whatever the token sent."""
    import hmac

    from rillet.runtime.serve import server as server_module

    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def recording(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return original(given, expected)

    monkeypatch.setattr(server_module.hmac, "compare_digest", recording)
    async with Worker() as worker, open_server({"joke": joke}, worker=worker,
                                               token="s3cret") as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
            for sent in ("s3cre", "s3cret", "x" * 100):
                await client.get("/healthz", headers={"authorization": f"Bearer {sent}"})
    assert compared == [(sent.encode(), b"s3cret") for sent in ("s3cre", "s3cret", "x" * 100)]

