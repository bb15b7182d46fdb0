"""The LangChain streaming guide's examples, run on rillet with the scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio

from rillet.graphs import RunnablePassthrough
from rillet.nodes import (
    AIMessageChunk,
    ChatPromptTemplate,
    Document,
    HashingEmbeddings,
    InMemoryVectorStore,
    JsonOutputParser,
    OutputParserError,
    ScriptedChatModel,
    StrOutputParser,
)
from rillet.runtime import NodeInputError

COUNTRIES = ('{"countries": [{"name": "France", "population": "67.06 million"}, '
             '{"name": "Spain", "population": "47.35 million"}]}')


def test_model_stream_yields_additive_message_chunks() -> None:
    """model.stream yields AIMessageChunks whose sum is the whole reply."""
    model = ScriptedChatModel(["Hello! My name is Rill."])
    chunks = list(model.stream("what color is the sky?"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.content for c in chunks[:3]] == ["Hello", "!", " My"]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.content == "Hello! My name is Rill."
    assert chunks[-1].chunk_position == "last"
    assert total.id is not None and total.id.startswith("lc_run--")


async def test_prompt_model_parser_streams_token_by_token() -> None:
    """prompt | model | StrOutputParser streams one str per model token."""
    prompt = ChatPromptTemplate.from_template("tell me a joke about {topic}")
    chain = prompt | ScriptedChatModel(["Why did the parrot talk?"]) | StrOutputParser()
    tokens = [t async for t in chain.astream({"topic": "parrot"})]
    assert tokens == ["Why", " did", " the", " parrot", " talk", "?"]
    assert await chain.ainvoke({"topic": "parrot"}) == "Why did the parrot talk?"


def _json_tokens() -> list[str]:
    import re

    return re.findall(r'\w+|[^\w]', COUNTRIES)


def test_json_parser_streams_the_recorded_partial_values() -> None:
    """The countries document token by token gives LangChain's 18 partial values (§4.2)."""
    model = ScriptedChatModel([COUNTRIES], chunking="word")
    outputs = list((model | JsonOutputParser()).stream("x"))
    assert outputs[:4] == [{}, {"countries": []}, {"countries": [{}]},
                           {"countries": [{"name": ""}]}]
    assert len(outputs) == 18
    assert outputs[-1] == {"countries": [{"name": "France", "population": "67.06 million"},
                                         {"name": "Spain", "population": "47.35 million"}]}
    assert len({repr(o) for o in outputs}) == 18  # duplicates suppressed


def test_json_parser_invoke_keeps_the_last_snapshot_not_their_sum() -> None:
    """A snapshot stream is not added up: invoke returns the document, not 18 merged values."""
    chain = ScriptedChatModel([COUNTRIES], chunking="char") | JsonOutputParser()
    result = chain.invoke("x")
    assert result == {"countries": [{"name": "France", "population": "67.06 million"},
                                    {"name": "Spain", "population": "47.35 million"}]}


def test_json_parser_diff_mode_streams_patches() -> None:
    """diff=True streams JSON-patch op lists; the first replaces the root."""
    chain = ScriptedChatModel([COUNTRIES]) | JsonOutputParser(diff=True)
    patches = list(chain.stream("x"))
    assert patches[0] == [{"op": "replace", "path": "", "value": {}}]
    assert patches[1] == [{"op": "add", "path": "/countries", "value": []}]
    assert chain.invoke("x")["countries"][1]["name"] == "Spain"


def test_json_parser_handles_fences_and_rejects_prose() -> None:
    """A ```json fence is skipped; text with no JSON is an OutputParserError with the text."""
    fenced = ScriptedChatModel(['```json\n{"a": "b"}\n```'], chunking="char")
    assert list((fenced | JsonOutputParser()).stream("x")) == [{}, {"a": ""}, {"a": "b"}]
    with pytest.raises(OutputParserError) as info:
        (ScriptedChatModel(["Sure! no json here"]) | JsonOutputParser()).invoke("x")
    assert info.value.text == "Sure! no json here"


def _extract_country_names(input_stream: Iterator[Any]) -> Iterator[str]:
    """The guide's sync generator over the parser's stream of partial values."""
    country_names_so_far = set()
    for input in input_stream:
        if not isinstance(input, dict) or "countries" not in input:
            continue
        countries = input["countries"]
        if not isinstance(countries, list):
            continue
        for country in countries:
            name = country.get("name")
            if not name:
                continue
            if name not in country_names_so_far:
                yield name
                country_names_so_far.add(name)


