"""Public names report public paths (as trio's do), and still pickle and travel the wire."""

from __future__ import annotations

import pickle

import pytest

import rillet.graphs
import rillet.nodes
import rillet.runtime
import rillet.runtime.lowlevel
from rillet.runtime.exports import defined_in
from rillet.runtime.wire.codec import decode_value, encode_value


@pytest.mark.parametrize(("obj", "path", "home"), [
    (rillet.graphs.RunnableLambda, "rillet.graphs.RunnableLambda", "rillet.graphs.lambdas"),
    (rillet.graphs.chain, "rillet.graphs.chain", "rillet.graphs.lambdas"),
    (rillet.runtime.Worker, "rillet.runtime.Worker", "rillet.runtime.engine.worker"),
    (rillet.runtime.ConfigError, "rillet.runtime.ConfigError", "rillet.runtime.errors"),
    (rillet.runtime.lowlevel.RunConfig, "rillet.runtime.lowlevel.RunConfig",
     "rillet.runtime.engine.config"),
    (rillet.nodes.AIMessage, "rillet.nodes.AIMessage", "rillet.nodes.messages.classes"),
    (rillet.nodes.StrOutputParser, "rillet.nodes.StrOutputParser", "rillet.nodes.parsers"),
])
def test_a_public_name_reports_its_public_path(obj: type, path: str, home: str) -> None:
    """``__module__`` is the package that exports the name; ``defined_in`` the module that
    defines it."""
    assert f"{obj.__module__}.{obj.__qualname__}" == path
    assert defined_in(obj) == home


def test_reprs_of_classes_show_the_public_path() -> None:
    assert repr(rillet.graphs.RunnableLambda) == "<class 'rillet.graphs.RunnableLambda'>"


def test_rewritten_classes_and_their_instances_pickle() -> None:
    """Pickle finds a class under its public path; instances round-trip."""
    assert pickle.loads(pickle.dumps(rillet.graphs.RunnableLambda)) is rillet.graphs.RunnableLambda
    assert b"rillet.graphs" in pickle.dumps(rillet.graphs.RunnableLambda)
    message = rillet.nodes.AIMessage(content="hi", id="m1")
    assert pickle.loads(pickle.dumps(message)) == message
    lam = pickle.loads(pickle.dumps(rillet.graphs.RunnableLambda(abs)))
    assert lam.invoke(-3) == 3
    error = pickle.loads(pickle.dumps(rillet.runtime.ConfigError(
        key="tags", expected="a list of strings", got=3)))
    assert str(error) == "config['tags'] must be a list of strings, got int: 3"


def test_the_wire_still_tags_types_by_class_name() -> None:
    """The wire registry is keyed by class name, so the rewrite changes nothing on the wire."""
    message = rillet.nodes.AIMessage(content="hi", id="m1")
    tree = encode_value(message)
    assert tree["__rillet__"] == "AIMessage"
    assert decode_value(tree) == message
