"""``rillet.errors`` reaches every error class and draws the whole tree."""

from __future__ import annotations

import importlib
import pkgutil

import rillet.errors
from rillet import graphs, nodes, runtime
from rillet.runtime.errors import RilletError


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    todo = [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _import_everything() -> None:
    for package in (runtime, graphs, nodes):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if "._" not in info.name and not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def test_every_rillet_error_is_exported_and_drawn() -> None:
    """Each public RilletError subclass anywhere in the tree is in ``rillet.errors.__all__``
    and named in its docstring's tree."""
    _import_everything()
    public = {cls for cls in _all_subclasses(RilletError)
              if cls.__module__.startswith("rillet.") and not cls.__name__.startswith("_")}
    exported = {getattr(rillet.errors, name) for name in rillet.errors.__all__}
    assert public | {RilletError} == exported
    doc = rillet.errors.__doc__ or ""
    for cls in exported:
        assert f" {cls.__name__}" in doc, cls.__name__


def test_all_is_sorted() -> None:
    assert rillet.errors.__all__ == sorted(rillet.errors.__all__)
