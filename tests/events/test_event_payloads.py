"""Start and end payloads of astream_events v1 and v2, for roots and nested runs of every kind.

Each expected table below was recorded from langchain-core 1.8.1 (and checked on 1.8.3) on the
same components: ``GenericFakeChatModel`` for the model, a one-document retriever, ``@tool``
functions, lambdas. Stream events are left out (other tests cover them); each row is
``(event, depth, data)`` where ``depth`` is ``len(parent_ids)`` in v2 and data values are
compared by a short description: messages by class and text, documents by their content.
"""

from __future__ import annotations

from typing import Any

import pytest

from rillet.graphs import RunnableLambda, RunnableParallel, RunnablePassthrough
from rillet.nodes import (
    ChatPromptTemplate,
    HashingEmbeddings,
    InMemoryVectorStore,
    ScriptedChatModel,
    StrOutputParser,
    tool,
)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def echo(x: str) -> str:
    """Echo the text."""
    return x


@tool
def bad(x: str) -> str:
    """Always fails."""
    raise ValueError("boom")


@tool
async def shout(text: str) -> str:
    """Shout, through a chain invoked inside the tool."""
    return await (RunnableLambda(lambda s: s.upper()) | StrOutputParser()).ainvoke(text)


def model() -> Any:
    return ScriptedChatModel(responses=["Hi there"])


def retriever() -> Any:
    return InMemoryVectorStore.from_texts(["d:cats"], HashingEmbeddings()).as_retriever(k=1)


async def nested_model(x: str) -> Any:
    return await model().ainvoke(x)


async def nested_chain(x: str) -> Any:
    return await (RunnableLambda(lambda s: s.upper()) | StrOutputParser()).ainvoke(x)


def described(value: Any) -> Any:
    """Values as the tables spell them: ``AIMessage:Hi there``, ``[Document:d:cats]``."""
    if isinstance(value, dict):
        return {key: described(item) for key, item in value.items()}
    if isinstance(value, list):
        return [described(item) for item in value]
    if hasattr(value, "page_content"):
        return f"Document:{value.page_content}"
    if hasattr(value, "to_messages") and not hasattr(value, "content"):
        return f"{type(value).__name__}:{value.to_string()}"
    if hasattr(value, "content") and hasattr(value, "type"):
        return f"{type(value).__name__}:{value.content}"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}:{value}"
    return value


async def bounds(runnable: Any, value: Any, version: str) -> list[tuple[str, int, Any]]:
    rows = []
    try:
        async for ev in runnable.astream_events(value, version=version):
            if not ev["event"].endswith("_stream"):
                rows.append((ev["event"], len(ev["parent_ids"]), described(ev["data"])))
    except ValueError:
        pass  # the failing cases: the error is the expected end of the stream
    return rows


HUMAN_HELLO = {"messages": [["HumanMessage:hello"]]}
LLM_RESULT = {"generations": [[{"text": "Hi there", "generation_info": None,
                                "type": "ChatGeneration", "message": "AIMessage:Hi there"}]],
              "llm_output": None, "run": None, "type": "LLMResult"}

# (case, runnable factory, input, v2 rows); v1 rows are derived below where they only differ
# in depth, and spelled out where LangChain's v1 reshapes the payload.
ROOTS: list[tuple[str, Any, Any, list[tuple[str, int, Any]]]] = [
    ("chat model", model, "hello", [
        ("on_chat_model_start", 0, {"input": "hello"}),
        ("on_chat_model_end", 0, {"output": "AIMessageChunk:Hi there"})]),
    ("prompt", lambda: ChatPromptTemplate.from_template("joke about {topic}"), {"topic": "cats"}, [
        ("on_prompt_start", 0, {"input": {"topic": "cats"}}),
        ("on_prompt_end", 0, {"output": "ChatPromptValue:Human: joke about cats"})]),
    ("parser", StrOutputParser, "hello", [
        ("on_parser_start", 0, {"input": "hello"}),
        ("on_parser_end", 0, {"output": "hello"})]),
    ("retriever", retriever, "cats", [
        ("on_retriever_start", 0, {"input": "cats"}),
        ("on_retriever_end", 0, {"output": ["Document:d:cats"]})]),
    ("tool with a dict", lambda: add, {"a": 1, "b": 2}, [
        ("on_tool_start", 0, {"input": {"a": 1, "b": 2}}),
        ("on_tool_end", 0, {"output": 3})]),
    ("tool with a str", lambda: echo, "hi", [
        ("on_tool_start", 0, {"input": "hi"}),
        ("on_tool_end", 0, {"output": "hi"})]),
    ("lambda", lambda: RunnableLambda(lambda x: x + "!"), "hi", [
        ("on_chain_start", 0, {"input": "hi"}),
        ("on_chain_end", 0, {"output": "hi!"})]),
]


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize(("case", "factory", "value", "expected"), ROOTS,
                         ids=[row[0] for row in ROOTS])
