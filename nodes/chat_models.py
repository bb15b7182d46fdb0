"""Chat models: the base class every provider adapter shares, and the scripted default model.

A chat model is a streaming node that needs its whole input: a string, a list of messages, or a
prompt value — anything else is a :class:`~rillet.runtime.errors.NodeInputError` naming the node (the
guide's ``model.astream_events({"topic": ...})`` fails that way, clearly, instead of with
``Invalid input type <class 'dict'>``; ``prompt | model`` with a dict works as it should).

Subclasses implement one async generator, ``_stream_chat(messages, ctx)``, yielding
:class:`~rillet.nodes.messages.AIMessageChunk`; the base class converts the input, gives chunks without
a provider id the run's id (``lc_run--<run_id>``), and marks the last chunk.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar, Self

import attrs
import trio

from rillet.graphs.base import Runnable
from rillet.graphs.invoking import accumulate
from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    coerce_to_message,
)
from rillet.nodes.templates import ChatPromptValue, StringPromptValue
from rillet.runtime.errors import NodeInputError
from rillet.runtime.lowlevel import RunScope, sum_chunks

__all__ = ["BaseChatModel", "ScriptedChatModel", "split_text"]

_EXPECTED_INPUT = "a str, a list of messages, or a prompt value"


class BaseChatModel(Runnable[Any, AIMessageChunk]):
    """Base of chat models: input conversion, chunk ids, ``invoke`` returning an AIMessage.

    Every chat model is an async context manager, so code written for a provider
    (``async with model: ...``, which closes its connection pool) also runs on the scripted
    model that :func:`~rillet.nodes.providers.model_from_spec` falls back to.
    """

    kind: ClassVar[str] = "chat_model"
    runs_inline = True  # after its prompt: nothing upstream has work while it waits
    provider: ClassVar[str] = "rillet"
    model_name: str | None = None

    def _node_metadata(self) -> dict[str, object]:
        meta: dict[str, object] = {"ls_provider": self.provider, "ls_model_type": "chat"}
        if self.model_name:
            meta["ls_model_name"] = self.model_name
        return meta

    def finalize(self, value: object) -> Any:
        return value.to_message() if isinstance(value, AIMessageChunk) else value

    async def aclose(self) -> None:
        """Release what the model holds in this trio run (providers: the connection pool)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _event_input(self, value: object) -> Any:
        try:
            return {"messages": [self.to_messages(value, self.get_name())]}
        except NodeInputError:
            return value

    @staticmethod
    def to_messages(value: object, node: str) -> list[BaseMessage]:
        """The model input as a list of messages; a clear error for anything else."""
        if isinstance(value, str):
            return [HumanMessage(content=value)]
        if isinstance(value, (ChatPromptValue, StringPromptValue)):
            return list(value.to_messages())
        if isinstance(value, BaseMessage):
            return [value]
        if isinstance(value, (list, tuple)):
            try:
                return [coerce_to_message(item) for item in value]
            except (TypeError, ValueError):
                pass
        raise NodeInputError(node=node, expected=_EXPECTED_INPUT, got=value)

    async def _astream(self, input: object, ctx: RunScope) -> AsyncGenerator[AIMessageChunk, None]:
        messages = self.to_messages(input, ctx.name)
        default_id = f"lc_run--{ctx.run_id}"
        last: AIMessageChunk | None = None
        # Every chunk goes out the moment it arrives (holding one back to mark the last would
        # delay the first token); a stream whose last chunk is unmarked gets LangChain's empty
        # closing chunk. aclosing: leaving early closes a provider's HTTP stream at once.
        async with aclosing(self._stream_chat(messages, ctx)) as chunks:
            async for chunk in chunks:
                last = chunk if chunk.id is not None else attrs.evolve(chunk, id=default_id)
                yield last
        if last is None or last.chunk_position != "last":
            yield AIMessageChunk(content="", id=default_id, chunk_position="last")

    def _stream_chat(
        self, messages: list[BaseMessage], ctx: RunScope
    ) -> AsyncGenerator[AIMessageChunk, None]:
        raise NotImplementedError

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        if ctx.watched and ctx.streams:
            # Somebody listens: stream and report every token, as LangChain's invoke does
            # under astream_events; the reply is the tokens added up.
            async with aclosing(self._astream(input, ctx)) as chunks:
                async for chunk in chunks:
                    await ctx.emit_chunk(chunk)
            return self.finalize(ctx.output.value)
        return await self._agenerate(self.to_messages(input, ctx.name), ctx)

    async def _agenerate(self, messages: list[BaseMessage], ctx: RunScope) -> AIMessage:
        """The whole reply at once: the non-streaming path ``invoke`` takes when nobody listens
        for tokens. By default the stream added up; a model with a cheaper way overrides it."""
        reply: AIMessage = self.finalize(await accumulate(self._astream(messages, ctx)))
        return reply


_WORDS = re.compile(r"\s*[\w']+|\s*[^\w\s]|\s+")


def split_text(text: str, chunking: str | int) -> list[str]:
    """Split a response the way ``ScriptedChatModel`` streams it.

    >>> split_text("Hello! My name is", "word")
    ['Hello', '!', ' My', ' name', ' is']
    >>> split_text("abc", "char"), split_text("abcde", 2)
    (['a', 'b', 'c'], ['ab', 'cd', 'e'])
    """
    if chunking == "word":
        return _WORDS.findall(text)
    if chunking == "char":
        return list(text)
    if isinstance(chunking, int) and not isinstance(chunking, bool) and chunking > 0:
        return [text[i : i + chunking] for i in range(0, len(text), chunking)]
    raise ValueError(f"chunking must be 'word', 'char' or an int > 0, got {chunking!r}")


