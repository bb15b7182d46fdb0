"""The engine's API for extension authors: what ``rillet.graphs`` and ``rillet.nodes`` build on.

Like ``trio.lowlevel``: names an application rarely needs, but a new kind of runnable, node or
serving backend does. ``rillet.graphs`` and ``rillet.nodes`` import only from
:mod:`rillet.runtime`, this module and :mod:`rillet.runtime.errors` (a layout test checks it), so
everything here is a promise to them and to you.

Contracts (typed protocols the engine owns; implement them to plug in):

- :class:`Launchable`: what the worker, the scale-out worker and the server need from a
  runnable. Subclassing :class:`rillet.graphs.Runnable` implements it.
- :class:`RunService` / :class:`ServedRun`: what the HTTP endpoints need from whatever executes
  runs (``Worker`` in-process, ``QueueGateway`` over Redis).
- :class:`RunConfig`: the one config schema, checked once at the edge
  (:meth:`RunConfig.from_dict`), then passed down as a value.

Building runs (how a runnable places its actors when a run is wired):

- :class:`Wiring` (edges, actors, scopes of one run), :class:`Outlet` (where a node's chunks
  go), :data:`SKIP`, :func:`launch_run` and its :class:`RunHandle`;
- :data:`TRANSFORM`, :data:`STREAM`, :data:`INVOKE`: how a leaf consumes its input, for
  :meth:`Wiring.place`, which gives the node an actor of its own or fuses it into its
  producer's (the actor loops themselves stay inside the engine);
- :func:`annotate_error` (an error names its node);
- :class:`RunScope` / :class:`RunState` (a run's identity, lifecycle, events), :data:`MISSING`,
  :func:`current_variable` (the context variable holding the run whose code executes);
- chunks: :data:`DELTA` / :data:`SNAPSHOT` and :func:`keyed`, :func:`register_nary_add` (how a
  type adds up), :func:`sum_chunks`, :func:`sole_error`;
- readers: :class:`AsyncRunStream`, :class:`SyncRunStream`, :class:`EventStream` (a run read
  from trio, a thread, or as events) and :func:`run_sync` (the thread bridge);
- asyncio hosting: :func:`hosted` (an async method that also works from asyncio, in the loop's
  trio guest), :func:`await_user` (await user code on the caller's loop), :class:`AsyncioSource`
  (an asyncio async iterator as a run's input);
- events: :class:`FilterOptions`, :class:`RunLogBuilder`, :func:`event_from_dict` (a rendered
  event back into an :class:`~rillet.runtime.Event`, for events that crossed a wire);
- wire and logs: :func:`register_wire_type`, :func:`apply_patch`, :func:`make_patch`,
  :func:`join_pointer`, :func:`get_logger`, :func:`fixup_module_metadata`;
- HTTP client transport: :class:`RemoteClient` (what ``rillet.graphs.RemoteRunnable`` speaks).

>>> from rillet.runtime.lowlevel import Launchable
>>> from rillet.graphs import RunnableLambda
>>> isinstance(RunnableLambda(abs), Launchable)
True
"""

from rillet.runtime.chunks import DELTA, SNAPSHOT, keyed, register_nary_add, sum_chunks
from rillet.runtime.engine.actors import annotate_error
from rillet.runtime.engine.bridge import run_sync
from rillet.runtime.engine.config import CONFIG_KEYS, EMPTY_CONFIG, RunConfig
from rillet.runtime.engine.edges import SKIP, Outlet
from rillet.runtime.engine.hosts import hosted
from rillet.runtime.engine.hosts_streams import AsyncioSource
from rillet.runtime.engine.hosts_user import await_user
from rillet.runtime.engine.protocols import Launchable, RunService, ServedRun
from rillet.runtime.engine.scope import MISSING, RunScope, RunState, current_variable
from rillet.runtime.engine.stages import INVOKE, STREAM, TRANSFORM
from rillet.runtime.engine.supervisor import FeedSource, Wiring, launch_run, sole_error
from rillet.runtime.events.filters import FilterOptions
from rillet.runtime.events.restore import event_from_dict
from rillet.runtime.events.runlog import RunLogBuilder
from rillet.runtime.exports import fixup_module_metadata
from rillet.runtime.logs import get_logger
from rillet.runtime.serve.remote import RemoteClient
from rillet.runtime.wire.codec import register_wire_type
from rillet.runtime.wire.jsonpatch import apply_patch, join_pointer, make_patch

__all__ = [
    "CONFIG_KEYS",
    "DELTA",
    "EMPTY_CONFIG",
    "INVOKE",
    "MISSING",
    "SKIP",
    "SNAPSHOT",
    "STREAM",
    "TRANSFORM",
    "AsyncioSource",
    "FeedSource",
    "FilterOptions",
    "Launchable",
    "Outlet",
    "RemoteClient",
    "RunConfig",
    "RunLogBuilder",
    "RunScope",
    "RunService",
    "RunState",
    "ServedRun",
    "Wiring",
    "annotate_error",
    "apply_patch",
    "await_user",
    "current_variable",
    "event_from_dict",
    "fixup_module_metadata",
    "get_logger",
    "hosted",
    "join_pointer",
    "keyed",
    "launch_run",
    "make_patch",
    "register_nary_add",
    "register_wire_type",
    "run_sync",
    "sole_error",
    "sum_chunks",
]

fixup_module_metadata(__name__, globals())
