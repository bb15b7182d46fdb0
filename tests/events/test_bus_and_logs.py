"""The event bus (policies, no-subscriber runs), event logs and replay, run logs, structlog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from rillet.graphs import RunnableGenerator, RunnableLambda
from rillet.nodes import AIMessageChunk, ChatPromptTemplate, ScriptedChatModel, StrOutputParser
from rillet.runtime import (
    ChunkEmitted,
    CustomEvent,
    EventBus,
    RunFailed,
    RunFinished,
    RunStarted,
    TruncatedLogError,
    WireFormatError,
    configure_logging,
)
from rillet.runtime.events.eventlog import (
    decode_event,
    encode_event,
    open_event_log,
    read_event_log,
    replay_event_log,
)
from rillet.runtime.events.runlog import RunLog, RunLogPatch
from rillet.runtime.wire.codec import ErrorInfo


def joke_chain(text: str = "Why did the parrot talk") -> Any:
    prompt = ChatPromptTemplate.from_template("Tell me a joke about {topic}")
    return prompt | ScriptedChatModel([text]) | StrOutputParser()


def counting_chain(n: int, produced: list[int]) -> Any:
    async def source(chunks: Any) -> Any:
        async for _ in chunks:
            for i in range(n):
                produced.append(i)
                yield i

    return RunnableGenerator(source) | (lambda total: total)


async def test_slow_block_subscriber_parks_the_run(autojump_clock: trio.testing.MockClock) -> None:
    """A full `block` subscriber parks the producers instead of buffering without limit."""
    produced: list[int] = []
    bus = EventBus()
    sub = bus.subscribe(policy="block", bound=4)
    chain = RunnableGenerator(lambda_source(produced))

    async def consume() -> None:  # streamed: an invoked root reports no stream events
        async for _ in chain.astream(None, {"callbacks": [bus]}):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        parked_at = len(produced)
        assert parked_at < 50  # stuck behind 4 buffered events + small edges, not 10,000 items
        with sub:
            async for event in sub:
                await trio.sleep(1)  # a slow reader
                if isinstance(event, RunFinished) and not event.parent_ids:
                    break  # a caller's bus outlives the run: stop at the root's end
    assert len(produced) == 10_000
    assert sub.dropped == 0


def lambda_source(produced: list[int]) -> Any:
    async def source(chunks: Any) -> Any:
        async for _ in chunks:
            for i in range(10_000):
                produced.append(i)
                yield i

    return source


async def test_drop_oldest_subscriber_never_slows_the_run() -> None:
    """A `drop_oldest` subscriber that never reads does not stop the run; drops are counted."""
    produced: list[int] = []
    bus = EventBus()
    sub = bus.subscribe(policy="drop_oldest", bound=8)
    async for _ in RunnableGenerator(lambda_source(produced)).astream(None, {"callbacks": [bus]}):
        pass
    assert len(produced) == 10_000
    assert sub.dropped > 10_000 - 8
    kept = []
    while True:
        try:
            kept.append(sub.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    assert len(kept) == 8 and isinstance(kept[-1], RunFinished)  # the newest ones survive
    seqs = [e.seq for e in kept]
    assert seqs == sorted(seqs)


async def test_drop_newest_keeps_the_first_events() -> None:
    """A `drop_newest` subscriber keeps what it buffered first and counts the rest as dropped."""
    bus = EventBus()
    sub = bus.subscribe(policy="drop_newest", bound=3)
    await joke_chain().ainvoke({"topic": "x"}, {"callbacks": [bus]})
    first = [sub.receive_nowait() for _ in range(3)]
    assert isinstance(first[0], RunStarted) and first[0].seq == 0
    assert sub.statistics().dropped == sub.dropped > 0


async def test_seq_increases_by_one_per_event_across_child_runs() -> None:
    """Every event of a run (its children's too) gets the next seq number."""
    bus = EventBus()
    sub = bus.subscribe(bound=1000)
    await joke_chain().ainvoke({"topic": "x"}, {"callbacks": [bus]})
    events = buffered(sub)
    assert [e.seq for e in events] == list(range(len(events)))


def buffered(sub: Any) -> list[Any]:
    """What a subscription holds now (it is not waited for)."""
    events = []
    while True:
        try:
            events.append(sub.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return events


async def test_a_run_with_no_subscriber_builds_no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """No subscriber: not a single event object is constructed."""
    built: list[type[Any]] = []

    def counting(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        built.append(cls)
        return trusted(cls, *args, **kwargs)

    trusted = RunStarted._trusted.__func__  # type: ignore[attr-defined]
    # Scopes build every event through this one constructor.
    for cls in (RunStarted, ChunkEmitted, RunFinished):
        monkeypatch.setattr(cls, "_trusted", classmethod(counting))
    assert await joke_chain("a b c").ainvoke({"topic": "x"}) == "a b c"
    assert built == []
    await joke_chain("a b c").ainvoke({"topic": "x"}, {"callbacks": [subscribed_bus()]})
    assert {RunStarted, ChunkEmitted, RunFinished} <= set(built)  # with a subscriber: built


def subscribed_bus() -> EventBus:
    bus = EventBus()
    bus.subscribe(policy="drop_newest", bound=1)
    return bus


async def test_event_log_round_trip_and_replay(tmp_path: Path) -> None:
    """A run recorded while it streams replays as the dicts astream_events yields."""
    chain = joke_chain("Why did the parrot talk")
    path = tmp_path / "run.rlog"
    async with open_event_log(path) as log:
        streamed = [c async for c in chain.astream({"topic": "x"}, {"callbacks": [log.bus]})]
        assert "".join(streamed) == "Why did the parrot talk"
    live = [e async for e in chain.astream_events({"topic": "x"}, version="v2")]
    replayed = list(replay_event_log(path))
    assert [(e["event"], e["name"], e["tags"]) for e in replayed] == [
        (e["event"], e["name"], e["tags"]) for e in live]
    chunks = [e["data"]["chunk"] for e in replayed if e["event"] == "on_chat_model_stream"]
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert replayed[-1]["data"] == {"output": "Why did the parrot talk"}


async def test_an_invoked_run_records_no_stream_events_of_its_own(tmp_path: Path) -> None:
    """ainvoke with a bus: the root reports start and end only, as LangChain's invoke does."""
    bus = EventBus()
    sub = bus.subscribe(bound=1000)
    await joke_chain("a b").ainvoke({"topic": "x"}, {"callbacks": [bus]})
    events = buffered(sub)
    root = events[0].run_id
    assert [type(e).__name__ for e in events if e.run_id == root] == ["RunStarted",
                                                                      "RunFinished"]
    assert any(isinstance(e, ChunkEmitted) and e.kind == "chat_model" for e in events)


async def test_failed_run_logs_its_error_as_error_info(tmp_path: Path) -> None:
    """The exception of a RunFailed event travels as ErrorInfo (type and message)."""
    def boom(x: Any) -> Any:
        raise KeyError("missing")

    path = tmp_path / "fail.rlog"
    with pytest.raises(KeyError):
        async with open_event_log(path) as log:
            await RunnableLambda(boom).ainvoke(1, {"callbacks": [log.bus]})
    failed = [e for e in read_event_log(path) if isinstance(e, RunFailed)]
    assert failed[0].data["error"] == ErrorInfo(type="KeyError", message="'missing'")


async def test_truncated_log_names_the_offset_and_keeps_complete_events(tmp_path: Path) -> None:
    """Cutting a log mid-record gives TruncatedLogError with the offset and earlier events."""
    path = tmp_path / "run.rlog"
    async with open_event_log(path) as log:
        await joke_chain().ainvoke({"topic": "x"}, {"callbacks": [log.bus]})
    data = path.read_bytes()
    whole = read_event_log(data)
    cut = data[: len(data) - 5]
    with pytest.raises(TruncatedLogError, match=r"byte \d+") as info:
        read_event_log(cut)
    assert info.value.offset < len(cut)
    assert info.value.events == whole[: len(info.value.events)]
    assert len(info.value.events) == len(whole) - 1


def test_unknown_event_type_is_a_wire_format_error() -> None:
    """Decoding an unknown tag names it and lists the known ones."""
    with pytest.raises(WireFormatError, match=r"unknown event type 'Foo'; expected one of \["):
        decode_event({"type": "Foo"})


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    cls=st.sampled_from([RunStarted, ChunkEmitted, RunFinished, RunFailed, CustomEvent]),
    value=_values,
    seq=st.integers(min_value=0, max_value=2**40),
    tags=st.lists(st.text(max_size=5), max_size=3),
    kind=st.sampled_from(["chain", "chat_model", "parser", "prompt", "retriever", "tool"]),
)
def test_every_event_type_round_trips_through_msgpack(
    cls: Any, value: Any, seq: int, tags: list[str], kind: str
) -> None:
    """encode_event/decode_event is exact for every event type and any plain payload."""
    from rillet.runtime.wire.codec import packb, unpackb

    data = {"error": ErrorInfo(type="E", message="m")} if cls is RunFailed else {"x": value}
    event = cls(run_id="r", name="n", kind=kind, seq=seq, parent_ids=("p",), tags=tags,
                metadata={"m": value}, data=data, time=1.5)
    assert decode_event(unpackb(packb(encode_event(event)))) == event


async def test_astream_log_patches_sum_to_the_final_state() -> None:
    """Patches add up to a RunLog with streamed output, final output and per-run logs."""
    chain = joke_chain("Why did")
    patches = [p async for p in chain.astream_log({"topic": "x"})]
    assert all(isinstance(p, RunLogPatch) for p in patches)
    assert patches[0].ops[0]["op"] == "replace" and patches[0].ops[0]["path"] == ""
    total = patches[0]
    for patch in patches[1:]:
        total = total + patch
    assert isinstance(total, RunLog)
    state = total.state
    assert state["streamed_output"] == ["Why", " did"]
    assert state["final_output"] == "Why did"
    assert list(state["logs"]) == ["ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser"]
    model = state["logs"]["ScriptedChatModel"]
    assert model["type"] == "llm" and model["streamed_output_str"] == ["Why", " did"]
    assert model["end_time"] is not None
    assert state["logs"]["StrOutputParser"]["final_output"] == {"output": "Why did"}


async def test_astream_log_filters_and_cumulative_mode() -> None:
    """include_types selects sub-runs; diff=False yields cumulative RunLogs; repeats get :2."""
    chain = joke_chain("a b")
    logs = [p async for p in chain.astream_log({"topic": "x"}, diff=False,
                                              include_types=["parser"])]
    assert all(isinstance(p, RunLog) for p in logs)
    assert list(logs[-1].state["logs"]) == ["StrOutputParser"]
    assert logs[-1].state["final_output"] == "a b"
    twice = RunLambdaTwice()
    final = None
    async for patch in twice.astream_log(1):
        final = patch if final is None else final + patch
    assert final is not None and list(final.state["logs"]) == ["inc", "inc:2"]


def RunLambdaTwice() -> Any:  # noqa: N802 - a factory named for what it builds
    inc = RunnableLambda(lambda x: x + 1, name="inc")
    return inc | inc


async def test_structlog_logs_one_line_per_lifecycle_event() -> None:
    """With logging on: run_started/run_finished lines per run, none per chunk, ids bound."""
    configure_logging(True)
    try:
        with structlog.testing.capture_logs() as logs:
            await joke_chain("a b c d e f").ainvoke({"topic": "x"})
    finally:
        configure_logging(False)
    names = [line["event"] for line in logs]
    assert names.count("run_started") == 4 and names.count("run_finished") == 4
    assert set(names) == {"run_started", "run_finished"}
    assert {line["node"] for line in logs} == {
        "RunnableSequence", "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser"}
    assert all({"run_id", "run_name", "kind"} <= set(line) for line in logs)
    with structlog.testing.capture_logs() as quiet:
        await joke_chain().ainvoke({"topic": "x"})
    assert quiet == []  # quiet by default


async def test_structlog_logs_failures() -> None:
    """A failing node logs run_failed for itself and its enclosing runs."""
    def boom(x: Any) -> Any:
        raise ValueError("no")

    configure_logging(True)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(ValueError):
            await (RunnableLambda(lambda x: x) | RunnableLambda(boom, name="boom")).ainvoke(1)
    finally:
        configure_logging(False)
    failed = [line["node"] for line in logs if line["event"] == "run_failed"]
    assert failed == ["boom", "RunnableSequence"]


async def test_filtered_astream_events_builds_only_the_events_it_can_yield(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With include_types=["chat_model"], runs no filter can accept build no events at all."""
    built: list[str] = []
    trusted = RunStarted._trusted.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        event = trusted(cls, *args, **kwargs)
        built.append(event.kind)
        return event

    for cls in (RunStarted, ChunkEmitted, RunFinished):
        monkeypatch.setattr(cls, "_trusted", classmethod(counting))
    events = [e async for e in joke_chain("a b c").astream_events(
        {"topic": "x"}, include_types=["chat_model"])]
    assert {e["name"] for e in events} == {"ScriptedChatModel"}
    assert set(built) == {"chat_model"} and len(built) == len(events)
