"""Graph: an explicit DAG of runnables (fan-out, fan-in, several exits), its validation, and
drawing graphs and composed runnables as text and Mermaid."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import Graph, GraphError, RunnableLambda, RunnableParallel
from rillet.nodes import ScriptedChatModel, StrOutputParser


def _ident(x: Any) -> Any:
    return x


def _diamond() -> Graph:
    """start -> (double, square) -> total."""
    return (
        Graph()
        .add_node("start", lambda x: x + 1)
        .add_node("double", lambda x: x * 2)
        .add_node("square", lambda x: x * x)
        .add_node("total", lambda d: d)
        .add_edge("start", "double").add_edge("start", "square")
        .add_edge("double", "total").add_edge("square", "total")
        .set_entry("start").set_exit("total")
    )


# -- running ------------------------------------------------------------------------------------


def test_fan_in_node_receives_a_dict_keyed_by_predecessor() -> None:
    """A node with two predecessors gets ``{predecessor: output}``."""
    assert _diamond().invoke(2) == {"double": 6, "square": 9}


def test_several_entries_all_receive_the_input() -> None:
    """Every entry node gets the graph's input (the module docstring example)."""
    graph = (
        Graph()
        .add_node("double", lambda x: x * 2).add_node("square", lambda x: x * x)
        .add_node("total", lambda d: d["double"] + d["square"])
        .add_edge("double", "total").add_edge("square", "total")
        .set_entry("double", "square").set_exit("total")
    )
    assert graph.invoke(3) == 15


def test_several_exits_give_a_dict_keyed_by_exit() -> None:
    """With two exit nodes the output is ``{exit: output}`` for each."""
    graph = (
        Graph()
        .add_node("a", lambda x: x + 1).add_node("b", lambda x: x * 10).add_node("c", lambda x: -x)
        .add_edge("a", "b").add_edge("a", "c")
        .set_entry("a").set_exit("b", "c")
    )
    assert graph.invoke(1) == {"b": 20, "c": -2}
    assert sorted(next(iter(chunk)) for chunk in graph.stream(1)) == ["b", "c"]


async def test_streaming_through_a_graph(autojump_clock: trio.testing.MockClock) -> None:
    """A model node feeding a parser node streams token by token out of the graph."""
    graph = (
        Graph()
        .add_node("model", ScriptedChatModel(responses=["one two three four"], delay=1.0))
        .add_node("parse", StrOutputParser())
        .add_edge("model", "parse").set_entry("model").set_exit("parse")
    )
    arrivals = []
    async for token in graph.astream("hi"):
        arrivals.append((token, trio.current_time()))
    assert [t for t, _ in arrivals] == ["one", " two", " three", " four"]
    assert arrivals[0][1] < arrivals[-1][1]  # the first token did not wait for the last


async def test_streaming_fan_in_node_receives_keyed_chunks() -> None:
    """A streaming node with two predecessors receives ``{predecessor: chunk}`` per chunk."""

    async def letters(_: Any) -> AsyncGenerator[str, None]:
        for letter in "ab":
            yield letter

    async def digits(_: Any) -> AsyncGenerator[str, None]:
        for digit in "12":
            yield digit

    async def collect(chunks: Any) -> AsyncGenerator[dict[str, str], None]:
        async for chunk in chunks:
            yield dict(chunk)

    graph = (
        Graph()
        .add_node("letters", RunnableLambda(letters)).add_node("digits", RunnableLambda(digits))
        .add_node("merge", collect)
        .add_edge("letters", "merge").add_edge("digits", "merge")
        .set_entry("letters", "digits").set_exit("merge")
    )
    chunks = [c async for c in graph.astream(None)]
    assert all(len(chunk) == 1 for chunk in chunks)
    assert [c["letters"] for c in chunks if "letters" in c] == ["a", "b"]
    assert [c["digits"] for c in chunks if "digits" in c] == ["1", "2"]
    assert len(chunks) == 4


def test_graph_in_a_chain_and_node_errors_name_the_node() -> None:
    """A graph composes like any runnable, and a failing node is reported under its graph
    name."""

    def explode(x: Any) -> Any:
        raise ArithmeticError("bad node")

    graph = (
        Graph().add_node("ok", _ident).add_node("bad", explode)
        .add_edge("ok", "bad").set_entry("ok").set_exit("bad")
    )
    with pytest.raises(ArithmeticError) as info:
        (RunnableLambda(_ident) | graph).invoke(1)
    assert info.value.rillet_node == "bad"  # type: ignore[attr-defined]
    assert (RunnableLambda(lambda x: x * 2) | _diamond()).invoke(1) == {"double": 6, "square": 9}


