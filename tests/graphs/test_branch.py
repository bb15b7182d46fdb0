"""RunnableBranch: the first branch whose condition holds gets the input and streams."""

from __future__ import annotations

from typing import Any

import pytest

from rillet.graphs import RunnableBranch, RunnableLambda
from rillet.nodes import ScriptedChatModel, StrOutputParser


def _sign() -> RunnableBranch:
    return RunnableBranch(
        (lambda x: x > 0, lambda x: f"{x} is positive"),
        (lambda x: x == 0, lambda x: "zero"),
        lambda x: f"{x} is negative",
    )


def test_branch_routes_to_the_first_matching_condition_or_the_default() -> None:
    """Conditions are tried in order; none holding means the default."""
    branch = _sign()
    assert [branch.invoke(v) for v in (3, 0, -2)] == ["3 is positive", "zero", "-2 is negative"]


def test_only_the_chosen_branch_runs() -> None:
    """Branches whose condition did not hold (or that come after the match) never run."""
    ran: list[str] = []

    def runner(label: str) -> Any:
        def run(x: Any) -> str:
            ran.append(label)
            return label

        return run

    branch = RunnableBranch(
        (lambda x: x == "a", runner("a")), (lambda x: True, runner("b")),
        (lambda x: True, runner("c")), runner("default"),
    )
    assert branch.invoke("b") == "b"
    assert ran == ["b"]


async def test_conditions_may_be_async_functions_or_runnables() -> None:
    """A condition can be a sync function, an async function or a runnable."""

    async def is_a(x: str) -> bool:
        return x == "a"

    branch = RunnableBranch(
        (is_a, lambda x: 1), (RunnableLambda(lambda x: x == "b"), lambda x: 2), lambda x: 3
    )
    assert [await branch.ainvoke(v) for v in "abc"] == [1, 2, 3]


async def test_branch_streams_the_chosen_runnable() -> None:
    """The chosen branch's chunks stream through one by one."""
    talker = ScriptedChatModel(responses=["one two three"]) | StrOutputParser()
    branch = RunnableBranch((lambda x: "talk" in x, talker), lambda x: "quiet")
    assert [c async for c in branch.astream("talk to me")] == ["one", " two", " three"]
    assert [c async for c in branch.astream("hush")] == ["quiet"]


def test_branch_needs_a_default_and_pairs() -> None:
    """Without a default, or with a branch that is not a pair, construction fails clearly."""
    with pytest.raises(ValueError, match="and a default"):
        RunnableBranch((lambda x: True, lambda x: 1))
    with pytest.raises(ValueError, match=r"must be \(condition, runnable\) pairs, got 5"):
        RunnableBranch(5, lambda x: 1)


def test_a_failing_condition_propagates_its_error() -> None:
    """An exception in a condition reaches the caller as itself."""

    def broken(x: Any) -> bool:
        raise LookupError("no such route")

    with pytest.raises(LookupError, match="no such route"):
        RunnableBranch((broken, lambda x: 1), lambda x: 2).invoke(0)
