"""The chains the viewer tests serve: a story held at a gate mid-stream, a joke whose tool
shouts, and one whose tool fails."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import trio

from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser, tool

STORY = "Once upon a time | the river reached the sea"
JOKE = "Why did the parrot talk? It had a lot to say."
#: Opened by a test to let the held story go on past its " |" token.
GATE = threading.Event()


async def hold_at_gate(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """Pass text through, waiting at the " |" token until the test opens GATE."""
    async for text in chunks:
        if text.strip() == "|":
            await trio.to_thread.run_sync(GATE.wait, abandon_on_cancel=True)
            continue
        yield text


@tool
def shout(text: str) -> str:
    """Shout the text back."""
    return text.upper()


@tool
def explode(text: str) -> str:
    """Fail on purpose."""
    raise ValueError(f"cannot shout {text[:12]!r}")


def _prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_template("tell me about {topic}")


story = (_prompt() | ScriptedChatModel(responses=[STORY]) | StrOutputParser()
         | hold_at_gate).with_config(run_name="story")
joke = (_prompt() | ScriptedChatModel(responses=[JOKE], stream_usage=True) | StrOutputParser()
        | shout).with_config(run_name="joke")
failing = (_prompt() | ScriptedChatModel(responses=[JOKE]) | StrOutputParser()
           | explode).with_config(run_name="failing")
APPS = {"story": story, "joke": joke, "failing": failing}
