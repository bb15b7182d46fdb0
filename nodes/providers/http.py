"""The HTTP client of provider adapters: timeouts, a pool per trio run, JSON and event streams.

httpx runs on trio (httpcore picks its trio backend through sniffio), so a cancelled run
cancels the read it is waiting on and the response closes at once: the server sees the
disconnect. Everything here is provider-neutral; :mod:`rillet.nodes.providers.openai` and
:mod:`rillet.nodes.providers.anthropic` build on :class:`ProviderClient`. Failures become the
errors of :mod:`~rillet.nodes.providers.errors`; what is retried, and how long to wait, is
:mod:`~rillet.nodes.providers.retry`'s call.

>>> client = ProviderClient(provider="openai", base_url="http://127.0.0.1:8000/v1/",
...                         timeouts=Timeouts.coerce(5.0))
>>> client.url("/chat/completions")
'http://127.0.0.1:8000/v1/chat/completions'
>>> client.timeouts.to_httpx().read
5.0
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Final, Self, cast

import attrs
import httpx
import trio

from rillet.nodes.providers.errors import (
    ProviderError,
    ProviderTimeout,
    error_details,
    error_from_response,
    error_from_transport,
)
from rillet.nodes.providers.retry import RetryPolicy, backoff_before_retry, positive_seconds
from rillet.nodes.providers.sse import ServerSentEvent, SSEDecoder
from rillet.runtime.errors import WireFormatError

__all__ = ["ClientOwner", "ProviderClient", "SSEStream", "Timeouts"]

USER_AGENT: Final = "rillet/0.1 (httpx)"
# Closing a response only closes a socket; the grace is a guard, not a wait anybody sees.
_CLOSE_GRACE: Final = 5.0
_DRAIN_GRACE: Final = 1.0


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long to wait, in seconds, for each phase of a request.

    ``read`` is the *idle* timeout: the longest a stream may go without a complete line (bytes
    that trickle without ending a line do not count), and the longest silence between two
    reads. ``stream`` bounds a whole event stream, first request to last event, retries
    included; a number given alone (``coerce(5.0)``) sets the other four, not this one.

    >>> Timeouts.coerce(5.0)
    Timeouts(connect=5.0, read=5.0, write=5.0, pool=5.0, stream=900.0)
    """

    connect: float = attrs.field(default=10.0, validator=positive_seconds)
    read: float = attrs.field(default=120.0, validator=positive_seconds)
    write: float = attrs.field(default=30.0, validator=positive_seconds)
    pool: float = attrs.field(default=30.0, validator=positive_seconds)
    stream: float = attrs.field(default=900.0, validator=positive_seconds)

    @classmethod
    def coerce(cls, value: float | Timeouts) -> Timeouts:
        """A ``Timeouts`` as it is, or one number for every phase (httpx's convention)."""
        if isinstance(value, Timeouts):
            return value
        return cls(connect=value, read=value, write=value, pool=value)

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


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
        retry: see :class:`~rillet.nodes.providers.retry.RetryPolicy`.
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

    @classmethod
    def from_options(
        cls,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float | Timeouts,
        max_retries: int,
        retry_policy: RetryPolicy | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> ProviderClient:
        """The client for a model's constructor arguments: ``timeout`` in seconds or as
        :class:`Timeouts`, and ``retry_policy``, else a default policy with ``max_retries``."""
        return cls(provider=provider, base_url=base_url, headers=headers,
                   timeouts=Timeouts.coerce(timeout),
                   retry=retry_policy or RetryPolicy(max_retries=max_retries), transport=transport)

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

    def open_sse(self, path: str, payload: Mapping[str, object]) -> SSEStream:
        """POST ``payload`` as JSON and read the answer as server-sent events.

        Use with ``async with``: entering sends the request (retrying as the policy allows)
        and raises :class:`~rillet.nodes.providers.errors.ProviderError` for an HTTP error;
        leaving closes the response.
        """
        return SSEStream(self, path, payload)

    async def post_json(self, path: str, payload: Mapping[str, object]) -> object:
        """POST ``payload`` as JSON and return the decoded JSON answer, retrying as allowed.

        Raises:
            ProviderError: an HTTP error, a network failure or a timeout, after the retries.
        """
        attempts = 0
        while True:
            attempts += 1
            response = await self._attempt(
                attempts, lambda http: http.post(self.url(path), json=payload))
            if response is None:
                continue
            if response.is_success:
                try:
                    return response.json()
                except ValueError as error:
                    raise ProviderError(
                        provider=self.provider, status=response.status_code, attempts=attempts,
                        provider_message=f"expected JSON, got {response.text[:200]!r}",
                    ) from error
            if await backoff_before_retry(self.retry, attempts, response, provider=self.provider):
                continue
            raise error_from_response(self.provider, response, response.content,
                                      attempts=attempts)

    def translate(
        self, error: httpx.TransportError, *, attempts: int, events: int | None
    ) -> ProviderError:
        """Our error for an httpx transport error; ``events`` read so far on a stream."""
        return error_from_transport(error, provider=self.provider, base_url=self.base_url,
                                    timeouts=self.timeouts, attempts=attempts, events=events)

    async def _attempt(
        self, attempt: int, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    ) -> httpx.Response | None:
        """Request number ``attempt``: its response (maybe an HTTP error), or None when the
        connection failed and the backoff before the next attempt has been waited out."""
        try:
            return await send(self.http())
        except httpx.TransportError as error:
            if await backoff_before_retry(self.retry, attempt, error, provider=self.provider):
                return None
            raise self.translate(error, attempts=attempt, events=0) from error


class SSEStream:
    """The events of one streamed response; made by :meth:`ProviderClient.open_sse`.

    An async context manager and an async iterator of
    :class:`~rillet.nodes.providers.sse.ServerSentEvent`. Until the first event is handed
    over, a failure is retried by sending the request again; afterwards it raises.
    ``events_read`` counts the events handed over.
    """

    def __init__(self, client: ProviderClient, path: str, payload: Mapping[str, object]) -> None:
        self._client, self._path, self._payload = client, path, payload
        self._response: httpx.Response | None = None
        self._chunks: AsyncGenerator[bytes, None] | None = None
        self._decoder = SSEDecoder()
        self._pending: deque[ServerSentEvent] = deque()
        self._finished = False
        self._deadline = trio.current_time() + client.timeouts.stream  # the whole stream
        self._progress = math.inf  # trio time of the last complete line (set on connecting)
        self._trickled = 0  # bytes since then
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
            idle = self._progress + client.timeouts.read
            try:
                with trio.move_on_at(min(idle, self._deadline)) as waited:
                    chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._decoder.close()
                self._finished = True
                await self._close_response()
                raise
            except httpx.TransportError as error:
                await self._close_response()
                if self.events_read == 0 and await backoff_before_retry(
                        client.retry, self.attempts, error, provider=client.provider):
                    continue
                raise client.translate(error, attempts=self.attempts,
                                       events=self.events_read) from error
            if waited.cancelled_caught:
                await self._close_response()
                raise self._too_slow(trio.current_time() >= self._deadline)
            self._trickled += len(chunk)
            lines = self._decoder.lines
            try:
                self._pending.extend(self._decoder.feed(chunk))
            except WireFormatError as error:
                await self._close_response()
                raise ProviderError(provider=client.provider, provider_message=str(error),
                                    error_type="event_too_large",
                                    attempts=self.attempts) from None
            if self._decoder.lines > lines:
                self._progress, self._trickled = trio.current_time(), 0
        self.events_read += 1
        return self._pending.popleft()

    def _too_slow(self, whole: bool) -> ProviderError:
        client, timeouts = self._client, self._client.timeouts
        if whole:
            return ProviderTimeout(
                provider=client.provider, error_type="stream_timeout", attempts=self.attempts,
                provider_message=f"the stream took longer than {timeouts.stream:g} s in all "
                                 f"(Timeouts.stream)")
        if not self._trickled:  # plain silence: what httpx's own read timeout says
            return client.translate(httpx.ReadTimeout("no bytes"), attempts=self.attempts,
                                    events=self.events_read)
        return ProviderTimeout(
            provider=client.provider, error_type="idle_timeout", attempts=self.attempts,
            provider_message=f"sent no complete line for {timeouts.read:g} s: {self._trickled} "
                             f"bytes trickled in without ending one (Timeouts.read)")

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
            response = await client._attempt(self.attempts, self._send)
            if response is None:
                continue
            self._response = response
            self.response_headers = response.headers
            content_type = response.headers.get("content-type", "")
            if response.is_success and not content_type.startswith("application/json"):
                self._decoder = SSEDecoder()
                self._chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                self._progress = trio.current_time()
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
            if await backoff_before_retry(client.retry, self.attempts, response,
                                          provider=client.provider):
                continue
            raise error_from_response(client.provider, response, body, attempts=self.attempts)

    async def _send(self, http: httpx.AsyncClient) -> httpx.Response:
        request = http.build_request("POST", self._client.url(self._path), json=self._payload,
                                     headers={"accept": "text/event-stream"})
        return await http.send(request, stream=True)

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
