"""The viewer's routes on the HTTP server: the page at ``/ui/`` over ``GET /events``.

``/ui`` leads to ``/ui/``; ``/ui/config.json`` names the served graphs and the event stream
(``/events`` with a ``drop_oldest`` subscription, so a page that cannot keep up loses events,
and says how many, instead of slowing runs down). The page's static files need no bearer
token (they hold no data); ``config.json`` and ``/events`` do, and the page sends the token
it is given.

Example::

    routes = viewer_routes({"joke": chain})    # create_app adds these
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rillet.runtime.serve.viewer import SECURITY_HEADERS, graph_tree, ui_asset, viewer_config

__all__ = ["EVENTS_QUERY", "viewer_routes"]

#: How the page subscribes: lossy, so a slow browser never parks a run.
EVENTS_QUERY: Final = "policy=drop_oldest&bound=1024"


def viewer_routes(runnables: Mapping[str, Any], *, title: str = "rillet serve") -> list[BaseRoute]:
    """The routes of the viewer for the served ``{name: runnable}``."""
    graphs = {name: _graph_or_none(runnable) for name, runnable in runnables.items()}
    config = viewer_config("live", title=title, events=f"../events?{EVENTS_QUERY}",
                           graphs=graphs)

    async def to_page(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)

    async def config_json(request: Request) -> Response:
        return JSONResponse(config, headers=SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        try:
            data, content_type = ui_asset(request.path_params.get("name", ""))
        except KeyError:
            return JSONResponse({"status_code": 404, "type": "NotFound",
                                 "message": f"no page at {request.url.path}; the viewer is "
                                            f"at /ui/"}, status_code=404)
        return Response(data, media_type=content_type, headers=SECURITY_HEADERS)

    return [
        Route("/ui", to_page, methods=["GET"]),
        Route("/ui/", asset, methods=["GET"]),
        Route("/ui/config.json", config_json, methods=["GET"]),
        Route("/ui/{name}", asset, methods=["GET"]),
    ]


def _graph_or_none(runnable: Any) -> dict[str, Any] | None:
    # A runnable that cannot draw itself is served all the same (its /graph endpoint reports
    # why); the page just shows no graph for it.
    try:
        return graph_tree(runnable)
    except Exception:  # noqa: BLE001 - see above
        return None
