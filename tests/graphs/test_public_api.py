"""Each package lists exactly its public names in a sorted ``__all__`` (STYLE.md §1)."""

from __future__ import annotations

from types import ModuleType

import pytest

from rillet import graphs, runtime


def _sort_key(name: str) -> tuple[int, str]:
    """isort-style order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("package", [runtime, graphs], ids=lambda p: p.__name__)
def test_all_lists_exactly_the_public_names(package: ModuleType) -> None:
    """``__all__`` names every public, non-module attribute of the package, and no other."""
    public = {n for n, v in vars(package).items()
              if not n.startswith("_") and not isinstance(v, ModuleType)}
    assert sorted(public) == sorted(package.__all__)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("package", [runtime, graphs], ids=lambda p: p.__name__)
def test_all_is_sorted(package: ModuleType) -> None:
    """``__all__`` is kept sorted (isort style: constants, classes, then functions)."""
    assert package.__all__ == sorted(package.__all__, key=_sort_key)


def test_design_contract_names_are_exported() -> None:
    """The names DESIGN.md promises from ``graphs`` are importable from it."""
    for name in ["Runnable", "RunnableLambda", "RunnablePassthrough", "RunnableParallel",
                 "RunnableSequence", "RunnableBranch", "Graph", "chain"]:
        assert name in graphs.__all__
