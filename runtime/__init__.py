"""The engine: actors, bounded edges, the supervisor, lifecycle events and their bus.

It knows nothing about LLMs; ``graphs`` builds the Runnable API on it and ``nodes`` the
components, both through this package and :mod:`rillet.runtime.lowlevel` (the extension-author
API: protocols, config, wiring).
"""

from rillet.runtime.chunks import Accumulator, AddableDict
from rillet.runtime.engine.edges import DEFAULT_BOUND, open_edge
from rillet.runtime.engine.handles import RunCancelled, RunEvents, RunOutput, WorkerRun
from rillet.runtime.engine.scope import adispatch_custom_event, current_scope, dispatch_custom_event
from rillet.runtime.engine.streams import AsyncRunStream, EventStream, SyncRunStream
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.engine.worker import Worker, WorkerStatistics
from rillet.runtime.errors import (
    AsyncioRequiredError,
    ConfigError,
    NodeInputError,
    RemoteError,
    RilletError,
    TruncatedLogError,
    WireFormatError,
    WorkerBusy,
)
from rillet.runtime.events.bus import (
    BusStatistics,
    EventBus,
    Subscription,
    SubscriptionStatistics,
)
from rillet.runtime.events.eventlog import open_event_log, read_event_log, replay_event_log
from rillet.runtime.events.filters import EventFilter
from rillet.runtime.events.render import render_event
from rillet.runtime.events.runlog import RunLog, RunLogPatch
from rillet.runtime.events.types import (
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)
from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata
from rillet.runtime.logs import configure_logging
from rillet.runtime.serve.remote import remote_events

__all__ = [
    "DEFAULT_BOUND",
    "Accumulator",
    "AddableDict",
    "AsyncRunStream",
    "AsyncioRequiredError",
    "BusStatistics",
    "ChunkEmitted",
    "ConfigError",
    "CustomEvent",
    "Event",
    "EventBus",
    "EventFilter",
    "EventStream",
    "NodeInputError",
    "RemoteError",
    "RilletError",
    "RunCancelled",
    "RunEvents",
    "RunFailed",
    "RunFinished",
    "RunHandle",
    "RunLog",
    "RunLogPatch",
    "RunOutput",
    "RunStarted",
    "Subscription",
    "SubscriptionStatistics",
    "SyncRunStream",
    "TruncatedLogError",
    "WireFormatError",
    "Worker",
    "WorkerBusy",
    "WorkerRun",
    "WorkerStatistics",
    "adispatch_custom_event",
    "configure_logging",
    "current_scope",
    "dispatch_custom_event",
    "open_edge",
    "open_event_log",
    "read_event_log",
    "remote_events",
    "render_event",
    "replay_event_log",
]

_fixup_module_metadata(__name__, globals())


def __getattr__(name: str) -> object:
    # RemoteRunnable is a Runnable, so it lives in rillet.graphs (which builds on this package);
    # the old path still works, resolved on use so that importing the engine imports no graphs.
    if name == "RemoteRunnable":
        from rillet.graphs.remote import RemoteRunnable

        return RemoteRunnable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
