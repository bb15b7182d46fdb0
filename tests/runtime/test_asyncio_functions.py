"""Code written for asyncio inside a run: ``async def`` steps and tools that await asyncio run
on the caller's loop (and fail clearly on plain trio); an asyncio iterator feeds
``atransform``; the Worker API and RemoteRunnable work from asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
from asyncio_helpers import collect

from rillet.graphs import RemoteRunnable, RunnableLambda, RunnablePassthrough
from rillet.nodes import (
    ChatPromptTemplate,
    HashingEmbeddings,
    InMemoryVectorStore,
    ScriptedChatModel,
    StrOutputParser,
    tool,
)
from rillet.runtime import AsyncioRequiredError, EventBus, RunCancelled, Worker
from rillet.runtime.engine.hosts_streams import BOUND
from rillet.runtime.serve.server import open_server

JOKE = "Why did the parrot talk? It had a lot to say."


def _joke() -> Any:
    return (ChatPromptTemplate.from_template("tell me a joke about {topic}")
            | ScriptedChatModel([JOKE]) | StrOutputParser())


async def lookup(question: str) -> dict[str, str]:
    """A step written for asyncio: a sleep, a queue and a task of asyncio's own."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_soon(queue.put_nowait, "kensho")
    return {"question": question, "context": await queue.get()}


@tool
async def weather(city: str) -> str:
    """The weather in a city (asyncio code inside)."""
    await asyncio.sleep(0)
    return f"sunny in {city}"


def test_asyncio_steps_and_tools_run_on_the_callers_loop() -> None:
    """An async def lambda and an async tool that await asyncio work under asyncio, through
    ainvoke, astream and astream_events."""
    chain = RunnableLambda(lookup) | (lambda d: f"{d['question']}: {d['context']}")

    async def main() -> tuple[Any, ...]:
        events = await collect(chain.astream_events("where?", version="v2"))
        return (await chain.ainvoke("where?"), await collect(chain.astream("where?")),
                await weather.ainvoke({"city": "Paris"}),
                [e["name"] for e in events if e["event"] == "on_chain_end"])

    assert asyncio.run(main()) == ("where?: kensho", ["where?: kensho"], "sunny in Paris",
                                   ["lookup", "RunnableLambda", "RunnableSequence"])


def test_a_nested_run_inside_an_asyncio_step_is_a_child_run() -> None:
    """A step that awaits another chain from inside its asyncio task makes a child run."""
    inner = RunnableLambda(str.upper, name="inner")

    async def outer(text: str) -> str:
        await asyncio.sleep(0)
        return await inner.ainvoke(text) + "!"

    async def main() -> tuple[str, list[Any]]:
        events = await collect(RunnableLambda(outer).astream_events("hi", version="v2"))
        starts = {e["name"]: e for e in events if e["event"] == "on_chain_start"}
        return events[-1]["data"]["output"], starts["inner"]["parent_ids"] == [
            starts["outer"]["run_id"]]

    assert asyncio.run(main()) == ("HI!", True)


def test_cancelling_the_run_cancels_a_running_asyncio_step() -> None:
    """Leaving the stream while an asyncio step awaits cancels that asyncio task."""
    state: dict[str, Any] = {}

    async def stuck(x: Any) -> Any:
        state["started"].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state["cancelled"].set()
            raise

    async def main() -> None:
        state["started"], state["cancelled"] = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(RunnableLambda(stuck).ainvoke(1))
        await state["started"].wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(state["cancelled"].wait(), 30)  # bounded: it must happen

    asyncio.run(main())


async def test_asyncio_code_on_plain_trio_fails_clearly() -> None:
    """Under trio, a step awaiting asyncio raises AsyncioRequiredError naming node and
    function, with asyncio's own error as its cause; a tool too."""
    with pytest.raises(AsyncioRequiredError, match=r"^node 'lookup': lookup awaited asyncio "
                                                   r"code, but this run is on plain trio") as info:
        await RunnableLambda(lookup).ainvoke("x")
    assert isinstance(info.value.__cause__, (RuntimeError, TypeError))  # asyncio or trio says
    assert getattr(info.value, "rillet_node", None) == "lookup"
    with pytest.raises(AsyncioRequiredError, match=r"node 'weather': weather awaited"):
        await weather.ainvoke({"city": "x"})


