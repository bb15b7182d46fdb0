"""Docstring examples are tests too: every ``>>>`` example in rillet's modules runs."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import rillet
from rillet import graphs, nodes, runtime
from rillet.runtime.exports import defined_in


class _Finder(doctest.DocTestFinder):
    """Finds each example in the module that defines it, also for names whose ``__module__``
    a package rewrote to its public path (``rillet.graphs.RunnableLambda``): by default
    doctest would look for the class in the package and for its methods nowhere."""

    def _from_module(self, module: ModuleType | None, object: object) -> bool:
        if module is not None and inspect.isclass(object):
            return defined_in(object) == module.__name__
        if module is not None and inspect.isfunction(object):
            return module.__dict__ is object.__globals__
        return bool(super()._from_module(module, object))  # type: ignore[misc]


def _modules() -> list[str]:
    names = ["rillet", "rillet.errors"]
    for package in (runtime, graphs, nodes):
        names.append(package.__name__)
        names += [info.name for info in pkgutil.walk_packages(package.__path__,
                                                               f"{package.__name__}.")
                  if "._" not in info.name and not info.name.endswith("__main__")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """The module's examples give the output they show."""
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _Finder().find(module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_facade_resolves_every_name_it_lists() -> None:
    """``rillet.<name>`` works for every name in ``rillet.__all__``, and nothing else."""
    assert sorted(rillet.__all__) == sorted([*rillet._HOME, "__version__"])
    for name in rillet.__all__:
        assert getattr(rillet, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = rillet.nope  # type: ignore[attr-defined]
