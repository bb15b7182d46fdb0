"""RunnablePassthrough, ``assign`` and ``pick``: passing the input on, adding keys, picking."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import RunnableAssign, RunnableLambda, RunnablePassthrough, RunnablePick
from rillet.nodes import ScriptedChatModel, StrOutputParser
from rillet.runtime import AddableDict, NodeInputError


async def _tokens(_: Any) -> AsyncGenerator[str, None]:
    for token in ["x", "y", "z"]:
        await trio.sleep(1)
        yield token


# -- RunnablePassthrough --------------------------------------------------------------------------


async def test_passthrough_streams_its_input_chunk_by_chunk(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each chunk passes through unchanged as soon as it arrives."""
    arrivals: list[tuple[str, float]] = []
    async for chunk in (RunnableLambda(_tokens) | RunnablePassthrough()).astream(None):
        arrivals.append((chunk, trio.current_time()))
    assert arrivals == [("x", 1.0), ("y", 2.0), ("z", 3.0)]


async def test_passthrough_func_sees_the_whole_input_after_passing_it_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``RunnablePassthrough(func)`` calls ``func`` once with the added-up input, and the
    chunks still stream through."""
    seen: list[tuple[str, float]] = []

    async def record(total: str) -> None:
        seen.append((total, trio.current_time()))

    chunks = [c async for c in (RunnableLambda(_tokens) | RunnablePassthrough(record)).astream(None)]
    assert chunks == ["x", "y", "z"]
    assert seen == [("xyz", 3.0)]


def test_passthrough_invoke_returns_the_input() -> None:
    """Invoked, a passthrough returns its input as is."""
    value = {"q": "hi", "n": [1, 2]}
    assert RunnablePassthrough().invoke(value) == value


# -- assign ---------------------------------------------------------------------------------------


def test_assign_streams_passthrough_keys_first_then_assigned_keys() -> None:
    """Streaming ``assign`` yields the input's keys, then each assigned key as computed."""
    composed = RunnableLambda(lambda x: {"q": x}) | RunnablePassthrough.assign(
        size=lambda d: len(d["q"])
    )
    assert list(composed.stream("hello")) == [{"q": "hello"}, {"size": 5}]
    assert composed.invoke("hello") == {"q": "hello", "size": 5}


async def test_assign_streams_a_model_branch_token_by_token() -> None:
    """An assigned model chain streams under its key; invoke merges everything, passthrough
    keys first, then assigned keys in declaration order."""
    model = ScriptedChatModel(responses=["a b c"])
    assign = RunnablePassthrough.assign(
        answer=(lambda d: d["q"]) | model | StrOutputParser(), n=lambda d: 1
    )
    chunks = [dict(c) async for c in assign.astream({"q": "hi", "other": 2})]
    assert chunks[0] == {"q": "hi", "other": 2}
    assert [c["answer"] for c in chunks if "answer" in c] == ["a", " b", " c"]
    assert {"n": 1} in chunks
    result = await assign.ainvoke({"q": "hi", "other": 2})
    assert list(result) == ["q", "other", "answer", "n"]
    assert result == {"q": "hi", "other": 2, "answer": "a b c", "n": 1}


def test_assigned_key_replaces_an_input_key() -> None:
    """A key both in the input and assigned takes the assigned value: invoke keeps the key in
    its place (LangChain's ``{**input, **assigned}``); a stream sends the passthrough keys first."""
    assign = RunnablePassthrough.assign(q=lambda d: d["q"].upper())
    result = assign.invoke({"q": "hi", "z": 1})
    assert result == {"z": 1, "q": "HI"}
    assert list(result) == ["q", "z"]
    assert list(assign.stream({"q": "hi", "z": 1})) == [{"z": 1}, {"q": "HI"}]


