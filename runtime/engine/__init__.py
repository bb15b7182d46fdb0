"""The actor engine: how a run executes.

Holds bounded edges (:mod:`.edges`), the actor loops (:mod:`.actors`), run scopes with their
ids, config and event publishing (:mod:`.scope`), the supervisor that owns each run's nursery in
a system task (:mod:`.supervisor`), the iterators that read a run and cancel it when left early
(:mod:`.streams`), the sync bridge for threads (:mod:`.bridge`), the hosts that serve asyncio
callers from a trio guest run on their loop (:mod:`.hosts`, :mod:`.hosts_streams`,
:mod:`.hosts_user`), and the long-running :class:`Worker` with the handles of its runs
(:mod:`.worker`, :mod:`.handles`).

May import: :mod:`rillet.runtime.errors`, :mod:`rillet.runtime.chunks`, :mod:`rillet.runtime.logs`,
:mod:`rillet.runtime.wire` and :mod:`rillet.runtime.events`. It knows no Runnable, no LLM, no
HTTP and no Redis.
"""

from rillet.runtime.engine.edges import DEFAULT_BOUND, open_edge
from rillet.runtime.engine.handles import RunCancelled, RunEvents, RunOutput, WorkerRun
from rillet.runtime.engine.scope import adispatch_custom_event, current_scope, dispatch_custom_event
from rillet.runtime.engine.streams import AsyncRunStream, EventStream, SyncRunStream
from rillet.runtime.engine.supervisor import RunHandle
from rillet.runtime.engine.worker import Worker, WorkerStatistics
from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "DEFAULT_BOUND",
    "AsyncRunStream",
    "EventStream",
    "RunCancelled",
    "RunEvents",
    "RunHandle",
    "RunOutput",
    "SyncRunStream",
    "Worker",
    "WorkerRun",
    "WorkerStatistics",
    "adispatch_custom_event",
    "current_scope",
    "dispatch_custom_event",
    "open_edge",
]

_fixup_module_metadata(__name__, globals())
