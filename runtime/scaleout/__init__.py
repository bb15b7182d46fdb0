"""Scale-out: runs queued for workers on many machines, their events kept per run.

Holds the run queue interface with its in-memory implementation (:mod:`.queue`), the per-run
event store (:mod:`.store`), the worker-wide event feed (:mod:`.feed`), the workers
(:mod:`.service`) and the client that submits, follows and cancels runs (:mod:`.client`), the
Redis Streams implementations (:mod:`.redis_client`, :mod:`.redis_queue`, :mod:`.redis_store`,
:mod:`.redis_feed`) and the queue gateway that lets ``rillet serve --redis`` answer HTTP
requests with queued runs (:mod:`.gateway`).

May import: :mod:`rillet.runtime.errors`, :mod:`rillet.runtime.wire`, :mod:`rillet.runtime.events`
and :mod:`rillet.runtime.engine`. The Redis modules need the ``redis`` extra (coredis), imported
only when Redis is first used; the in-memory backends need nothing more.
"""

from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata
from rillet.runtime.scaleout.feed import EventFeed, FeedSubscription, InMemoryEventFeed
from rillet.runtime.scaleout.gateway import QueueGateway
from rillet.runtime.scaleout.queue import InMemoryRunQueue, RunQueue, RunSubmission
from rillet.runtime.scaleout.service import (
    RunStatus,
    ScaleoutClient,
    ScaleoutWorker,
    WorkerSettings,
    open_redis_backends,
    open_scaleout_client,
)
from rillet.runtime.scaleout.store import EventLog, InMemoryEventLog

__all__ = [
    "EventFeed",
    "EventLog",
    "FeedSubscription",
    "InMemoryEventFeed",
    "InMemoryEventLog",
    "InMemoryRunQueue",
    "QueueGateway",
    "RunQueue",
    "RunStatus",
    "RunSubmission",
    "ScaleoutClient",
    "ScaleoutWorker",
    "WorkerSettings",
    "open_redis_backends",
    "open_scaleout_client",
]

_fixup_module_metadata(__name__, globals())
