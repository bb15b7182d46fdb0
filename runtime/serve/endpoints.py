"""The HTTP endpoints that run things: invoke, batch, the three streams, /events, /healthz.

:class:`Endpoints` holds one worker and the server's limits; ``rillet.runtime.serve.server`` routes requests
to it. Every handler checks the request before it takes a slot (4xx with what was expected and
what arrived), then runs while watching the connection: a client that disconnects cancels its
run. Streams are written batch by batch as the socket accepts them, so a slow client parks its
run instead of growing a buffer, and a run's error after the first byte arrives as an
``error`` frame (``{"status_code", "type", "message"}``, the same shape as an error body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.handles import RunCancelled
from rillet.runtime.errors import NodeInputError, WorkerBusy
from rillet.runtime.events.filters import FILTER_KEYS, EventFilter
from rillet.runtime.events.render import render_event
from rillet.runtime.serve.requests import (
    ClientGone,
    RequestRejected,
    RunRequest,
    decode_request,
    parse_request,
    read_body,
)
from rillet.runtime.wire.sse import JSON, MSGPACK, dumps, frame, negotiate, to_tree

if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import Launchable, RunService, ServedRun

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "RUN_ENDPOINTS",
    "Endpoints",
    "Served",
    "reply",
    "reply_problem",
]

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
RUN_ENDPOINTS: Final = ("invoke", "batch", "stream", "stream_events", "stream_log")
_BATCH: Final = 64  # chunks per write: one socket write per batch of what is ready
_Frames = list[tuple[str, Any]]


def _tree(problem: RequestRejected) -> dict[str, Any]:
    return {"status_code": problem.status, "type": problem.kind, "message": problem.message}


def _problem_for(error: BaseException) -> RequestRejected:
    """How a failed run is reported: its own type and message, with a fitting status."""
    if isinstance(error, WorkerBusy):
        return RequestRejected(503, "WorkerBusy", str(error))
    if isinstance(error, RunCancelled):
        return RequestRejected(503, "RunCancelled", str(error))
    status = 422 if isinstance(error, NodeInputError) else 500
    return RequestRejected(status, type(error).__name__, str(error))


async def reply(send: Send, status: int, tree: Any, media: str,
                headers: Mapping[str, str] | None = None) -> None:
    """Send a whole response: ``tree`` (a wire tree) as JSON or msgpack.

    Example::

        await reply(send, 200, to_tree({"output": output}), JSON)
    """
    body = dumps(tree, media)
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def reply_problem(send: Send, problem: RequestRejected, media: str = JSON) -> None:
    """Send a refusal: ``{"status_code", "type", "message"}`` with its status (and the
    ``WWW-Authenticate`` or ``Retry-After`` header a 401 or 503 calls for)."""
    headers = {"www-authenticate": "Bearer"} if problem.status == 401 else {}
    if problem.status == 503:
        headers["retry-after"] = "1"
    await reply(send, problem.status, _tree(problem), media, headers)


async def _until_disconnect(receive: Receive, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` and cancel it if the client disconnects first (``fn`` must not raise)."""
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        try:
            await fn()
        finally:
            nursery.cancel_scope.cancel()


class _Stream:
    """A streamed response: frames in the negotiated format, written as the client reads."""

    def __init__(self, send: Send, media: str) -> None:
        self.send, self.media, self.started = send, media, False

    async def write(self, frames: _Frames, *, last: bool = False) -> None:
        if not self.started:
            self.started = True
            content_type = MSGPACK if self.media == MSGPACK else "text/event-stream"
            await self.send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", content_type.encode()), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
        body = b"".join(frame(event, tree, self.media) for event, tree in frames)
        await self.send({"type": "http.response.body", "body": body, "more_body": not last})

    async def fail(self, problem: RequestRejected) -> None:
        if self.started:
            await self.write([("error", _tree(problem))], last=True)
        else:
            await reply_problem(self.send, problem, self.media)


@attrs.define
class Served:
    """One served runnable, under its name, with the input schema requests are checked against."""

    name: str
    runnable: Launchable
    schema: dict[str, Any]