class ScriptedChatModel(BaseChatModel):
    """A deterministic streaming chat model: the embedded default, no key, no network.

    Args:
        responses: what to answer, in turn (cycled); each a str or an ``AIMessage`` (which may
            carry ``tool_calls``, streamed as argument fragments).
        chunking: ``"word"`` (keeps leading spaces: ``"Hello"``, ``"!"``, ``" My"``),
            ``"char"``, or an int chunk size.
        delay: seconds to wait before each chunk (tests use trio's autojump clock).
        stream_usage: put token counts on the last chunk (``usage_metadata``).

    >>> model = ScriptedChatModel(responses=["Hello! My name is Rill."])
    >>> [c.content for c in model.stream("hi")][:3]
    ['Hello', '!', ' My']
    """

    provider: ClassVar[str] = "scripted"

    def __init__(
        self,
        responses: Sequence[str | AIMessage] = ("Hello! I am a scripted model.",),
        *,
        chunking: str | int = "word",
        delay: float = 0.0,
        stream_usage: bool = False,
        name: str | None = None,
    ) -> None:
        if isinstance(responses, str) or not responses:
            raise ValueError("responses must be a non-empty list of str or AIMessage")
        for response in responses:
            if not isinstance(response, (str, AIMessage)):
                raise TypeError(
                    f"each response must be a str or AIMessage, got {type(response).__name__}"
                )
        split_text("", chunking)  # validates chunking now rather than mid-run
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self.responses = list(responses)
        self.chunking, self.delay, self.stream_usage = chunking, delay, stream_usage
        self.name = name
        self.model_name = "scripted"
        self._turn = itertools.count()
        self._scripts: dict[int, tuple[list[str], list[dict[str, Any]]]] = {}

    def __repr__(self) -> str:
        return f"ScriptedChatModel(responses={len(self.responses)}, chunking={self.chunking!r})"

    async def _stream_chat(
        self, messages: list[BaseMessage], ctx: RunScope
    ) -> AsyncGenerator[AIMessageChunk, None]:
        run_id = f"lc_run--{ctx.run_id}"  # set at construction: no per-chunk copy later
        pieces, tool_chunks, usage = self._script(messages)
        # Built lazily, one chunk per step: the first token must not wait for the last one.
        last = len(pieces) + len(tool_chunks) + (usage is not None) - 1
        delay = self.delay
        for index, piece in enumerate(pieces):
            if delay:
                await trio.sleep(delay)
            chunk = AIMessageChunk.of_text(piece, run_id)
            yield chunk if index != last else attrs.evolve(chunk, chunk_position="last")
        for offset, tool_chunk in enumerate(tool_chunks):
            if delay:
                await trio.sleep(delay)
            yield AIMessageChunk(
                content="", tool_call_chunks=[tool_chunk], id=run_id,
                chunk_position="last" if len(pieces) + offset == last else None)
        if usage is not None:
            if delay:
                await trio.sleep(delay)
            yield AIMessageChunk(content="", id=run_id, usage_metadata=usage,
                                 chunk_position="last")
        if last < 0:
            yield AIMessageChunk(content="", id=run_id, chunk_position="last")

    def _script(self, messages: list[BaseMessage]
                ) -> tuple[list[str], list[dict[str, Any]], dict[str, int] | None]:
        """This turn's text pieces, tool call fragments and (with ``stream_usage``) usage."""
        turn = next(self._turn) % len(self.responses)
        script = self._scripts.get(turn)
        if script is None:  # split once per response, not once per run
            response = self.responses[turn]
            message = response if isinstance(response, AIMessage) else AIMessage(content=response)
            script = self._scripts[turn] = (split_text(message.text, self.chunking),
                                            list(_tool_call_chunks(message)))
        pieces, tool_chunks = script
        usage = None
        if self.stream_usage:
            prompt_tokens = sum(len(split_text(m.text, "word")) for m in messages)
            output_tokens = len(pieces) + len(tool_chunks)
            usage = {"input_tokens": prompt_tokens, "output_tokens": output_tokens,
                     "total_tokens": prompt_tokens + output_tokens}
        return pieces, tool_chunks, usage

    async def _agenerate(self, messages: list[BaseMessage], ctx: RunScope) -> AIMessage:
        # The message the stream adds up to, built at once; with a delay, it takes as long.
        pieces, tool_chunks, usage = self._script(messages)
        if self.delay:
            await trio.sleep(self.delay * max(1, len(pieces) + len(tool_chunks)
                                              + (usage is not None)))
        run_id = f"lc_run--{ctx.run_id}"
        parts = [AIMessageChunk.of_text("".join(pieces), run_id)]
        parts += [AIMessageChunk(content="", tool_call_chunks=[c], id=run_id) for c in tool_chunks]
        if usage is not None:
            parts.append(AIMessageChunk(content="", id=run_id, usage_metadata=usage))
        return self.finalize(sum_chunks(parts))  # type: ignore[no-any-return]


def _tool_call_chunks(message: AIMessage) -> Any:
    """A message's tool calls as streamed fragments: name and id first, arguments in pieces."""
    for index, call in enumerate(message.tool_calls):
        args = json.dumps(call.get("args", {}))
        pieces = split_text(args, 8) or [""]
        for i, piece in enumerate(pieces):
            yield {
                "name": call["name"] if i == 0 else None,
                "args": piece,
                "id": (call.get("id") or f"call_{index}") if i == 0 else None,
                "index": index,
                "type": "tool_call_chunk",
            }