def test_sync_invoke_of_an_asyncio_step_fails_clearly() -> None:
    """A sync call runs on rillet's own trio thread, where asyncio steps cannot run."""
    with pytest.raises(AsyncioRequiredError, match="node 'lookup'"):
        RunnableLambda(lookup).invoke("x")


def test_an_asyncio_iterator_feeds_atransform_and_is_closed_when_the_run_ends() -> None:
    """atransform reads an asyncio async generator (bounded) and closes it when the reader
    leaves early; an error in it reaches the caller as it is."""
    state = {"made": 0, "closed": False}

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                await asyncio.sleep(0)
                state["made"] += 1
                yield "x"
        finally:
            state["closed"] = True

    async def failing() -> AsyncIterator[str]:
        yield "a"
        raise KeyError("input broke")

    echo = RunnablePassthrough()

    async def main() -> tuple[int, bool]:
        async with echo.atransform(endless()) as out:
            async for _ in out:
                break
        with pytest.raises(KeyError, match="input broke"):
            await collect(echo.atransform(failing()))
        return state["made"], state["closed"]

    made, closed = asyncio.run(main())
    assert closed and made <= BOUND + 3 * 16


async def _forever(_: Any) -> None:
    await asyncio.Event().wait()


def test_the_worker_api_from_asyncio() -> None:
    """submit, stream, result, events, cancel, subscribe and shutdown work from asyncio."""
    chain = _joke()

    async def main() -> tuple[Any, ...]:
        async with Worker(max_concurrent_runs=2) as worker:
            with worker.subscribe(policy="block", include_types=["chat_model"]) as sub:
                tokens = [t async for t in (await worker.submit(chain, {"topic": "x"})).stream()]
                result = await (await worker.submit(chain, {"topic": "x"})).result()
                events = [e["event"] async for e in
                          (await worker.submit(chain, {"topic": "x"}, events=True)).events()]
                slow = await worker.submit(RunnableLambda(_forever), None)
                slow.cancel("not needed")
                with pytest.raises(RunCancelled, match="not needed"):
                    await slow.result()
                await worker.wait_idle()
                worker.stop_accepting()
                seen = []
                async for event in sub:
                    seen.append(event.name)
                    if len(seen) == 2:
                        break
        return "".join(tokens), result, events[0], events[-1], seen

    assert asyncio.run(main()) == (JOKE, JOKE, "on_chain_start", "on_chain_end",
                                   ["ScriptedChatModel", "ScriptedChatModel"])


def test_an_event_bus_subscription_reads_from_asyncio() -> None:
    """A bus passed in callbacks is read by an asyncio task while the run goes on."""
    chain = _joke()

    async def on_asyncio() -> list[str]:
        bus = EventBus()
        sub = bus.subscribe()
        reader = asyncio.create_task(collect(sub))
        await chain.ainvoke({"topic": "x"}, config={"callbacks": [bus]})
        bus.close()
        return [f"{e.name}:{e.phase}" for e in await reader]

    async def on_trio() -> list[str]:
        bus = EventBus()
        with bus.subscribe(bound=1000) as sub:
            await chain.ainvoke({"topic": "x"}, config={"callbacks": [bus]})
            bus.close()
            return [f"{e.name}:{e.phase}" async for e in sub]

    got = asyncio.run(on_asyncio())
    assert len(got) > 8 and sorted(got) == sorted(trio.run(on_trio))