class Endpoints:
    """The endpoints, sharing one worker and the server's limits; ``rillet.runtime.serve.server`` routes
    to them (``run_endpoint`` for the five run endpoints, ``events``, ``healthz``).

    Example::

        endpoints = Endpoints(worker, max_body_bytes=1 << 20, ping_interval=15.0)
        await endpoints.run_endpoint(served, "invoke", scope, receive, send)
    """

    def __init__(self, worker: RunService, *, max_body_bytes: int, ping_interval: float) -> None:
        self.worker, self.max_body_bytes, self.ping_interval = worker, max_body_bytes, ping_interval
        self.stopping = trio.Event()

    async def run_endpoint(self, served: Served, endpoint: str, scope: Scope, receive: Receive,
                           send: Send) -> None:
        """Check the request, then run it through the worker as ``endpoint`` asks."""
        headers = Headers(scope=scope)
        media = negotiate(headers.get("accept"))
        if media is None:
            offered = f"{JSON}, text/event-stream or {MSGPACK}"
            message = f"Accept must allow {offered}, got {headers.get('accept')!r}"
            await reply_problem(send, RequestRejected(406, "NotAcceptable", message))
            return
        try:
            body = await read_body(receive, headers, self.max_body_bytes)
            request = parse_request(endpoint, decode_request(body, headers.get("content-type")),
                                    served.schema)
            if endpoint == "stream_log":
                _run_log_builder({})  # 501 now rather than after the run started
        except RequestRejected as problem:
            await reply_problem(send, problem, media)
            return
        except ClientGone:
            return
        handler = getattr(self, f"_{endpoint}")
        await _until_disconnect(receive, partial(handler, served, request, send, media))

    async def _submit(self, served: Served, request: RunRequest, i: int = 0, *,
                      events: bool = False) -> ServedRun:
        return await self.worker.submit(served.runnable, request.inputs[i], request.configs[i],
                                        events=events)

    async def _invoke(self, served: Served, request: RunRequest, send: Send, media: str) -> None:
        try:
            run = await self._submit(served, request)
            output = await run.result()
        except Exception as error:  # noqa: BLE001 - reported to the client
            await reply_problem(send, _problem_for(error), media)
            return
        tree = to_tree({"output": output, "metadata": {"run_id": run.run_id}})
        await reply(send, 200, tree, media)

    async def _batch(self, served: Served, request: RunRequest, send: Send, media: str) -> None:
        count = len(request.inputs)
        outputs: list[Any] = [None] * count
        run_ids: list[str | None] = [None] * count
        failures: list[Exception] = []
        first = request.configs[0] if request.configs else RunConfig()
        limit = first.max_concurrency or self.worker.max_concurrent_runs
        limiter = trio.CapacityLimiter(limit)
        async with trio.open_nursery() as nursery:

            async def one(i: int) -> None:
                async with limiter:
                    try:
                        run = await self._submit(served, request, i)
                        run_ids[i] = run.run_id
                        outputs[i] = await run.result()
                    except Exception as error:  # noqa: BLE001 - the first one is reported
                        failures.append(error)
                        nursery.cancel_scope.cancel()

            for i in range(count):
                nursery.start_soon(one, i)
        if failures:
            await reply_problem(send, _problem_for(failures[0]), media)
            return
        tree = to_tree({"output": outputs, "metadata": {"run_ids": run_ids}})
        await reply(send, 200, tree, media)

    async def _stream(self, served: Served, request: RunRequest, send: Send, media: str) -> None:
        async def frames(run: ServedRun) -> _Frames | None:
            chunks = await run.receive_chunks(_BATCH)  # [] at the end (or raises the error)
            return [("data", to_tree(chunk)) for chunk in chunks] if chunks else None

        await self._stream_run(served, request, send, media, frames, events=False)

    async def _stream_events(self, served: Served, request: RunRequest, send: Send,
                             media: str) -> None:
        options = request.options
        accept = EventFilter(**{k: v for k, v in options.items() if k != "version"}).accepts
        version = options["version"]

        async def frames(run: ServedRun) -> _Frames | None:
            events = await run.receive_events(_BATCH)
            if not events:
                return None
            out: _Frames = []
            for event in events:
                shaped = render_event(event, version) if accept(event) else None
                if shaped is not None:
                    out.append(("data", to_tree(shaped)))
            return out

        await self._stream_run(served, request, send, media, frames, events=True)

    async def _stream_log(self, served: Served, request: RunRequest, send: Send,
                          media: str) -> None:
        builder = _run_log_builder(request.options)
        diff = request.options["diff"]

        async def frames(run: ServedRun) -> _Frames | None:
            events = await run.receive_events(_BATCH)
            if not events:
                return None
            out: _Frames = []
            for event in events:
                patch = builder.feed(event)
                if patch is not None:
                    data = {"ops": list(patch.ops)}
                    if not diff and hasattr(patch, "state"):
                        data["state"] = patch.state
                    out.append(("data", to_tree(data)))
            return out

        await self._stream_run(served, request, send, media, frames, events=True)

    async def _stream_run(
        self, served: Served, request: RunRequest, send: Send, media: str,
        frames: Callable[[ServedRun], Awaitable[_Frames | None]], *, events: bool,
    ) -> None:
        stream = _Stream(send, media)
        try:
            run = await self._submit(served, request, events=events)
        except Exception as error:  # noqa: BLE001 - busy or shutting down: before any byte
            await stream.fail(_problem_for(error))
            return
        try:
            await stream.write([("metadata", {"run_id": run.run_id})])
            while (batch := await frames(run)) is not None:
                if batch:  # empty when every event of this batch was filtered out
                    await stream.write(batch)
            await stream.write([("end", None)], last=True)
        except Exception as error:  # noqa: BLE001 - the run's error, as an error frame
            await stream.fail(_problem_for(error))
        finally:
            await run.aclose()

    async def events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /events``: every run's events until the client leaves or the server stops."""
        params = QueryParams(scope.get("query_string", b""))
        media = negotiate(Headers(scope=scope).get("accept")) or JSON
        filters = {key: params.getlist(key) or None for key in FILTER_KEYS}
        version = params.get("version", "v2")
        try:
            bound = int(params.get("bound", "256"))
            if version not in ("v1", "v2"):
                raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
            sub = self.worker.subscribe(policy=params.get("policy", "drop_oldest"), bound=bound,
                                        **filters)
        except ValueError as error:
            await reply_problem(send, RequestRejected(422, "InvalidRequest", str(error)), media)
            return
        except (RuntimeError, WorkerBusy) as error:  # closed worker, or a queue gateway
            await reply_problem(send, RequestRejected(503, "WorkerBusy", str(error)), media)
            return
        stream = _Stream(send, media)

        async def pump() -> None:
            reported = 0
            await stream.write([("metadata", {"policy": sub.policy, "bound": sub.bound})])
            while not self.stopping.is_set():
                batch = []
                with trio.move_on_after(self.ping_interval):
                    try:
                        batch.append(await sub.__anext__())
                    except StopAsyncIteration:
                        break
                    while len(batch) < _BATCH:
                        try:
                            batch.append(sub.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                frames: _Frames = []
                if sub.dropped > reported:  # tell the reader it lost events (drop_* policies)
                    reported = sub.dropped
                    frames.append(("dropped", {"dropped": reported}))
                for event in batch:
                    shaped = render_event(event, version)
                    if shaped is not None:
                        frames.append(("data", to_tree(shaped)))
                await stream.write(frames or [("ping", None)])
            await stream.write([("end", None)], last=True)

        with sub:
            await _until_disconnect(receive, pump)

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /healthz``: 200 ``ok`` while accepting runs, 503 ``draining`` after."""
        stats = attrs.asdict(self.worker.statistics())
        draining = not stats["accepting"]
        tree = {"status": "draining" if draining else "ok", **stats}
        media = negotiate(Headers(scope=scope).get("accept")) or JSON
        await reply(send, 503 if draining else 200, tree, media)


def _run_log_builder(options: Mapping[str, Any]) -> Any:
    try:
        from rillet.runtime.events.runlog import RunLogBuilder
    except ImportError:
        raise RequestRejected(501, "NotImplemented",
                       "stream_log needs rillet.runtime.events.runlog, which this installation lacks") from None
    event_filter = EventFilter(**{k: v for k, v in options.items()
                                  if k.startswith(("include_", "exclude_"))})
    return RunLogBuilder(diff=options.get("diff", True), event_filter=event_filter,
                         with_streamed_output_list=options.get("with_streamed_output_list", True))
