"""Under asyncio, every async method gives what it gives under trio: the guide's chains through
ainvoke, abatch, astream, atransform, astream_events (v1, v2) and astream_log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asyncio_helpers import collect, normalized_events, under_both, without_ids

from rillet.graphs import RunnableLambda, RunnableParallel, RunnablePassthrough
from rillet.nodes import (
    ChatPromptTemplate,
    HashingEmbeddings,
    InMemoryVectorStore,
    JsonOutputParser,
    ScriptedChatModel,
    StrOutputParser,
)

COUNTRIES = ('{"countries": [{"name": "France", "population": "67.06 million"}, '
             '{"name": "Spain", "population": "47.35 million"}]}')


def _names(input_stream: Iterator[Any]) -> Iterator[str]:
    seen = set()
    for value in input_stream:
        for country in (value.get("countries") or []) if isinstance(value, dict) else []:
            if (name := country.get("name")) and name not in seen:
                seen.add(name)
                yield name


async def _anames(input_stream: AsyncIterator[Any]) -> AsyncIterator[str]:
    async for value in input_stream:
        if isinstance(value, dict):
            for country in value.get("countries") or []:
                if name := country.get("name"):
                    yield name


def _joke() -> Any:
    return (ChatPromptTemplate.from_template("tell me a joke about {topic}")
            | ScriptedChatModel(["Why did the parrot talk? It had a lot to say."])
            | StrOutputParser())


def _rag() -> Any:
    store = InMemoryVectorStore.from_texts(["harrison worked at kensho", "bears like honey"],
                                           HashingEmbeddings())
    prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
    return ({"context": store.as_retriever(k=1).with_config(run_name="Docs"),
             "question": RunnablePassthrough()}
            | prompt | ScriptedChatModel(["Harrison worked at Kensho."]) | StrOutputParser())


CHAINS = {
    "prompt | model | parser": (_joke, {"topic": "parrot"}),
    "json parser, snapshots": (lambda: ScriptedChatModel([COUNTRIES]) | JsonOutputParser(),
                               "countries"),
    "sync generator over partial json": (
        lambda: ScriptedChatModel([COUNTRIES], chunking="char") | JsonOutputParser() | _names,
        "countries"),
    "async generator over partial json": (
        lambda: ScriptedChatModel([COUNTRIES]) | JsonOutputParser() | _anames, "countries"),
    "retrieval chain": (_rag, "where did harrison work?"),
    "parallel and assign": (
        lambda: RunnableParallel(joke=_joke(), n=RunnableLambda(len))
        | RunnablePassthrough.assign(total=lambda d: len(d["joke"]) + d["n"]),
        {"topic": "cats"}),
}
IDS = list(CHAINS)
#: Where branches run concurrently, chunks arrive in completion order: under trio too.
UNORDERED = {"retrieval chain", "parallel and assign"}


def _comparable(chunks: list[Any], case: str) -> Any:
    return sorted(map(without_ids, chunks)) if case in UNORDERED else without_ids(chunks)


@pytest.mark.parametrize("case", IDS)
def test_ainvoke_abatch_and_astream_match(case: str) -> None:
    """ainvoke, abatch and the astream chunks are the same under trio and asyncio."""
    build, value = CHAINS[case]
    chain = build()

    async def run() -> Any:
        chunks = _comparable(await collect(chain.astream(value)), case)
        return await chain.ainvoke(value), await chain.abatch([value, value]), chunks

    on_trio, on_asyncio = under_both(run)
    assert on_asyncio == on_trio
    assert on_trio[2], "the chain streamed nothing"


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_astream_events_match(case: str, version: str) -> None:
    """The same events (names, kinds, tags, parents, data) under trio and asyncio."""
    build, value = CHAINS[case]
    chain = build()

    async def run() -> Any:
        return await collect(chain.astream_events(value, version=version))

    on_trio, on_asyncio = under_both(run)
    assert len(on_trio) > 4
    assert normalized_events(on_asyncio) == normalized_events(on_trio)


@pytest.mark.parametrize("case", IDS)
def test_astream_log_adds_up_to_the_same_run_log(case: str) -> None:
    """The patches add up to a run log with the same outputs and the same logged runs."""
    build, value = CHAINS[case]
    chain = build()

    async def run() -> Any:
        log = None
        count = 0
        async for patch in chain.astream_log(value):
            log = patch if log is None else log + patch
            count += 1
        assert log is not None
        state = log.state
        logs = sorted((name, without_ids(entry["final_output"]))
                      for name, entry in state["logs"].items())
        streamed = _comparable(state["streamed_output"], case)
        return count, without_ids(state["final_output"]), streamed, logs

    on_trio, on_asyncio = under_both(run)
    assert on_asyncio == on_trio


def test_atransform_takes_a_sync_iterable_an_asyncio_iterator_or_a_rillet_stream() -> None:
    """atransform from asyncio accepts the inputs trio accepts, and asyncio async iterators."""
    upper = RunnableLambda(str.upper) | (lambda s: s + "!")
    words = RunnablePassthrough() | RunnableLambda(lambda s: s.split())

    async def from_asyncio() -> AsyncIterator[str]:
        for part in ["ab", "cd"]:
            await asyncio.sleep(0)  # asyncio code: it runs on the caller's loop
            yield part

    async def run() -> Any:
        listed = await collect(upper.atransform(["ab", "cd"]))
        streamed = await collect(upper.atransform(_joke().astream({"topic": "x"})))
        return listed, streamed

    on_trio, on_asyncio = under_both(run)
    assert on_asyncio == on_trio == (["ABCD!"], ["WHY DID THE PARROT TALK? IT HAD A LOT TO SAY.!"])

    async def fed_by_asyncio() -> Any:
        return await collect(words.atransform(from_asyncio()))

    assert asyncio.run(fed_by_asyncio()) == [["abcd"]]


def test_anext_and_aclose_without_async_for() -> None:
    """anext() on a fresh stream and aclose() on one never iterated work from asyncio."""
    chain = _joke()

    async def run() -> Any:
        stream = chain.astream({"topic": "x"})
        first = await anext(stream)
        second = await anext(stream)
        await stream.aclose()
        unused = chain.astream_events({"topic": "x"})
        await unused.aclose()
        event = await anext(chain.astream_events({"topic": "x"}, version="v2"))
        return first, second, event["event"]

    assert asyncio.run(run()) == ("Why", " did", "on_chain_start")
