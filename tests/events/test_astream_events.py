"""astream_events: LangChain-shaped dicts, ordering, filters, nesting, errors, custom events."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from rillet.graphs import RunnableLambda, RunnablePassthrough
from rillet.nodes import (
    AIMessageChunk,
    ChatPromptTemplate,
    HashingEmbeddings,
    InMemoryVectorStore,
    ScriptedChatModel,
    StrOutputParser,
)
from rillet.runtime import NodeInputError, dispatch_custom_event

KEYS_V2 = {"event", "name", "run_id", "parent_ids", "tags", "metadata", "data"}


def joke_chain(text: str = "Hi there") -> Any:
    prompt = ChatPromptTemplate.from_template("Tell me a joke about {topic}")
    return prompt | ScriptedChatModel([text]) | StrOutputParser()


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [event async for event in stream]


async def test_prompt_model_parser_has_langchains_start_and_end_events() -> None:
    """Each component starts and ends once, with the kinds, names and step tags LangChain uses."""
    events = await collect(joke_chain().astream_events({"topic": "cats"}, version="v2"))
    assert all(set(e) == KEYS_V2 for e in events)
    bounds = [(e["event"], e["name"], tuple(e["tags"])) for e in events if "stream" not in e["event"]]
    assert Counter(bounds) == Counter([
        ("on_chain_start", "RunnableSequence", ()),
        ("on_prompt_start", "ChatPromptTemplate", ("seq:step:1",)),
        ("on_prompt_end", "ChatPromptTemplate", ("seq:step:1",)),
        ("on_chat_model_start", "ScriptedChatModel", ("seq:step:2",)),
        ("on_chat_model_end", "ScriptedChatModel", ("seq:step:2",)),
        ("on_parser_start", "StrOutputParser", ("seq:step:3",)),
        ("on_parser_end", "StrOutputParser", ("seq:step:3",)),
        ("on_chain_end", "RunnableSequence", ()),
    ])
    # T tokens: 3 stream events per token plus 8 lifecycle events, as LangChain's 3T + 8.
    tokens = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert len(events) == 3 * len(tokens) + 8


async def test_each_run_starts_first_and_ends_last_and_children_carry_the_root_id() -> None:
    """Per run: start, then streams, then end; children name the root in parent_ids."""
    events = await collect(joke_chain("a b c d").astream_events({"topic": "x"}, version="v2"))
    assert events[0]["event"] == "on_chain_start" and events[-1]["event"] == "on_chain_end"
    root = events[0]["run_id"]
    by_run: dict[str, list[str]] = {}
    for e in events:
        by_run.setdefault(e["run_id"], []).append(e["event"].rsplit("_", 1)[1])
        if e["run_id"] != root:
            assert e["parent_ids"] == [root]
        else:
            assert e["parent_ids"] == []
    for phases in by_run.values():
        assert phases[0] == "start" and phases[-1] == "end"
        assert set(phases[1:-1]) <= {"stream"}


async def test_root_stream_chunks_equal_astream_output() -> None:
    """The root's on_chain_stream chunks are exactly what astream yields."""
    chain = joke_chain("Why did the parrot talk? Because it could.")
    streamed = [c async for c in chain.astream({"topic": "parrot"})]
    events = await collect(chain.astream_events({"topic": "parrot"}, version="v2"))
    root = events[0]["run_id"]
    chunks = [e["data"]["chunk"] for e in events
              if e["event"] == "on_chain_stream" and e["run_id"] == root]
    assert chunks == streamed
    assert events[-1]["data"] == {"output": "".join(streamed)}


async def test_data_shapes_follow_langchain() -> None:
    """Root start has the input, root end only the output, a parser starts lazily with {}."""
    events = await collect(joke_chain("Hi").astream_events({"topic": "cats"}, version="v2"))
    first = {e["event"]: e for e in reversed(events)}
    assert events[0]["data"] == {"input": {"topic": "cats"}}
    assert set(events[-1]["data"]) == {"output"}
    model_start = first["on_chat_model_start"]["data"]["input"]
    assert [m.content for m in model_start["messages"][0]] == ["Tell me a joke about cats"]
    assert first["on_parser_start"]["data"] == {}
    parser_end = [e for e in events if e["event"] == "on_parser_end"][0]["data"]
    assert parser_end["output"] == "Hi" and isinstance(parser_end["input"], AIMessageChunk)
    assert isinstance(first["on_chat_model_stream"]["data"]["chunk"], AIMessageChunk)


