"""Graphs the scale-out tests run in worker processes (``tests.scaleout.graphs:GRAPHS``).

``slow_chain`` takes ``{"n": tokens, "delay": seconds between tokens}`` and streams ``n`` tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from rillet.graphs import RunnableGenerator, RunnableLambda
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser


def _prepare(request: dict[str, Any]) -> dict[str, Any]:
    return {"n": int(request.get("n", 5)), "delay": float(request.get("delay", 0.0))}


async def _tokens(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for request in chunks:
        for i in range(request["n"]):
            if request["delay"]:
                await trio.sleep(request["delay"])
            yield f"t{i} "


def expected_output(n: int) -> str:
    """What ``slow_chain`` returns for ``{"n": n}``."""
    return "".join(f"t{i} " for i in range(n))


def _always_fails(request: Any) -> Any:
    raise ValueError(f"flaky graph refuses {request!r}")


slow_chain = RunnableLambda(_prepare, name="prepare") | RunnableGenerator(_tokens, name="tokens")
flaky = RunnableLambda(_always_fails, name="flaky")

# The usual LLM shape: its events carry messages and prompt values (registered wire types).
chat = (ChatPromptTemplate.from_template("Tell me about {topic}.")
        | ScriptedChatModel(responses=["Parrots can live for eighty years."])
        | StrOutputParser())

GRAPHS = {"slow_chain": slow_chain, "flaky": flaky, "chat": chat}
