"""Docstring examples are tests too: every ``>>>`` example in runtime, graphs and nodes runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import graphs
import nodes
import runtime


def _modules() -> list[str]:
    names = []
    for package in (runtime, graphs, nodes):
        names.append(package.__name__)
        names += [info.name for info in pkgutil.iter_modules(package.__path__,
                                                              f"{package.__name__}.")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """The module's examples give the output they show."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
