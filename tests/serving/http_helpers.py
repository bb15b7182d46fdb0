"""HTTP helpers of the serving tests: bodies in either format, decoded replies and frames."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import trio

from rillet.runtime.wire.codec import decode_value, encode_value
from rillet.runtime.wire.sse import JSON, MSGPACK, MsgpackFrameParser, SSEParser, decode_body, dumps


def body(payload: Any, media: str) -> dict[str, Any]:
    """httpx keyword arguments posting ``payload`` in ``media`` and accepting the same."""
    return {"content": dumps(encode_value(payload), media),
            "headers": {"content-type": media, "accept": media}}


def decoded(response: httpx.Response) -> Any:
    media = MSGPACK if response.headers["content-type"].startswith(MSGPACK) else JSON
    return decode_body(response.content, media)


def frames(response: httpx.Response) -> list[tuple[str, Any]]:
    """The decoded frames of a whole streamed response (SSE or msgpack)."""
    if response.headers["content-type"].startswith(MSGPACK):
        return [(event, decode_value(data)) for event, data in
                MsgpackFrameParser().feed(response.content)]
    assert response.headers["content-type"].startswith("text/event-stream")
    return [(event, decode_body(data.encode(), JSON) if data else None)
            for event, data in SSEParser().feed(response.content)]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def request_bytes(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """One raw HTTP/1.1 request; ``headers`` use ``_`` for ``-`` (``content_type=...``)."""
    lines = [f"{method} {path} HTTP/1.1", "host: test"]
    if body or method == "POST":
        headers.setdefault("content_length", str(len(body)))
        headers.setdefault("content_type", "application/json")
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_until_closed(stream: trio.abc.ReceiveStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


async def open_raw(port: int, *, receive_buffer: int | None = None) -> trio.SocketStream:
    """A client socket to the server; ``receive_buffer`` shrinks its kernel buffer (set before
    connecting, so the window the server sees is small too)."""
    sock = trio.socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def read_response(stream: trio.abc.ReceiveStream) -> bytes:
    """One whole response with a Content-Length body (the connection stays usable)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body
