"""Every chat model is an async context manager, so provider code runs on the scripted model."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from rillet.nodes import AIMessageChunk, BaseChatModel, ScriptedChatModel, StrOutputParser
from rillet.nodes.providers import model_from_spec


async def test_the_fallback_of_model_from_spec_works_in_async_with() -> None:
    """The README's provider pattern, `async with model:`, on the keyless fallback."""
    model, note = model_from_spec("openai:gpt-4o-mini", env={})
    assert isinstance(model, ScriptedChatModel) and note is not None
    async with model as entered:
        assert entered is model
        assert await (model | StrOutputParser()).ainvoke("hi")


async def test_a_custom_chat_model_closes_through_aclose_on_exit() -> None:
    """A subclass gets async with from the base class; leaving it calls its aclose()."""
    closed: list[bool] = []

    class Echo(BaseChatModel):
        async def _stream_chat(self, messages: Any, ctx: Any) -> AsyncGenerator[AIMessageChunk, None]:
            yield AIMessageChunk(content=messages[-1].text)

        async def aclose(self) -> None:
            closed.append(True)

    async with Echo() as model:
        assert (await model.ainvoke("ping")).content == "ping"
    assert closed == [True]
