"""Tools (schema, validation, events of a tool calling a chain) and the list parser."""

from __future__ import annotations

from typing import Literal

import pytest

from rillet.graphs import RunnableLambda
from rillet.nodes import (
    ChatPromptTemplate,
    CommaSeparatedListOutputParser,
    ScriptedChatModel,
    StrOutputParser,
    Tool,
    ToolArgumentError,
    ToolMessage,
    tool,
)


@tool
def search(query: str, k: int = 3, mode: Literal["fast", "deep"] = "fast") -> str:
    """Search the notes.

    Args:
        query: what to look for.
        k: how many results.
    """
    return f"{mode}:{query}:{k}"


def test_tool_takes_name_description_and_schema_from_the_function() -> None:
    """The schema comes from type hints; defaults are optional; docstring args describe."""
    assert isinstance(search, Tool)
    assert search.name == "search" and search.description.startswith("Search the notes.")
    params = search.args_schema
    assert params["required"] == ["query"]
    assert params["properties"]["k"]["type"] == "integer"
    assert params["properties"]["mode"]["enum"] == ["fast", "deep"]
    assert "look for" in params["properties"]["query"].get("description", "")


async def test_tool_validates_arguments_with_clear_errors() -> None:
    """Missing, unknown and mistyped arguments name the tool and the argument."""
    assert await search.ainvoke({"query": "cats"}) == "fast:cats:3"
    with pytest.raises(ToolArgumentError, match=r"^node 'search' expected a value for required "
                                                r"argument 'query'"):
        await search.ainvoke({"k": 1})
    with pytest.raises(ToolArgumentError, match=r"argument 'k' of type int, got str: 'many'"):
        await search.ainvoke({"query": "x", "k": "many"})
    with pytest.raises(ToolArgumentError, match=r"arguments among"):
        await search.ainvoke({"query": "x", "limit": 1})
    with pytest.raises(ToolArgumentError, match=r"argument 'mode'"):
        await search.ainvoke({"query": "x", "mode": "slow"})


async def test_tool_called_with_a_tool_call_returns_a_tool_message() -> None:
    """A tool call dict in, a ToolMessage carrying the call id out."""
    message = await search.ainvoke(
        {"name": "search", "args": {"query": "q"}, "id": "call_7", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call_7" and message.content == "fast:q:3"


async def test_single_argument_tool_accepts_a_bare_value_and_async_functions() -> None:
    """A one-argument tool takes the bare value; async tools are awaited."""
    @tool
    async def shout(text: str) -> str:
        """Shout it."""
        return text.upper()

    assert await shout.ainvoke("hi") == "HI"


async def test_a_tool_that_invokes_a_chain_shows_the_chain_events() -> None:
    """The guide's pattern: the inner chain's runs are children of the tool run."""
    @tool
    async def special_summarization_tool(long_text: str) -> str:
        """A tool that summarizes input text using advanced techniques."""
        prompt = ChatPromptTemplate.from_template(
            "You are an expert writer. Summarize the following text in 10 words or less:\n\n"
            "{long_text}")
        reverse = RunnableLambda(lambda x: x[::-1], name="reverse")
        chain = prompt | ScriptedChatModel(["short summary"]) | StrOutputParser() | reverse
        return await chain.ainvoke({"long_text": long_text})

    events = [e async for e in special_summarization_tool.astream_events(
        {"long_text": "a long text"}, version="v2")]
    assert events[0]["event"] == "on_tool_start"
    assert events[0]["data"] == {"input": {"long_text": "a long text"}}
    assert events[-1]["event"] == "on_tool_end"
    assert events[-1]["data"]["output"] == "yrammus trohs"
    tool_run = events[0]["run_id"]
    inner = {e["name"] for e in events if tool_run in e["parent_ids"]}
    assert {"RunnableSequence", "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser",
            "reverse"} <= inner
    assert any(e["event"] == "on_chat_model_stream" for e in events)


async def test_a_failing_tool_emits_on_tool_error() -> None:
    """Bad arguments: on_tool_error with the exception, then the exception itself."""
    seen = []
    with pytest.raises(ToolArgumentError):
        async for event in search.astream_events({"query": 5}, version="v2"):
            seen.append(event)
    assert [e["event"] for e in seen] == ["on_tool_start", "on_tool_error"]
    assert isinstance(seen[-1]["data"]["error"], ToolArgumentError)


async def test_comma_separated_list_parser_streams_one_item_at_a_time() -> None:
    """Each completed item is emitted as soon as its comma arrives; the sum is the list."""
    model = ScriptedChatModel(["red, green,  blue ,yellow"], chunking="char")
    chain = model | CommaSeparatedListOutputParser()
    items = [c async for c in chain.astream("colors")]
    assert items == [["red"], ["green"], ["blue"], ["yellow"]]
    assert await chain.ainvoke("colors") == ["red", "green", "blue", "yellow"]


def test_parsers_reject_what_is_neither_text_nor_a_message() -> None:
    """A dict into a parser names the parser and what it expected."""
    from rillet.runtime import NodeInputError

    with pytest.raises(NodeInputError, match=r"node 'CommaSeparatedListOutputParser' expected "
                                             r"str or a message \(chunk\), got dict"):
        CommaSeparatedListOutputParser().invoke({"a": 1})