async def test_v1_reports_its_own_shapes() -> None:
    """v1: no parent ids, an LLMResult-like model end, no custom events."""
    events = await collect(joke_chain("Hi").astream_events({"topic": "cats"}, version="v1"))
    assert all(e["parent_ids"] == [] for e in events)
    end = [e for e in events if e["event"] == "on_chat_model_end"][0]
    assert end["data"]["output"]["generations"][0][0]["text"] == "Hi"


async def test_prompt_model_accepts_a_dict_and_model_alone_rejects_it_clearly() -> None:
    """prompt | model with a dict works; the model given the dict names itself in the error."""
    prompt = ChatPromptTemplate.from_template("Tell me a joke about {topic}")
    model = ScriptedChatModel(["ok"])
    events = await collect((prompt | model).astream_events({"topic": "x"}, version="v2"))
    assert events[-1]["event"] == "on_chain_end"
    with pytest.raises(NodeInputError, match=r"^node 'ScriptedChatModel' expected a str"):
        await collect(model.astream_events({"topic": "x"}, version="v2"))


async def test_filters_include_and_exclude() -> None:
    """include_* keep matches (OR), exclude_* drop them; tags match inherited tags."""
    chain = (ChatPromptTemplate.from_template("{q}")
             | ScriptedChatModel(["a b"]).with_config(tags=["model-tag"]) | StrOutputParser())
    only_model = await collect(chain.astream_events({"q": 1}, include_types=["chat_model"]))
    assert {e["name"] for e in only_model} == {"ScriptedChatModel"}
    assert [e["event"] for e in only_model][0] == "on_chat_model_start"
    none = await collect(chain.astream_events(
        {"q": 1}, include_tags=["model-tag"], exclude_types=["chat_model"]))
    assert none == []
    no_root = await collect(chain.astream_events({"q": 1}, exclude_names=["RunnableSequence"]))
    assert "RunnableSequence" not in {e["name"] for e in no_root} and no_root
    # No root-input injection into the first surviving event (LangChain's quirk, fixed).
    assert "input" not in only_model[1]["data"]


async def test_run_name_tags_and_metadata_propagate() -> None:
    """with_config names the run; tags and metadata reach its children."""
    inner = RunnableLambda(lambda x: x + 1, name="inc").with_config(tags=["inner"])
    outer = (RunnableLambda(lambda x: x, name="first") | inner).with_config(
        run_name="my_chain", tags=["outer"], metadata={"user": "u1"})
    events = await collect(outer.astream_events(1, config={"tags": ["call"]}))
    names = {e["name"] for e in events}
    assert {"my_chain", "first", "inc"} <= names
    inc = [e for e in events if e["name"] == "inc"][0]
    assert inc["tags"][0] == "seq:step:2"
    assert {"inner", "outer", "call"} <= set(inc["tags"])
    assert inc["metadata"]["user"] == "u1"


async def test_retrieval_chain_with_run_name_docs() -> None:
    """The guide's retrieval chain: the retriever run is named Docs; the answer still streams."""
    store = InMemoryVectorStore.from_texts(
        ["harrison worked at kensho", "bears like honey"], HashingEmbeddings())
    retriever = store.as_retriever(k=1)
    prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
    chain = ({"context": retriever.with_config(run_name="Docs"),
              "question": RunnablePassthrough()}
             | prompt | ScriptedChatModel(["Harrison worked at Kensho."]) | StrOutputParser())
    events = await collect(chain.astream_events("where did harrison work?", version="v2"))
    docs = [e for e in events if e["name"] == "Docs"]
    assert [e["event"] for e in docs] == ["on_retriever_start", "on_retriever_end"]
    assert docs[0]["data"]["input"] == {"query": "where did harrison work?"}
    assert docs[1]["data"]["output"][0].page_content == "harrison worked at kensho"
    tokens = [e for e in events if e["event"] == "on_parser_stream"]
    assert len(tokens) == 5