def test_embeddings_and_vector_search_from_asyncio() -> None:
    """The embeddings' async methods and the store's async search work from asyncio."""
    store = InMemoryVectorStore.from_texts(["harrison worked at kensho", "bears like honey"],
                                           HashingEmbeddings())

    async def main() -> tuple[int, str]:
        vector = await HashingEmbeddings().aembed_query("kensho")
        found = await store.asimilarity_search("where did harrison work?", k=1)
        return len(vector), found[0].page_content

    dims, text = asyncio.run(main())
    assert dims > 0 and text == "harrison worked at kensho"


@pytest.fixture
def served_joke() -> Iterator[str]:
    """``_joke()`` served by ``rillet serve`` on a trio loop in a thread of its own."""
    ready = threading.Event()
    stop: list[Any] = []
    url: list[str] = []

    async def serve() -> None:
        async with Worker() as worker, open_server({"joke": _joke()}, worker=worker) as running:
            url.append(running.url)
            stop.append(trio.lowlevel.current_trio_token())
            done = trio.Event()
            stop.append(done)
            ready.set()
            await done.wait()

    thread = threading.Thread(target=trio.run, args=(serve,), name="test-server")
    thread.start()
    assert ready.wait(30)
    try:
        yield url[0]
    finally:
        stop[0].run_sync_soon(stop[1].set)
        thread.join(30)


def test_remote_runnable_from_asyncio(served_joke: str) -> None:
    """ainvoke, abatch, astream, astream_events and astream_log of a RemoteRunnable."""
    remote = RemoteRunnable(f"{served_joke}/joke")

    async def main() -> tuple[Any, ...]:
        log = None
        async for patch in remote.astream_log({"topic": "x"}):
            log = patch if log is None else log + patch
        assert log is not None
        events = await collect(remote.astream_events({"topic": "x"}))
        return (await remote.ainvoke({"topic": "x"}), await remote.abatch([{"topic": "y"}]),
                "".join(await collect(remote.astream({"topic": "x"}))),
                events[0]["event"], log.state["final_output"])

    assert asyncio.run(main()) == (JOKE, [JOKE], JOKE, "on_chain_start", JOKE)


def test_a_result_the_cancelled_caller_never_received_is_abandoned() -> None:
    """``Host.call(afn, abandon)``: when the asyncio caller is cancelled after the trio side
    made its result (before or after handing it over), ``abandon`` gets that result, once."""
    from rillet.runtime.engine.hosts import host_for

    async def case(cancel_from_trio: bool) -> list[str]:
        loop = asyncio.get_running_loop()
        host = host_for(loop)
        abandoned: list[str] = []
        box: list[asyncio.Task[str]] = []

        async def make() -> str:  # trio side
            if cancel_from_trio:  # queued before the result's wake-up: cancels a done waiter
                loop.call_soon(box[0].cancel)
            return "handle"

        box.append(asyncio.create_task(host.call(make, abandoned.append)))
        if not cancel_from_trio:
            await asyncio.sleep(0)  # the caller now waits; the trio side has not run yet
            box[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await box[0]
        for _ in range(20):  # let the guest run the trio side to its end
            await asyncio.sleep(0)
        return abandoned

    assert asyncio.run(case(cancel_from_trio=False)) == ["handle"]
    assert asyncio.run(case(cancel_from_trio=True)) == ["handle"]


def test_a_worker_submit_cancelled_from_asyncio_leaves_no_run_behind() -> None:
    """An asyncio ``Worker.submit`` cancelled as it launches does not leave an unread run
    holding a slot: the run it made is cancelled."""
    from rillet.runtime import Worker

    async def main() -> tuple[int, int]:
        slow = RunnableLambda(_forever)
        async with Worker(max_concurrent_runs=1) as worker:
            task = asyncio.create_task(worker.submit(slow, 1))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(50):
                await asyncio.sleep(0)
            stats = worker.statistics()
            return stats.running, stats.accepted

    running, accepted = asyncio.run(main())
    assert running == 0
    assert accepted in (0, 1)  # launched and abandoned, or never launched


async def _forever(x: int) -> int:
    await asyncio.sleep(3600)  # an asyncio step: the caller is on asyncio
    return x
