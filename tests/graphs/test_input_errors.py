"""Bad input to a node: a NodeInputError naming the node, what it expected and what it got."""

from __future__ import annotations

from typing import Any

import pytest

from rillet.graphs import RunnableLambda
from rillet.nodes import ScriptedChatModel, StrOutputParser
from rillet.runtime import NodeInputError, RilletError


def test_str_output_parser_given_a_dict() -> None:
    """The parser names itself, the types it takes, and the dict it got."""
    with pytest.raises(NodeInputError) as info:
        StrOutputParser().invoke({"topic": "parrot"})
    assert str(info.value) == (
        "node 'StrOutputParser' expected str or a message (chunk), got dict: {'topic': 'parrot'}"
    )
    assert info.value.node == "StrOutputParser"
    assert info.value.got == {"topic": "parrot"}
    assert isinstance(info.value, TypeError) and isinstance(info.value, RilletError)


def test_parser_error_in_a_chain_names_the_parser_not_the_chain() -> None:
    """Inside a chain the error still names the parser that got the bad value."""
    chain = RunnableLambda(lambda x: {"a": x}) | StrOutputParser()
    with pytest.raises(NodeInputError) as info:
        chain.invoke(1)
    assert str(info.value) == "node 'StrOutputParser' expected str or a message (chunk), got dict: {'a': 1}"
    assert info.value.rillet_node == "StrOutputParser"  # type: ignore[attr-defined]


async def test_chat_model_given_a_dict() -> None:
    """A chat model given a dict (the guide's ``model.astream({"topic": ...})`` mistake) names
    itself and the inputs it accepts."""
    received: list[Any] = []
    with pytest.raises(NodeInputError) as info:
        async for chunk in ScriptedChatModel().astream({"topic": "parrot"}):
            received.append(chunk)
    assert received == []
    assert str(info.value) == (
        "node 'ScriptedChatModel' expected a str, a list of messages, or a prompt value, "
        "got dict: {'topic': 'parrot'}"
    )
    assert info.value.rillet_node == "ScriptedChatModel"  # type: ignore[attr-defined]


def test_renamed_node_is_named_by_its_run_name() -> None:
    """``with_config(run_name=...)`` changes the name the error gives."""
    model = ScriptedChatModel().with_config(run_name="Docs")
    with pytest.raises(NodeInputError, match=r"^node 'Docs' expected"):
        model.invoke({"topic": "x"})


def test_long_bad_values_are_cut_short_in_the_message() -> None:
    """The value's repr is cut to 80 characters so a huge input cannot flood the message."""
    big = {"text": "x" * 500}
    with pytest.raises(NodeInputError) as info:
        StrOutputParser().invoke(big)
    shown = str(info.value).split("got dict: ", 1)[1]
    assert len(shown) == 80
    assert repr(big).startswith(shown)
