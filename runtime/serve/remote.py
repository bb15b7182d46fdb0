"""HTTP clients for ``rillet serve``: the transport under ``RemoteRunnable``, and ``/events``.

:class:`RemoteClient` speaks to the endpoints under one served name (``invoke``, ``stream``,
``stream_events``); :class:`rillet.graphs.RemoteRunnable` builds the Runnable API on it, so a
served chain composes into a client-side chain. Values come back decoded (tuples, registered wire
types; a type this process has not registered, e.g. without ``import rillet.nodes``, arrives as
``{"__type__": ..., fields}``); a failed run raises :class:`~rillet.runtime.errors.RemoteError`
with the server's error type and message (and the HTTP status when the server refused the
request). Leaving a stream early closes the connection, which cancels the run on the server.
:func:`remote_events` tails a server's ``/events``.

httpx is imported on first use, so ``import rillet.runtime`` does not need it.

>>> # client = RemoteClient("http://127.0.0.1:8000/joke")
>>> # async with client.stream({"topic": "parrot"}, {}) as chunks: ...
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Self, Unpack

import trio

from rillet.runtime.errors import RemoteError, WireFormatError
from rillet.runtime.events.filters import EventFilter, FilterOptions
from rillet.runtime.wire.codec import encode_value
from rillet.runtime.wire.sse import (
    JSON,
    MSGPACK,
    MsgpackFrameParser,
    SSEParser,
    decode_body,
    decode_lenient,
    dumps,
)

__all__ = ["RemoteClient", "RemoteEvents", "remote_events"]


def _headers(token: str | None, media: str) -> dict[str, str]:
    accept = MSGPACK if media == MSGPACK else f"{JSON}, text/event-stream"
    headers = {"accept": accept, "content-type": media}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _error_from(status: int, body: bytes, content_type: str) -> RemoteError:
    media = MSGPACK if content_type.startswith(MSGPACK) else JSON
    try:
        tree = decode_body(body, media, lenient=True)
    except WireFormatError:
        return RemoteError("HTTPError", body[:200].decode(errors="replace"), status=status)
    if isinstance(tree, dict) and "message" in tree:
        return RemoteError(str(tree.get("type", "HTTPError")), str(tree["message"]), status=status)
    return RemoteError("HTTPError", repr(tree)[:200], status=status)


@contextmanager
def _transport_errors(url: str) -> Iterator[None]:
    """httpx's connection and timeout errors as RemoteError, naming the URL."""
    import httpx

    try:
        yield
    except httpx.TransportError as error:
        raise RemoteError(type(error).__name__, f"{url}: {error or 'no answer'}") from error