async def test_a_root_starts_with_the_input_as_passed_and_ends_with_its_output(
    case: str, factory: Any, value: Any, expected: list[Any], version: str
) -> None:
    """At the root every kind starts with the caller's input and ends with the output only."""
    assert await bounds(factory(), value, version) == expected


async def test_a_root_chat_model_starts_with_the_string_it_was_given() -> None:
    """The issue's case: model.astream_events("hello", version="v1") starts with 'hello'."""
    events = [ev async for ev in model().astream_events("hello", version="v1")]
    assert events[0]["event"] == "on_chat_model_start"
    assert events[0]["data"] == {"input": "hello"}


SEQUENCE_V2 = [
    ("on_chain_start", 0, {"input": {"topic": "cats"}}),
    ("on_prompt_start", 1, {"input": {"topic": "cats"}}),
    ("on_prompt_end", 1, {"output": "ChatPromptValue:Human: joke about cats",
                          "input": {"topic": "cats"}}),
    ("on_chat_model_start", 1, {"input": {"messages": [["HumanMessage:joke about cats"]]}}),
    ("on_parser_start", 1, {}),
    ("on_chat_model_end", 1, {"output": "AIMessageChunk:Hi there",
                              "input": {"messages": [["HumanMessage:joke about cats"]]}}),
    ("on_parser_end", 1, {"output": "Hi there", "input": "AIMessageChunk:Hi there"}),
    ("on_chain_end", 0, {"output": "Hi there"}),
]


def in_order_per_run(rows: list[Any]) -> list[Any]:
    """LangChain ends the model before the parser; rillet's parser may end first. Compare the
    payloads, and each run's own start-before-end order, not the interleaving of runs."""
    return sorted(rows, key=lambda row: (row[0].rsplit("_", 1)[0], row[0].endswith("_end")))


async def test_a_nested_chat_model_and_parser_show_their_kinds_inputs_in_v2() -> None:
    """Inside prompt | model | parser: messages for the model, a lazy start for the parser."""
    chain = ChatPromptTemplate.from_template("joke about {topic}") | model() | StrOutputParser()
    rows = await bounds(chain, {"topic": "cats"}, "v2")
    assert in_order_per_run(rows) == in_order_per_run(SEQUENCE_V2)


async def test_v1_reports_a_nested_chat_model_end_as_an_llm_result() -> None:
    """v1: same payloads with depth 0 and input before output; the model ends as an LLMResult."""
    chain = ChatPromptTemplate.from_template("joke about {topic}") | model() | StrOutputParser()
    rows = await bounds(chain, {"topic": "cats"}, "v1")
    end = next(data for event, _, data in rows if event == "on_chat_model_end")
    assert list(end) == ["input", "output"]
    assert end["output"]["type"] == "LLMResult"
    generation = end["output"]["generations"][0][0]
    assert generation["type"] == "ChatGenerationChunk"
    assert generation["message"] == "AIMessageChunk:Hi there"
    assert all(depth == 0 for _, depth, _ in rows)


async def test_nested_retriever_and_tool_payloads() -> None:
    """A retriever in a chain starts with {'query': q}; v1 ends it with {'documents': [...]};
    a tool shows its arguments at start and end in v1 and v2; a lambda step starts lazily."""
    chain = retriever() | RunnableLambda(lambda docs: {"a": len(docs), "b": 1}) | add
    v2 = await bounds(chain, "cats", "v2")
    assert v2 == [
        ("on_chain_start", 0, {"input": "cats"}),
        ("on_retriever_start", 1, {"input": {"query": "cats"}}),
        ("on_retriever_end", 1, {"output": ["Document:d:cats"], "input": {"query": "cats"}}),
        ("on_chain_start", 1, {}),
        ("on_chain_end", 1, {"output": {"a": 1, "b": 1}, "input": ["Document:d:cats"]}),
        ("on_tool_start", 1, {"input": {"a": 1, "b": 1}}),
        ("on_tool_end", 1, {"output": 2, "input": {"a": 1, "b": 1}}),
        ("on_chain_end", 0, {"output": 2}),
    ]
    v1 = await bounds(chain, "cats", "v1")
    assert v1[2] == ("on_retriever_end", 0, {"input": {"query": "cats"},
                                             "output": {"documents": ["Document:d:cats"]}})
    assert v1[5:7] == [("on_tool_start", 0, {"input": {"a": 1, "b": 1}}),
                       ("on_tool_end", 0, {"input": {"a": 1, "b": 1}, "output": 2})]