# -- validation ---------------------------------------------------------------------------------


def _nodes(*names: str) -> Graph:
    graph = Graph()
    for name in names:
        graph.add_node(name, _ident)
    return graph


def test_cycle_is_rejected() -> None:
    """A cycle is a GraphError naming the nodes on it."""
    graph = _nodes("s", "a", "b").add_edge("s", "a").add_edge("a", "b").add_edge("b", "a")
    graph.set_entry("s").set_exit("b")
    with pytest.raises(GraphError, match=r"cycle through \['a', 'b'\]"):
        graph.compile()


def test_unreachable_node_is_rejected() -> None:
    """A node no entry leads to is a GraphError naming it."""
    graph = _nodes("a", "b", "z").add_edge("a", "b").add_edge("z", "b")
    graph.set_entry("a").set_exit("b")
    with pytest.raises(GraphError, match=r"nodes \['z'\] cannot be reached from the entry"):
        graph.compile()


def test_node_without_a_path_to_the_exit_is_rejected() -> None:
    """A dead end (a node that reaches no exit) is a GraphError naming it."""
    graph = _nodes("a", "b", "z").add_edge("a", "b").add_edge("a", "z")
    graph.set_entry("a").set_exit("b")
    with pytest.raises(GraphError, match=r"nodes \['z'\] have no path to the exit"):
        graph.compile()


def test_unknown_nodes_are_rejected() -> None:
    """Edges, entries and exits naming unknown nodes fail at once, listing the known ones."""
    with pytest.raises(GraphError, match=r"unknown node 'nope'; known: \['a'\]"):
        _nodes("a").add_edge("a", "nope")
    with pytest.raises(GraphError, match=r"entry node 'nope' is not in the graph"):
        _nodes("a").set_entry("nope")
    with pytest.raises(GraphError, match=r"exit node 'nope' is not in the graph"):
        _nodes("a").set_exit("nope")


async def test_missing_entry_or_exit_is_rejected_when_run() -> None:
    """A graph without entry or exit cannot run: compile and ainvoke raise GraphError."""
    no_entry = _nodes("a").set_exit("a")
    with pytest.raises(GraphError, match="needs set_entry"):
        no_entry.compile()
    with pytest.raises(GraphError, match="needs set_entry"):
        await no_entry.ainvoke(1)
    with pytest.raises(GraphError, match="set_exit"):
        await _nodes("a").set_entry("a").ainvoke(1)


def test_other_malformed_graphs_are_rejected() -> None:
    """Entries with incoming edges, duplicate nodes and edges, and bad names are errors."""
    with pytest.raises(GraphError, match="entry node 'b' must not have incoming edges"):
        _nodes("a", "b").add_edge("a", "b").set_entry("a", "b").set_exit("b").compile()
    with pytest.raises(GraphError, match="already in the graph"):
        _nodes("a").add_node("a", _ident)
    with pytest.raises(GraphError, match="already in the graph"):
        _nodes("a", "b").add_edge("a", "b").add_edge("a", "b")
    with pytest.raises(GraphError, match="non-empty str"):
        Graph().add_node("", _ident)
    assert issubclass(GraphError, ValueError)


# -- drawing ------------------------------------------------------------------------------------

_NODE = re.compile(r'^\s*(\w+)\["(.*)"\]\s*$')
_EDGE = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\s*$")


def _unescape(label: str) -> str:
    return label.replace("#lt;", "<").replace("#gt;", ">").replace("#quot;", '"')


def _mermaid(text: str) -> tuple[list[str], set[tuple[str, str]]]:
    """Node labels and labelled edges of a Mermaid flowchart (ids resolved to labels)."""
    lines = text.splitlines()
    assert lines[0].strip().startswith("flowchart")
    labels: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        if node := _NODE.match(line):
            labels[node[1]] = _unescape(node[2])
        elif edge := _EDGE.match(line):
            edges.append((edge[1], edge[2]))
        elif line.strip():
            raise AssertionError(f"unexpected Mermaid line {line!r}")
    return list(labels.values()), {(labels[a], labels[b]) for a, b in edges}