def _shielded() -> AbstractContextManager[object]:
    """A shielded cancel scope inside trio; nothing to shield from elsewhere (asyncio)."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return nullcontext()
    return trio.CancelScope(shield=True)


def _parser(media: str) -> Any:
    return MsgpackFrameParser() if media == MSGPACK else SSEParser()


def _decode_frame(data: Any, media: str) -> Any:
    if media == MSGPACK:
        return decode_lenient(data)
    return decode_body(data.encode(), JSON, lenient=True) if data else None


class RemoteEvents:
    """The frames of one streaming response, as an async iterator object.

    Yields the decoded ``data`` of each ``data`` frame; ends at
    ``end``; raises :class:`RemoteError` at ``error``. ``run_id`` is known after the first
    item; ``dropped`` counts events the server reported lost (``/events`` with a drop policy).
    Leaving early (``aclose``, ``async with``) closes the connection.
    """

    def __init__(self, method: str, url: str, *, body: bytes | None, headers: dict[str, str],
                 media: str, timeout: float | None) -> None:
        self._request = (method, url, body, headers)
        self._media, self._timeout = media, timeout
        self._frames: deque[tuple[str, Any]] = deque()
        self._client: Any = None
        self._response: Any = None
        self._bytes: Any = None
        self._parser = _parser(media)
        self._finished = False
        self.run_id: str | None = None
        self.dropped = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        if self._client is None:
            await self._open()
        while True:
            while self._frames:
                event, data = self._frames.popleft()
                if event == "data":
                    return _decode_frame(data, self._media)
                if event in ("end", "error"):
                    await self.aclose()
                    if event == "end":
                        raise StopAsyncIteration
                    info = _decode_frame(data, self._media) or {}
                    raise RemoteError(str(info.get("type")), str(info.get("message")),
                                      status=info.get("status_code"))
                if event in ("metadata", "dropped"):
                    info = _decode_frame(data, self._media) or {}
                    self.run_id = info.get("run_id", self.run_id)
                    self.dropped = info.get("dropped", self.dropped)
            try:
                with _transport_errors(self._request[1]):
                    chunk = await self._bytes.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                raise RemoteError("ConnectionClosed", "the server closed the stream before its "
                                  "end event") from None
            self._frames.extend(self._parser.feed(chunk))

    async def connect(self) -> None:
        """Open the connection and wait for the server's first (metadata) frame: from then
        on the subscription is live. Iterating connects by itself; call this to know when.

        Raises:
            RemoteError: the server refused the request or closed the stream.
        """
        if self._client is None:
            await self._open()
        while not self._frames:
            try:
                with _transport_errors(self._request[1]):
                    chunk = await self._bytes.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                raise RemoteError("ConnectionClosed", "the server closed the stream before "
                                  "its first frame") from None
            self._frames.extend(self._parser.feed(chunk))

    async def _open(self) -> None:
        import httpx

        method, url, body, headers = self._request
        self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            request = self._client.build_request(method, url, content=body, headers=headers)
            with _transport_errors(url):
                self._response = await self._client.send(request, stream=True)
            if self._response.status_code >= 400:
                content = await self._response.aread()
                raise _error_from(self._response.status_code, content,
                                  self._response.headers.get("content-type", ""))
            self._bytes = self._response.aiter_bytes()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection (the server cancels the run if it still runs)."""
        self._finished = True
        # Shielded under trio: a reader that leaves because it was cancelled must still hang
        # up, or the server would go on running the run for nobody.
        with _shielded():
            if self._bytes is not None:
                await self._bytes.aclose()
            if self._response is not None:
                await self._response.aclose()
            if self._client is not None:
                await self._client.aclose()
        self._bytes = self._response = self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RemoteClient:
    """The HTTP transport to one name served by ``rillet serve`` (``http://host:8000/joke``):
    what :class:`rillet.graphs.RemoteRunnable` speaks. Async only; every call is one request.

    Args:
        url: the served name's base URL.
        token: bearer token, when the server asks for one.
        timeout: seconds for connecting and between bytes (``None``: wait forever).
        use_msgpack: talk msgpack instead of JSON.

    Example::

        client = RemoteClient("http://127.0.0.1:8000/joke")
        joke = await client.invoke({"topic": "parrot"}, {})
        async with client.stream({"topic": "parrot"}, {}) as chunks:
            async for chunk in chunks: ...
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = 60.0,
                 use_msgpack: bool = False) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.media = MSGPACK if use_msgpack else JSON

    def __repr__(self) -> str:
        return f"RemoteClient({self.url!r})"

    def _body(self, payload: Mapping[str, object]) -> bytes:
        return dumps(encode_value(dict(payload)), self.media)

    async def invoke(self, input: object, config: Mapping[str, object]) -> Any:
        """``POST /invoke``: the server's whole output.

        Raises:
            RemoteError: the run failed, the server refused the request, or it cannot be
                reached.
        """
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout) as client:
            with _transport_errors(self.url):
                reply = await client.post(f"{self.url}/invoke",
                                          content=self._body({"input": input, "config": config}),
                                          headers=_headers(self.token, self.media))
        content_type = reply.headers.get("content-type", "")
        if reply.status_code >= 400:
            raise _error_from(reply.status_code, reply.content, content_type)
        media = MSGPACK if content_type.startswith(MSGPACK) else JSON
        tree = decode_body(reply.content, media, lenient=True)
        if not isinstance(tree, dict) or "output" not in tree:
            raise RemoteError("HTTPError", f"{self.url}/invoke answered {tree!r:.80}; expected "
                              f"an object with an 'output' key")
        return tree["output"]

    def stream(self, input: object, config: Mapping[str, object]) -> RemoteEvents:
        """``POST /stream``: the output chunks (the request is sent at the first read)."""
        return self._frames("stream", {"input": input, "config": config})

    def stream_events(self, input: object, config: Mapping[str, object], *,
                      version: str = "v2", **filters: Unpack[FilterOptions]) -> RemoteEvents:
        """``POST /stream_events``: the run's events as LangChain-shaped dicts, filtered on
        the server."""
        return self._frames("stream_events", {
            "input": input, "config": config, "version": version,
            **EventFilter.from_options(filters).options()})

    def _frames(self, endpoint: str, payload: Mapping[str, object]) -> RemoteEvents:
        return RemoteEvents("POST", f"{self.url}/{endpoint}", body=self._body(payload),
                            headers=_headers(self.token, self.media), media=self.media,
                            timeout=self.timeout)


def remote_events(
    url: str, *, token: str | None = None, policy: str = "drop_oldest", bound: int = 256,
    version: str = "v2", use_msgpack: bool = False, timeout: float | None = None,
    **filters: Sequence[str],
) -> RemoteEvents:
    """Tail a server's worker-wide ``/events`` channel (``url`` is the server's base URL).

    Example::

        async with remote_events("http://127.0.0.1:8000", include_types=["chat_model"]) as evs:
            async for event in evs:
                print(event["event"], event["name"])
    """
    from urllib.parse import urlencode

    query: list[tuple[str, Any]] = [("policy", policy), ("bound", bound), ("version", version)]
    query += [(key, name) for key, names in filters.items() for name in names]
    media = MSGPACK if use_msgpack else JSON
    return RemoteEvents("GET", f"{url.rstrip('/')}/events?{urlencode(query)}", body=None,
                        headers=_headers(token, media), media=media, timeout=timeout)
