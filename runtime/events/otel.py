"""OpenTelemetry traces of runs: one span per run and child run, built from lifecycle events.

A :class:`SpanRecorder` turns the events of a subscription into spans as they arrive: a run's
start opens its span (a child of its parent run's span), its end or failure closes it, at the
times the events carry. Needs the ``otel`` extra (``pip install 'rillet[otel]'``); OpenTelemetry
is imported only when a recorder is made. Spans follow the OpenTelemetry GenAI semantic
conventions where they fit:

=============  ===============================  ========  =========================================
run kind       span name                        kind      ``gen_ai.*`` attributes
=============  ===============================  ========  =========================================
root chain     ``invoke_workflow {name}``       INTERNAL  ``operation.name``, ``workflow.name``
chat_model     ``chat {model}``                 CLIENT    ``operation.name=chat``,
                                                          ``provider.name``, ``request.model``,
                                                          ``response.model``, ``response.id``,
                                                          ``response.finish_reasons``,
                                                          ``response.time_to_first_chunk``,
                                                          ``usage.input_tokens``,
                                                          ``usage.output_tokens``,
                                                          ``usage.cache_read.input_tokens``
llm            ``text_completion {model}``      CLIENT    as chat_model
embedding      ``embeddings {model}``           CLIENT    ``operation.name``, ``request.model``
retriever      ``retrieval {name}``             INTERNAL  ``operation.name=retrieval``
tool           ``execute_tool {name}``          INTERNAL  ``operation.name``, ``tool.name``,
                                                          ``tool.type``, ``tool.call.id``
anything else  ``{name}``                       INTERNAL  (none)
=============  ===============================  ========  =========================================

Every span also carries ``rillet.run.id``, ``rillet.run.name``, ``rillet.run.kind``,
``rillet.run.tags``, ``rillet.run.metadata.<key>`` and ``rillet.run.chunks``. A failed run's
span has status ERROR (``"Type: message"``), ``error.type`` and an ``exception`` event; custom
events become span events. Token counts come from the model's output message
(``usage_metadata``), else from the sum over its streamed chunks; they are never summed up the
tree, so a backend adding ``gen_ai.usage.*`` over a trace counts each call once. Successful
spans keep status UNSET, as the conventions ask. Message contents are not recorded.

>>> # provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(exporter))
>>> # async with open_span_recorder(tracer_provider=provider) as tracing:
>>> #     await chain.ainvoke(x, config={"callbacks": [tracing.bus]})
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from rillet.runtime.errors import MissingExtraError
from rillet.runtime.events.bus import EventBus, Subscription
from rillet.runtime.events.types import (
    ChunkEmitted,
    CustomEvent,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
)

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["SpanRecorder", "SpanRecording", "open_span_recorder"]

#: ``gen_ai.operation.name`` per run kind (a root chain is an ``invoke_workflow``).
OPERATIONS: Final = {"chat_model": "chat", "llm": "text_completion", "embedding": "embeddings",
                     "retriever": "retrieval", "tool": "execute_tool"}
_MODEL_KINDS: Final = frozenset({"chat_model", "llm", "embedding"})
_PREVIEW: Final = 256  # characters of a non-scalar metadata value kept as its JSON


def _otel() -> Any:
    """The ``opentelemetry.trace`` module, or a one-line hint naming the extra."""
    try:
        from opentelemetry import trace
    except ImportError:
        raise MissingExtraError(extra="otel", what="rillet's OpenTelemetry spans",
                                module="opentelemetry") from None
    return trace


@attrs.define
class _Open:
    """A span still open, with what its end needs from the events before it."""

    span: Span
    root: str
    kind: str
    started: float
    chunks: int = 0
    first_chunk: float | None = None
    usage: dict[str, int] = attrs.Factory(dict)
    last_chunk: Any = None


class SpanRecorder:
    """Turns lifecycle events into OpenTelemetry spans; see the module docstring.

    :meth:`record` never blocks, so it can sit behind any subscription, a lossy one included:
    a run whose start was dropped gets its span at its first event seen, and when a root run
    ends, any span of its tree still open (its end event was dropped) ends with it, marked
    ``rillet.run.incomplete``. At most ``max_open_spans`` are open at once (the oldest is ended
    the same way), so a lost end event never grows memory.

    Args:
        tracer_provider: where spans go; the global provider when ``None``.
        parent: the OpenTelemetry context root runs' spans are children of (default: none,
            each root run starts a trace).
        max_open_spans: the bound described above.

    Example::

        recorder = SpanRecorder(provider)
        with worker.subscribe(policy="drop_oldest", bound=1024) as sub:
            await recorder.consume(sub)          # until the worker shuts down

    Raises:
        MissingExtraError: OpenTelemetry is not installed (the ``otel`` extra).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None, *,
                 parent: Context | None = None, max_open_spans: int = 10_000) -> None:
        if max_open_spans < 1:
            raise ValueError(f"max_open_spans must be >= 1, got {max_open_spans!r}")
        self._trace = _otel()
        from opentelemetry.context import Context

        provider = tracer_provider or self._trace.get_tracer_provider()
        self._tracer = provider.get_tracer("rillet.runtime")
        self._parent = parent if parent is not None else Context()
        self._open: dict[str, _Open] = {}  # insertion order: the oldest open span first
        self.max_open_spans = max_open_spans
        self.recorded = 0  # events seen, for monitoring

    @property
    def open_spans(self) -> int:
        """How many spans are started and not yet ended."""
        return len(self._open)

    def record(self, event: Event) -> None:
        """Start, extend or end the span of ``event``'s run."""
        self.recorded += 1
        now = event.time or time.time()
        run = self._open.get(event.run_id)
        if run is None:  # its start, or it, is new (a lossy subscription may drop the start)
            run = self._start(event, now)
        if isinstance(event, ChunkEmitted):
            run.chunks += 1
            run.first_chunk = now if run.first_chunk is None else run.first_chunk
            chunk = event.data.get("chunk")
            _add_usage(run.usage, getattr(chunk, "usage_metadata", None))
            run.last_chunk = chunk
        elif isinstance(event, CustomEvent):
            run.span.add_event(event.name, {"rillet.payload": _preview(event.data.get("payload"))},
                               timestamp=_ns(now))
        elif isinstance(event, RunFinished):
            self._finish(event, run, now)
        elif isinstance(event, RunFailed):
            self._fail(event, run, now)

    async def consume(self, subscription: Subscription) -> None:
        """Record every event of ``subscription`` until it ends, then :meth:`close`."""
        try:
            with subscription:
                async for event in subscription:
                    self.record(event)
        finally:
            self.close()

    def close(self) -> None:
        """End every span still open (``rillet.run.incomplete``), children before parents."""
        now = time.time()
        for run_id in reversed(list(self._open)):
            self._end_incomplete(run_id, now)

    def _start(self, event: Event, now: float) -> _Open:
        trace = self._trace
        parent = next((self._open[p] for p in reversed(event.parent_ids) if p in self._open),
                      None)
        context = self._parent if parent is None else trace.set_span_in_context(parent.span)
        kind = event.kind
        operation = OPERATIONS.get(kind)
        if operation is None and kind == "chain" and not event.parent_ids:
            operation = "invoke_workflow"
        attributes = _run_attributes(event)
        if operation is not None:
            attributes["gen_ai.operation.name"] = operation
        model = event.metadata.get("ls_model_name")
        if kind in _MODEL_KINDS:
            if isinstance(model, str) and model:
                attributes["gen_ai.request.model"] = model
            provider = event.metadata.get("ls_provider")
            if isinstance(provider, str) and provider:
                attributes["gen_ai.provider.name"] = provider
        elif kind == "tool":
            attributes.update({"gen_ai.tool.name": event.name, "gen_ai.tool.type": "function"})
            call_id = _tool_call_id(event.data.get("input"))
            if call_id:
                attributes["gen_ai.tool.call.id"] = call_id
        elif operation == "invoke_workflow":
            attributes["gen_ai.workflow.name"] = event.name
        if not isinstance(event, RunStarted):
            attributes["rillet.run.start_missing"] = True
        if operation is None:
            name = event.name
        elif kind in _MODEL_KINDS and isinstance(model, str) and model:
            name = f"{operation} {model}"
        else:
            name = f"{operation} {event.name}"
        span_kind = trace.SpanKind.CLIENT if kind in _MODEL_KINDS else trace.SpanKind.INTERNAL
        span = self._tracer.start_span(name, context=context, kind=span_kind,
                                       attributes=attributes, start_time=_ns(now))
        root = event.parent_ids[0] if event.parent_ids else event.run_id
        if len(self._open) >= self.max_open_spans:
            self._end_incomplete(next(iter(self._open)), now)
        run = self._open[event.run_id] = _Open(span=span, root=root, kind=kind, started=now)
        return run

    def _finish(self, event: RunFinished, run: _Open, now: float) -> None:
        output = event.data.get("output", run.last_chunk)
        if run.kind in _MODEL_KINDS:
            run.span.set_attributes(_response_attributes(output, run))
        elif run.kind == "tool":
            # A tool called with a tool call reports the call's arguments as its input and
            # answers with a ToolMessage carrying the call's id.
            call_id = getattr(output, "tool_call_id", None)
            if isinstance(call_id, str) and call_id:
                run.span.set_attribute("gen_ai.tool.call.id", call_id)
        self._close(event.run_id, run, now)

    def _fail(self, event: RunFailed, run: _Open, now: float) -> None:
        trace = self._trace
        error = event.data.get("error")
        kind = getattr(error, "type", None) or type(error).__name__
        message = getattr(error, "message", None)
        message = str(error) if message is None else str(message)
        run.span.set_attribute("error.type", str(kind))
        run.span.add_event("exception", {"exception.type": str(kind), "exception.message": message},
                           timestamp=_ns(now))
        run.span.set_status(trace.Status(trace.StatusCode.ERROR, f"{kind}: {message}"))
        self._close(event.run_id, run, now)

    def _close(self, run_id: str, run: _Open, now: float) -> None:
        run.span.set_attribute("rillet.run.chunks", run.chunks)
        del self._open[run_id]
        if run.root == run_id:
            self._end_tree(run_id, now)  # children whose end events were lost end with the root
        run.span.end(end_time=_ns(now))

    def _end_tree(self, root: str, now: float) -> None:
        for run_id in [r for r, run in reversed(self._open.items()) if run.root == root]:
            self._end_incomplete(run_id, now)

    def _end_incomplete(self, run_id: str, now: float) -> None:
        run = self._open.pop(run_id)
        run.span.set_attributes({"rillet.run.incomplete": True, "rillet.run.chunks": run.chunks})
        run.span.end(end_time=_ns(max(now, run.started)))


