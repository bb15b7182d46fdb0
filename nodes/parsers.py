"""Output parsers: text, partial JSON, and comma-separated lists, all streaming.

Every parser accepts strings and message chunks (their text) and raises
:class:`~rillet.runtime.errors.NodeInputError` for anything else. ``JsonOutputParser`` emits
*snapshots*: each output is the whole value parsed so far, so the runtime keeps the last one
instead of adding them up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

from rillet.graphs.base import Runnable
from rillet.nodes.messages import BaseMessage
from rillet.nodes.partial_json import PartialJsonParser, parse_json_markdown
from rillet.runtime.errors import NodeInputError, RilletError
from rillet.runtime.lowlevel import DELTA, SNAPSHOT, RunScope, apply_patch

__all__ = [
    "BaseOutputParser",
    "CommaSeparatedListOutputParser",
    "JsonOutputParser",
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


def text_of(value: object, node: str) -> str:
    """The text of a parser's input chunk: a str, or a message's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return value.text
    raise NodeInputError(node=node, expected=_EXPECTED, got=value)


class BaseOutputParser(Runnable[Any, Any]):
    """Base of parsers: ``kind`` parser; ``parse(text)`` parses a whole text at once."""

    kind: ClassVar[str] = "parser"
    runs_inline = True

    def parse(self, text: str) -> Any:
        raise NotImplementedError


class StrOutputParser(BaseOutputParser):
    """Each chunk's text, chunk by chunk.

    >>> StrOutputParser().invoke("hello")
    'hello'
    """

    def parse(self, text: str) -> str:
        return text

    async def _atransform(self, chunks: AsyncIterator[object],
                          ctx: RunScope) -> AsyncGenerator[str, None]:
        name = ctx.name
        async for chunk in chunks:
            if type(chunk) is str:
                yield chunk
            else:
                yield text_of(chunk, name)

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> str:
        return text_of(input, ctx.name)


class JsonOutputParser(BaseOutputParser):
    """Streams the JSON value parsed so far, each time it changes (a *snapshot* stream).

    The same sequence of partial values as LangChain's ``JsonOutputParser`` on the same chunks
    (``{}``, ``{'countries': []}``, ``{'countries': [{}]}``, ``{'countries': [{'name': ''}]}``,
    …), in time linear in the document (LangChain re-parses everything per chunk). Markdown
    fences are skipped. With ``diff=True`` it streams JSON-patch op lists instead (a delta
    stream: the ops add up); ``invoke`` then still returns the value.

    >>> JsonOutputParser().invoke('```json\\n{"a": [1, 2]}\\n```')
    {'a': [1, 2]}

    Raises:
        OutputParserError: at the end of the stream, when the text holds no JSON; ``.text`` is
            the offending text (chunks already streamed stay streamed).
    """

    def __init__(self, *, diff: bool = False, name: str | None = None) -> None:
        self.diff = diff
        self.name = name

    def output_mode(self, input_mode: str) -> str:
        return DELTA if self.diff else SNAPSHOT

    def parse(self, text: str) -> Any:
        try:
            return parse_json_markdown(text)
        except ValueError as error:
            raise OutputParserError("Invalid json output", text=text) from error

    def finalize(self, value: object) -> object:
        return apply_patch(None, value) if self.diff and isinstance(value, list) else value

    async def _atransform(self, chunks: AsyncIterator[object],
                          ctx: RunScope) -> AsyncGenerator[object, None]:
        parser = PartialJsonParser()
        diff = self.diff
        emitted = False
        async for chunk in chunks:
            if parser.feed(text_of(chunk, ctx.name)):
                emitted = True
                yield parser.last_patch() if diff else parser.snapshot()
        if not emitted:
            # Nothing streamed: the text must still be JSON (``null`` is); prose is an error.
            self.parse(parser.text())

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        return self.parse(text_of(input, ctx.name))  # the whole text, parsed once


class CommaSeparatedListOutputParser(BaseOutputParser):
    """Streams one list item at a time, each as a one-element list (lists add up).

    >>> CommaSeparatedListOutputParser().invoke("red, green, blue")
    ['red', 'green', 'blue']
    """

    def parse(self, text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    async def _atransform(
        self, chunks: AsyncIterator[object], ctx: RunScope
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

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> list[str]:
        return self.parse(text_of(input, ctx.name))
