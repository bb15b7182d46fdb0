"""One HTTP exchange on raw ASGI: whole replies, refusals, streamed responses, and the watch
for a client that leaves.

:func:`until_disconnect` runs a handler while a second task waits for ``http.disconnect``; a
client that leaves cancels the handler (and so its run). The watcher stops mattering once the
last response message is on its way: hypercorn sends ``http.disconnect`` *while* that message
is being sent (it closes or recycles the connection there), and cancelling the handler at that
moment left connections open forever (issue 20.3).

Example::

    async def endpoint(scope, receive, send):
        async def handle(send):
            await reply(send, 200, {"ok": True}, JSON)

        await until_disconnect(receive, send, handle)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import trio
from starlette.types import Message, Receive, Send

from rillet.runtime.errors import RequestRejected, WireFormatError
from rillet.runtime.logs import get_logger
from rillet.runtime.serve.limits import RETRY_AFTER_BUSY, RETRY_AFTER_OUTAGE
from rillet.runtime.wire.sse import JSON, MSGPACK, dumps, frame

__all__ = ["Frames", "Stream", "drain_body", "problem_tree", "reply", "reply_problem",
           "until_disconnect"]

Frames = list[tuple[str, Any]]
_OUTAGE_KINDS: Final = frozenset({"StoreUnavailable"})


def problem_tree(problem: RequestRejected) -> dict[str, Any]:
    """The one error shape: ``{"status_code", "type", "message"}``."""
    return {"status_code": problem.status, "type": problem.kind, "message": problem.message}


async def reply(send: Send, status: int, tree: Any, media: str,
                headers: Mapping[str, str] | None = None) -> None:
    """Send a whole response: ``tree`` (a wire tree) as JSON or msgpack.

    A tree that cannot be written (it nests too deeply to encode) becomes a 500 saying so:
    a reply is never left unsent.

    Example::

        await reply(send, 200, to_tree({"output": output}), JSON)
    """
    try:
        body = dumps(tree, media)
    except WireFormatError as error:
        status, headers = 500, {}
        body = dumps(problem_tree(RequestRejected(500, "WireFormatError", str(error))), media)
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def reply_problem(send: Send, problem: RequestRejected, media: str = JSON) -> None:
    """Send a refusal: ``{"status_code", "type", "message"}`` with its status (and the
    ``WWW-Authenticate`` or ``Retry-After`` header a 401 or 503 calls for; a 408 or 413 left
    the body unread, so it says ``Connection: close`` and the client will not reuse it)."""
    headers = {"www-authenticate": "Bearer"} if problem.status == 401 else {}
    if problem.status in (408, 413):
        headers["connection"] = "close"
    if problem.status == 503:
        wait = RETRY_AFTER_OUTAGE if problem.kind in _OUTAGE_KINDS else RETRY_AFTER_BUSY
        headers["retry-after"] = str(wait)
    await reply(send, problem.status, problem_tree(problem), media, headers)


async def drain_body(receive: Receive, limit: int, timeout: float) -> bool:
    """Read and drop what is left of the request body (at most ``limit`` bytes, for at most
    ``timeout`` s) before an endpoint that does not want it answers; False if the client left.

    Answering first and closing with the body unread makes the kernel reset the connection,
    and the client then often loses the answer it was sent.
    """
    size = 0
    with trio.move_on_after(timeout):
        while size <= limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
    return True


async def until_disconnect(receive: Receive, send: Send,
                           handler: Callable[[Send], Awaitable[None]]) -> None:
    """Run ``handler(send)`` and cancel it if the client disconnects before the response is
    complete (``handler`` must not raise). See the module docstring for why "complete"."""
    complete = False

    async def watched_send(message: Message) -> None:
        nonlocal complete
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete = True  # from here on, a disconnect is the normal end of the exchange
        await send(message)

    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not complete:
                nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        try:
            await handler(watched_send)
        finally:
            nursery.cancel_scope.cancel()


class Stream:
    """A streamed response: frames in the negotiated format, written as the client reads.

    Example::

        stream = Stream(send, JSON)
        await stream.write([("metadata", {"run_id": run_id})])
        await stream.write([("end", None)], last=True)
    """

    def __init__(self, send: Send, media: str) -> None:
        self.send, self.media, self.started = send, media, False

    async def write(self, frames: Frames, *, last: bool = False) -> None:
        if not self.started:
            self.started = True
            content_type = MSGPACK if self.media == MSGPACK else "text/event-stream"
            await self.send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", content_type.encode()), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
        body = b"".join(frame(event, tree, self.media) for event, tree in frames)
        await self.send({"type": "http.response.body", "body": body, "more_body": not last})

    async def fail(self, problem: RequestRejected) -> None:
        """End with ``problem``: an ``error`` frame once started, else a whole refusal."""
        if problem.status >= 500:
            get_logger(component="server").warning(
                "request_failed", status=problem.status, type=problem.kind,
                message=problem.message[:200])
        if self.started:
            await self.write([("error", problem_tree(problem))], last=True)
        else:
            await reply_problem(self.send, problem, self.media)