async def test_composite_steps_start_lazily_and_end_with_their_input() -> None:
    """Parallel branches and passthroughs inside a stream start with {} (LangChain's lazy
    start) and report the input they received on their end."""
    chain = RunnableLambda(str.upper) | RunnableParallel(a=RunnableLambda(str.upper),
                                                         b=RunnablePassthrough())
    rows = await bounds(chain, "hi", "v2")
    starts = [data for event, depth, data in rows if event == "on_chain_start" and depth > 0]
    assert starts == [{}, {}, {}, {}]
    ends = {(depth, data["output"] if isinstance(data["output"], str) else "dict"): data["input"]
            for event, depth, data in rows if event == "on_chain_end" and depth > 0}
    assert ends == {(1, "HI"): "hi", (1, "dict"): "HI", (2, "HI"): "HI"}


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_chain_invoked_inside_a_lambda_reports_like_langchain(version: str) -> None:
    """The invoked chain's run is a child: no on_chain_stream of its own, input on its end;
    its first step, handed the whole input, starts with it."""
    events = [ev async for ev in RunnableLambda(nested_chain).astream_events("hello",
                                                                             version=version)]
    inner = [ev for ev in events if ev["name"] == "RunnableSequence"]
    assert [ev["event"] for ev in inner] == ["on_chain_start", "on_chain_end"]
    assert inner[0]["data"] == {"input": "hello"}
    assert inner[1]["data"] == {"output": "HELLO", "input": "hello"}
    first_step = next(ev for ev in events if ev["event"] == "on_chain_start"
                      and ev["name"] == "RunnableLambda")
    assert first_step["data"] == {"input": "hello"}
    assert events[-1]["data"] == {"output": "HELLO"}  # the root: output only


async def test_a_chain_invoked_inside_a_tool_ends_with_its_input() -> None:
    """A tool that invokes a chain shows it as a child ending with its input (v2)."""
    rows = await bounds(shout, {"text": "hi"}, "v2")
    assert rows[0] == ("on_tool_start", 0, {"input": {"text": "hi"}})
    assert ("on_chain_end", 1, {"output": "HI", "input": "hi"}) in rows
    assert rows[-1] == ("on_tool_end", 0, {"output": "HI"})
    streams = [ev async for ev in shout.astream_events({"text": "hi"}, version="v2")
               if ev["event"] == "on_chain_stream" and ev["name"] == "RunnableSequence"]
    assert streams == []


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_model_invoked_inside_a_lambda_streams_tokens_and_ends_with_a_message(
    version: str,
) -> None:
    """model.ainvoke inside a lambda: tokens are reported (LangChain streams invoke under a
    subscriber), the end carries the AIMessage invoke returns and the messages it was given."""
    events = [ev async for ev in RunnableLambda(nested_model).astream_events("hello",
                                                                             version=version)]
    kinds = [ev["event"] for ev in events if ev["name"] == "ScriptedChatModel"]
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    assert "on_chat_model_stream" in kinds
    end = described(next(ev["data"] for ev in events if ev["event"] == "on_chat_model_end"))
    assert end["input"] == HUMAN_HELLO
    assert end["output"] == ("AIMessage:Hi there" if version == "v2" else LLM_RESULT)


async def test_a_failing_tool_reports_the_tool_call_id() -> None:
    """on_tool_error has error, input and tool_call_id (None unless called with a tool call)."""
    rows = await bounds(bad, {"x": "hi"}, "v2")
    assert rows[-1] == ("on_tool_error", 0, {"error": "ValueError:boom", "input": {"x": "hi"},
                                             "tool_call_id": None})
    call = RunnableLambda(lambda x: {"name": "bad", "args": {"x": x}, "id": "c1",
                                     "type": "tool_call"}) | bad
    rows = await bounds(call, "hi", "v2")
    error = next(data for event, _, data in rows if event == "on_tool_error")
    assert error == {"error": "ValueError:boom", "input": {"x": "hi"}, "tool_call_id": "c1"}
