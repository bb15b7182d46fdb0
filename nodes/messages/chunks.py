"""The streamed piece of a model reply: :class:`AIMessageChunk`, and back to a whole message.

``chunk + chunk`` (or ``chunk + [chunks]``, one pass for any number) follows the rules in
:mod:`rillet.nodes.merge`: LangChain's, except that repeated labels such as ``model_name`` are
not concatenated. Tool-call arguments are parsed only when ``tool_calls`` is first read, so a
model can stream thousands of chunks without parsing anything. ``AIMessageChunk`` is not a
subclass of ``AIMessage`` (its tool calls are derived, not stored):

>>> reply = AIMessageChunk(content="Hel") + AIMessageChunk(content="lo", chunk_position="last")
>>> isinstance(reply, AIMessage), message_chunk_to_message(reply)
(False, AIMessage(content='Hello'))
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar, overload

import attrs

from rillet.nodes import merge
from rillet.nodes.messages.classes import AIMessage, BaseMessage
from rillet.nodes.messages.fields import (
    Content,
    check,
    content_ok,
    copy_content,
    copy_optional_dict,
    copy_tool_call_chunks,
    entries_ok,
    optional_dict_ok,
)

__all__ = ["AIMessageChunk", "message_chunk_to_message"]


@attrs.frozen(repr=False, unsafe_hash=False)
class AIMessageChunk(BaseMessage):
    """A piece of a streamed model reply; pieces add up with ``+``.

    ``tool_call_chunks`` entries are ``{"name", "args" (str piece), "id", "index",
    "type": "tool_call_chunk"}``; ``tool_calls`` and ``invalid_tool_calls`` are derived from
    them on first access. ``chunk_position`` is ``"last"`` on a stream's final chunk.

    >>> AIMessageChunk(content="Hel") + AIMessageChunk(content="lo")
    AIMessageChunk(content='Hello')
    >>> AIMessageChunk(content="a") + [AIMessageChunk(content="b"), AIMessageChunk(content="c")]
    AIMessageChunk(content='abc')
    """

    type: ClassVar[str] = "AIMessageChunk"

    content: Content = attrs.field(default="", converter=copy_content, validator=content_ok)
    usage_metadata: dict[str, Any] | None = attrs.field(
        default=None, kw_only=True, converter=copy_optional_dict, validator=optional_dict_ok)
    tool_call_chunks: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=copy_tool_call_chunks,
        validator=entries_ok("tool_call_chunk"))
    chunk_position: str | None = attrs.field(
        default=None, kw_only=True, validator=check(
        "None or 'last'", lambda value: value in (None, "last")))

    @property
    def tool_calls(self) -> list[dict[str, object]]:
        """Tool calls whose (partial) ``args`` parse to a dict, from ``tool_call_chunks``.

        >>> piece = {"name": "f", "args": '{"q": "ca', "index": 0}
        >>> chunk = AIMessageChunk(tool_call_chunks=[piece])
        >>> chunk.tool_calls
        [{'name': 'f', 'args': {'q': 'ca'}, 'id': None, 'type': 'tool_call'}]
        """
        return self._derived_tool_calls[0]

    @property
    def invalid_tool_calls(self) -> list[dict[str, object]]:
        """Tool-call chunks whose ``args`` do not parse to a dict (``error`` is ``None``)."""
        return self._derived_tool_calls[1]

    @functools.cached_property
    def _derived_tool_calls(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        # Derived once per chunk and only when asked: streaming never pays for parsing.
        return merge.tool_calls_from_chunks(self.tool_call_chunks)

    def __add__(self, other: AIMessageChunk | list[AIMessageChunk]) -> AIMessageChunk:
        if isinstance(other, AIMessageChunk):
            others: Sequence[AIMessageChunk] = (other,)
        elif isinstance(other, list):
            for position, item in enumerate(other):
                if not isinstance(item, AIMessageChunk):
                    raise TypeError(
                        f"can only add AIMessageChunks to an AIMessageChunk; item {position} of "
                        f"the list is {type(item).__name__}: {item!r:.80}")
            if not other:
                return self
            others = other
        else:
            return NotImplemented
        return merge.add_chunks(self, *others)

    def to_message(self) -> AIMessage:
        """The whole message this chunk stands for, with its tool calls parsed.

        >>> AIMessageChunk(content="hi", chunk_position="last").to_message()
        AIMessage(content='hi')
        """
        return AIMessage(
            content=self.content, id=self.id, additional_kwargs=self.additional_kwargs,
            response_metadata=self.response_metadata, name=self.name,
            tool_calls=self.tool_calls, invalid_tool_calls=self.invalid_tool_calls,
            usage_metadata=self.usage_metadata)

    @classmethod
    def of_text(cls, content: str, id: str | None = None) -> AIMessageChunk:
        """A plain text delta, built without re-checking fields known to be valid.

        The hot path of every streaming model: about 3x cheaper than the checked constructor.

        >>> AIMessageChunk.of_text(" Hello", id="r1") == AIMessageChunk(content=" Hello", id="r1")
        True
        """
        if type(content) is not str:
            return cls(content=content, id=id)
        chunk = object.__new__(cls)
        put = object.__setattr__
        put(chunk, "content", content)
        put(chunk, "id", id)
        put(chunk, "additional_kwargs", {})
        put(chunk, "response_metadata", {})
        put(chunk, "name", None)
        put(chunk, "usage_metadata", None)
        put(chunk, "tool_call_chunks", [])
        put(chunk, "chunk_position", None)
        return chunk

    @classmethod
    def from_message(cls, message: AIMessage) -> AIMessageChunk:
        """One chunk carrying a whole message: how a non-streaming reply is streamed.

        Tool calls become chunks with their ``args`` as JSON and ``index`` their position.

        >>> AIMessageChunk.from_message(AIMessage("hi")).content
        'hi'
        """
        calls = [(c["name"], json.dumps(c["args"]), c["id"]) for c in message.tool_calls]
        calls += [(c["name"], c["args"], c["id"]) for c in message.invalid_tool_calls]
        return cls(
            content=message.content, id=message.id,
            additional_kwargs=message.additional_kwargs,
            response_metadata=message.response_metadata, name=message.name,
            usage_metadata=message.usage_metadata,
            tool_call_chunks=[{"name": name, "args": args, "id": id_, "index": index}
                              for index, (name, args, id_) in enumerate(calls)])


_M = TypeVar("_M", bound=BaseMessage)


@overload
def message_chunk_to_message(chunk: AIMessageChunk) -> AIMessage: ...
@overload
def message_chunk_to_message(chunk: _M) -> _M: ...
def message_chunk_to_message(chunk: BaseMessage) -> BaseMessage:
    """The whole message for a chunk; any other message is returned as it is.

    >>> message_chunk_to_message(AIMessageChunk(content="a") + AIMessageChunk(content="b"))
    AIMessage(content='ab')
    """
    return chunk.to_message() if isinstance(chunk, AIMessageChunk) else chunk
