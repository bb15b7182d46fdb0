"""OpenAI chat completions, and every server that speaks the same API.

vLLM, Ollama, llama.cpp's server, LM Studio, DeepSeek and others serve ``/v1/chat/completions``
in OpenAI's streaming format: point ``base_url`` at them. The stream loop itself is
:mod:`~rillet.nodes.providers.stream`'s; this module holds the request format (messages,
tools) and the parser of OpenAI's chunks; embeddings are in
:mod:`~rillet.nodes.providers.openai_embeddings`.

How a stream becomes chunks (one ``AIMessageChunk`` per useful delta; every chunk's ``id`` is
the provider's ``chatcmpl-…`` id):

- ``delta.content`` -> ``content``;
- ``delta.tool_calls[i]`` -> ``tool_call_chunks`` ``{"name", "args", "id", "index"}``, which
  add up by ``index``, so the summed message has parsed ``tool_calls``;
- ``delta.refusal`` -> ``additional_kwargs["refusal"]``; the reasoning text some servers stream
  (``delta.reasoning_content`` or ``delta.reasoning``) -> ``additional_kwargs
  ["reasoning_content"]`` (both concatenate when chunks add up);
- one final chunk, marked ``chunk_position="last"``, carries ``response_metadata``
  (``finish_reason``, ``model_name``, ``system_fingerprint``) and ``usage_metadata`` from the
  usage chunk — once, so adding chunks counts tokens once even on servers that repeat usage on
  every chunk.

Only the first choice is read (``n`` > 1 is not supported). A stream that ends without
``[DONE]`` and without a ``finish_reason`` is an error: the answer was cut off.
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
from rillet.nodes.providers.tool_formats import convert_to_openai_tool

__all__ = ["OpenAIChatModel", "openai_client", "openai_usage", "to_openai_message"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_PROVIDER: Final = "openai"


def openai_client(
    *,
    base_url: str | None,
    api_key: str | None,
    timeout: float | Timeouts,
    max_retries: int,
    retry_policy: RetryPolicy | None,
    default_headers: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> ProviderClient:
    """The client for OpenAI or a compatible server, from a model's constructor arguments.

    ``base_url`` defaults to ``OPENAI_BASE_URL``, then OpenAI's; ``api_key`` to
    ``OPENAI_API_KEY``, sent as a bearer token when there is one.

    Raises:
        MissingAPIKeyError: OpenAI itself, and no key given or in the environment.
    """
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("OPENAI_API_KEY")
    # OpenAI itself needs a key; a local server (Ollama, vLLM, llama.cpp) usually does not.
    if not key and url.rstrip("/") == DEFAULT_BASE_URL:
        raise MissingAPIKeyError(provider=_PROVIDER, env_var="OPENAI_API_KEY")
    headers = {**({"authorization": f"Bearer {key}"} if key else {}), **(default_headers or {})}
    return ProviderClient.from_options(
        provider=_PROVIDER, base_url=url, headers=headers, timeout=timeout,
        max_retries=max_retries, retry_policy=retry_policy, transport=transport)


class OpenAIChatModel(StreamingChatModel):
    """A streaming chat model on OpenAI's chat completions API (or a compatible server).

    Args:
        model: the model name, e.g. ``"gpt-4o-mini"`` (or ``"llama3.2"`` on Ollama).
        base_url: the API root; default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key: default ``OPENAI_API_KEY``; needed for OpenAI, optional elsewhere.
        temperature, max_tokens, stop: sampling settings, sent when given (reasoning models
            want ``extra_body={"max_completion_tokens": n}`` instead of ``max_tokens``).
        timeout: seconds for every phase, or :class:`~rillet.nodes.providers.http.Timeouts`
            (``read`` is the idle timeout between chunks).
        max_retries: retries before the first token (see
            :class:`~rillet.nodes.providers.retry.RetryPolicy`); ``retry_policy`` replaces the
            whole policy.
        extra_body: merged into the request body last (``top_p``, ``seed``, server options).
        stream_usage: ask for token usage (``stream_options.include_usage``).
        default_headers: extra headers for every request.
        transport: an httpx transport instead of the network (tests, proxies).

    Raises:
        MissingAPIKeyError: talking to OpenAI itself with no key given or in the environment.

    Example::

        model = OpenAIChatModel("gpt-4o-mini")                        # OPENAI_API_KEY
        local = OpenAIChatModel("llama3.2", base_url="http://localhost:11434/v1")
        async with model:                                             # closes the pool
            async for chunk in model.astream("Say hi"):
                print(chunk.content, end="")
    """

    provider: ClassVar[str] = _PROVIDER
    stream_path: ClassVar[str] = "/chat/completions"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | Timeouts = Timeouts(),
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream_usage: bool = True,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        self._keep_settings(model, stop=stop, extra_body=extra_body, name=name)
        self.client = openai_client(base_url=base_url, api_key=api_key, timeout=timeout,
                                    max_retries=max_retries, retry_policy=retry_policy,
                                    default_headers=default_headers, transport=transport)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stream_usage = stream_usage
        self.tool_choice: str | dict[str, object] | None = None
        self.parallel_tool_calls: bool | None = None

    def _tool_names(self) -> list[object]:
        return [tool["function"]["name"] for tool in self.tools]

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
    ) -> OpenAIChatModel:
        """A copy of this model that offers ``tools`` (sharing its connection pool).

        Args:
            tools: functions (schema from type hints and docstring), tool dicts in OpenAI's
                or Anthropic's format, or objects with ``name``/``description``/``parameters``.
            tool_choice: ``"auto"``, ``"none"``, ``"required"`` (or ``"any"``, or ``True``),
                a tool's name to force it, or OpenAI's dict.
            parallel_tool_calls: let the model call several tools in one turn.
            strict: OpenAI's structured-outputs mode for the tools' arguments.

        >>> def get_weather(city: str) -> str:
        ...     '''Weather in a city.'''
        ...     return "sunny"
        >>> model = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1").bind_tools([get_weather])
        >>> model.tools[0]["function"]["name"]
        'get_weather'
        """
        bound = copy.copy(self)
        bound.tools = tuple(convert_to_openai_tool(tool, strict=strict) for tool in tools)
        bound.tool_choice = _openai_tool_choice(tool_choice, bound.tools)
        bound.parallel_tool_calls = parallel_tool_calls
        return bound

    def request_body(self, messages: Sequence[BaseMessage]) -> dict[str, object]:
        """The JSON body sent for ``messages`` (also handy to debug a request)."""
        body: dict[str, object] = {
            "model": self.model_name,
            "messages": [to_openai_message(message) for message in messages],
            "stream": True,
        }
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stop:
            body["stop"] = list(self.stop)
        if self.tools:
            body["tools"] = [dict(tool) for tool in self.tools]
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        body.update(self.extra_body)
        return body

    def stream_parser(self) -> StreamParser:
        return _OpenAIStream()


class _OpenAIStream(StreamParser):
    """What one stream has told so far that belongs on its final chunk."""

    truncated = ("the stream ended before [DONE] and before a finish_reason; "
                 "the answer is incomplete")

    def __init__(self) -> None:
        super().__init__()
        self.finish_reason: str | None = None
        self.system_fingerprint: str | None = None
        self.usage: Mapping[str, Any] | None = None

    @property
    def complete(self) -> bool:
        # Some servers end the response without [DONE]; a finish_reason says the answer is whole.
        return self.done or self.finish_reason is not None

    def feed(self, event: ServerSentEvent) -> AIMessageChunk | None:
        if event.data.strip() == "[DONE]":
            self.done = True
            return None
        return self.read(decode_event_json(event, _PROVIDER))

    def read(self, data: Mapping[str, Any]) -> AIMessageChunk | None:
        """The chunk for one ``chat.completion.chunk`` object, or None if it has no delta."""
        self.id = data.get("id") or self.id
        self.model = data.get("model") or self.model
        self.system_fingerprint = data.get("system_fingerprint") or self.system_fingerprint
        if isinstance(data.get("usage"), Mapping):
            self.usage = data["usage"]  # the last one wins: some servers repeat it cumulatively
        choices = data.get("choices") or ()  # [] on the usage chunk, null on some servers
        choice = next((c for c in choices if isinstance(c, Mapping) and c.get("index", 0) == 0),
                      None)
        if choice is None:
            return None
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if not isinstance(content, (str, list)):
            content = ""
        extra: dict[str, object] = {}
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            extra["refusal"] = delta["refusal"]
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            extra["reasoning_content"] = reasoning
        calls = [_tool_call_chunk(position, call)
                 for position, call in enumerate(delta.get("tool_calls") or ())
                 if isinstance(call, Mapping)]
        if not content and not calls and not extra:
            return None
        return AIMessageChunk(content=content, id=self.id, tool_call_chunks=calls,
                              additional_kwargs=extra)

    def response_metadata(self, model_name: str) -> dict[str, object]:
        metadata: dict[str, object] = {"finish_reason": self.finish_reason,
                                       "model_name": model_name}
        if self.system_fingerprint:
            metadata["system_fingerprint"] = self.system_fingerprint
        return metadata

    def usage_metadata(self) -> dict[str, object] | None:
        return openai_usage(self.usage)


def _tool_call_chunk(position: int, call: Mapping[str, Any]) -> dict[str, object]:
    function = call.get("function") or {}
    args = function.get("arguments")
    if args is not None and not isinstance(args, str):
        args = json.dumps(args)  # a few servers send the arguments as an object
    index = call.get("index")
    return {"name": function.get("name") or None, "args": args, "id": call.get("id") or None,
            "index": index if isinstance(index, int) else position, "type": "tool_call_chunk"}


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, object] | None:
    """OpenAI's ``usage`` object as ``usage_metadata`` (LangChain's keys).

    >>> openai_usage({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
    ...               "completion_tokens_details": {"reasoning_tokens": 2}})
    {'input_tokens': 9, 'output_tokens': 3, 'total_tokens': 12, 'output_token_details': {'reasoning': 2}}
    """
    if not usage:
        return None
    input_tokens = usage.get("prompt_tokens") or 0
    output_tokens = usage.get("completion_tokens") or 0
    result: dict[str, object] = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                              "total_tokens": usage.get("total_tokens")
                              or input_tokens + output_tokens}
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    inputs = {key: prompt[raw] for key, raw in (("cache_read", "cached_tokens"),
                                                ("audio", "audio_tokens"))
              if prompt.get(raw) is not None}
    outputs = {key: completion[raw] for key, raw in (("reasoning", "reasoning_tokens"),
                                                     ("audio", "audio_tokens"))
               if completion.get(raw) is not None}
    if inputs:
        result["input_token_details"] = inputs
    if outputs:
        result["output_token_details"] = outputs
    return result


def _openai_tool_choice(
    choice: str | bool | Mapping[str, Any] | None, tools: Sequence[Mapping[str, Any]]
) -> str | dict[str, object] | None:
    names = [tool["function"]["name"] for tool in tools]
    if choice is None or choice is False:
        return None
    if isinstance(choice, Mapping):
        return dict(choice)
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice in ("auto", "none"):
        return choice
    if isinstance(choice, str) and choice in names:
        return {"type": "function", "function": {"name": choice}}
    raise ValueError(f"tool_choice must be 'auto', 'none', 'required', True, a dict or one of "
                     f"the tool names {names}, got {choice!r}")


# -- messages -------------------------------------------------------------------------------


def to_openai_message(message: BaseMessage) -> dict[str, object]:
    """One message in OpenAI's request format.

    >>> to_openai_message(AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}]))
    {'role': 'assistant', 'content': None, 'tool_calls': [{'id': 'c1', 'type': 'function', 'function': {'name': 'f', 'arguments': '{"x": 1}'}}]}
    >>> to_openai_message(ToolMessage("42", tool_call_id="c1"))
    {'role': 'tool', 'content': '42', 'tool_call_id': 'c1'}
    """
    if isinstance(message, AIMessageChunk):
        message = message.to_message()
    if isinstance(message, HumanMessage):
        result: dict[str, object] = {"role": "user", "content": _user_content(message.content)}
    elif isinstance(message, SystemMessage):
        result = {"role": "system", "content": message.text}
    elif isinstance(message, ToolMessage):
        result = {"role": "tool", "content": _tool_content(message.content),
                  "tool_call_id": message.tool_call_id}
    elif isinstance(message, AIMessage):
        calls = [{"id": call["id"], "type": "function",
                  "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}
                 for call in message.tool_calls]
        calls += [{"id": call["id"], "type": "function",
                   "function": {"name": call["name"], "arguments": call["args"] or ""}}
                  for call in message.invalid_tool_calls]
        # Thinking blocks stay out: OpenAI-style servers take the answer text only.
        result = {"role": "assistant", "content": message.text or (None if calls else "")}
        if calls:
            result["tool_calls"] = calls
    else:
        raise ValueError(f"cannot send a {type(message).__name__} to an OpenAI-style API; "
                         "use HumanMessage, AIMessage, SystemMessage or ToolMessage")
    if message.name is not None and not isinstance(message, ToolMessage):
        result["name"] = message.name
    return result


def _user_content(content: str | list[Any]) -> str | list[dict[str, object]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, object]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        else:
            parts.append({key: value for key, value in block.items() if key != "index"})
    return parts


def _tool_content(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    texts = [block if isinstance(block, str) else block.get("text") for block in content]
    if all(isinstance(text, str) for text in texts):
        return "".join(text for text in texts if isinstance(text, str))
    return json.dumps(content)
