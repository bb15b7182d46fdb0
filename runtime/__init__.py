"""The engine: actors, bounded edges, the supervisor, lifecycle events and their bus.

It knows nothing about LLMs; ``graphs`` builds the Runnable API on it and ``nodes`` the
components.
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
    NodeInputError,
    RemoteError,
    RilletError,
    TruncatedLogError,
    WireFormatError,
    WorkerBusy,
)
from rillet.runtime.events.bus import EventBus, Subscription, SubscriptionStatistics
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
from rillet.runtime.logs import configure_logging
from rillet.runtime.serve.remote import RemoteRunnable, remote_events

__all__ = [
    "DEFAULT_BOUND",
    "Accumulator",
    "AddableDict",
    "AsyncRunStream",
    "AsyncioRequiredError",
    "ChunkEmitted",
    "CustomEvent",
    "Event",
    "EventBus",
    "EventFilter",
    "EventStream",
    "NodeInputError",
    "RemoteError",
    "RemoteRunnable",
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
