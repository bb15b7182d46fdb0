"""A LangChain chat model equivalent to ``rillet.nodes.ScriptedChatModel``, natively async.

``LCScriptedChatModel`` streams its response split exactly like ours
(:func:`rillet.nodes.chat_models.split_text`: words with their leading spaces), one
``ChatGenerationChunk(AIMessageChunk(...))`` per piece, from ``_astream`` and ``_stream``
directly: LangChain calls a native ``_astream`` on the event loop, so the comparison pays no
thread hop per token. ``_generate``/``_agenerate`` answer in one message, as a non-streaming
provider call does. The last piece is marked ``chunk_position="last"``, like ours.

Importing this module needs ``langchain-core`` (the ``bench`` extra).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rillet.nodes.chat_models import split_text

__all__ = ["LCScriptedChatModel"]


class LCScriptedChatModel(BaseChatModel):
    """Answers ``responses`` in turn (cycled), streamed in ``chunking`` pieces.

    >>> model = LCScriptedChatModel(responses=["Hello! My name"])
    >>> [c.content for c in model.stream("hi")]
    ['Hello', '!', ' My', ' name']
    """

    responses: list[str]
    chunking: str | int = "word"
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next_text(self) -> str:
        text = self.responses[self.turn % len(self.responses)]
        self.turn += 1
        return text

    def _result(self) -> ChatResult:
        text = "".join(split_text(self._next_text(), self.chunking))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return self._result()

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return self._result()

    def _pieces(self) -> Iterator[ChatGenerationChunk]:
        pieces = split_text(self._next_text(), self.chunking)
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            if i == last:
                message = AIMessageChunk(content=piece, chunk_position="last")
            else:
                message = AIMessageChunk(content=piece)
            yield ChatGenerationChunk(message=message)

    def _stream(self, messages: list[BaseMessage], stop: Any = None,
                run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._pieces():
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._pieces():
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
