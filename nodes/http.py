"""HTTP for provider adapters: errors, timeouts, retries, and event streams on httpx.

httpx runs on trio (httpcore picks its trio backend through sniffio), so a cancelled run
cancels the read it is waiting on and the response closes at once: the server sees the
disconnect. Everything here is provider-neutral; ``rillet.nodes.openai`` and ``rillet.nodes.anthropic``
build on :class:`ProviderClient`.

Errors::

    RilletError
    ├── ProviderError                 the provider said no, or the exchange failed:
    │   │                             .provider, .status, .provider_message, .error_type, ...
    │   ├── ProviderConnectionError   no connection, or it broke mid-stream
    │   └── ProviderTimeout           (also TimeoutError) connect, idle read, write or pool
    └── MissingAPIKeyError            (also ValueError) no key given, none in the environment

Retries (:class:`RetryPolicy`): connect errors, timeouts, dropped connections and HTTP 408,
409, 429 and 5xx are retried with exponential backoff and jitter, honouring ``Retry-After``
(and ``retry-after-ms``, and the ``x-should-retry`` header both OpenAI and Anthropic send),
but only until the first event has been handed over: after that a retry would repeat output
the consumer already has, so a broken stream is an error.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final, Self, cast

import attrs
import httpx
import trio

from rillet.nodes.sse import ServerSentEvent, SSEDecoder
from rillet.runtime.errors import RilletError
from rillet.runtime.logs import get_logger

__all__ = [
    "ClientOwner",
    "MissingAPIKeyError",
    "ProviderClient",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RetryPolicy",
    "SSEStream",
    "Timeouts",
    "decode_event_json",
    "error_details",
    "parse_retry_after",
]

USER_AGENT: Final = "rillet/0.1 (httpx)"
_RETRY_STATUSES: Final = frozenset({408, 409, 429})
# Closing a response only closes a socket; the grace is a guard, not a wait anybody sees.
_CLOSE_GRACE: Final = 5.0
_DRAIN_GRACE: Final = 1.0
_HINTS: Final[Mapping[int, str]] = {
    401: "check the API key (argument api_key or the provider's *_API_KEY variable)",
    403: "the key is valid but not allowed to use this model or endpoint",
    404: "check base_url and the model name",
}


# -- errors ---------------------------------------------------------------------------------


def _rebuild(cls: type[Exception], kwargs: dict[str, Any]) -> Exception:
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


# -- policies -------------------------------------------------------------------------------


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a number > 0 (seconds), got {value!r}")


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long to wait, in seconds, for each phase of a request.

    ``read`` is the *idle* timeout: the longest silence allowed between two reads, so a
    stream that keeps sending never times out, and one that stalls fails after ``read``.

    >>> Timeouts.coerce(5.0)
    Timeouts(connect=5.0, read=5.0, write=5.0, pool=5.0)
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=120.0, validator=_positive)
    write: float = attrs.field(default=30.0, validator=_positive)
    pool: float = attrs.field(default=30.0, validator=_positive)

    @classmethod
    def coerce(cls, value: float | Timeouts) -> Timeouts:
        """A ``Timeouts`` as it is, or one number for every phase (httpx's convention)."""
        if isinstance(value, Timeouts):
            return value
        return cls(connect=value, read=value, write=value, pool=value)

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    Retry ``n`` (1-based) waits ``min(max_backoff, initial_backoff * 2**(n-1))``, less a random
    fraction up to ``jitter`` of it (so clients that failed together do not return together),
    unless the server said how long with ``Retry-After``: that is honoured when it is at most
    ``max_retry_after`` seconds.

    >>> policy = RetryPolicy(initial_backoff=1.0, jitter=0.0)
    >>> [policy.delay(n) for n in (1, 2, 3)], policy.delay(1, retry_after=7.0)
    ([1.0, 2.0, 4.0], 7.0)
    """

    max_retries: int = attrs.field(default=2)
    initial_backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=8.0, validator=_positive)
    jitter: float = attrs.field(default=0.25)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)

    @max_retries.validator
    def _check_max_retries(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {value!r}")

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute[float], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"jitter must be a fraction in [0, 1], got {value!r}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        base: float = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return base * (1 - self.jitter * random.random())


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date (``now`` is the wall clock, for tests).

    >>> parse_retry_after({"retry-after": "2"}), parse_retry_after({"retry-after-ms": "250"})
    (2.0, 0.25)
    >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0)
    5.0
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if (millis := lowered.get("retry-after-ms")) is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _should_retry_status(status: int, headers: Mapping[str, str]) -> bool:
    # OpenAI's and Anthropic's servers say so explicitly when they know better than the status.
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _retryable_transport_error(error: httpx.TransportError) -> bool:
    # Proxy, protocol-misuse and unsupported-scheme errors are configuration: retrying is futile.
    return isinstance(error, (httpx.TimeoutException, httpx.NetworkError,
                              httpx.RemoteProtocolError))


# -- the client -----------------------------------------------------------------------------

_clients: trio.lowlevel.RunVar[weakref.WeakKeyDictionary[ProviderClient, httpx.AsyncClient]] = (
    trio.lowlevel.RunVar("rillet_http_clients"))


class ProviderClient:
    """One provider endpoint: base URL, headers, timeouts and retry policy, and a pool.

    Each model instance owns one; copies made by ``bind_tools`` share it. The connection
    pool (an ``httpx.AsyncClient``) is made on first use in each trio run and kept for the
    run, because sockets and locks belong to the loop that made them (``invoke`` from sync
    code runs on rillet's portal loop, ``ainvoke`` on yours).

    Args:
        provider: the name used in errors and logs.
        base_url: the URL every ``path`` is appended to.
        headers: sent with every request (authentication, API version).
        timeouts: see :class:`Timeouts`.
        retry: see :class:`RetryPolicy`.
        transport: an httpx transport to use instead of the network (tests, proxies).

    Example::

        client = ProviderClient(provider="openai", base_url="http://127.0.0.1:8000/v1")
        async with client.open_sse("/chat/completions", payload) as events:
            async for event in events:
                print(event.data)
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = {"user-agent": USER_AGENT, **(headers or {})}
        self.timeouts, self.retry, self.transport = timeouts, retry, transport

    def __repr__(self) -> str:
        # Never the headers: they hold the key.
        return f"ProviderClient(provider={self.provider!r}, base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def http(self) -> httpx.AsyncClient:
        """This run's connection pool (made on first use)."""
        try:
            pools = _clients.get()
        except LookupError:
            pools = weakref.WeakKeyDictionary()
            _clients.set(pools)
        client = pools.get(self)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(headers=self.headers, timeout=self.timeouts.to_httpx(),
                                       transport=self.transport)
            pools[self] = client
        return client

    async def aclose(self) -> None:
        """Close this run's connection pool; the next request opens a new one."""
        try:
            client = _clients.get().pop(self, None)
        except LookupError:
            client = None
        if client is not None:
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await client.aclose()

    def open_sse(self, path: str, payload: Mapping[str, Any]) -> SSEStream:
        """POST ``payload`` as JSON and read the answer as server-sent events.

        Use with ``async with``: entering sends the request (retrying as the policy allows)
        and raises :class:`ProviderError` for an HTTP error; leaving closes the response.
        """
        return SSEStream(self, path, payload)

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST ``payload`` as JSON and return the decoded JSON answer, retrying as allowed.

        Raises:
            ProviderError: an HTTP error, a network failure or a timeout, after the retries.
        """
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self.http().post(self.url(path), json=payload)
            except httpx.TransportError as error:
                if attempts <= self.retry.max_retries and _retryable_transport_error(error):
                    await self._backoff(attempts, None, reason=type(error).__name__)
                    continue
                raise self.translate(error, attempts=attempts, events=None) from error
            if response.is_success:
                try:
                    return response.json()
                except ValueError as error:
                    raise ProviderError(
                        provider=self.provider, status=response.status_code, attempts=attempts,
                        provider_message=f"expected JSON, got {response.text[:200]!r}",
                    ) from error
            failure = self.error_from_response(response, response.content, attempts=attempts)
            if attempts <= self.retry.max_retries and _should_retry_status(
                    response.status_code, response.headers):
                await self._backoff(attempts, parse_retry_after(response.headers),
                                    reason=f"HTTP {response.status_code}")
                continue
            raise failure

    # -- shared by SSEStream and post_json --------------------------------------------------

    async def _backoff(self, attempt: int, retry_after: float | None, *, reason: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        # Looked up per retry: logging may have been switched on after the model was made.
        get_logger(provider=self.provider).warning(
            "provider_request_retried", attempt=attempt, reason=reason, delay=round(delay, 3))
        await trio.sleep(delay)

    def error_from_response(
        self, response: httpx.Response, body: bytes, *, attempts: int
    ) -> ProviderError:
        """The :class:`ProviderError` for an HTTP error response and its body."""
        message, error_type = error_details(body)
        return ProviderError(
            provider=self.provider, status=response.status_code,
            provider_message=message or response.reason_phrase or "no error message",
            error_type=error_type, attempts=attempts,
            request_id=response.headers.get("x-request-id") or response.headers.get("request-id"),
        )

    def translate(
        self, error: httpx.TransportError, *, attempts: int, events: int | None
    ) -> ProviderError:
        """Our error for an httpx transport error; ``events`` read so far on a stream."""
        after = "" if not events else f" after {events} events"
        kinds: dict[type[httpx.TimeoutException], tuple[str, float]] = {
            httpx.ConnectTimeout: ("connect_timeout", self.timeouts.connect),
            httpx.ReadTimeout: ("read_timeout", self.timeouts.read),
            httpx.WriteTimeout: ("write_timeout", self.timeouts.write),
            httpx.PoolTimeout: ("pool_timeout", self.timeouts.pool),
        }
        if isinstance(error, httpx.TimeoutException):
            kind, seconds = kinds.get(type(error), ("timeout", self.timeouts.read))
            what = {"connect_timeout": "could not connect within",
                    "read_timeout": "sent nothing for",
                    "write_timeout": "did not accept the request within",
                    "pool_timeout": "no free connection within"}.get(kind, "timed out after")
            return ProviderTimeout(
                provider=self.provider, error_type=kind, attempts=attempts,
                provider_message=f"{what} {seconds:g} s{after}; the request was abandoned")
        if isinstance(error, httpx.ConnectError):
            return ProviderConnectionError(
                provider=self.provider, error_type="connect_error", attempts=attempts,
                provider_message=f"could not connect to {self.base_url}: {error}")
        return ProviderConnectionError(
            provider=self.provider, error_type="connection_broken", attempts=attempts,
            provider_message=f"the connection broke{after}: {error or type(error).__name__}")


def decode_event_json(event: ServerSentEvent, provider: str) -> dict[str, Any]:
    """An event's ``data`` as a JSON object; an error payload raises :class:`ProviderError`.

    Errors mid-stream come as ``event: error`` or as a ``data`` object with an ``error`` key
    (OpenAI, Anthropic, and the servers that copy them).

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


class SSEStream:
    """The events of one streamed response; made by :meth:`ProviderClient.open_sse`.

    An async context manager and an async iterator of :class:`~rillet.nodes.sse.ServerSentEvent`.
    Until the first event is handed over, a failure is retried by sending the request again;
    afterwards it raises. ``events_read`` counts the events handed over.
    """

    def __init__(self, client: ProviderClient, path: str, payload: Mapping[str, Any]) -> None:
        self._client, self._path, self._payload = client, path, payload
        self._response: httpx.Response | None = None
        self._chunks: AsyncGenerator[bytes, None] | None = None
        self._decoder = SSEDecoder()
        self._pending: deque[ServerSentEvent] = deque()
        self._finished = False
        self.attempts = 0
        self.events_read = 0
        self.response_headers: Mapping[str, str] = {}

    async def __aenter__(self) -> Self:
        try:
            await self._connect()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ServerSentEvent:
        client = self._client
        while not self._pending:
            if self._finished:
                raise StopAsyncIteration
            if self._chunks is None:
                await self._connect()
                assert self._chunks is not None
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._decoder.close()
                self._finished = True
                await self._close_response()
                raise
            except httpx.TransportError as error:
                await self._close_response()
                if (self.events_read == 0 and self.attempts <= client.retry.max_retries
                        and _retryable_transport_error(error)):
                    await client._backoff(self.attempts, None, reason=type(error).__name__)
                    continue
                raise client.translate(error, attempts=self.attempts,
                                       events=self.events_read) from error
            self._pending.extend(self._decoder.feed(chunk))
        self.events_read += 1
        return self._pending.popleft()

    async def finish(self, grace: float = _DRAIN_GRACE) -> None:
        """Read what follows the provider's final event, so the connection can be reused.

        The server ends the response right after its final event; whatever it still sends
        is ignored. A server that keeps the response open longer than ``grace`` seconds gets
        its connection closed instead.
        """
        with trio.move_on_after(grace):
            try:
                async for _ in self:
                    pass
            except ProviderError:
                pass  # the answer is complete; a broken tail only costs the connection
        await self.aclose()

    async def aclose(self) -> None:
        """Close the response now (the server sees the connection end); idempotent."""
        self._finished = True
        await self._close_response()

    async def _connect(self) -> None:
        client = self._client
        while True:
            self.attempts += 1
            http = client.http()
            request = http.build_request("POST", client.url(self._path), json=self._payload,
                                         headers={"accept": "text/event-stream"})
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as error:
                if self.attempts <= client.retry.max_retries and _retryable_transport_error(error):
                    await client._backoff(self.attempts, None, reason=type(error).__name__)
                    continue
                raise client.translate(error, attempts=self.attempts, events=0) from error
            self._response = response
            self.response_headers = response.headers
            content_type = response.headers.get("content-type", "")
            if response.is_success and not content_type.startswith("application/json"):
                self._decoder = SSEDecoder()
                self._chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                return
            try:
                body = await response.aread()
            except httpx.TransportError as error:
                await self._close_response()
                raise client.translate(error, attempts=self.attempts, events=0) from error
            await self._close_response()
            if response.is_success:  # a JSON body where a stream was asked for
                message, error_type = error_details(body)
                raise ProviderError(
                    provider=client.provider, status=response.status_code, attempts=self.attempts,
                    error_type=error_type,
                    provider_message=f"expected an event stream, got JSON: {message}")
            failure = client.error_from_response(response, body, attempts=self.attempts)
            if self.attempts <= client.retry.max_retries and _should_retry_status(
                    response.status_code, response.headers):
                await client._backoff(self.attempts, parse_retry_after(response.headers),
                                      reason=f"HTTP {response.status_code}")
                continue
            raise failure

    async def _close_response(self) -> None:
        chunks, response = self._chunks, self._response
        self._chunks = self._response = None
        # Shielded: this runs when the consumer left or the run was cancelled, which is
        # exactly when the socket must still be closed.
        with trio.move_on_after(_CLOSE_GRACE, shield=True):
            if chunks is not None:
                await chunks.aclose()
            if response is not None:
                await response.aclose()


class ClientOwner:
    """Gives a model that owns a :class:`ProviderClient` (``self.client``) ``aclose`` and
    ``async with``, which close its connection pool in the current trio run."""

    client: ProviderClient

    async def aclose(self) -> None:
        """Close the connection pool of this trio run (a later call opens a new one)."""
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
