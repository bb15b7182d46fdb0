"""OpenAI chat completions and embeddings, and every server that speaks the same API.

vLLM, Ollama, llama.cpp's server, LM Studio, DeepSeek and others serve ``/v1/chat/completions``
in OpenAI's streaming format: point ``base_url`` at them.

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
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, ClassVar, Final

import httpx

from rillet.nodes.chat_models import BaseChatModel
from rillet.nodes.http import (
    ClientOwner,
    MissingAPIKeyError,
    ProviderClient,
    ProviderConnectionError,
    ProviderError,
    RetryPolicy,
    Timeouts,
    decode_event_json,
)
from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.tool_schema import convert_to_openai_tool
from rillet.runtime.engine.bridge import run_sync
from rillet.runtime.engine.scope import RunScope

__all__ = ["OpenAIChatModel", "OpenAIEmbeddings", "to_openai_message"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_PROVIDER: Final = "openai"


def _client(
    *,
    base_url: str | None,
    api_key: str | None,
    timeout: float | Timeouts,
    max_retries: int,
    retry_policy: RetryPolicy | None,
    default_headers: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> ProviderClient:
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("OPENAI_API_KEY")
    # OpenAI itself needs a key; a local server (Ollama, vLLM, llama.cpp) usually does not.
    if not key and url.rstrip("/") == DEFAULT_BASE_URL:
        raise MissingAPIKeyError(provider=_PROVIDER, env_var="OPENAI_API_KEY")
    headers = {**({"authorization": f"Bearer {key}"} if key else {}), **(default_headers or {})}
    return ProviderClient(
        provider=_PROVIDER, base_url=url, headers=headers, timeouts=Timeouts.coerce(timeout),
        retry=retry_policy or RetryPolicy(max_retries=max_retries), transport=transport)


class OpenAIChatModel(ClientOwner, BaseChatModel):
    """A streaming chat model on OpenAI's chat completions API (or a compatible server).

    Args:
        model: the model name, e.g. ``"gpt-4o-mini"`` (or ``"llama3.2"`` on Ollama).
        base_url: the API root; default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key: default ``OPENAI_API_KEY``; needed for OpenAI, optional elsewhere.
        temperature, max_tokens, stop: sampling settings, sent when given (reasoning models
            want ``extra_body={"max_completion_tokens": n}`` instead of ``max_tokens``).
        timeout: seconds for every phase, or :class:`~rillet.nodes.http.Timeouts` (``read`` is the
            idle timeout between chunks).
        max_retries: retries before the first token (see :class:`~rillet.nodes.http.RetryPolicy`);
            ``retry_policy`` replaces the whole policy.
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
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty str, got {model!r}")
        self.client = _client(base_url=base_url, api_key=api_key, timeout=timeout,
                              max_retries=max_retries, retry_policy=retry_policy,
                              default_headers=default_headers, transport=transport)
        self.model = self.model_name = model
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stop = list(stop) if stop else None
        self.extra_body = dict(extra_body or {})
        self.stream_usage = stream_usage
        self.name = name
        self.tools: tuple[dict[str, Any], ...] = ()
        self.tool_choice: str | dict[str, Any] | None = None
        self.parallel_tool_calls: bool | None = None

    def __repr__(self) -> str:
        tools = f", tools={[t['function']['name'] for t in self.tools]}" if self.tools else ""
        return (f"OpenAIChatModel(model={self.model_name!r}, "
                f"base_url={self.client.base_url!r}{tools})")

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

    def request_body(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        """The JSON body sent for ``messages`` (also handy to debug a request)."""
        body: dict[str, Any] = {
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

    async def _stream_chat(
        self, messages: list[BaseMessage], ctx: RunScope
    ) -> AsyncGenerator[AIMessageChunk, None]:
        state = _StreamState()
        async with self.client.open_sse("/chat/completions", self.request_body(messages)) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    state.done = True
                    await events.finish()
                    break
                chunk = state.read(decode_event_json(event, _PROVIDER))
                if chunk is not None:
                    yield chunk
        if not state.done and state.finish_reason is None:
            raise ProviderConnectionError(
                provider=_PROVIDER, error_type="stream_truncated",
                provider_message="the stream ended before [DONE] and before a finish_reason; "
                                 "the answer is incomplete")
        yield state.final_chunk(self.model)


class _StreamState:
    """What one stream has told so far that belongs on its final chunk."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.system_fingerprint: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.done = False

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
        extra: dict[str, Any] = {}
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

    def final_chunk(self, requested_model: str) -> AIMessageChunk:
        metadata: dict[str, Any] = {"finish_reason": self.finish_reason,
                                    "model_name": self.model or requested_model}
        if self.system_fingerprint:
            metadata["system_fingerprint"] = self.system_fingerprint
        # Marked last here, so the base class adds no empty closing chunk of its own.
        return AIMessageChunk(content="", id=self.id, response_metadata=metadata,
                              usage_metadata=openai_usage(self.usage), chunk_position="last")


def _tool_call_chunk(position: int, call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    args = function.get("arguments")
    if args is not None and not isinstance(args, str):
        args = json.dumps(args)  # a few servers send the arguments as an object
    index = call.get("index")
    return {"name": function.get("name") or None, "args": args, "id": call.get("id") or None,
            "index": index if isinstance(index, int) else position, "type": "tool_call_chunk"}


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's ``usage`` object as ``usage_metadata`` (LangChain's keys).

    >>> openai_usage({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
    ...               "completion_tokens_details": {"reasoning_tokens": 2}})
    {'input_tokens': 9, 'output_tokens': 3, 'total_tokens': 12, 'output_token_details': {'reasoning': 2}}
    """
    if not usage:
        return None
    input_tokens = usage.get("prompt_tokens") or 0
    output_tokens = usage.get("completion_tokens") or 0
    result: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens,
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
) -> str | dict[str, Any] | None:
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


def to_openai_message(message: BaseMessage) -> dict[str, Any]:
    """One message in OpenAI's request format.

    >>> to_openai_message(AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}]))
    {'role': 'assistant', 'content': None, 'tool_calls': [{'id': 'c1', 'type': 'function', 'function': {'name': 'f', 'arguments': '{"x": 1}'}}]}
    >>> to_openai_message(ToolMessage("42", tool_call_id="c1"))
    {'role': 'tool', 'content': '42', 'tool_call_id': 'c1'}
    """
    if isinstance(message, AIMessageChunk):
        message = message.to_message()
    if isinstance(message, HumanMessage):
        result: dict[str, Any] = {"role": "user", "content": _user_content(message.content)}
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


def _user_content(content: str | list[Any]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
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


# -- embeddings -----------------------------------------------------------------------------


class OpenAIEmbeddings(ClientOwner):
    """Embeddings from ``/embeddings`` of OpenAI or a compatible server; an ``Embeddings``.

    Texts are sent ``batch_size`` at a time, one batch after another; the vectors come back
    in the order of the texts.

    Args:
        model: e.g. ``"text-embedding-3-small"`` (or ``"nomic-embed-text"`` on Ollama).
        base_url, api_key, timeout, max_retries, retry_policy, default_headers, transport:
            as for :class:`OpenAIChatModel`.
        dimensions: ask for shorter vectors (``text-embedding-3-*`` only).
        batch_size: texts per request (OpenAI accepts up to 2048).

    Example::

        embeddings = OpenAIEmbeddings("text-embedding-3-small")
        vectors = await embeddings.aembed_documents(["a cat", "a dog"])
        query = embeddings.embed_query("pets")          # sync code
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 512,
        timeout: float | Timeouts = Timeouts(),
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.client = _client(base_url=base_url, api_key=api_key, timeout=timeout,
                              max_retries=max_retries, retry_policy=retry_policy,
                              default_headers=default_headers, transport=transport)
        self.model, self.dimensions, self.batch_size = model, dimensions, batch_size

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings(model={self.model!r}, base_url={self.client.base_url!r})"

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to be searched, one vector per text, in order.

        Raises:
            ProviderError: the server refused, failed, or answered with the wrong count.
        """
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._embed_batch(texts[start : start + self.batch_size]))
        return vectors

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return (await self._embed_batch([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Blocking :meth:`aembed_documents`, for code outside trio."""
        return run_sync(self.aembed_documents, texts, method="OpenAIEmbeddings.embed_documents()")

    def embed_query(self, text: str) -> list[float]:
        """Blocking :meth:`aembed_query`, for code outside trio."""
        return run_sync(self.aembed_query, text, method="OpenAIEmbeddings.embed_query()")

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        answer = await self.client.post_json("/embeddings", body)
        items = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(items, list) or len(items) != len(texts):
            got = len(items) if isinstance(items, list) else "no"
            raise ProviderError(provider=_PROVIDER, error_type="malformed_response",
                                provider_message=f"asked for {len(texts)} embeddings, got {got}")
        ordered = sorted(items, key=lambda item: item.get("index", 0))
        return [[float(x) for x in item["embedding"]] for item in ordered]
