"""Lifecycle events: what a run reports, who hears it, and how it is shown or kept.

Holds the frozen event classes (:mod:`.types`), the :class:`EventBus` with its bounded,
per-subscriber policies (:mod:`.bus`), the LangChain-shaped v1/v2 renderers and filters
(:mod:`.render`), JSON-patch run logs (:mod:`.runlog`) and msgpack event logs for saving and
replaying runs (:mod:`.eventlog`), and OpenTelemetry spans of runs (:mod:`.otel`, the ``otel``
extra, imported only when a recorder is made).

May import: :mod:`rillet.runtime.errors`, :mod:`rillet.runtime.chunks`, :mod:`rillet.runtime.logs`
and :mod:`rillet.runtime.wire`. The engine publishes into this package; nothing here starts or
drives a run.
"""

from rillet.runtime.events.bus import EventBus, Subscription, SubscriptionStatistics
from rillet.runtime.events.eventlog import open_event_log, read_event_log, replay_event_log
from rillet.runtime.events.filters import EventFilter
from rillet.runtime.events.otel import SpanRecorder, SpanRecording, open_span_recorder
from rillet.runtime.events.render import render_event
from rillet.runtime.events.runlog import RunLog, RunLogPatch
from rillet.runtime.events.types import (
    KINDS,
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)
from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "KINDS",
    "ChunkEmitted",
    "CustomEvent",
    "Event",
    "EventBus",
    "EventFilter",
    "RunFailed",
    "RunFinished",
    "RunLog",
    "RunLogPatch",
    "RunStarted",
    "SpanRecorder",
    "SpanRecording",
    "Subscription",
    "SubscriptionStatistics",
    "open_event_log",
    "open_span_recorder",
    "read_event_log",
    "render_event",
    "replay_event_log",
]

_fixup_module_metadata(__name__, globals())
