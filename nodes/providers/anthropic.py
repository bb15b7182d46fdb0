"""Anthropic's Messages API, streamed.

The stream loop itself is :mod:`~rillet.nodes.providers.stream`'s; this module holds the
request format (system field, turns, tool results, tools) and the parser of Anthropic's events.

How the event stream becomes chunks (every chunk's ``id`` is the ``msg_…`` id):

- ``text`` blocks: each ``text_delta`` -> ``content`` (a plain string, so text adds up to a
  string and parsers read it as they read any model);
- ``tool_use`` blocks: ``content_block_start`` -> a tool-call chunk with ``name``, ``id``,
  ``args=""`` and the block's ``index``; each ``input_json_delta`` -> an ``args`` fragment with
  the same index, so the summed message has parsed ``tool_calls``;
- ``thinking`` blocks -> content blocks ``{"type": "thinking", "thinking": …, "index": i}``
  (and ``{"type": "thinking", "signature": …, "index": i}``), ``redacted_thinking`` ->
  ``{"type": "redacted_thinking", "data": …, "index": i}``: they merge by index when chunks
  add up, stay out of ``.text``, and go back to Anthropic unchanged in the next turn, as
  extended thinking with tools requires. Other block types pass through the same way;
- ``citations_delta`` -> ``additional_kwargs["citations"]`` (a list that grows);
- ``message_delta`` counts are cumulative: the last one is kept and put, with
  ``message_start``'s input counts, on one final chunk (``usage_metadata``), together with
  ``response_metadata`` ``stop_reason``, ``stop_sequence``, ``model_name``;
- ``ping`` and unknown events are skipped; an ``error`` event raises
  :class:`~rillet.nodes.providers.errors.ProviderError` with Anthropic's message.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import httpx

from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.providers.errors import MissingAPIKeyError
from rillet.nodes.providers.http import ProviderClient, Timeouts
from rillet.nodes.providers.retry import RetryPolicy
from rillet.nodes.providers.sse import ServerSentEvent
from rillet.nodes.providers.stream import StreamingChatModel, StreamParser, decode_event_json
from rillet.nodes.providers.tool_formats import convert_to_anthropic_tool

__all__ = ["AnthropicChatModel", "anthropic_usage", "to_anthropic_messages"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
API_VERSION: Final = "2023-06-01"
_PROVIDER: Final = "anthropic"


class AnthropicChatModel(StreamingChatModel):
    """A streaming chat model on Anthropic's Messages API.

    Args:
        model: e.g. ``"claude-sonnet-4-5"``.
        base_url: the API root; default ``ANTHROPIC_BASE_URL`` or ``https://api.anthropic.com``.
        api_key: default ``ANTHROPIC_API_KEY`` (required).
        max_tokens: the most tokens to generate (Anthropic requires a limit).
        temperature, stop: sampling settings, sent when given (``stop`` -> ``stop_sequences``).
        thinking: extended thinking, e.g. ``{"type": "enabled", "budget_tokens": 2048}``.
        timeout, max_retries, retry_policy, default_headers, transport: as for
            :class:`~rillet.nodes.providers.openai.OpenAIChatModel` (``default_headers`` can
            carry ``anthropic-beta``).
        extra_body: merged into the request body last (``top_k``, ``metadata``, ...).
        anthropic_version: the ``anthropic-version`` header.

    Raises:
        MissingAPIKeyError: no key given and ``ANTHROPIC_API_KEY`` unset.

    Example::

        model = AnthropicChatModel("claude-sonnet-4-5", max_tokens=512)
        chain = ChatPromptTemplate.from_messages(
            [("system", "Be terse."), ("human", "{q}")]) | model | StrOutputParser()
        async for token in chain.astream({"q": "Why is the sky blue?"}):
            print(token, end="")
    """

    provider: ClassVar[str] = _PROVIDER
    stream_path: ClassVar[str] = "/v1/messages"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        thinking: Mapping[str, Any] | None = None,
        timeout: float | Timeouts = Timeouts(),
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        extra_body: Mapping[str, Any] | None = None,
        default_headers: Mapping[str, str] | None = None,
        anthropic_version: str = API_VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        self._keep_settings(model, stop=stop, extra_body=extra_body, name=name)
        if type(max_tokens) is not int or max_tokens < 1:
            raise ValueError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise MissingAPIKeyError(provider=_PROVIDER, env_var="ANTHROPIC_API_KEY")
        headers = {"x-api-key": key, "anthropic-version": anthropic_version,
                   **(default_headers or {})}
        self.client = ProviderClient.from_options(
            provider=_PROVIDER,
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL,
            headers=headers, timeout=timeout, max_retries=max_retries, retry_policy=retry_policy,
            transport=transport)
        self.max_tokens, self.temperature = max_tokens, temperature
        self.thinking = dict(thinking) if thinking else None
        self.tool_choice: dict[str, object] | None = None

    def _tool_names(self) -> list[object]:
        return [tool.get("name") for tool in self.tools]

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
    ) -> AnthropicChatModel:
        """A copy of this model that offers ``tools`` (sharing its connection pool).

        Args:
            tools: functions, tool dicts (Anthropic's or OpenAI's format; server tools such as
                ``{"type": "web_search_20250305", ...}`` pass through), or objects with
                ``name``/``description``/``parameters``.
            tool_choice: ``"auto"``, ``"any"`` (or ``"required"``, or ``True``), ``"none"``,
                a tool's name to force it, or Anthropic's dict.
            parallel_tool_calls: ``False`` sets ``disable_parallel_tool_use``.

        Example::

            model = AnthropicChatModel("claude-sonnet-4-5").bind_tools([get_weather])
        """
        bound = copy.copy(self)
        bound.tools = tuple(convert_to_anthropic_tool(tool) for tool in tools)
        bound.tool_choice = _anthropic_tool_choice(
            tool_choice, [str(tool.get("name")) for tool in bound.tools])
        if parallel_tool_calls is False:
            bound.tool_choice = {**(bound.tool_choice or {"type": "auto"}),
                                 "disable_parallel_tool_use": True}
        return bound

    def request_body(self, messages: Sequence[BaseMessage]) -> dict[str, object]:
        """The JSON body sent for ``messages`` (also handy to debug a request)."""
        system, turns = to_anthropic_messages(messages)
        body: dict[str, object] = {"model": self.model_name, "max_tokens": self.max_tokens,
                                "messages": turns, "stream": True}
        if system:
            body["system"] = system
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.stop:
            body["stop_sequences"] = list(self.stop)
        if self.thinking:
            body["thinking"] = dict(self.thinking)
        if self.tools:
            body["tools"] = [dict(tool) for tool in self.tools]
            if self.tool_choice is not None:
                body["tool_choice"] = dict(self.tool_choice)
        body.update(self.extra_body)
        return body

    def stream_parser(self) -> StreamParser:
        return _AnthropicStream()


class _AnthropicStream(StreamParser):
    """What one stream has told so far: ids, block kinds, stop reason, usage."""

    truncated = "the stream ended before message_stop; the answer is incomplete"

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[int, str] = {}   # index -> content block type
        self.start_usage: Mapping[str, Any] = {}
        self.last_usage: Mapping[str, Any] = {}
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def feed(self, event: ServerSentEvent) -> AIMessageChunk | None:
        if event.event == "ping":
            return None
        data = decode_event_json(event, _PROVIDER)
        kind = event.event if event.event != "message" else data.get("type")
        if kind == "message_stop":
            self.done = True
            return None
        return self.read(kind, data)

    def read(self, kind: Any, data: Mapping[str, Any]) -> AIMessageChunk | None:
        """The chunk for one event, or None for events that only update the state."""
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self.start_usage = message.get("usage") or {}
            return None
        if kind == "message_delta":
            delta = data.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
            if isinstance(data.get("usage"), Mapping):
                self.last_usage = data["usage"]  # cumulative: replace, never add
            return None
        index = data.get("index")
        if not isinstance(index, int):
            return None
        if kind == "content_block_start":
            return self._block_start(index, data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(index, data.get("delta") or {})
        return None  # content_block_stop, and event types added after this was written

    def _block_start(self, index: int, block: Mapping[str, Any]) -> AIMessageChunk | None:
        block_type = str(block.get("type"))
        self.blocks[index] = block_type
        if block_type == "text":
            text = block.get("text") or ""
            return AIMessageChunk(content=text, id=self.id) if text else None
        if block_type == "tool_use":
            given = block.get("input")
            call = {"name": block.get("name"), "id": block.get("id"), "index": index,
                    "args": json.dumps(given) if given else "", "type": "tool_call_chunk"}
            return AIMessageChunk(content="", id=self.id, tool_call_chunks=[call])
        # thinking, redacted_thinking, server tool blocks: kept as indexed content blocks
        return AIMessageChunk(content=[{**block, "index": index}], id=self.id)

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> AIMessageChunk | None:
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            text = delta.get("text") or ""
            return AIMessageChunk(content=text, id=self.id) if text else None
        if delta_type == "input_json_delta":
            piece = delta.get("partial_json") or ""
            if self.blocks.get(index) == "tool_use":
                call = {"name": None, "id": None, "index": index, "args": piece,
                        "type": "tool_call_chunk"}
                return AIMessageChunk(content="", id=self.id, tool_call_chunks=[call])
            return AIMessageChunk(content=[{"partial_json": piece, "index": index}], id=self.id)
        if delta_type == "thinking_delta":
            block = {"type": "thinking", "thinking": delta.get("thinking") or "", "index": index}
            return AIMessageChunk(content=[block], id=self.id)
        if delta_type == "signature_delta":
            block = {"type": "thinking", "signature": delta.get("signature") or "",
                     "index": index}
            return AIMessageChunk(content=[block], id=self.id)
        if delta_type == "citations_delta" and delta.get("citation") is not None:
            return AIMessageChunk(content="", id=self.id,
                                  additional_kwargs={"citations": [delta["citation"]]})
        return None

    def response_metadata(self, model_name: str) -> dict[str, object]:
        return {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence,
                "model_name": model_name}

    def usage_metadata(self) -> dict[str, object] | None:
        return anthropic_usage(self.start_usage, self.last_usage)


def anthropic_usage(
    start: Mapping[str, Any], last: Mapping[str, Any]
) -> dict[str, object] | None:
    """``usage_metadata`` from ``message_start``'s usage and the last ``message_delta``'s.

    ``message_delta`` counts are cumulative and newer, so they replace the start's. As in
    LangChain, ``input_tokens`` includes cache reads and writes, which are also itemized.

    >>> anthropic_usage({"input_tokens": 10, "output_tokens": 1}, {"output_tokens": 15})
    {'input_tokens': 10, 'output_tokens': 15, 'total_tokens': 25}
    """
    merged = {**start, **{key: value for key, value in last.items() if value is not None}}
    if not merged:
        return None
    cache_read = merged.get("cache_read_input_tokens") or 0
    cache_creation = merged.get("cache_creation_input_tokens") or 0
    input_tokens = (merged.get("input_tokens") or 0) + cache_read + cache_creation
    output_tokens = merged.get("output_tokens") or 0
    usage: dict[str, object] = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                             "total_tokens": input_tokens + output_tokens}
    if "cache_read_input_tokens" in merged or "cache_creation_input_tokens" in merged:
        usage["input_token_details"] = {"cache_read": cache_read,
                                        "cache_creation": cache_creation}
    return usage


def _anthropic_tool_choice(
    choice: str | bool | Mapping[str, Any] | None, names: Sequence[str]
) -> dict[str, object] | None:
    if choice is None or choice is False:
        return None
    if isinstance(choice, Mapping):
        return dict(choice)
    if choice is True or choice in ("any", "required"):
        return {"type": "any"}
    if choice in ("auto", "none"):
        return {"type": choice}
    if isinstance(choice, str) and choice in names:
        return {"type": "tool", "name": choice}
    raise ValueError(f"tool_choice must be 'auto', 'any', 'none', True, a dict or one of the "
                     f"tool names {list(names)}, got {choice!r}")


# -- messages -------------------------------------------------------------------------------


def to_anthropic_messages(
    messages: Sequence[BaseMessage],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The ``system`` field and the ``messages`` list Anthropic expects.

    System messages (wherever they stand) join into ``system``; tool results become
    ``tool_result`` blocks of a user turn; consecutive turns of one role merge into one, so
    the results of parallel tool calls travel together.

    >>> system, turns = to_anthropic_messages([SystemMessage("Be terse."), HumanMessage("hi")])
    >>> system, turns
    ('Be terse.', [{'role': 'user', 'content': 'hi'}])
    """
    system_parts: list[str | dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, AIMessageChunk):
            message = message.to_message()
        if isinstance(message, SystemMessage):
            system_parts.extend(_blocks(message.content) if isinstance(message.content, list)
                                else [message.content])
            continue
        if isinstance(message, HumanMessage):
            role, content = "user", _content(message.content)
        elif isinstance(message, ToolMessage):
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id,
                                      "content": _content(message.content)}
            if message.status == "error":
                result["is_error"] = True
            role, content = "user", [result]
        elif isinstance(message, AIMessage):
            role, content = "assistant", _assistant_content(message)
        else:
            raise ValueError(f"cannot send a {type(message).__name__} to Anthropic; use "
                             "HumanMessage, AIMessage, SystemMessage or ToolMessage")
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]
            previous["content"] = _as_blocks(previous["content"]) + _as_blocks(content)
        else:
            turns.append({"role": role, "content": content})
    return _system(system_parts), turns


