"""Output parsers: text, partial JSON, and comma-separated lists, all streaming.

Every parser accepts strings and message chunks (their text) and raises
:class:`~runtime.errors.NodeInputError` for anything else. ``JsonOutputParser`` emits
*snapshots*: each output is the whole value parsed so far, so the runtime keeps the last one
instead of adding them up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

from graphs.base import Runnable
from nodes.messages import BaseMessage
from runtime.errors import NodeInputError, RilletError
from runtime.scope import RunScope

__all__ = [
    "BaseOutputParser",
    "CommaSeparatedListOutputParser",
    "OutputParserError",
    "StrOutputParser",
    "text_of",
]

_EXPECTED = "str or a message (chunk)"


class OutputParserError(RilletError, ValueError):
    """The model's output could not be parsed; ``text`` is the offending text.

    >>> str(OutputParserError("Invalid json output", text="Sure! {"))
    "Invalid json output: 'Sure! {'"
    """

    def __init__(self, message: str, *, text: str) -> None:
        self.text = text
        super().__init__(f"{message}: {text!r:.200}")


def text_of(value: Any, node: str) -> str:
    """The text of a parser's input chunk: a str, or a message's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return value.text
    raise NodeInputError(node=node, expected=_EXPECTED, got=value)


class BaseOutputParser(Runnable[Any, Any]):
    """Base of parsers: ``kind`` parser; ``parse(text)`` parses a whole text at once."""

    kind: ClassVar[str] = "parser"

    def parse(self, text: str) -> Any:
        raise NotImplementedError


class StrOutputParser(BaseOutputParser):
    """Each chunk's text, chunk by chunk.

    >>> StrOutputParser().invoke("hello")
    'hello'
    """

    def parse(self, text: str) -> str:
        return text

    async def _atransform(self, chunks: AsyncIterator[Any], ctx: RunScope) -> AsyncGenerator[str, None]:
        name = ctx.name
        async for chunk in chunks:
            if type(chunk) is str:
                yield chunk
            else:
                yield text_of(chunk, name)


class CommaSeparatedListOutputParser(BaseOutputParser):
    """Streams one list item at a time, each as a one-element list (lists add up).

    >>> CommaSeparatedListOutputParser().invoke("red, green, blue")
    ['red', 'green', 'blue']
    """

    def parse(self, text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    async def _atransform(
        self, chunks: AsyncIterator[Any], ctx: RunScope
    ) -> AsyncGenerator[list[str], None]:
        buffer = ""
        async for chunk in chunks:
            buffer += text_of(chunk, ctx.name)
            *done, buffer = buffer.split(",")
            for item in done:
                if item.strip():
                    yield [item.strip()]
        if buffer.strip():
            yield [buffer.strip()]