async def _aextract_country_names(input_stream: AsyncIterator[Any]) -> AsyncIterator[str]:
    """The guide's async version."""
    country_names_so_far = set()
    async for input in input_stream:
        if not isinstance(input, dict) or "countries" not in input:
            continue
        for country in input["countries"]:
            name = country.get("name")
            if name and name not in country_names_so_far:
                yield name
                country_names_so_far.add(name)


@pytest.mark.parametrize("extract", [_extract_country_names, _aextract_country_names])
async def test_generator_functions_stream_country_names(extract: Any) -> None:
    """Both guide generators receive the partial-JSON stream and yield each name once."""
    model = ScriptedChatModel([COUNTRIES], chunking="char")
    chain = model | JsonOutputParser() | extract
    names = [n async for n in chain.astream("output a list of countries")]
    # A growing name is seen as a prefix first (as in the guide: 'Fr', 'Franc', …).
    assert names[-1] == "Spain" and "France" in names
    assert all("France".startswith(n) or "Spain".startswith(n) for n in names)


async def test_retriever_streams_exactly_one_list() -> None:
    """A retriever is a non-streaming node: stream yields one chunk, the document list."""
    store = InMemoryVectorStore.from_texts(
        ["harrison worked at kensho", "harrison likes spicy food"], HashingEmbeddings())
    chunks = [c async for c in store.as_retriever(k=2).astream("where did harrison work?")]
    assert len(chunks) == 1
    assert all(isinstance(d, Document) for d in chunks[0]) and len(chunks[0]) == 2


async def test_retrieval_chain_still_streams_the_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Tokens after the retriever stream one by one, arriving as the model produces them."""
    store = InMemoryVectorStore.from_texts(["harrison worked at kensho"], HashingEmbeddings())
    prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
    model = ScriptedChatModel(["Harrison worked at Kensho."], delay=1.0)
    chain = ({"context": store.as_retriever().with_config(run_name="Docs"),
              "question": RunnablePassthrough()} | prompt | model | StrOutputParser())
    arrivals = []
    async for token in chain.astream("where did harrison work?"):
        arrivals.append((trio.current_time(), token))
    assert [t for _, t in arrivals] == ["Harrison", " worked", " at", " Kensho", "."]
    assert [round(when) for when, _ in arrivals] == [1, 2, 3, 4, 5]


def test_chat_model_input_must_be_text_messages_or_a_prompt_value() -> None:
    """A dict sent straight to the model is a clear error naming the node."""
    with pytest.raises(NodeInputError, match=r"node 'ScriptedChatModel' expected a str, a list "
                                             r"of messages, or a prompt value, got dict"):
        ScriptedChatModel(["x"]).invoke({"topic": "parrot"})


def test_missing_prompt_variable_lists_missing_and_given() -> None:
    """A missing variable names what is missing and what was given."""
    prompt = ChatPromptTemplate.from_template("tell me a joke about {topic}")
    with pytest.raises(Exception, match=r"missing variables \['topic'\]; got keys \['topc'\]"):
        prompt.invoke({"topc": "parrot"})
    assert prompt.invoke("parrot").to_string() == "Human: tell me a joke about parrot"


def test_scripted_model_streams_tool_calls_and_usage() -> None:
    """A scripted reply with tool calls streams argument fragments that add up to parsed args."""
    from rillet.nodes import AIMessage

    reply = AIMessage(content="", tool_calls=[{"name": "search", "args": {"query": "cats"},
                                               "id": "call_1"}])
    model = ScriptedChatModel([reply], stream_usage=True)
    chunks = list(model.stream("find cats"))
    assert len([c for c in chunks if c.tool_call_chunks]) > 1
    total = chunks[0] + chunks[1:]
    assert total.tool_calls == [{"name": "search", "args": {"query": "cats"}, "id": "call_1",
                                 "type": "tool_call"}]
    assert total.usage_metadata is not None and total.usage_metadata["total_tokens"] > 0
    message = model.invoke("find cats")
    assert message.tool_calls[0]["args"] == {"query": "cats"}


def test_scripted_model_chunking_modes() -> None:
    """char and fixed-size chunking split the reply as documented."""
    assert [c.content for c in ScriptedChatModel(["abc"], chunking="char").stream("x")] == [
        "a", "b", "c"]
    assert [c.content for c in ScriptedChatModel(["abcde"], chunking=2).stream("x")] == [
        "ab", "cd", "e"]
    with pytest.raises(ValueError, match="chunking"):
        ScriptedChatModel(["x"], chunking="sentence")
