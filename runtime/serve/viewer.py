"""The run viewer: a page that shows runs as they happen, and the small server of a saved log.

The page is five plain files in ``ui/`` (``index.html``; ``model.js``, the runs as plain
objects; ``viewer.js``, their rendering and the event source; ``graph.js``; ``viewer.css``): no
build step, nothing fetched from anywhere but the server that sent it (its
``Content-Security-Policy`` says so). It reads ``config.json`` beside it::

    {"mode": "live" | "log", "title": ..., "events": URL of an SSE stream, "graphs": {name: graph}}

then draws the graphs and reads the stream: ``astream_events`` v2 dicts in ``data`` frames
(with ``time``, seconds, when the source knows it), ``dropped`` and ``end`` frames, as
``GET /events`` sends them. ``rillet serve`` serves the page at ``/ui/`` over its worker's
event channel (:mod:`.viewer_routes`); ``rillet view FILE`` serves a saved event log to the
same page with :class:`LogViewServer`, which needs only the standard library (no ``serve``
extra).

>>> graph_tree(None) is None
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

from rillet.runtime.errors import TruncatedLogError, WireFormatError
from rillet.runtime.events.eventlog import decode_event
from rillet.runtime.events.render import render_event
from rillet.runtime.wire.logfile import iter_log, read_log_header
from rillet.runtime.wire.sse import sse_frame, to_tree

__all__ = [
    "ASSETS",
    "PUBLIC_PATHS",
    "SECURITY_HEADERS",
    "LogViewServer",
    "graph_tree",
    "log_frames",
    "ui_asset",
    "viewer_config",
]

#: The page's files and their content types.
ASSETS: Final = {
    "index.html": "text/html; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "model.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}
#: Paths that need no bearer token: the static page, which holds no data of any run.
PUBLIC_PATHS: Final = frozenset({"/ui", "/ui/", *(f"/ui/{name}" for name in ASSETS)})
#: Sent with every viewer response: the page may load and connect only to where it came from.
SECURITY_HEADERS: Final = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


def ui_asset(name: str) -> tuple[bytes, str]:
    """The bytes and content type of one of the page's files (``"index.html"`` for ``""``).

    Raises:
        KeyError: ``name`` is not one of :data:`ASSETS`.
    """
    name = name or "index.html"
    content_type = ASSETS[name]
    data = resources.files("rillet.runtime.serve").joinpath("ui", name).read_bytes()
    return data, content_type


def graph_tree(runnable: Any) -> dict[str, Any] | None:
    """``runnable.get_graph()`` as ``{"root", "nodes": [{"id", "label"}], "edges": [[a, b]]}``.

    ``root`` is the runnable's run name (the page lights up the nodes of runs under a root run
    of that name); node ids are ``n0``, ``n1``, … in the graph's order (as ``draw_mermaid``
    numbers them). ``None`` when the object cannot draw itself.
    """
    get_graph = getattr(runnable, "get_graph", None)
    if not callable(get_graph):
        return None
    graph = get_graph()
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    get_name = getattr(runnable, "get_name", None)
    return {"root": str(get_name()) if callable(get_name) else None,
            "nodes": [{"id": ids[node], "label": str(label)}
                      for node, label in graph.nodes.items()],
            "edges": [[ids[a], ids[b]] for a, b in graph.edges if a in ids and b in ids]}


def viewer_config(mode: str, *, title: str, events: str,
                  graphs: Mapping[str, Any]) -> dict[str, Any]:
    """What the page reads from ``config.json``: see the module docstring."""
    if mode not in ("live", "log"):
        raise ValueError(f"viewer mode must be 'live' or 'log', got {mode!r}")
    return {"mode": mode, "title": title, "events": events,
            "graphs": {name: graph for name, graph in graphs.items() if graph}}


def log_frames(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The saved log at ``path`` as the page's SSE stream, record by record (constant memory).

    ``metadata`` first, a ``data`` frame per event (its v2 dict plus ``time``), ``error`` for a
    record that cannot be read (a truncated log stops there), ``end`` last. Register the wire
    types the log holds first (``import rillet.nodes``).
    """
    yield sse_frame("metadata", {"source": os.path.basename(path)})
    records = iter_log(path)
    try:
        for record in records:
            try:
                event = decode_event(record)
            except WireFormatError as error:
                yield sse_frame("error", {"type": "WireFormatError", "message": str(error)})
                continue
            shaped = render_event(event, "v2")
            if shaped is not None:
                yield sse_frame("data", to_tree({**shaped, "time": event.time}))
    except TruncatedLogError as error:
        yield sse_frame("error", {"type": "TruncatedLogError", "message": str(error)})
    finally:
        records.close()
    yield sse_frame("end", None)


class LogViewServer(ThreadingHTTPServer):
    """Serves the page over one saved event log on ``host:port`` (``url`` says where).

    ``/`` and ``/ui`` lead to ``/ui/``; ``/ui/log-events`` streams :func:`log_frames`. Reads
    only the log's header up front, so a large log costs nothing until the page asks for it.

    Example::

        server = LogViewServer("run.rlog", port=0)
        print(server.url)           # http://127.0.0.1:<port>/ui/
        server.serve_forever()      # until KeyboardInterrupt; then server.server_close()

    Raises:
        WireFormatError: the file is not a rillet event log.
        TruncatedLogError: the file is empty.
        OSError: the file cannot be read, or the port cannot be bound.
    """

    daemon_threads = True

    def __init__(self, path: str | os.PathLike[str], *, host: str = "127.0.0.1",
                 port: int = 8765) -> None:
        self.path = os.fspath(path)
        header = read_log_header(self.path)
        graphs = header.get("graphs")
        self.config = viewer_config(
            "log", title=os.path.basename(self.path), events="log-events",
            graphs=graphs if isinstance(graphs, dict) else {})
        super().__init__((host, port), _LogViewHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{f'[{name}]' if ':' in name else name}:{port}/ui/"


class _LogViewHandler(BaseHTTPRequestHandler):
    server: LogViewServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        if path in ("/", "/ui"):
            self._send(302, b"", "text/plain", {"location": "/ui/"})
        elif path == "/ui/config.json":
            self._send(200, json.dumps(self.server.config).encode(), "application/json")
        elif path == "/ui/log-events":
            self._stream()
        elif path.startswith("/ui/") and path.removeprefix("/ui/") in {"", *ASSETS}:
            data, content_type = ui_asset(path.removeprefix("/ui/"))
            self._send(200, data, content_type)
        else:
            body = {"status_code": 404, "type": "NotFound",
                    "message": f"no page at {path}; the viewer is at /ui/"}
            self._send(404, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str,
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {**SECURITY_HEADERS, "content-type": content_type,
                           "content-length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.send_response(200)
        for key, value in {**SECURITY_HEADERS, "content-type": "text/event-stream"}.items():
            self.send_header(key, value)
        self.end_headers()
        batch: list[bytes] = []
        try:
            for data in log_frames(self.server.path):
                batch.append(data)
                if len(batch) >= 256:  # one write per batch of frames, not per frame
                    self.wfile.write(b"".join(batch))
                    batch.clear()
            self.wfile.write(b"".join(batch))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away mid-stream

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # no line per request on the terminal that shows the URL
