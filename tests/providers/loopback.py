"""A loopback HTTP server that replays scripted replies in the providers' exact wire formats.

Each test queues replies (``server.reply(...)``); each request the server receives takes the
next one and is recorded as an :class:`Exchange` (its path, headers, JSON body, which
connection carried it, how many events were sent, and whether the client went away before
the reply ended). Streamed replies are written as HTTP/1.1 chunked bodies, one chunk per
script item, so a test controls exactly where the bytes are cut. Keep-alive is supported, so
tests can check that a model reuses its connection.

While a reply streams, a watcher reads the socket: the client sends nothing more on a
keep-alive connection mid-reply, so end-of-file there means the client hung up — that is how
"the server saw the disconnect" is measured, at once and without writing into a dead socket.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import trio

__all__ = [
    "DROP",
    "STALL",
    "Exchange",
    "LoopbackServer",
    "Pause",
    "Reply",
    "anthropic_events",
    "json_reply",
    "openai_chunks",
    "sse",
    "sse_reply",
]


@attrs.frozen
class Pause:
    """Sleep between two script items (trio time: instant under the autojump clock)."""

    seconds: float


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STALL = _Marker("STALL")  # stop sending; wait until the client hangs up
DROP = _Marker("DROP")    # close the socket mid-body: no terminating chunk

Item = bytes | Pause | _Marker


@attrs.define
class Reply:
    """One scripted reply: a whole body, or a stream of chunks."""

    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes | None = None
    stream: list[Item] | None = None
    close_before_reply: bool = False  # accept the request, then hang up without a word


@attrs.define(eq=False)
class Exchange:
    """One request the server received and what became of its reply."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    events_sent: int = 0
    complete: bool = False
    disconnected: bool = False
    ended: trio.Event = attrs.field(factory=trio.Event)

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer:
    """See the module docstring; started by the ``server`` fixture on 127.0.0.1, port 0."""

    def __init__(self) -> None:
        self.port = 0
        self.replies: deque[Reply] = deque()
        self.exchanges: list[Exchange] = []
        self.connections_opened = 0
        self.open_connections = 0
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, stream: trio.SocketStream) -> None:
        connection = next(self._ids)
        self.connections_opened += 1
        self.open_connections += 1
        buffer = bytearray()
        try:
            while True:
                request = await _read_request(stream, buffer)
                if request is None:
                    return  # the client closed an idle connection
                method, path, headers, body = request
                exchange = Exchange(method, path, headers, body, connection)
                self.exchanges.append(exchange)
                reply = self.replies.popleft() if self.replies else json_reply(
                    500, {"error": {"message": "the test scripted no reply for this request"}})
                try:
                    keep_open = await self._send(stream, reply, exchange, buffer)
                finally:
                    exchange.ended.set()
                if not keep_open:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.open_connections -= 1
            await trio.aclose_forcefully(stream)

    async def _send(
        self, stream: trio.SocketStream, reply: Reply, exchange: Exchange, buffer: bytearray
    ) -> bool:
        if reply.close_before_reply:
            exchange.disconnected = False
            return False
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        headers = dict(reply.headers)
        if reply.stream is None:
            body = reply.body or b""
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(body))
            await stream.send_all(_head(head, headers) + body)
            exchange.complete = True
            return True
        headers.setdefault("content-type", "text/event-stream")
        headers["transfer-encoding"] = "chunked"
        await stream.send_all(_head(head, headers))
        dropped = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch, stream, exchange, buffer, nursery.cancel_scope)
            try:
                for item in reply.stream:
                    if isinstance(item, Pause):
                        await trio.sleep(item.seconds)
                    elif item is STALL:
                        await trio.sleep_forever()
                    elif item is DROP:
                        dropped = True
                        break
                    else:
                        assert isinstance(item, bytes)
                        await stream.send_all(b"%x\r\n%s\r\n" % (len(item), item))
                        exchange.events_sent += 1
                if not dropped:
                    # Marked first: a client that hangs up once it has everything is no
                    # disconnect mid-reply.
                    exchange.complete = True
                    await stream.send_all(b"0\r\n\r\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                exchange.disconnected = not exchange.complete
                dropped = True
            nursery.cancel_scope.cancel()
        return not dropped and not exchange.disconnected

    async def _watch(
        self,
        stream: trio.SocketStream,
        exchange: Exchange,
        buffer: bytearray,
        writer: trio.CancelScope,
    ) -> None:
        try:
            data = await stream.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if data:
            buffer.extend(data)  # a pipelined request: keep it for the next round
            return
        if not exchange.complete:
            exchange.disconnected = True
        writer.cancel()


async def _read_request(
    stream: trio.SocketStream, buffer: bytearray
) -> tuple[str, str, dict[str, str], bytes] | None:
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some()
        if not data:
            return None
        buffer.extend(data)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        data = await stream.receive_some()
        if not data:
            return None
        body.extend(data)
    buffer[:] = body[length:]
    return method, path, headers, bytes(body[:length])


def _head(lines: list[str], headers: dict[str, str]) -> bytes:
    return ("\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items())]) + "\r\n\r\n").encode()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
            529: "Overloaded"}


# -- reply builders ---------------------------------------------------------------------------


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(body).encode(), headers=headers or {})


