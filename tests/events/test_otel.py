"""OpenTelemetry spans of runs: the tree, the GenAI attributes, errors, and lossy subscriptions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

pytest.importorskip("opentelemetry.sdk", reason="needs the otel extra: pip install 'rillet[otel]'")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from rillet.graphs import RunnableLambda
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser, tool
from rillet.runtime.errors import MissingExtraError
from rillet.runtime.events import (
    RunFinished,
    RunStarted,
    SpanRecorder,
    open_span_recorder,
)


@tool
def shout(text: str) -> str:
    """Shout the text back."""
    return text.upper() + "!"


@tool
def explode(text: str) -> str:
    """Fail on purpose."""
    raise ValueError(f"cannot shout {text!r}")


def joke_chain(last: Any = shout) -> Any:
    prompt = ChatPromptTemplate.from_template("tell me a joke about {topic}")
    model = ScriptedChatModel(responses=["Why did the parrot talk"], stream_usage=True)
    return (prompt | model | StrOutputParser() | last).with_config(
        run_name="joke_chain", tags=["demo"], metadata={"user": "ann", "attempts": 3})


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider
    tracer_provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]
    return named


async def test_nested_run_makes_a_tree_of_spans_with_genai_attributes(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """chain -> prompt, model, parser, tool: one span each, children of the chain's span."""
    async with open_span_recorder(tracer_provider=provider) as tracing:
        out = await joke_chain().ainvoke({"topic": "parrots"},
                                         config={"callbacks": [tracing.bus]})
    assert out == "WHY DID THE PARROT TALK!"
    spans = by_name(exporter.get_finished_spans())
    assert sorted(spans) == ["ChatPromptTemplate", "StrOutputParser", "chat scripted",
                             "execute_tool shout", "invoke_workflow joke_chain"]
    root = spans["invoke_workflow joke_chain"]
    assert root.parent is None
    for name in ("ChatPromptTemplate", "chat scripted", "StrOutputParser", "execute_tool shout"):
        child = spans[name]
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "joke_chain",
        "rillet.run.id": root.attributes["rillet.run.id"], "rillet.run.name": "joke_chain",
        "rillet.run.kind": "chain", "rillet.run.tags": ("demo",),
        "rillet.run.metadata.user": "ann", "rillet.run.metadata.attempts": 3,
        "rillet.run.chunks": 0,  # invoked: the root reports no stream of its own (LangChain's rule)
    }
    model = spans["chat scripted"]
    assert model.kind is SpanKind.CLIENT and root.kind is SpanKind.INTERNAL
    attributes = dict(model.attributes or {})
    assert {key: attributes[key] for key in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "rillet.run.chunks",
        "rillet.run.kind", "rillet.run.metadata.user")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "scripted", "gen_ai.usage.input_tokens": 6,
        "gen_ai.usage.output_tokens": 5, "rillet.run.chunks": 6, "rillet.run.kind": "chat_model",
        "rillet.run.metadata.user": "ann"}
    assert attributes["gen_ai.response.id"].endswith(model.attributes["rillet.run.id"])
    assert attributes["gen_ai.response.time_to_first_chunk"] >= 0
    assert "demo" in attributes["rillet.run.tags"] and "seq:step:2" in attributes["rillet.run.tags"]
    tool_attributes = dict(spans["execute_tool shout"].attributes or {})
    assert (tool_attributes["gen_ai.operation.name"], tool_attributes["gen_ai.tool.name"],
            tool_attributes["gen_ai.tool.type"]) == ("execute_tool", "shout", "function")
    assert "gen_ai.operation.name" not in (spans["StrOutputParser"].attributes or {})
    for span in spans.values():
        assert span.status.status_code is StatusCode.UNSET


