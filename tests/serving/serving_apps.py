"""Runnables the serving tests run in-process and through the CLI (``path/serving_apps.py:x``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import trio

from rillet.graphs import RunnableLambda
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser

JOKE = "Why did the parrot cross the road"

joke = (
    ChatPromptTemplate.from_template("tell me a joke about {topic}")
    | ScriptedChatModel(responses=[JOKE])
    | StrOutputParser()
)


def _fail(value: object) -> object:
    raise ValueError(f"cannot handle {value!r}")


failing = RunnableLambda(lambda x: x, name="ok") | RunnableLambda(_fail, name="boom")

pair = ChatPromptTemplate.from_template("{a} and {b}") | ScriptedChatModel(responses=["ok"])

chains = {"joke": joke, "upper": RunnableLambda(str.upper, name="upper")}


@attrs.define
class Ticks:
    """Records how a ticking run went: chunks produced, and whether its ``finally`` ran."""

    produced: int = 0
    closed: trio.Event = attrs.field(factory=trio.Event)


def make_ticks(
    count: int, delay: float, *, size: int = 8, name: str = "ticks"
) -> tuple[object, Ticks]:
    """A runnable streaming ``count`` chunks of ``size`` characters, ``delay`` seconds apart."""
    state = Ticks()

    async def tick(chunks: AsyncIterator[object]) -> AsyncIterator[str]:
        try:
            async for _ in chunks:
                for i in range(count):
                    state.produced += 1
                    yield f"{i:<{size}}"[:size] if size >= len(str(i)) else str(i)
                    if delay:
                        await trio.sleep(delay)
        finally:
            state.closed.set()

    async def start(value: object) -> object:
        # Async on purpose: a sync function runs in a thread, and the autojump clock jumps
        # while a thread works (it sees every task blocked).
        return value

    return (RunnableLambda(start, name="start") | tick).with_config(run_name=name), state


ticks, _ = make_ticks(5, 0.01)


async def _echo(value: object) -> object:
    return value


#: Returns its input: what the fuzz and malformed-input tests send comes back as it was decoded.
echo = RunnableLambda(_echo, name="echo")


class Undrawable(RunnableLambda):  # type: ignore[misc]
    """A runnable whose drawing fails: a bug inside an endpoint, for the catch-all 500."""

    def draw_ascii(self) -> str:
        raise RuntimeError("drawing is broken")


undrawable = Undrawable(_echo, name="undrawable")
