"""HTTP serving: LangServe-shaped endpoints for runnables, on Starlette and hypercorn's trio worker.

For each served name (``/<name>/``)::

    POST /<name>/invoke         {"input", "config"}  ->  {"output", "metadata": {"run_id"}}
    POST /<name>/batch          {"inputs", "config"} ->  {"output": [...], "metadata": {"run_ids"}}
    POST /<name>/stream         SSE: metadata, data (one per chunk) ..., end | error
    POST /<name>/stream_events  SSE of astream_events dicts (body may add version, include_*)
    POST /<name>/stream_log     SSE of run-log patches {"ops": [...]}
    GET  /<name>/input_schema   /output_schema  /config_schema  /graph
    GET  /                      the served names and their endpoints
    GET  /events                SSE of every run's events (query: drop policy, bound, include_*)
    GET  /healthz               {"status": "ok" | "draining" | "unavailable", "running", ...}
    GET  /ui/                   the run viewer page (``rillet.runtime.serve.viewer``)

JSON by default, msgpack with ``Accept: application/x-msgpack`` (``rillet.runtime.wire.sse``).
Every run goes through one :class:`~rillet.runtime.engine.worker.Worker`, so its limits hold for
HTTP too (a full queue answers 503), and :class:`~rillet.runtime.serve.limits.ServerLimits` guard
the server itself (body size and time, open streams, idle readers, keep-alive). A slow client
parks its run; a client that disconnects cancels it. An optional bearer token (compared in
constant time) guards every endpoint. The server binds to 127.0.0.1 unless told otherwise.

Example::

    async with open_server({"joke": chain}, port=0) as server:
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{server.url}/joke/invoke", json={"input": {"topic": "x"}})
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rillet.runtime.engine.protocols import Launchable, RunService
from rillet.runtime.engine.worker import Worker
from rillet.runtime.logs import get_logger
from rillet.runtime.serve.endpoints import RUN_ENDPOINTS, Endpoints, Served
from rillet.runtime.serve.exchange import drain_body, reply, reply_problem
from rillet.runtime.serve.limits import ServerLimits
from rillet.runtime.serve.requests import CONFIG_KEYS, RequestRejected, input_schema
from rillet.runtime.serve.viewer import PUBLIC_PATHS
from rillet.runtime.serve.viewer_routes import viewer_routes
from rillet.runtime.wire.sse import JSON, negotiate, to_tree

__all__ = ["RunningServer", "create_app", "is_loopback", "open_server", "serve", "served_names"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_RESERVED = frozenset({"events", "healthz", "ui"})


def served_names(runnables: Launchable | Mapping[str, Launchable],
                 default_name: str | None = None) -> dict[str, Launchable]:
    """``{name: runnable}`` from one runnable (named ``default_name`` or its run name) or a dict.

    Raises:
        TypeError: a value is not a runnable (not a :class:`Launchable`).
        ValueError: a name cannot be a URL path segment, or there is nothing to serve.
    """
    if isinstance(runnables, Mapping):
        named = dict(runnables)
    elif isinstance(runnables, Launchable):
        named = {default_name or runnables.get_name(): runnables}
    else:
        raise TypeError(f"cannot serve {runnables!r:.80}: expected a runnable or a dict of "
                        f"them")
    if not named:
        raise ValueError("nothing to serve: the dict of runnables is empty")
    for name, runnable in named.items():
        if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
            raise ValueError(f"cannot serve under {name!r}: a name must match {_NAME.pattern} "
                             f"and not be 'events', 'healthz' or 'ui'")
        if not isinstance(runnable, Launchable):
            raise TypeError(f"cannot serve {name!r}: expected a runnable (a rillet.graphs."
                            f"Runnable), got {type(runnable).__name__}: {runnable!r:.80}")
    return named


class _BearerAuth:
    """Refuses every HTTP request without ``Authorization: Bearer <token>``; the token is
    compared in constant time (``hmac.compare_digest``)."""

    def __init__(self, app: ASGIApp, token: str, limits: ServerLimits) -> None:
        self.app, self.token, self.limits = app, token.encode(), limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The viewer's static page holds no data; its config and /events are guarded.
        if scope["type"] == "http" and scope["path"] not in PUBLIC_PATHS:
            scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given:
                problem = RequestRejected(401, "Unauthorized",
                                          "this server needs 'Authorization: Bearer <token>'")
            elif not hmac.compare_digest(given.strip().encode(), self.token):
                problem = RequestRejected(401, "Unauthorized", "wrong bearer token")
            else:
                await self.app(scope, receive, send)
                return
            if await drain_body(receive, self.limits.max_body_bytes, self.limits.body_timeout):
                await reply_problem(send, problem)
            return
        await self.app(scope, receive, send)


class _BodyFirst:
    """Endpoints that take no body (all but the POSTed run endpoints) answer only once the
    request's body, if any, has arrived: see :func:`~rillet.runtime.serve.exchange.drain_body`."""

    def __init__(self, app: ASGIApp, limits: ServerLimits, run_paths: frozenset[str]) -> None:
        self.app, self.limits, self.run_paths = app, limits, run_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (scope["method"] == "POST"
                                            and scope["path"] in self.run_paths):
            if not await drain_body(receive, self.limits.max_body_bytes,
                                    self.limits.body_timeout):
                return  # the client left
        await self.app(scope, receive, send)