async def test_a_failing_tool_marks_its_span_and_every_enclosing_span_as_errors(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Error status with the type and message, ``error.type`` and an ``exception`` event."""
    async with open_span_recorder(tracer_provider=provider) as tracing:
        with pytest.raises(ValueError, match="cannot shout"):
            await joke_chain(explode).ainvoke({"topic": "x"},
                                              config={"callbacks": [tracing.bus]})
    spans = by_name(exporter.get_finished_spans())
    for name in ("execute_tool explode", "invoke_workflow joke_chain"):
        span = spans[name]
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: cannot shout 'Why did the parrot talk'"
        assert (span.attributes or {})["error.type"] == "ValueError"
        assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
            ("exception", {"exception.type": "ValueError",
                           "exception.message": "cannot shout 'Why did the parrot talk'"})]
    assert spans["chat scripted"].status.status_code is StatusCode.UNSET


async def test_a_tool_call_input_names_its_call_id(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with open_span_recorder(tracer_provider=provider) as tracing:
        call = {"name": "shout", "args": {"text": "hi"}, "id": "call_7", "type": "tool_call"}
        await shout.ainvoke(call, config={"callbacks": [tracing.bus]})
    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool shout" and span.parent is None
    assert (span.attributes or {})["gen_ai.tool.call.id"] == "call_7"


async def test_custom_events_become_span_events(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from rillet.runtime import adispatch_custom_event

    async def step(x: int) -> int:
        await adispatch_custom_event("progress", {"pct": 50})
        return x + 1

    async with open_span_recorder(tracer_provider=provider) as tracing:
        await RunnableLambda(step).ainvoke(1, config={"callbacks": [tracing.bus]})
    (span,) = exporter.get_finished_spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("progress", {"rillet.payload": '{"pct": 50}'})]


def event(cls: type[Any], run_id: str, parents: tuple[str, ...] = (), *, at: float,
          kind: str = "parser") -> Any:
    return cls(run_id=run_id, name=run_id, kind=kind, seq=0, parent_ids=parents, time=at,
               data={"output": None} if cls is RunFinished else {})


def test_lost_end_events_end_with_their_root_and_spans_take_event_times(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A lossy subscription dropped a child's end: the child ends when its root does."""
    recorder = SpanRecorder(provider)
    recorder.record(event(RunStarted, "root", at=100.0))
    recorder.record(event(RunStarted, "child", ("root",), at=100.5))
    recorder.record(event(RunFinished, "orphan", ("root",), at=101.0))  # its start was lost
    assert recorder.open_spans == 2
    recorder.record(event(RunFinished, "root", at=102.0))
    assert recorder.open_spans == 0
    spans = by_name(exporter.get_finished_spans())
    assert [s.name for s in exporter.get_finished_spans()] == ["orphan", "child", "root"]
    assert (spans["child"].start_time, spans["child"].end_time) == (100_500_000_000,
                                                                    102_000_000_000)
    assert (spans["child"].attributes or {})["rillet.run.incomplete"] is True
    assert (spans["orphan"].attributes or {})["rillet.run.start_missing"] is True
    assert "rillet.run.incomplete" not in (spans["root"].attributes or {})


def test_open_spans_are_bounded(provider: TracerProvider,
                                exporter: InMemorySpanExporter) -> None:
    """Runs whose ends never arrive cost at most ``max_open_spans`` open spans."""
    recorder = SpanRecorder(provider, max_open_spans=3)
    for i in range(10):
        recorder.record(event(RunStarted, f"r{i}", at=float(i)))
    assert recorder.open_spans == 3
    assert [s.name for s in exporter.get_finished_spans()] == [f"r{i}" for i in range(7)]
    recorder.close()
    assert recorder.open_spans == 0 and len(exporter.get_finished_spans()) == 10
    with pytest.raises(ValueError, match="max_open_spans must be >= 1, got 0"):
        SpanRecorder(provider, max_open_spans=0)


async def test_a_worker_subscription_feeds_a_recorder(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from rillet.runtime import Worker

    recorder = SpanRecorder(provider)
    async with Worker() as worker, trio.open_nursery() as nursery:
        nursery.start_soon(recorder.consume, worker.subscribe(policy="block", bound=64))
        run = await worker.submit(joke_chain(), {"topic": "x"})
        assert await run.result() == "WHY DID THE PARROT TALK!"
        await worker.shutdown()
    assert len(exporter.get_finished_spans()) == 5


def test_without_opentelemetry_the_hint_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingExtraError) as raised:
        SpanRecorder()
    assert str(raised.value) == ("rillet's OpenTelemetry spans needs the otel extra: "
                                 "pip install 'rillet[otel]'")
