"""RemoteRunnable: a Runnable whose runs happen on a real server, in JSON and msgpack."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from serving_apps import JOKE, joke, make_ticks

from rillet.graphs import RemoteRunnable, RunnableLambda
from rillet.nodes import AIMessage, ChatPromptTemplate, ScriptedChatModel, StrOutputParser
from rillet.runtime import EventBus
from rillet.runtime.engine.worker import Worker
from rillet.runtime.errors import ConfigError, RemoteError
from rillet.runtime.serve.remote import remote_events
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
    events = [e async for e in remote.astream_events({"topic": "x"})]
    own = events[0]["run_id"]
    assert [(e["event"], e["name"]) for e in events if e["run_id"] == own] == [
        ("on_chain_start", "RemoteRunnable"), *[("on_chain_stream", "RemoteRunnable")] * 7,
        ("on_chain_end", "RemoteRunnable")]
    nested = [(e["event"], e["name"]) for e in events if own in e["parent_ids"]]
    local_names = [(e["event"], e["name"]) async for e in joke.astream_events({"topic": "x"})]
    assert nested == local_names
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
    with pytest.raises(RemoteError, match=r"^HTTP 500: ValueError: cannot handle 1\n\(raised "
                                          r"in rillet node 'RemoteRunnable'"):
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
        async with RemoteRunnable(f"{running.url}/ticks").astream(1) as stream:
            async for _ in stream:
                break
        with trio.fail_after(5):
            await state.closed.wait()
        assert state.produced < 10_000


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


chat = ChatPromptTemplate.from_template("tell me a joke about {topic}") | ScriptedChatModel(
    responses=[JOKE])


@pytest.fixture
async def chat_server() -> Any:
    """A chat model chain (its output: message chunks) served as ``chat``, and ``joke``."""
    async with Worker(max_concurrent_runs=8) as worker, open_server(
            {"chat": chat, "joke": joke}, worker=worker) as running:
        yield running


@MSGPACK_OR_NOT
async def test_a_remote_chat_chain_composes_with_a_local_parser(chat_server: RunningServer,
                                                               use_msgpack: bool) -> None:
    """``RemoteRunnable(url) | StrOutputParser()`` streams the remote model's text token by
    token, and invoke gives the whole text."""
    chain = RemoteRunnable(f"{chat_server.url}/chat", use_msgpack=use_msgpack) | StrOutputParser()
    tokens = [t async for t in chain.astream({"topic": "x"})]
    assert len(tokens) > 1 and "".join(tokens) == JOKE
    assert await chain.ainvoke({"topic": "x"}) == JOKE
    assert await trio.to_thread.run_sync(lambda: list(chain.stream({"topic": "x"}))) == tokens


async def test_a_remote_runnable_composes_on_the_right_and_in_parallels(
        chat_server: RunningServer) -> None:
    """A local step before it, and a dict of branches around it, both work."""
    remote = RemoteRunnable(f"{chat_server.url}/joke")
    before = RunnableLambda(lambda topic: {"topic": topic}) | remote
    assert await before.ainvoke("parrots") == JOKE
    both = RunnableLambda(lambda topic: {"topic": topic}) | {"remote": remote, "local": joke}
    assert await both.ainvoke("x") == {"remote": JOKE, "local": JOKE}


async def test_invoked_on_its_own_it_returns_the_servers_result(chat_server: RunningServer) -> None:
    """A direct ainvoke is one POST /invoke: the server's finished message, as local."""
    remote = RemoteRunnable(f"{chat_server.url}/chat")
    got = await remote.ainvoke({"topic": "x"})
    local = await chat.ainvoke({"topic": "x"})
    assert type(got) is type(local) is AIMessage and got.content == local.content == JOKE


async def test_remote_events_nest_under_the_remote_runnables_run(
        chat_server: RunningServer) -> None:
    """The server's chat model events come with parent_ids that continue the local run's, and
    filters see them as local ones; tags of the local run travel with the request."""
    chain = (RemoteRunnable(f"{chat_server.url}/chat") | StrOutputParser()).with_config(
        tags=["client"])
    events = [e async for e in chain.astream_events({"topic": "x"},
                                                    include_types=["chat_model"])]
    assert {e["event"] for e in events} == {"on_chat_model_start", "on_chat_model_stream",
                                            "on_chat_model_end"}
    remote_id = None
    async for e in chain.astream_events({"topic": "x"}):
        if e["name"] == "RemoteRunnable":
            remote_id = e["run_id"]
        if e["event"] == "on_chat_model_start":
            assert remote_id is not None and remote_id in e["parent_ids"]
            assert "client" in e["tags"]
            break
    else:
        raise AssertionError("no chat model start")


async def test_an_event_bus_in_callbacks_hears_the_remote_run(chat_server: RunningServer) -> None:
    """``config={"callbacks": [bus]}``: the bus gets the local and the remote run's events."""
    bus = EventBus()
    with bus.subscribe(bound=256) as sub:
        output = await RemoteRunnable(f"{chat_server.url}/joke").ainvoke(
            {"topic": "x"}, {"callbacks": [bus]})
        bus.close()
        names = {event.name async for event in sub}
    assert output == JOKE
    assert {"RemoteRunnable", "RunnableSequence", "ScriptedChatModel"} <= names


async def test_a_bad_config_is_refused_before_any_request(chat_server: RunningServer) -> None:
    """The same ConfigError as a local runnable's, and no request is made."""
    remote = RemoteRunnable(f"{chat_server.url}/joke")
    with pytest.raises(ConfigError, match=r"^config\['tags'\] must be a list of strings, "
                                          r"got int: 3$"):
        await remote.ainvoke({"topic": "x"}, {"tags": 3})  # type: ignore[typeddict-item]


@pytest.mark.parametrize("read", ["astream", "astream_events"])
async def test_leaving_a_composed_chain_early_cancels_the_server_run(read: str) -> None:
    """Inside a client-side chain too, on the plain and the events path, leaving early hangs
    up and the server's run stops."""
    ticking, state = make_ticks(10_000, 0.01)
    async with Worker() as worker, open_server({"ticks": ticking}, worker=worker) as running:
        chain = RemoteRunnable(f"{running.url}/ticks") | StrOutputParser()
        async with getattr(chain, read)(1) as stream:
            async for _ in stream:
                if state.produced:
                    break
        with trio.fail_after(5):
            await state.closed.wait()
        assert state.produced < 10_000
