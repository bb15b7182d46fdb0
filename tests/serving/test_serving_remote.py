"""RemoteRunnable: the Runnable API over a real server, in JSON and msgpack."""

from __future__ import annotations

import pytest
import trio
from serving_apps import JOKE, joke, make_ticks

from rillet.runtime.engine.worker import Worker
from rillet.runtime.errors import RemoteError
from rillet.runtime.serve.remote import RemoteRunnable, remote_events
from rillet.runtime.serve.server import RunningServer, open_server

MSGPACK_OR_NOT = pytest.mark.parametrize("use_msgpack", [False, True])


@MSGPACK_OR_NOT
async def test_async_round_trips(server: RunningServer, use_msgpack: bool) -> None:
    """ainvoke, abatch, astream, astream_events and astream_log match the local runnable."""
    remote = RemoteRunnable(f"{server.url}/joke", use_msgpack=use_msgpack)
    assert await remote.ainvoke({"topic": "x"}) == await joke.ainvoke({"topic": "x"})
    assert await remote.abatch([{"topic": "a"}, {"topic": "b"}]) == [JOKE, JOKE]
    tokens = [t async for t in remote.astream({"topic": "x"})]
    assert tokens == [t async for t in joke.astream({"topic": "x"})]
    remote_names = [(e["event"], e["name"]) async for e in remote.astream_events({"topic": "x"})]
    local_names = [(e["event"], e["name"]) async for e in joke.astream_events({"topic": "x"})]
    assert remote_names == local_names
    log = None
    async for patch in remote.astream_log({"topic": "x"}):
        log = patch if log is None else log + patch
    assert log is not None and log.state["final_output"] == JOKE


async def test_sync_api_from_a_thread(server: RunningServer) -> None:
    """invoke, batch and stream work from plain synchronous code."""
    remote = RemoteRunnable(f"{server.url}/joke")

    def use() -> tuple[object, object, object]:
        return (remote.invoke({"topic": "x"}), remote.batch(["a"]),
                "".join(remote.stream({"topic": "x"})))

    assert await trio.to_thread.run_sync(use) == (JOKE, [JOKE], JOKE)


async def test_errors_come_back_as_remote_errors(server: RunningServer) -> None:
    """A failed run and a refused request raise RemoteError with the server's type and status."""
    with pytest.raises(RemoteError, match=r"^HTTP 500: ValueError: cannot handle 1$") as info:
        await RemoteRunnable(f"{server.url}/failing").ainvoke(1)
    assert (info.value.type, info.value.status) == ("ValueError", 500)
    with pytest.raises(RemoteError, match=r"^HTTP 500: ValueError: cannot handle 1$"):
        [t async for t in RemoteRunnable(f"{server.url}/failing").astream(1)]
    with pytest.raises(RemoteError, match=r"HTTP 422: InvalidInput: 'input' is missing keys"):
        await RemoteRunnable(f"{server.url}/joke").ainvoke({"subject": "x"})
    with pytest.raises(RemoteError, match=r"HTTP 404: NotFound"):
        await RemoteRunnable(f"{server.url}/nope").ainvoke(1)


async def test_a_token_is_sent_when_given() -> None:
    async with Worker() as worker, open_server({"joke": joke}, worker=worker, token="t") as running:
        with pytest.raises(RemoteError, match=r"^HTTP 401: Unauthorized"):
            await RemoteRunnable(f"{running.url}/joke").ainvoke({"topic": "x"})
        remote = RemoteRunnable(f"{running.url}/joke", token="t")
        assert await remote.ainvoke({"topic": "x"}) == JOKE


async def test_leaving_a_remote_stream_early_cancels_the_server_run() -> None:
    """aclose() on the stream hangs up, and the server cancels the run."""
    ticking, state = make_ticks(10_000, 0.01)
    async with Worker() as worker, open_server({"ticks": ticking}, worker=worker) as running:
        stream = RemoteRunnable(f"{running.url}/ticks").astream(1)
        async for _ in stream:
            break
        await stream.aclose()
        with trio.fail_after(5):
            await state.closed.wait()
        assert stream.run_id is not None


async def test_remote_events_tails_the_worker_channel(server: RunningServer) -> None:
    """remote_events yields the events of runs other clients start."""
    async with remote_events(server.url, include_names=["RunnableSequence"]) as events:
        await events.connect()
        run_id = None
        with trio.fail_after(5):
            await RemoteRunnable(f"{server.url}/joke").ainvoke({"topic": "x"})
            async for event in events:
                run_id = run_id or event["run_id"]
                if event["event"] == "on_chain_end":
                    break
    assert event["data"]["output"] == JOKE and event["run_id"] == run_id