def test_runnable_assign_method() -> None:
    """``runnable.assign(...)`` pipes into an assign with the same keys."""
    composed = RunnableLambda(lambda x: {"x": x}).assign(square=lambda d: d["x"] ** 2)
    assert composed.invoke(4) == {"x": 4, "square": 16}
    assert isinstance(composed.steps[-1], RunnableAssign)  # type: ignore[attr-defined]
    assert composed.steps[-1].get_name() == "RunnableAssign<square>"  # type: ignore[attr-defined]


def test_assign_given_a_non_dict_names_the_node() -> None:
    """A non-dict input to ``assign`` is a NodeInputError whose message, ``rillet_node`` and
    note name the assign node, also when the input comes from an earlier step."""
    assign = RunnablePassthrough.assign(size=lambda d: len(d))
    for runnable in (assign, RunnableLambda(lambda x: x) | assign):
        with pytest.raises(NodeInputError) as info:
            runnable.invoke("not a dict")  # type: ignore[arg-type]
        assert str(info.value).startswith("node 'RunnableAssign<size>' expected a dict")
        assert str(info.value).endswith("got str: 'not a dict'")
        assert info.value.rillet_node == "RunnableAssign<size>"  # type: ignore[attr-defined]
        notes = getattr(info.value, "__notes__", [])
        assert any("rillet node 'RunnableAssign<size>'" in note for note in notes)


# -- pick -----------------------------------------------------------------------------------------


def test_pick_one_key_returns_its_value() -> None:
    """``pick("a")`` returns the value of ``a``, or None when it is missing."""
    source = RunnableLambda(lambda x: {"a": x, "b": -x})
    assert source.pick("a").invoke(3) == 3
    assert RunnablePick("zz").invoke({"a": 1}) is None


def test_pick_several_keys_returns_the_present_ones() -> None:
    """``pick([...])`` returns a dict of the listed keys that are present."""
    assert RunnablePick(["a", "c", "missing"]).invoke({"a": 1, "b": 2, "c": 3}) == {"a": 1, "c": 3}


async def test_pick_streams_per_chunk_and_drops_chunks_without_the_key() -> None:
    """Streaming, each chunk is picked on its own; chunks lacking the key are dropped."""

    async def dicts(_: Any) -> AsyncGenerator[dict[str, Any], None]:
        chunks: list[dict[str, Any]] = [{"a": "x"}, {"b": 1}, {"a": "y", "b": 2}]
        for chunk in chunks:
            yield chunk

    assert [c async for c in (RunnableLambda(dicts) | RunnablePick("a")).astream(None)] == ["x", "y"]
    picked = [c async for c in (RunnableLambda(dicts) | RunnablePick(["b"])).astream(None)]
    assert picked == [{"b": 1}, {"b": 2}]


def test_pick_given_a_non_dict_names_the_node() -> None:
    """``pick`` of a non-dict is a NodeInputError naming the pick node."""
    with pytest.raises(NodeInputError) as info:
        RunnablePick("a").invoke(5)  # type: ignore[arg-type]
    assert str(info.value) == "node 'RunnablePick<a>' expected a dict, got int: 5"
    assert info.value.rillet_node == "RunnablePick<a>"  # type: ignore[attr-defined]


async def test_passthrough_and_assign_forward_a_stream_without_buffering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``assign``'s passthrough keys reach the caller as each input chunk arrives."""

    async def dict_chunks(_: Any) -> AsyncIterator[dict[str, str]]:
        for letter in "abc":
            await trio.sleep(1)
            yield AddableDict({letter: letter})  # adds up key-wise for the buffering branch

    assign = RunnablePassthrough.assign(total=lambda d: "".join(sorted(d)))
    arrivals = []
    async for chunk in (RunnableLambda(dict_chunks) | assign).astream(None):
        arrivals.append((dict(chunk), trio.current_time()))
    assert arrivals[:3] == [({"a": "a"}, 1.0), ({"b": "b"}, 2.0), ({"c": "c"}, 3.0)]
    assert arrivals[3][0] == {"total": "abc"}
