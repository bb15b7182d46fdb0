"""Run scopes: the identity and lifecycle of one run, and what every run of a root run shares.

A *run* is one execution of one runnable: a node, or a composite such as a sequence. Runs nest:
a sequence's steps are child runs, and a chain invoked from inside a node's function becomes a
child of that node's run. Each run has a :class:`RunScope`; all runs under one root share a
:class:`RunState` (event buses, the event counter ``seq``, the root's logger).

Lifecycle rules (LangChain's, kept because UIs rely on them):

- a run starts lazily, when its first input arrives; a composite starts just before the first of
  its entry children (``entry``), so a parent's start always precedes its children's;
- a run ends when its last exit child ended (``exit`` counts them down), so a sequence ends after
  its last step, a parallel after its slowest branch;
- a failed run emits :class:`~rillet.runtime.events.types.RunFailed` for itself and every unfinished enclosing
  run of the same plan, inner first, and never an end.

With no subscriber (``RunState.publishing`` false) scopes only track flags: no event is built.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Final

import trio

from rillet.runtime.chunks import DELTA, Accumulator
from rillet.runtime.engine.config import EMPTY_CONFIG, RunConfig
from rillet.runtime.events.bus import EventBus
from rillet.runtime.events.render import tool_call_id
from rillet.runtime.events.types import (
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)
from rillet.runtime.logs import Logger, get_logger, logging_enabled

__all__ = [
    "MISSING",
    "NO_STREAM_KINDS",
    "RunScope",
    "RunState",
    "adispatch_custom_event",
    "current_scope",
    "current_variable",
    "dispatch_custom_event",
    "new_run_id",
]

MISSING: Final[object] = type("MISSING", (), {"__repr__": lambda self: "MISSING"})()

# Their one output is produced after they end, so LangChain reports no stream events for them.
NO_STREAM_KINDS: Final = frozenset({"prompt", "retriever", "tool"})

_current: ContextVar[RunScope | None] = ContextVar("rillet_current_scope", default=None)


def current_scope() -> RunScope | None:
    """The run whose code is executing in this task or thread, if any."""
    return _current.get()


def current_variable() -> ContextVar[RunScope | None]:
    """The context variable behind :func:`current_scope`, for the engine's fused actors, which
    switch it as control passes from one node's code to another's."""
    return _current


def new_run_id() -> str:
    return str(uuid.uuid4())


class RunState:
    """What all runs under one root share: buses, the ``seq`` counter, the root logger.

    ``publishing`` is decided once, at the root's start: a subscriber that arrives later sees
    the next run, not the rest of this one.
    """

    def __init__(self, buses: tuple[EventBus, ...] = (), *, attempt: int = 1) -> None:
        self.buses = tuple(bus for bus in buses if bus.active)
        self.publishing = bool(self.buses)
        self.attempt = attempt
        self._seq = itertools.count()
        # Subscriptions that end after a number of runs (``subscribe(runs=n)``) count this
        # run off when its last launch (the root's, or a straggling child's) is over.
        self._counted = [(bus, bus.subscribers()) for bus in self.buses]
        self._launches = 0

    def launched(self) -> None:
        self._launches += 1

    def landed(self) -> None:
        self._launches -= 1
        if self._launches == 0:
            for bus, subscribers in self._counted:
                bus.run_ended(subscribers)

    def wants(self, name: str, kind: str, tags: tuple[str, ...]) -> bool:
        """Whether any subscriber may accept events of a run so named, kinded and tagged."""
        return self.publishing and any(bus.wants(name, kind, tags) for bus in self.buses)

    def next_seq(self) -> int:
        return next(self._seq)

    async def publish(self, event: Event) -> None:
        for bus in self.buses:
            await bus.publish(event)


class RunScope:
    """One run: its identity, lifecycle flags, and (when publishing) its accumulated output."""

    __slots__ = (
        "_run_id", "name", "kind", "_parent_ids", "tags", "inheritable_tags", "metadata",
        "state", "parent", "entry", "exit", "pending_exits", "streams", "is_root",
        "started", "ended", "failed", "input", "output", "config", "_log", "input_view", "limiter",
        "_watched", "output_view", "invoked",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        state: RunState,
        parent: RunScope | None = None,
        run_id: str | None = None,
        tags: tuple[str, ...] = (),
        inheritable_tags: tuple[str, ...] = (),
        metadata: Mapping[str, object] | None = None,
        entry: RunScope | None = None,
        exit: RunScope | None = None,
        is_root: bool = False,
        output_mode: str = DELTA,
        config: RunConfig = EMPTY_CONFIG,
        input_view: Callable[[object], object] | None = None,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        # Ids are made when first asked for (events, logs, a model's chunk ids): a run that
        # nobody watches never pays for a uuid per node.
        self._run_id = run_id
        self._parent_ids: tuple[str, ...] | None = None
        self.name, self.kind, self.state, self.parent = name, kind, state, parent
        self.tags = tags
        self.inheritable_tags = inheritable_tags
        # Not copied: the wiring builds these per scope or shares a parent's, and nothing
        # mutates them afterwards (events share them too).
        self.metadata: Mapping[str, Any] = metadata if metadata is not None else {}
        self.entry, self.exit, self.is_root = entry, exit, is_root
        self.pending_exits = 0
        if exit is not None:
            exit.pending_exits += 1
        self.streams = kind not in NO_STREAM_KINDS
        self.started = self.ended = self.failed = False
        self.input: object = MISSING
        # How events show this run's input (a chat model reports {"messages": [[...]]}); the
        # root of a call shows the input as the caller passed it, as LangChain does.
        self.input_view = input_view
        # How the end event shows the output: an invoked run reports what invoke returns.
        self.output_view: Callable[[Any], Any] | None = None
        self.invoked = False
        # Shared by the nodes under a parallel with max_concurrency: held while they work. A
        # child run started by such a node must not wait for the slot its parent holds.
        inherited: trio.CapacityLimiter | None = (
            parent.limiter if parent is not None and not is_root else None)
        self.limiter: trio.CapacityLimiter | None = limiter if limiter is not None else inherited
        self.output = Accumulator(output_mode)
        #: The run's config: its own keys and what it inherited (tags, metadata, bound …).
        self.config = config
        self._log: Logger | None = None
        self._watched: bool | None = None

    def __repr__(self) -> str:
        return f"<RunScope {self.kind} {self.name!r} {self.run_id[:8]}>"

    @property
    def run_id(self) -> str:
        run_id = self._run_id
        if run_id is None:
            run_id = self._run_id = new_run_id()
        return run_id

    @property
    def parent_ids(self) -> tuple[str, ...]:
        """The ids of the enclosing runs, root first."""
        ids = self._parent_ids
        if ids is None:
            parent = self.parent
            ids = self._parent_ids = () if parent is None else (*parent.parent_ids,
                                                                 parent.run_id)
        return ids

    @property
    def watched(self) -> bool:
        """Whether this run's events reach anybody: publishing, and some subscriber's filter
        may accept this run's name, kind and tags. Unwatched runs build no events at all
        (``astream_events(include_types=["chat_model"])`` builds the model's only)."""
        watched = self._watched
        if watched is None:
            watched = self._watched = self.state.wants(self.name, self.kind, self.tags)
        return watched

    @property
    def log(self) -> Logger:
        """This run's structlog logger (``run_id``, ``run_name``, ``node``, ``kind`` bound)."""
        log = self._log
        if log is None:
            log = self._log = (
                get_logger(run_id=self.run_id, run_name=self.name, node=self.name,
                           kind=self.kind)
                if logging_enabled() else get_logger()
            )
        return log

    # -- lifecycle ---------------------------------------------------------------------------

    def _event(self, cls: type[Any], data: Mapping[str, object], name: str | None = None) -> Event:
        event: Event = cls._trusted(
            self.run_id, self.name if name is None else name, self.kind,
            self.state.next_seq(), self.parent_ids, self.tags, self.metadata, data,
            time.time(), self.state.attempt,
        )
        return event

    async def start(self, input: object = MISSING) -> None:
        """Start this run (once), after starting the composite it is the entry of."""
        if self.started:
            return
        if self.entry is not None and not self.entry.started:
            await self.entry.start()
        self.started = True
        if input is not MISSING:
            self.set_input(input)
        self.log.info("run_started")
        if self.watched:
            lazy = input is MISSING or self._starts_lazily()
            data = {} if lazy else {"input": self._view(input)}
            await self.state.publish(self._event(RunStarted, data))

    def mark_invoked(self, finalize: Callable[[object], object], *, streams: bool) -> None:
        """This call's caller wants the whole output (``ainvoke``): its end event reports
        ``finalize(output)``, and it reports stream events only if ``streams``."""
        self.invoked, self.output_view = True, finalize
        self.streams = self.streams and streams

    def _starts_lazily(self) -> bool:
        # LangChain streams a chain step through its transform, which starts before its input
        # is known: the step's start has no input (its end has it). Invoked calls hand each
        # step its whole input, and the outermost run always shows what the caller passed.
        if self.kind != "chain" or self.is_root:
            return False
        scope: RunScope | None = self.parent
        while scope is not None and not scope.is_root:
            scope = scope.parent
        return scope is None or not scope.invoked

    def set_input(self, value: object) -> None:
        """Record the run's whole input, and its entry composite's if that is still unknown."""
        scope: RunScope | None = self
        while scope is not None and scope.input is MISSING:
            scope.input = value
            scope = scope.entry

    def _view(self, value: object) -> object:
        # The outermost run shows its input as given (``model.astream_events("hello")`` starts
        # with ``input == "hello"``); nested runs show it as their kind does.
        if self.input_view is None or self.parent is None:
            return value
        return self.input_view(value)

    async def emit_chunk(self, chunk: object) -> None:
        """A stream tap: accumulate ``chunk`` into the output and report it (publishing only)."""
        if not self.started:  # a zero-hop branch (assign's passthrough keys) may come first
            await self.start()
        self.output.add(chunk)
        if self.streams:
            await self.state.publish(self._event(ChunkEmitted, {"chunk": chunk}))

    async def finish(self, output: object = MISSING) -> None:
        """End this run (once) and count it off the composite it is an exit of."""
        if self.ended or self.failed:
            return
        if not self.started:  # an empty input stream still makes a complete run
            await self.start()
        self.ended = True
        self.log.info("run_finished")
        if self.watched:
            value = self.output.value if output is MISSING else output
            if self.output_view is not None:
                value = self.output_view(value)
            data: dict[str, object] = {"output": value}
            # Only the outermost run ends without its input (LangChain's v2 rule); a chain
            # invoked inside a node's function is a child run and reports it.
            if self.parent is not None and self.input is not MISSING:
                data["input"] = self._view(self.input)
            await self.state.publish(self._event(RunFinished, data))
        await self._count_off_exit()

    async def skip(self) -> None:
        """End without events: a buffering node whose input stream was empty never runs."""
        self.started = self.ended = True
        await self._count_off_exit()

    async def _count_off_exit(self) -> None:
        parent = self.exit
        if parent is not None:
            parent.pending_exits -= 1
            if parent.pending_exits == 0:
                await parent.finish()

    async def fail(self, error: BaseException) -> None:
        """Report ``error`` for this run and every unfinished enclosing run up to the root."""
        scope: RunScope | None = self
        while scope is not None and not scope.failed and not scope.ended:
            scope.failed = True
            scope.log.error("run_failed", error=repr(error))
            if scope.watched:
                if not scope.started:
                    scope.started = True
                    await scope.state.publish(scope._event(RunStarted, {}))
                data: dict[str, object] = {"error": error}
                if scope.input is not MISSING:
                    data["input"] = scope._view(scope.input)
                if scope.kind == "tool":  # LangChain's on_tool_error names the tool call
                    data["tool_call_id"] = tool_call_id(scope.input)
                await scope.state.publish(scope._event(RunFailed, data))
            if scope.is_root:
                break
            scope = scope.parent

    async def custom(self, name: str, payload: object) -> None:
        # Filters match a custom event by its own name, used as name and as kind.
        if self.state.wants(name, name, self.tags):
            # A custom event is named by the user, not by the run that dispatched it.
            await self.state.publish(self._event(CustomEvent, {"payload": payload}, name))

    # -- nesting -----------------------------------------------------------------------------

    def activate(self) -> Token[RunScope | None]:
        """Make this the current run of the calling task (returns the contextvar token)."""
        return _current.set(self)


async def adispatch_custom_event(name: str, data: object) -> None:
    """Send a custom event from inside a run to its subscribers (``on_custom_event``).

    Args:
        name: the event's name (subscribers filter on it).
        data: any payload; it reaches subscribers as given.

    Raises:
        RuntimeError: when called outside a run.

    Example::

        async def slow(x):
            await dispatch_custom_event("progress", {"pct": 50})
            return x
    """
    scope = _current.get()
    if scope is None:
        raise RuntimeError(
            f"dispatch_custom_event({name!r}) was called outside a run; call it from code that a "
            "runnable is executing (a node, a lambda, a tool)"
        )
    await scope.custom(name, data)


def dispatch_custom_event(name: str, data: object) -> Any:
    """Dispatch a custom event: ``await`` it in async code; call it plainly from a sync function.

    Inside a trio task it returns the coroutine of :func:`adispatch_custom_event`. In a worker
    thread running a sync node function it delivers the event through the run's trio loop and
    returns ``None``.
    """
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return trio.from_thread.run(adispatch_custom_event, name, data)
    return adispatch_custom_event(name, data)
