"""The guest run's life: one per loop, gone with the loop, nothing left behind after repeated
``asyncio.run`` or 1,000 cancelled streams; sync calls inside a running loop (a notebook cell)
keep working; inside a trio task they refuse, naming the async call to use."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio
from asyncio_helpers import guest_tasks

from rillet.graphs import RunnableLambda
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser
from rillet.runtime.engine import hosts

JOKE = "Why did the parrot talk? It had a lot to say."


def _joke() -> Any:
    return (ChatPromptTemplate.from_template("tell me a joke about {topic}")
            | ScriptedChatModel([JOKE]) | StrOutputParser())


async def _use_everything(chain: Any) -> None:
    await chain.ainvoke({"topic": "x"})
    async for _ in chain.astream({"topic": "x"}):
        break
    async for _ in chain.astream_events({"topic": "x"}):
        pass
    await chain.abatch([{"topic": "a"}, {"topic": "b"}])


def test_repeated_asyncio_run_leaves_no_thread_task_or_guest_behind(
    settled_threads: Callable[[int], int],
) -> None:
    """Twenty asyncio.run calls that stream, cancel and batch: afterwards the thread count is
    back where the first one left it, each loop's last tasks were its own, and no guest is
    left registered."""
    chain = _joke()
    leftover: list[set[str]] = []

    async def main() -> None:
        await _use_everything(chain)
        leftover.append({t.get_name() for t in asyncio.all_tasks()
                         if t is not asyncio.current_task()})

    asyncio.run(main())  # warm: the trio I/O thread and the portal may start once
    baseline = threading.active_count()
    for _ in range(20):
        asyncio.run(main())
    assert settled_threads(baseline) <= baseline
    assert all(names == {"rillet-trio-guest"} for names in leftover), leftover
    assert not list(hosts._hosts)


def test_a_long_running_loop_keeps_one_guest_and_no_tasks_after_1000_cancelled_streams() -> None:
    """One loop, 1,000 streams left after their first chunk: one host throughout, and the
    guest's task count and the loop's tasks come back to what they were before."""
    chain = _joke()

    async def main() -> tuple[int, int, int, int, int]:
        await chain.ainvoke({"topic": "warm"})
        host = hosts.host_for(asyncio.get_running_loop())
        before = await guest_tasks()
        tasks_before = len(asyncio.all_tasks())
        for i in range(1_000):
            async for _ in chain.astream({"topic": str(i)}):
                break
        after = await guest_tasks()
        same_host = hosts.host_for(asyncio.get_running_loop()) is host
        return before, after, tasks_before, len(asyncio.all_tasks()), int(same_host)

    before, after, tasks_before, tasks_after, same_host = asyncio.run(main())
    assert after == before and tasks_after == tasks_before and same_host == 1


def test_sync_calls_inside_a_running_loop_go_to_the_portal() -> None:
    """In a coroutine on a loop that has a guest (a notebook cell), invoke, batch and stream
    work: they are not inside a trio task."""
    chain = _joke()

    async def cell() -> tuple[Any, ...]:
        first = await chain.ainvoke({"topic": "x"})  # the loop now has its guest
        return (first, chain.invoke({"topic": "x"}), chain.batch([{"topic": "y"}]),
                "".join(chain.stream({"topic": "z"})))

    assert asyncio.run(cell()) == (JOKE, JOKE, [JOKE], JOKE)


@pytest.mark.parametrize(("call", "instead"), [
    (lambda r: r.invoke(1), r"`await chain\.ainvoke\(\.\.\.\)`"),
    (lambda r: r.batch([1]), r"`await chain\.abatch\(\.\.\.\)`"),
    (lambda r: next(iter(r.stream(1))), r"`async for \.\.\. in chain\.astream\(\.\.\.\)`"),
    (lambda r: next(iter(r.transform([1]))),
     r"`async for \.\.\. in chain\.atransform\(\.\.\.\)`"),
])
async def test_sync_calls_inside_a_trio_task_name_the_async_call(
    call: Callable[[Any], Any], instead: str,
) -> None:
    """Inside a trio task, each sync method refuses (it would deadlock the loop) and says
    which async call to write instead."""
    runnable = RunnableLambda(lambda x: x, name="echo")
    with pytest.raises(RuntimeError, match=r"^echo\.\w+\(\) blocks and was called inside a "
                                           r"trio task, .*; use " + instead + " instead$"):
        call(runnable)


def test_sync_calls_inside_a_guest_task_refuse_too() -> None:
    """A trio task of an asyncio loop's guest is a trio task: blocking there would stall both
    loops, so invoke refuses as under trio."""

    async def in_guest() -> str:
        try:
            RunnableLambda(lambda x: x, name="echo").invoke(1)
        except RuntimeError as error:
            return str(error)
        return "no error"

    async def main() -> str:
        return await hosts.host_for(asyncio.get_running_loop()).call(in_guest)

    assert asyncio.run(main()).startswith("echo.invoke() blocks and was called inside a trio")


def test_where_no_guest_can_start_the_portal_thread_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a trio run already on the loop's thread (a nested loop), no guest can start: the
    same calls go to the portal thread, streams and cancellation included."""
    chain = _joke()
    monkeypatch.setattr(hosts, "_start_guest", lambda loop: None)

    async def main() -> tuple[Any, ...]:
        host = hosts.host_for(asyncio.get_running_loop())
        tokens = [t async for t in chain.astream({"topic": "x"})]
        async for _ in chain.astream_events({"topic": "x"}):
            break
        events = [e["event"] async for e in chain.astream_events({"topic": "x"})]
        return (host.same_thread, await chain.ainvoke({"topic": "x"}), "".join(tokens),
                events[-1], await chain.abatch([{"topic": "y"}]))

    assert asyncio.run(main()) == (False, JOKE, JOKE, "on_chain_end", [JOKE])


def test_a_notebook_loop_keeps_its_ctrl_c() -> None:
    """A loop run with Python's default SIGINT handler (a Jupyter kernel's cells) keeps it once
    the guest started: Ctrl-C interrupts the user's code, not rillet's guest."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_joke().ainvoke({"topic": "x"})) == JOKE
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        # What asyncio.run does at the end: cancel every task (the keeper stops the guest).
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()
        signal.signal(signal.SIGINT, previous)
    assert not list(hosts._hosts)


def test_asyncio_tasks_keep_running_while_the_guest_is_busy() -> None:
    """A long trio computation (20,000 schedule points) does not starve the loop's own
    tasks: the guest's ticks run in bounded bursts."""

    async def busy() -> None:
        for _ in range(20_000):
            await trio.lowlevel.checkpoint()

    async def main() -> int:
        turns = 0

        async def ticker() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        task = asyncio.create_task(ticker())
        await hosts.host_for(asyncio.get_running_loop()).call(busy)
        task.cancel()
        return turns

    assert asyncio.run(main()) > 0