async def test_failing_node_emits_error_event_before_the_original_exception() -> None:
    """on_chain_error carries the exception; the caller gets the original ValueError."""
    def boom(x: Any) -> Any:
        raise ValueError("boom")

    chain = RunnableLambda(lambda x: x, name="ok") | RunnableLambda(boom, name="boom")
    seen: list[dict[str, Any]] = []
    with pytest.raises(ValueError, match="^boom\n\\(raised in rillet node .boom.") as info:
        async for event in chain.astream_events(1, version="v2"):
            seen.append(event)
    errors = [e for e in seen if e["event"].endswith("_error")]
    assert [e["name"] for e in errors] == ["boom", "RunnableSequence"]
    assert errors[0]["data"]["error"] is info.value
    assert info.value.rillet_node == "boom"  # type: ignore[attr-defined]
    assert not any(e["event"] == "on_chain_end" and e["name"] == "boom" for e in seen)


async def test_custom_events_async_and_sync_reach_subscribers() -> None:
    """dispatch_custom_event from async and sync (threaded) functions becomes on_custom_event."""
    async def slow(x: Any) -> Any:
        await dispatch_custom_event("progress", {"pct": 50})
        return x

    def sync_step(x: Any) -> Any:
        dispatch_custom_event("sync_progress", 7)
        return x

    chain = RunnableLambda(slow, name="slow") | RunnableLambda(sync_step, name="sync_step")
    events = await collect(chain.astream_events("x", version="v2"))
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [(e["name"], e["data"]) for e in custom] == [("progress", {"pct": 50}),
                                                         ("sync_progress", 7)]
    slow_run = [e for e in events if e["name"] == "slow"][0]["run_id"]
    assert custom[0]["run_id"] == slow_run
    only = await collect(chain.astream_events("x", include_types=["progress"]))
    assert [e["name"] for e in only] == ["progress"]
    v1 = await collect(chain.astream_events("x", version="v1"))
    assert not [e for e in v1 if e["event"] == "on_custom_event"]


async def test_nested_runs_are_children_without_passing_config() -> None:
    """A chain invoked inside a lambda appears in the parent's events with the right parents."""
    model = ScriptedChatModel(["nested answer"])

    async def call_model(x: Any) -> Any:
        return await model.ainvoke(x)

    chain = RunnableLambda(lambda x: x, name="prep") | RunnableLambda(call_model, name="call")
    events = await collect(chain.astream_events("hi", version="v2"))
    root = events[0]["run_id"]
    call = [e for e in events if e["name"] == "call"][0]["run_id"]
    model_events = [e for e in events if e["name"] == "ScriptedChatModel"]
    assert model_events[0]["event"] == "on_chat_model_start"
    assert any(e["event"] == "on_chat_model_stream" for e in model_events)
    assert all(e["parent_ids"] == [root, call] for e in model_events)


async def test_cancelling_the_parent_cancels_a_nested_run() -> None:
    """Leaving astream_events early stops a nested chain inside a node."""
    finished = trio.Event()
    produced: list[int] = []

    async def forever(chunks: Any) -> Any:
        try:
            async for _ in chunks:
                for i in range(10_000):
                    produced.append(i)
                    yield i
        finally:
            finished.set()

    async def call_inner(x: Any) -> Any:
        out = []
        async for c in RunnableLambda(lambda y: y, name="pre").pipe(forever).astream(x):
            out.append(c)
        return out

    outer = RunnableLambda(call_inner, name="outer")
    stream = outer.astream_events(1, version="v2")
    async for event in stream:
        if event["name"] == "forever" and event["event"] == "on_chain_stream":
            break
    await stream.aclose()
    with trio.fail_after(5):
        await finished.wait()
    assert len(produced) < 10_000
