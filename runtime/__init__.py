"""The engine: actors, bounded edges, the supervisor, lifecycle events and their bus.

It knows nothing about LLMs; ``graphs`` builds the Runnable API on it and ``nodes`` the
components.
"""

from runtime.bus import EventBus, Subscription, SubscriptionStatistics
from runtime.chunks import Accumulator, AddableDict
from runtime.edges import DEFAULT_BOUND, open_edge
from runtime.errors import (
    NodeInputError,
    RemoteError,
    RilletError,
    TruncatedLogError,
    WireFormatError,
    WorkerBusy,
)
from runtime.eventlog import open_event_log, read_event_log, replay_event_log
from runtime.events import ChunkEmitted, CustomEvent, Event, RunFailed, RunFinished, RunStarted
from runtime.handles import RunCancelled, RunEvents, RunOutput, WorkerRun
from runtime.logs import configure_logging
from runtime.remote import RemoteRunnable, remote_events
from runtime.render import EventFilter, render_event
from runtime.runlog import RunLog, RunLogPatch
from runtime.scope import adispatch_custom_event, current_scope, dispatch_custom_event
from runtime.streams import AsyncRunStream, EventStream, SyncRunStream
from runtime.supervisor import RunHandle
from runtime.worker import Worker, WorkerStatistics

__all__ = [
    "DEFAULT_BOUND",
    "Accumulator",
    "AddableDict",
    "AsyncRunStream",
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