def _system(parts: list[str | dict[str, Any]]) -> str | list[dict[str, object]] | None:
    if not parts:
        return None
    if all(isinstance(part, str) for part in parts):
        return "\n\n".join(part for part in parts if isinstance(part, str))
    return _as_blocks(parts)  # blocks (e.g. with cache_control) must stay blocks


def _content(content: str | list[Any]) -> str | list[dict[str, object]]:
    return content if isinstance(content, str) else _blocks(content)


def _blocks(content: Sequence[Any]) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = []
    for block in content:
        if isinstance(block, str):
            if block:
                blocks.append({"type": "text", "text": block})
        else:
            # "index" is ours (it merges streamed blocks); Anthropic rejects unknown fields.
            cleaned = {key: value for key, value in block.items() if key != "index"}
            if cleaned.get("type") == "text" and not cleaned.get("text"):
                continue  # Anthropic rejects empty text blocks
            blocks.append(cleaned)
    return blocks


def _as_blocks(content: str | list[Any]) -> list[dict[str, object]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return _blocks(content)


def _assistant_content(message: AIMessage) -> str | list[dict[str, object]]:
    if not message.tool_calls and isinstance(message.content, str):
        return message.content
    call_ids = {call["id"] for call in message.tool_calls}
    blocks = [block for block in _as_blocks(message.content)
              if not (block.get("type") == "tool_use" and block.get("id") in call_ids)]
    blocks += [{"type": "tool_use", "id": call["id"], "name": call["name"],
                "input": call["args"]} for call in message.tool_calls]
    return blocks
