"""What can go wrong talking to a model provider, as errors that carry the facts.

Errors::

    RilletError
    ├── ProviderError                 the provider said no, or the exchange failed:
    │   │                             .provider, .status, .provider_message, .error_type, ...
    │   ├── ProviderConnectionError   no connection, or it broke mid-stream
    │   └── ProviderTimeout           (also TimeoutError) connect, idle read, write or pool
    └── MissingAPIKeyError            (also ValueError) no key given, none in the environment

Also here: how an HTTP error response (:func:`error_from_response`, reading the body with
:func:`error_details`) and an httpx transport error (:func:`error_from_transport`) become one
of these.

>>> raise ProviderTimeout(provider="openai", error_type="read_timeout",
...                       provider_message="sent nothing for 120 s")
Traceback (most recent call last):
    ...
rillet.nodes.providers.ProviderTimeout: openai: read_timeout: sent nothing for 120 s
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx

from rillet.runtime.errors import RilletError

if TYPE_CHECKING:
    from rillet.nodes.providers.http import Timeouts

__all__ = [
    "MissingAPIKeyError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "error_details",
    "error_from_response",
    "error_from_transport",
]

_HINTS: Final[Mapping[int, str]] = {
    401: "check the API key (argument api_key or the provider's *_API_KEY variable)",
    403: "the key is valid but not allowed to use this model or endpoint",
    404: "check base_url and the model name",
}


def _rebuild(cls: type[Exception], kwargs: Mapping[str, object]) -> Exception:
    return cls(**kwargs)


class ProviderError(RilletError):
    """A model provider answered with an error, or the exchange with it failed.

    Attributes:
        provider: ``"openai"``, ``"anthropic"``, ...
        status: the HTTP status, or ``None`` (an error event mid-stream, a network failure).
        provider_message: the provider's own words (its error ``message``), or ours.
        error_type: the provider's error type or code (``"rate_limit_error"``), if any.
        request_id: the provider's request id header, to quote in a support ticket.
        attempts: how many requests were made in all.

    >>> str(ProviderError(provider="openai", status=429, provider_message="Slow down",
    ...                   error_type="rate_limit_exceeded", attempts=3))
    'openai: HTTP 429 (rate_limit_exceeded): Slow down [after 3 attempts]'
    """

    def __init__(
        self,
        *,
        provider: str,
        provider_message: str,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.provider, self.provider_message, self.status = provider, provider_message, status
        self.error_type, self.request_id, self.attempts = error_type, request_id, attempts
        head = provider if status is None else f"{provider}: HTTP {status}"
        if error_type:
            head = f"{head} ({error_type})" if status is not None else f"{head}: {error_type}"
        text = f"{head}: {provider_message}"
        if request_id:
            text += f" [request {request_id}]"
        if attempts > 1:
            text += f" [after {attempts} attempts]"
        if status is not None and status in _HINTS:
            text += f"; {_HINTS[status]}"
        super().__init__(text)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), {
            "provider": self.provider, "provider_message": self.provider_message,
            "status": self.status, "error_type": self.error_type,
            "request_id": self.request_id, "attempts": self.attempts}))


class ProviderConnectionError(ProviderError):
    """Could not connect to the provider, or the connection broke mid-stream."""


class ProviderTimeout(ProviderError, TimeoutError):
    """The provider was too slow: ``error_type`` says which timeout fired (``"read_timeout"``
    is the idle timeout between two chunks of a stream)."""


class MissingAPIKeyError(RilletError, ValueError):
    """No API key was passed and the environment variable for it is not set.

    >>> str(MissingAPIKeyError(provider="anthropic", env_var="ANTHROPIC_API_KEY"))
    'anthropic needs an API key: pass api_key=... or set ANTHROPIC_API_KEY'
    """

    def __init__(self, *, provider: str, env_var: str) -> None:
        self.provider, self.env_var = provider, env_var
        super().__init__(f"{provider} needs an API key: pass api_key=... or set {env_var}")

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), {"provider": self.provider, "env_var": self.env_var}))


# -- from HTTP to our errors ----------------------------------------------------------------


def error_details(body: bytes) -> tuple[str | None, str | None]:
    """The message and type in an error body, whatever the server's dialect.

    OpenAI ``{"error": {"message", "type", "code"}}``, Anthropic ``{"type": "error",
    "error": {"type", "message"}}``, Ollama ``{"error": "..."}``, FastAPI servers such as vLLM
    ``{"detail": ...}``, or plain text.

    >>> error_details(b'{"type": "error", '
    ...               b'"error": {"type": "overloaded_error", "message": "Overloaded"}}')
    ('Overloaded', 'overloaded_error')
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return (text[:500] or None), None
    if not isinstance(data, dict):
        return text[:500], None
    error = data.get("error", data)
    if isinstance(error, str):
        return error, None
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("msg")
        error_type = error.get("code") or error.get("type")
        if isinstance(error_type, str) and error_type == "error":
            error_type = None
        return (str(message) if message else text[:500]), (
            str(error_type) if error_type is not None else None)
    return text[:500], None


def error_from_response(
    provider: str, response: httpx.Response, body: bytes, *, attempts: int
) -> ProviderError:
    """The :class:`ProviderError` for an HTTP error response and its body.

    >>> response = httpx.Response(429, headers={"x-request-id": "req_1"})
    >>> str(error_from_response("openai", response, b'{"error": "slow down"}', attempts=1))
    'openai: HTTP 429: slow down [request req_1]'
    """
    message, error_type = error_details(body)
    return ProviderError(
        provider=provider, status=response.status_code,
        provider_message=message or response.reason_phrase or "no error message",
        error_type=error_type, attempts=attempts,
        request_id=response.headers.get("x-request-id") or response.headers.get("request-id"),
    )


_TIMEOUT_KINDS: Final[Mapping[type[httpx.TimeoutException], str]] = {
    httpx.ConnectTimeout: "connect_timeout",
    httpx.ReadTimeout: "read_timeout",
    httpx.WriteTimeout: "write_timeout",
    httpx.PoolTimeout: "pool_timeout",
}
_TIMEOUT_WORDS: Final[Mapping[str, str]] = {
    "connect_timeout": "could not connect within",
    "read_timeout": "sent nothing for",
    "write_timeout": "did not accept the request within",
    "pool_timeout": "no free connection within",
}


def error_from_transport(
    error: httpx.TransportError,
    *,
    provider: str,
    base_url: str,
    timeouts: Timeouts,
    attempts: int,
    events: int | None,
) -> ProviderError:
    """Our error for an httpx transport error; ``events`` read so far on a stream.

    A timeout says which phase's limit fired and how long it was (from ``timeouts``); a
    failed connect names ``base_url``.
    """
    after = "" if not events else f" after {events} events"
    if isinstance(error, httpx.TimeoutException):
        kind = _TIMEOUT_KINDS.get(type(error), "timeout")
        seconds = {"connect_timeout": timeouts.connect, "write_timeout": timeouts.write,
                   "pool_timeout": timeouts.pool}.get(kind, timeouts.read)
        what = _TIMEOUT_WORDS.get(kind, "timed out after")
        return ProviderTimeout(
            provider=provider, error_type=kind, attempts=attempts,
            provider_message=f"{what} {seconds:g} s{after}; the request was abandoned")
    if isinstance(error, httpx.ConnectError):
        return ProviderConnectionError(
            provider=provider, error_type="connect_error", attempts=attempts,
            provider_message=f"could not connect to {base_url}: {error}")
    return ProviderConnectionError(
        provider=provider, error_type="connection_broken", attempts=attempts,
        provider_message=f"the connection broke{after}: {error or type(error).__name__}")