@attrs.frozen
class SpanRecording:
    """What :func:`open_span_recorder` yields: the ``bus`` to pass in a run's callbacks, and
    the ``recorder`` turning its events into spans."""

    bus: EventBus
    recorder: SpanRecorder


@asynccontextmanager
async def open_span_recorder(
    tracer_provider: TracerProvider | None = None, *, parent: Context | None = None,
    bound: int = 256,
) -> AsyncIterator[SpanRecording]:
    """Record spans of every run given ``tracing.bus`` in its ``config["callbacks"]``.

    A task drains a lossless (``block``) subscription of ``bound`` events; leaving the block
    records what is buffered, then ends any span still open. Spans go to ``tracer_provider``'s
    processors: flush or shut the provider down to export them.

    Example::

        async with open_span_recorder(tracer_provider=provider) as tracing:
            await chain.ainvoke(x, config={"callbacks": [tracing.bus]})

    Raises:
        MissingExtraError: OpenTelemetry is not installed (the ``otel`` extra).
    """
    recorder = SpanRecorder(tracer_provider, parent=parent)
    bus = EventBus()
    subscription = bus.subscribe(policy="block", bound=bound)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.consume, subscription)
        try:
            yield SpanRecording(bus=bus, recorder=recorder)
        finally:
            bus.close()  # the consumer records what is buffered, then returns


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _run_attributes(event: Event) -> dict[str, Any]:
    attributes: dict[str, Any] = {"rillet.run.id": event.run_id, "rillet.run.name": event.name,
                                  "rillet.run.kind": event.kind,
                                  "rillet.run.tags": [str(tag) for tag in event.tags]}
    if event.parent_ids:
        attributes["rillet.run.parent_id"] = event.parent_ids[-1]
    if event.attempt != 1:
        attributes["rillet.run.attempt"] = event.attempt
    for key, value in event.metadata.items():
        attributes[f"rillet.run.metadata.{key}"] = (
            value if isinstance(value, (str, bool, int, float)) else _preview(value))
    return attributes