def _ascii_rows(text: str) -> dict[str, int]:
    """The line on which each boxed label of a text drawing appears."""
    rows: dict[str, int] = {}
    for number, line in enumerate(text.splitlines()):
        for label in re.findall(r"\| ([^|]+?) \|", line):
            rows[label] = number
    return rows


def test_graph_draws_as_mermaid_with_every_node_and_edge() -> None:
    """The Mermaid drawing of a graph has one node per graph node and its edges."""
    labels, edges = _mermaid(_diamond().draw_mermaid())
    assert sorted(labels) == ["double", "square", "start", "total"]
    assert edges == {("start", "double"), ("start", "square"), ("double", "total"),
                     ("square", "total")}


def test_graph_draws_as_text_with_rows_following_edges() -> None:
    """The text drawing boxes every node, each below the nodes it depends on, and spells out
    the edges that are not a straight drop."""
    text = _diamond().draw_ascii()
    rows = _ascii_rows(text)
    assert set(rows) == {"start", "double", "square", "total"}
    assert rows["start"] < rows["double"] == rows["square"] < rows["total"]
    assert "double --> total" in text and "square --> total" in text


def test_composed_runnable_draws_its_steps_and_branches() -> None:
    """A sequence with a parallel draws each step, the parallel's fan-out and fan-in, in
    order, as Mermaid and as text."""

    def shout(text: str) -> str:
        return text.upper()

    def count(text: str) -> int:
        return len(text)

    composed = (
        ScriptedChatModel(responses=["hi"]) | StrOutputParser()
        | RunnableParallel(loud=shout, n=count)
    )
    labels, edges = _mermaid(composed.draw_mermaid())
    fan_out, fan_in = "RunnableParallel<loud,n>Input", "RunnableParallel<loud,n>Output"
    assert sorted(labels) == sorted(
        ["ScriptedChatModel", "StrOutputParser", fan_out, fan_in, "shout", "count"]
    )
    assert edges == {
        ("ScriptedChatModel", "StrOutputParser"), ("StrOutputParser", fan_out),
        (fan_out, "shout"), (fan_out, "count"), ("shout", fan_in), ("count", fan_in),
    }
    rows = _ascii_rows(composed.draw_ascii())
    assert rows["ScriptedChatModel"] < rows["StrOutputParser"] < rows[fan_out]
    assert rows[fan_out] < rows["shout"] == rows["count"] < rows[fan_in]


def test_with_config_run_name_renames_the_drawn_node() -> None:
    """A step bound with ``run_name`` is drawn under that name."""
    composed = RunnableLambda(_ident).with_config(run_name="Docs") | StrOutputParser()
    labels, edges = _mermaid(composed.draw_mermaid())
    assert edges == {("Docs", "StrOutputParser")}


def _reachable(edges: set[tuple[str, str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for a, b in edges:
            if a == node and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def test_graph_inside_a_chain_is_wired_to_every_entry_and_exit() -> None:
    """Drawing ``prep | graph | finish`` leads from ``prep`` to each entry node and from each
    exit node to ``finish`` (directly or through a drawn input/output node)."""

    def prep(x: Any) -> Any:
        return x

    def finish(x: Any) -> Any:
        return x

    graph = (
        Graph()
        .add_node("left", _ident).add_node("right", _ident)
        .add_node("out_a", _ident).add_node("out_b", _ident)
        .add_edge("left", "out_a").add_edge("right", "out_b")
        .set_entry("left", "right").set_exit("out_a", "out_b")
    )
    labels, edges = _mermaid((RunnableLambda(prep) | graph | finish).draw_mermaid())
    assert {"prep", "left", "right", "out_a", "out_b", "finish"} <= set(labels)
    assert {"left", "right", "out_a", "out_b", "finish"} <= _reachable(edges, "prep")
    assert "finish" in _reachable(edges, "out_a")
    assert "finish" in _reachable(edges, "out_b")


def test_two_graphs_with_the_same_node_names_draw_separately() -> None:
    """Composing two graphs whose nodes share names draws both graphs' nodes: four boxes,
    one path through them, no made-up cycle."""

    def model_then_parse() -> Graph:
        return (
            Graph().add_node("model", _ident).add_node("parse", _ident)
            .add_edge("model", "parse").set_entry("model").set_exit("parse")
        )

    text = (model_then_parse() | model_then_parse()).draw_mermaid()
    labels, _ = _mermaid(text)
    assert sorted(labels) == ["model", "model", "parse", "parse"]
    assert len([line for line in text.splitlines() if "-->" in line]) == 3
