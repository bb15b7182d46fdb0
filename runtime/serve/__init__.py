"""Serving over HTTP: LangServe-shaped endpoints for runnables, and clients for them.

Holds the Starlette app on hypercorn's trio worker (:mod:`.server`), the run endpoints
(:mod:`.endpoints`), one exchange's replies, streams and disconnect watch (:mod:`.exchange`),
request parsing (:mod:`.requests`), the server's limits (:mod:`.limits`), the HTTP clients
(:mod:`.remote`): :class:`RemoteClient`, the transport under :class:`rillet.graphs.RemoteRunnable`,
and :func:`remote_events`; and the run viewer: its page in ``ui/``, served at ``/ui/``
(:mod:`.viewer_routes`) and, for a saved log, by a
standard-library server (:mod:`.viewer`).

May import: :mod:`rillet.runtime.errors`, :mod:`rillet.runtime.wire`, :mod:`rillet.runtime.events`
and :mod:`rillet.runtime.engine` (it serves any
:class:`~rillet.runtime.engine.protocols.RunService`, e.g. a ``Worker``). The server
needs the ``serve`` extra (Starlette, hypercorn), imported only when :func:`open_server`,
:func:`serve` or :func:`create_app` is first used; the clients need only httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata
from rillet.runtime.serve.limits import ServerLimits
from rillet.runtime.serve.remote import RemoteClient, RemoteEvents, remote_events

if TYPE_CHECKING:
    from rillet.runtime.serve.server import RunningServer, create_app, open_server, serve

__all__ = [
    "RemoteClient",
    "RemoteEvents",
    "RunningServer",
    "ServerLimits",
    "create_app",
    "open_server",
    "remote_events",
    "serve",
]

_SERVER_NAMES = frozenset({"RunningServer", "create_app", "open_server", "serve"})


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from rillet.runtime.extras import require_extra

        require_extra("serve", "starlette", "hypercorn", what=f"rillet.runtime.serve.{name}")
        from rillet.runtime.serve import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_fixup_module_metadata(__name__, globals())