def _preview(value: object) -> str:
    """A short JSON text of ``value`` (``repr`` for what JSON cannot hold)."""
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _tool_call_id(value: object) -> str | None:
    if isinstance(value, Mapping) and value.get("type") == "tool_call":
        call_id = value.get("id")
        return str(call_id) if call_id else None
    return None


def _add_usage(total: dict[str, int], usage: object) -> None:
    if not isinstance(usage, Mapping):
        return
    for key in ("input_tokens", "output_tokens"):
        if isinstance(usage.get(key), int):
            total[key] = total.get(key, 0) + usage[key]
    details = usage.get("input_token_details")
    if isinstance(details, Mapping) and isinstance(details.get("cache_read"), int):
        total["cache_read"] = total.get("cache_read", 0) + details["cache_read"]


def _response_attributes(output: object, run: _Open) -> dict[str, Any]:
    """The ``gen_ai.response.*`` and ``gen_ai.usage.*`` attributes of a model's output."""
    attributes: dict[str, Any] = {}
    usage: dict[str, int] = {}
    _add_usage(usage, getattr(output, "usage_metadata", None))
    for key, value in (usage or run.usage).items():
        name = "cache_read.input_tokens" if key == "cache_read" else key
        attributes[f"gen_ai.usage.{name}"] = value
    metadata = getattr(output, "response_metadata", None)
    if isinstance(metadata, Mapping):
        model = metadata.get("model_name") or metadata.get("model")
        if isinstance(model, str) and model:
            attributes["gen_ai.response.model"] = model
        reason = metadata.get("finish_reason") or metadata.get("stop_reason")
        if isinstance(reason, str) and reason:
            attributes["gen_ai.response.finish_reasons"] = [reason]
    response_id = getattr(output, "id", None)
    if isinstance(response_id, str) and response_id:
        attributes["gen_ai.response.id"] = response_id
    if run.first_chunk is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = max(run.first_chunk - run.started, 0.0)
    return attributes
