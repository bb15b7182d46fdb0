"""The HTTP endpoints that run things: invoke, batch, the three streams, /events, /healthz.

:class:`Endpoints` holds one worker and the server's
:class:`~rillet.runtime.serve.limits.ServerLimits`; ``rillet.runtime.serve.server`` routes
requests to it. Every handler checks the request before it takes a slot (4xx with what was
expected and what arrived), then runs while watching the connection: a client that disconnects
cancels its run. Streams are written batch by batch as the socket accepts them, so a slow
client parks its run instead of growing a buffer, and a run's error after the first byte
arrives as an ``error`` frame (``{"status_code", "type", "message"}``, the same shape as an
error body). A run redelivered to another worker (behind a
queue gateway) is announced by an ``attempt`` frame before its output starts again.

``GET /events`` offers only the drop policies: a remote reader that stops reading must not be
able to park every run of the server (issue 20.1); it loses events instead, and a ``dropped``
frame says how many.
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
from rillet.runtime.errors import (
    ConfigError,
    NodeInputError,
    RemoteError,
    StoreUnavailable,
    WireFormatError,
    WorkerBusy,
)
from rillet.runtime.events.filters import FILTER_KEYS, EventFilter
from rillet.runtime.events.render import render_event
from rillet.runtime.serve.exchange import Frames, Stream, reply, reply_problem, until_disconnect
from rillet.runtime.serve.limits import RETRY_AFTER_OUTAGE, ServerLimits
from rillet.runtime.serve.requests import (
    ClientGone,
    RequestRejected,
    RunRequest,
    decode_request,
    parse_request,
    read_body,
)
from rillet.runtime.wire.sse import JSON, MSGPACK, negotiate, to_tree

if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import Launchable, RunService, ServedRun

__all__ = [
    "EVENTS_POLICIES",
    "RUN_ENDPOINTS",
    "Endpoints",
    "Served",
    "reply",
    "reply_problem",
]

RUN_ENDPOINTS: Final = ("invoke", "batch", "stream", "stream_events", "stream_log")
STREAM_ENDPOINTS: Final = frozenset({"stream", "stream_events", "stream_log"})
#: What ``GET /events`` accepts as ``policy``: never ``block`` (see the module docstring).
EVENTS_POLICIES: Final = ("drop_oldest", "drop_newest")
_MAX_EVENTS_BOUND: Final = 10_000
_BATCH: Final = 64  # chunks per write: one socket write per batch of what is ready


def _problem_for(error: BaseException) -> RequestRejected:
    """How a failed run is reported: its own type and message, with a fitting status."""
    if isinstance(error, WorkerBusy):
        return RequestRejected(503, "WorkerBusy", str(error))
    if isinstance(error, RunCancelled):
        return RequestRejected(503, "RunCancelled", str(error))
    if isinstance(error, StoreUnavailable):
        return RequestRejected(503, "StoreUnavailable",
                               f"{error}; the run queue is unreachable, try again shortly")
    if isinstance(error, RemoteError):  # a queued run failed on its worker: report it as its own
        status = error.status or _STATUS_OF_REMOTE.get(error.type, 500)
        return RequestRejected(status, error.type, error.message)
    status = 422 if isinstance(error, NodeInputError | ConfigError) else 500
    return RequestRejected(status, type(error).__name__, str(error))


#: The status of a run that failed on a scale-out worker, by its error's type name: what the
#: same error gets in-process (isinstance above), so both backends answer alike.
_STATUS_OF_REMOTE: Final = {"NodeInputError": 422, "ToolArgumentError": 422, "ConfigError": 422,
                            "RunCancelled": 503, "WorkerBusy": 503}


@attrs.define
class Served:
    """One served runnable, under its name, with the input schema requests are checked against."""

    name: str
    runnable: Launchable
    schema: dict[str, Any]


class Endpoints:
    """The endpoints, sharing one worker and the server's limits; ``rillet.runtime.serve.server``
    routes to them (``run_endpoint`` for the five run endpoints, ``events``, ``healthz``).

    Example::

        endpoints = Endpoints(worker, limits=ServerLimits(max_body_bytes=1 << 20))
        await endpoints.run_endpoint(served, "invoke", scope, receive, send)
    """

    def __init__(self, worker: RunService, *, limits: ServerLimits = ServerLimits()) -> None:
        self.worker, self.limits = worker, limits
        self.stopping = trio.Event()
        self.streams = 0  # streaming responses open now

    def _take_stream(self) -> RequestRejected | None:
        """Count one more open stream, or say why not (``max_streams`` are open)."""
        if self.streams >= self.limits.max_streams:
            return RequestRejected(503, "TooManyStreams",
                                   f"this server has {self.streams} streams open, its limit "
                                   f"(serve --max-streams); try again shortly")
        self.streams += 1
        return None

    async def run_endpoint(self, served: Served, endpoint: str, scope: Scope, receive: Receive,
                           send: Send) -> None:
        """Check the request, then run it through the worker as ``endpoint`` asks."""
        headers = Headers(scope=scope)
        chosen = negotiate(headers.get("accept"))
        limits = self.limits
        try:
            # The body first, even for a request refused anyway: see exchange.drain_body.
            body = await read_body(receive, headers, limits.max_body_bytes, limits.body_timeout)
            if chosen is None:
                offered = f"{JSON}, text/event-stream or {MSGPACK}"
                raise RequestRejected(406, "NotAcceptable", f"Accept must allow {offered}, got "
                                                            f"{headers.get('accept')!r:.80}")
            request = parse_request(endpoint, decode_request(body, headers.get("content-type")),
                                    served.schema)
            if endpoint == "stream_log":
                _run_log_builder({})  # 501 now rather than after the run started
        except RequestRejected as problem:
            await reply_problem(send, problem, chosen or JSON)
            return
        except ClientGone:
            return
        media: str = chosen or JSON
        handler = partial(getattr(self, f"_{endpoint}"), served, request, media)
        if endpoint not in STREAM_ENDPOINTS:
            await until_disconnect(receive, send, handler)
            return
        refused = self._take_stream()
        if refused is not None:
            await reply_problem(send, refused, media)
            return
        try:
            await until_disconnect(receive, send, handler)
        finally:
            self.streams -= 1

    async def _submit(self, served: Served, request: RunRequest, i: int = 0, *,
                      events: bool = False) -> ServedRun:
        return await self.worker.submit(served.runnable, request.inputs[i], request.configs[i],
                                        events=events)

    async def _invoke(self, served: Served, request: RunRequest, media: str, send: Send) -> None:
        try:
            run = await self._submit(served, request)
            output = await run.result()
            tree = to_tree({"output": output, "metadata": {"run_id": run.run_id}})
        except Exception as error:  # noqa: BLE001 - reported to the client
            await reply_problem(send, _problem_for(error), media)
            return
        await reply(send, 200, tree, media)

    async def _batch(self, served: Served, request: RunRequest, media: str, send: Send) -> None:
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
        try:
            tree = to_tree({"output": outputs, "metadata": {"run_ids": run_ids}})
        except WireFormatError as error:
            failures.append(error)
        if failures:
            await reply_problem(send, _problem_for(failures[0]), media)
            return
        await reply(send, 200, tree, media)

    async def _stream(self, served: Served, request: RunRequest, media: str, send: Send) -> None:
        async def frames(run: ServedRun) -> Frames | None:
            chunks = await run.receive_chunks(_BATCH)  # [] at the end (or raises the error)
            return [("data", to_tree(chunk)) for chunk in chunks] if chunks else None

        await self._stream_run(served, request, send, media, frames, events=False)

    async def _stream_events(self, served: Served, request: RunRequest, media: str,
                             send: Send) -> None:
        options = request.options
        accept = EventFilter(**{k: v for k, v in options.items() if k != "version"}).accepts
        version = options["version"]

        async def frames(run: ServedRun) -> Frames | None:
            events = await run.receive_events(_BATCH)
            if not events:
                return None
            out: Frames = []
            for event in events:
                shaped = render_event(event, version) if accept(event) else None
                if shaped is not None:
                    out.append(("data", to_tree(shaped)))
            return out

        await self._stream_run(served, request, send, media, frames, events=True)

    async def _stream_log(self, served: Served, request: RunRequest, media: str,
                          send: Send) -> None:
        builder = _run_log_builder(request.options)
        diff = request.options["diff"]

        async def frames(run: ServedRun) -> Frames | None:
            events = await run.receive_events(_BATCH)
            if not events:
                return None
            out: Frames = []
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
        frames: Callable[[ServedRun], Awaitable[Frames | None]], *, events: bool,
    ) -> None:
        stream = Stream(send, media)
        try:
            run = await self._submit(served, request, events=events)
        except Exception as error:  # noqa: BLE001 - busy or shutting down: before any byte
            await stream.fail(_problem_for(error))
            return
        try:
            await stream.write([("metadata", {"run_id": run.run_id})])
            attempt = 0
            while (batch := await frames(run)) is not None:
                # Only a queued run has attempts: a redelivery restarts its output.
                now = getattr(run, "attempt", 0)
                if attempt and now != attempt:
                    batch.insert(0, ("attempt", {
                        "attempt": now, "run_id": run.run_id,
                        "message": f"the run was redelivered to another worker: attempt {now} "
                                   f"starts its output again; discard what came before"}))
                attempt = now or attempt
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
        policy = params.get("policy", "drop_oldest")
        try:
            if policy not in EVENTS_POLICIES:
                raise ValueError(
                    f"policy must be one of {list(EVENTS_POLICIES)} over HTTP, got {policy!r:.40}"
                    + (": a remote reader that stopped reading would park every run of this "
                       "server; take drop_oldest with a larger bound" if policy == "block" else ""))
            bound = params.get("bound", "256")
            if not (bound.isascii() and bound.isdigit() and 1 <= int(bound) <= _MAX_EVENTS_BOUND):
                raise ValueError(f"bound must be an integer from 1 to {_MAX_EVENTS_BOUND}, got "
                                 f"{bound!r:.40}")
            if version not in ("v1", "v2"):
                raise ValueError(f"version must be 'v1' or 'v2', got {version!r:.40}")
            sub = self.worker.subscribe(policy=policy, bound=int(bound), **filters)
        except ValueError as error:
            await reply_problem(send, RequestRejected(422, "InvalidRequest", str(error)), media)
            return
        except (RuntimeError, WorkerBusy) as error:  # a closed worker
            await reply_problem(send, RequestRejected(503, "WorkerBusy", str(error)), media)
            return
        refused = self._take_stream()
        if refused is not None:
            sub.close()
            await reply_problem(send, refused, media)
            return

        async def pump(send: Send) -> None:
            stream = Stream(send, media)
            reported = 0
            await stream.write([("metadata", {"policy": sub.policy, "bound": sub.bound})])
            while not self.stopping.is_set():
                batch = []
                with trio.move_on_after(self.limits.ping_interval):
                    try:
                        batch.append(await sub.__anext__())
                    except StopAsyncIteration:
                        break
                    while len(batch) < _BATCH:
                        try:
                            batch.append(sub.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                frames: Frames = []
                if sub.dropped > reported:  # tell the reader it lost events
                    reported = sub.dropped
                    frames.append(("dropped", {"dropped": reported}))
                for event in batch:
                    shaped = render_event(event, version)
                    if shaped is not None:
                        frames.append(("data", to_tree(shaped)))
                await stream.write(frames or [("ping", None)])
            await stream.write([("end", None)], last=True)

        try:
            with sub:
                await until_disconnect(receive, send, pump)
        finally:
            self.streams -= 1

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /healthz``: 200 ``ok`` while accepting runs; 503 ``draining`` after, or
        ``unavailable`` while a queue gateway cannot reach its run queue."""
        error = await self.worker.check_store()
        stats = attrs.asdict(self.worker.statistics())
        stats["streams"] = self.streams
        status = "draining" if not stats["accepting"] else "unavailable" if error else "ok"
        tree = {"status": status, **stats, **({"error": error} if error else {})}
        media = negotiate(Headers(scope=scope).get("accept")) or JSON
        headers = {"retry-after": str(RETRY_AFTER_OUTAGE)} if error else {}
        await reply(send, 200 if status == "ok" else 503, tree, media, headers)


def _run_log_builder(options: Mapping[str, Any]) -> Any:
    try:
        from rillet.runtime.events.runlog import RunLogBuilder
    except ImportError:
        raise RequestRejected(501, "NotImplemented", "stream_log needs rillet.runtime.events."
                              "runlog, which this installation lacks") from None
    event_filter = EventFilter(**{k: v for k, v in options.items()
                                  if k.startswith(("include_", "exclude_"))})
    return RunLogBuilder(diff=options.get("diff", True), event_filter=event_filter,
                         with_streamed_output_list=options.get("with_streamed_output_list", True))