def _asgi(fn: Callable[[Scope, Receive, Send], Awaitable[None]]) -> ASGIApp:
    # Starlette calls plain functions with a Request; a bound method of an object would also be
    # wrapped, so endpoints go in as this callable object to be called as raw ASGI.
    class Endpoint:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await fn(scope, receive, send)

    return Endpoint()


def _metadata(served: Served, what: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        media = negotiate(Headers(scope=scope).get("accept")) or JSON
        runnable = served.runnable
        if what == "input_schema":
            tree: Any = {"title": f"{served.name}Input", **served.schema}
        elif what == "output_schema":
            tree = {"title": f"{served.name}Output", **runnable.get_output_jsonschema()}
        elif what == "config_schema":
            tree = {"title": f"{served.name}Config", "type": "object",
                    "properties": {key: {"title": key} for key in CONFIG_KEYS}}
        else:
            if not hasattr(runnable, "draw_ascii"):
                await reply_problem(send, RequestRejected(404, "NotFound",
                                                    f"{served.name!r} cannot be drawn"), media)
                return
            tree = {"ascii": runnable.draw_ascii(), "mermaid": runnable.draw_mermaid()}
        await reply(send, 200, to_tree(tree), media)

    return endpoint


def create_app(
    runnables: Launchable | Mapping[str, Launchable],
    *,
    worker: RunService,
    token: str | None = None,
    limits: ServerLimits = ServerLimits(),
) -> Starlette:
    """The ASGI app serving ``runnables`` (one, or a dict name -> runnable) through ``worker``
    (a :class:`~rillet.runtime.engine.worker.Worker`, or any other :class:`RunService`).

    Run it on a trio ASGI server (``serve`` uses hypercorn); ``app.state.endpoints.stopping``
    ends the ``/events`` streams when set. An exception that escapes an endpoint (a bug) is
    answered with a JSON 500 naming its type, never a traceback, and the server goes on.

    Example::

        app = create_app({"joke": chain}, worker=worker, token="s3cret")
    """
    named = served_names(runnables)
    endpoints = Endpoints(worker, limits=limits)
    routes: list[BaseRoute] = [
        Route("/healthz", _asgi(endpoints.healthz), methods=["GET"]),
        Route("/events", _asgi(endpoints.events), methods=["GET"]),
    ]
    index = {name: [f"/{name}/{e}" for e in RUN_ENDPOINTS] for name in named}

    async def list_served(scope: Scope, receive: Receive, send: Send) -> None:
        media = negotiate(Headers(scope=scope).get("accept")) or JSON
        await reply(send, 200, {"runnables": index}, media)

    routes.append(Route("/", _asgi(list_served), methods=["GET"]))
    routes += viewer_routes(named)
    for name, runnable in named.items():
        served = Served(name=name, runnable=runnable, schema=input_schema(runnable))
        sub: list[BaseRoute] = [
            Route(f"/{endpoint}", _asgi(partial(endpoints.run_endpoint, served, endpoint)),
                  methods=["POST"])
            for endpoint in RUN_ENDPOINTS
        ]
        sub += [Route(f"/{what}", _asgi(_metadata(served, what)), methods=["GET"])
                for what in ("input_schema", "output_schema", "config_schema", "graph")]
        routes.append(Mount(f"/{name}", routes=sub))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = (f"no endpoint at {request.url.path}; see GET / for what is served"
                   if exc.status_code == 404 else
                   f"{request.method} is not allowed on {request.url.path}")
        kind = "NotFound" if exc.status_code == 404 else "MethodNotAllowed"
        return JSONResponse({"status_code": exc.status_code, "type": kind, "message": message},
                            status_code=exc.status_code, headers=exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        get_logger(component="server").error("endpoint_crashed", path=request.url.path,
                                              error=repr(exc)[:200])
        message = (f"the server failed on this request ({type(exc).__name__}); it goes on "
                   f"serving other requests")
        return JSONResponse({"status_code": 500, "type": "InternalServerError",
                             "message": message}, status_code=500)

    app = Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error,
                                                       Exception: internal_error})
    app.state.endpoints = endpoints
    run_paths = frozenset(path for paths in index.values() for path in paths)
    app.add_middleware(_BodyFirst, limits=limits, run_paths=run_paths)
    if token:
        app.add_middleware(_BearerAuth, token=token, limits=limits)
    return app


