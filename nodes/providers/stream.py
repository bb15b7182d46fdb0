"""The stream loop every chat adapter shares: one request, its events, chunks, a final chunk.

An adapter subclasses :class:`StreamingChatModel` and says three things: where to POST
(``stream_path``), what (``request_body``), and how to read its event protocol (a
:class:`StreamParser`, made fresh per request). The loop does the rest, the same for every
provider: it opens the event stream (retrying until the first event), hands each event to the
parser and yields its chunks as they come; at the protocol's end marker it drains the tail so
the connection can be reused; a stream that stops before the answer is complete raises
:class:`~rillet.nodes.providers.errors.ProviderConnectionError` (``stream_truncated``);
finally it yields the parser's last chunk, with the stop reason and token usage.

Example::

    class _EchoParser(StreamParser):
        truncated = "the stream ended before [END]"

        def feed(self, event):
            if event.data == "[END]":
                self.done = True
                return None
            return AIMessageChunk(content=decode_event_json(event, "echo")["text"], id=self.id)

        def response_metadata(self, model_name):
            return {"model_name": model_name}

        def usage_metadata(self):
            return None
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, ClassVar

from rillet.nodes.chat_models import BaseChatModel
from rillet.nodes.messages import AIMessageChunk, BaseMessage
from rillet.nodes.providers.errors import ProviderConnectionError, ProviderError, error_details
from rillet.nodes.providers.http import ClientOwner, ProviderClient
from rillet.nodes.providers.sse import ServerSentEvent
from rillet.runtime.lowlevel import RunScope

__all__ = ["StreamParser", "StreamingChatModel", "decode_event_json"]


def decode_event_json(event: ServerSentEvent, provider: str) -> dict[str, object]:
    """An event's ``data`` as a JSON object; an error payload raises ``ProviderError``.

    Errors mid-stream come as ``event: error`` or as a ``data`` object with an ``error`` key
    (OpenAI, Anthropic, and the servers that copy them).

    >>> decode_event_json(ServerSentEvent(data='{"id": "c1"}'), "openai")
    {'id': 'c1'}
    >>> decode_event_json(ServerSentEvent(data='{"error": {"message": "Overloaded"}}'), "openai")
    Traceback (most recent call last):
        ...
    rillet.nodes.ProviderError: openai: error event mid-stream: Overloaded

    Raises:
        ProviderError: the event is an error, or its data is not a JSON object.
    """
    try:
        data = json.loads(event.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(provider=provider, error_type="malformed_event",
                            provider_message=f"expected a JSON object in a {event.event!r} "
                                             f"event, got {event.data[:200]!r}")
    if event.event == "error" or data.get("type") == "error" or data.get("error"):
        message, error_type = error_details(event.data.encode())
        raise ProviderError(provider=provider, error_type=error_type,
                            provider_message=f"error event mid-stream: {message}")
    return data


class StreamParser(abc.ABC):
    """One provider's event protocol, read for one request: events in, chunks out.

    Subclasses keep what the stream has told so far that belongs on the final chunk; ``id``
    (the provider's message id, put on every chunk) and ``model`` (the model that answered)
    are common to all of them.

    Attributes:
        done: set by :meth:`feed` at the protocol's end marker (``[DONE]``,
            ``message_stop``); the loop then stops reading.
        truncated: what the error says when the stream ended before the answer was complete.
    """

    truncated: ClassVar[str]

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.done = False

    @abc.abstractmethod
    def feed(self, event: ServerSentEvent) -> AIMessageChunk | None:
        """The chunk for one event, or None for events that only update the state."""

    @property
    def complete(self) -> bool:
        """Whether what was read is the whole answer (by default: the end marker came)."""
        return self.done

    @abc.abstractmethod
    def response_metadata(self, model_name: str) -> dict[str, object]:
        """The final chunk's ``response_metadata``; ``model_name`` is the one that answered."""

    @abc.abstractmethod
    def usage_metadata(self) -> dict[str, object] | None:
        """The final chunk's ``usage_metadata`` (LangChain's keys), if the provider said."""

    def final_chunk(self, requested_model: str) -> AIMessageChunk:
        """The last chunk: stop reason, model name and token usage, marked ``"last"``."""
        metadata = self.response_metadata(self.model or requested_model)
        # Marked last here, so the base class adds no empty closing chunk of its own.
        return AIMessageChunk(content="", id=self.id, response_metadata=metadata,
                              usage_metadata=self.usage_metadata(), chunk_position="last")


class StreamingChatModel(ClientOwner, BaseChatModel):
    """A chat model that streams from a provider's server-sent events.

    Subclasses set ``stream_path`` and ``client`` (a
    :class:`~rillet.nodes.providers.http.ProviderClient`), keep the settings every adapter has
    with :meth:`_keep_settings`, and implement :meth:`request_body`, :meth:`stream_parser` and
    :meth:`_tool_names`.
    """

    stream_path: ClassVar[str]
    client: ProviderClient
    model: str
    stop: list[str] | None
    extra_body: dict[str, Any]
    tools: tuple[dict[str, Any], ...]

    def _keep_settings(
        self,
        model: str,
        *,
        stop: Sequence[str] | None,
        extra_body: Mapping[str, object] | None,
        name: str | None,
    ) -> None:
        """Check and keep the model name and the settings common to every adapter."""
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty str, got {model!r}")
        self.model = self.model_name = model
        self.stop = list(stop) if stop else None
        self.extra_body = dict(extra_body or {})
        self.name = name
        self.tools = ()

    def __repr__(self) -> str:
        tools = f", tools={self._tool_names()}" if self.tools else ""
        return (f"{type(self).__name__}(model={self.model_name!r}, "
                f"base_url={self.client.base_url!r}{tools})")

    def _tool_names(self) -> list[object]:
        """The names of the bound tools, for ``repr``."""
        raise NotImplementedError

    def request_body(self, messages: Sequence[BaseMessage]) -> dict[str, object]:
        """The JSON body sent for ``messages`` (also handy to debug a request)."""
        raise NotImplementedError

    def stream_parser(self) -> StreamParser:
        """A fresh parser for one response's events."""
        raise NotImplementedError

    async def _stream_chat(
        self, messages: list[BaseMessage], ctx: RunScope
    ) -> AsyncGenerator[AIMessageChunk, None]:
        parser = self.stream_parser()
        async with self.client.open_sse(self.stream_path, self.request_body(messages)) as events:
            async for event in events:
                try:
                    chunk = parser.feed(event)
                except (AttributeError, KeyError, TypeError, ValueError) as error:
                    # Valid JSON of the wrong shape ({"delta": 3}): the provider's fault, said so.
                    raise ProviderError(
                        provider=self.provider, error_type="malformed_event",
                        provider_message=f"could not read a {event.event!r} event ({error}): "
                                         f"{event.data[:200]!r}") from error
                if chunk is not None:
                    yield chunk
                if parser.done:
                    await events.finish()
                    break
        if not parser.complete:
            raise ProviderConnectionError(provider=self.provider, error_type="stream_truncated",
                                          provider_message=parser.truncated)
        yield parser.final_chunk(self.model)