def sse(data: Any, event: str | None = None, *, newline: str = "\n") -> bytes:
    """One SSE event; ``data`` that is not a str is JSON-encoded."""
    text = data if isinstance(data, str) else json.dumps(data)
    lines = ([f"event: {event}"] if event else []) + [f"data: {line}" for line in text.split("\n")]
    return (newline.join(lines) + newline + newline).encode()


def sse_reply(items: Iterable[Item], headers: dict[str, str] | None = None) -> Reply:
    return Reply(stream=list(items), headers=headers or {})


def openai_chunks(
    *,
    text: Sequence[str] = ("Hello", ",", " world"),
    tool_calls: Sequence[tuple[str, str, Sequence[str]]] = (),
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    done: bool = True,
    newline: str = "\n",
    model: str = "gpt-4o-mini-2024-07-18",
    ident: str = "chatcmpl-abc123",
) -> list[bytes]:
    """OpenAI's stream: a role chunk, text deltas, tool calls in fragments (the first with id
    and name, the rest arguments only), the finish_reason chunk, the usage chunk with
    ``choices: []``, then ``[DONE]``."""
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {"id": ident, "object": "chat.completion.chunk", "created": 1700000000,
                "model": model, "system_fingerprint": "fp_1",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}], "usage": None, **extra}
        return sse(body, newline=newline)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in text]
    for index, (call_id, name, fragments) in enumerate(tool_calls):
        events.append(chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                              "function": {"name": name, "arguments": ""}}]}))
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                   for piece in fragments]
    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    events.append(chunk({}, reason))
    if usage is not None:
        events.append(sse({"id": ident, "object": "chat.completion.chunk", "created": 1700000000,
                           "model": model, "choices": [], "usage": usage}, newline=newline))
    if done:
        events.append(sse("[DONE]", newline=newline))
    return events


def anthropic_events(
    *,
    text: Sequence[str] = ("Hello", " there"),
    tool: tuple[str, str, Sequence[str]] | None = None,
    thinking: Sequence[str] = (),
    output_tokens: Sequence[int] = (3, 17),
    stop_reason: str | None = None,
    stop: bool = True,
    ident: str = "msg_01XYZ",
) -> list[bytes]:
    """Anthropic's stream: message_start, ping, an optional thinking block (with its
    signature), a text block, an optional tool_use block with input_json_delta fragments (the
    first one empty), message_delta events with *cumulative* usage, message_stop."""
    events = [sse({"type": "message_start", "message": {
        "id": ident, "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5-20250929", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 5, "output_tokens": 1}}}, "message_start"),
        sse({"type": "ping"}, "ping")]
    index = 0
    if thinking:
        events.append(sse({"type": "content_block_start", "index": index, "content_block": {
            "type": "thinking", "thinking": "", "signature": ""}}, "content_block_start"))
        events += [sse({"type": "content_block_delta", "index": index, "delta": {
            "type": "thinking_delta", "thinking": piece}}, "content_block_delta")
            for piece in thinking]
        events.append(sse({"type": "content_block_delta", "index": index, "delta": {
            "type": "signature_delta", "signature": "EqQBCgIYAh"}}, "content_block_delta"))
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1
    events.append(sse({"type": "content_block_start", "index": index, "content_block": {
        "type": "text", "text": ""}}, "content_block_start"))
    events += [sse({"type": "content_block_delta", "index": index, "delta": {
        "type": "text_delta", "text": piece}}, "content_block_delta") for piece in text]
    events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    if tool is not None:
        index += 1
        tool_id, name, fragments = tool
        events.append(sse({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": tool_id, "name": name, "input": {}}},
            "content_block_start"))
        events += [sse({"type": "content_block_delta", "index": index, "delta": {
            "type": "input_json_delta", "partial_json": piece}}, "content_block_delta")
            for piece in ("", *fragments)]
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    reason = stop_reason or ("tool_use" if tool else "end_turn")
    for count in output_tokens:
        events.append(sse({"type": "message_delta", "delta": {
            "stop_reason": reason, "stop_sequence": None}, "usage": {"output_tokens": count}},
            "message_delta"))
    if stop:
        events.append(sse({"type": "message_stop"}, "message_stop"))
    return events