@attrs.frozen
class RunningServer:
    """A server started by :func:`open_server`: its base ``url`` and its ``worker``."""

    url: str
    worker: RunService


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def _listening_sockets(config: Any, limits: ServerLimits) -> Any:
    """hypercorn's sockets for ``config.bind``, with ``TCP_USER_TIMEOUT`` where Linux has it:
    a connection whose peer acknowledges nothing for ``idle_timeout`` (it stopped reading, and
    a write of ours is parked in the kernel) is dropped by the kernel, which ends the write."""
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        if hasattr(socket, "TCP_USER_TIMEOUT") and sock.family in (socket.AF_INET,
                                                                    socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                            max(1, int(limits.idle_timeout * 1000)))
        sock.listen(config.backlog)
    return sockets


async def serve(
    runnables: Launchable | Mapping[str, Launchable],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    limits: ServerLimits = ServerLimits(),
    worker: RunService | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    backlog: int = 1024,
    log_level: str = "INFO",
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``runnables`` over HTTP until ``shutdown_trigger`` returns (or until cancelled).

    When the trigger returns: new runs get 503, running runs finish within the worker's
    ``shutdown_timeout`` (then are cancelled), ``/events`` streams end, and the server stops.
    A worker passed in is drained too; without one, a ``Worker()`` is made for the server.
    ``task_status.started`` receives the base URL (the real port when ``port=0``). Binding a
    host other than loopback without a ``token`` logs a warning (``rillet serve`` refuses it
    unless told ``--insecure``).

    Example::

        trio.run(partial(serve, {"joke": chain}, port=8000, token=os.environ["RILLET_TOKEN"]))
    """
    from hypercorn.config import Config
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    if not token and not is_loopback(host):
        get_logger(component="server").warning(
            "serving_without_token", host=host,
            message="anyone who can reach this address can run the served graphs")
    async with AsyncExitStack() as stack:
        service: RunService = (worker if worker is not None
                               else await stack.enter_async_context(Worker()))
        app = create_app(runnables, worker=service, token=token, limits=limits)
        config = Config()
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        config.backlog, config.loglevel = backlog, log_level
        config.accesslog = None
        config.keep_alive_timeout = limits.keep_alive_timeout
        config.graceful_timeout = 2.0  # runs are drained before the server stops listening
        endpoints: Endpoints = app.state.endpoints

        async def stop_when_triggered() -> None:
            await (shutdown_trigger or trio.sleep_forever)()
            await service.shutdown()
            endpoints.stopping.set()

        class _Started:
            def started(self, binds: list[str]) -> None:
                task_status.started(binds[0])

        # hypercorn types its trigger and task_status narrowly; these duck-type what it calls.
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
            config,
            sockets=_listening_sockets(config, limits),
            shutdown_trigger=stop_when_triggered,
            task_status=_Started(),  # type: ignore[arg-type]
        )


@asynccontextmanager
async def open_server(
    runnables: Launchable | Mapping[str, Launchable], *, host: str = "127.0.0.1", port: int = 0,
    worker: RunService | None = None,
    **options: Any,
) -> AsyncIterator[RunningServer]:
    """Serve ``runnables`` in the background for the ``async with`` block (tests, embedding).

    Leaving the block shuts the server down gracefully. ``options`` go to :func:`serve`.

    Example::

        async with open_server(chain, port=0) as server:
            print(server.url)          # http://127.0.0.1:<a free port>
    """
    async with AsyncExitStack() as stack:
        service: RunService = (worker if worker is not None
                               else await stack.enter_async_context(Worker()))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(
                serve, runnables, host=host, port=port, worker=service,
                shutdown_trigger=stop.wait, log_level=options.pop("log_level", "WARNING"),
                **options))
            try:
                yield RunningServer(url=url, worker=service)
            finally:
                stop.set()
