"""The messages and partial_json packages: one sorted ``__all__`` each, every class in one home."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import rillet.nodes
import rillet.nodes.messages
import rillet.nodes.partial_json
from rillet.runtime.exports import defined_in

PACKAGES = [rillet.nodes.messages, rillet.nodes.partial_json]


def _submodules(package: ModuleType) -> list[ModuleType]:
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_package_lists_exactly_its_public_names_sorted(package: ModuleType) -> None:
    """``__all__`` is sorted and is exactly the package's public non-module names."""
    public = {name for name, value in vars(package).items()
              if not name.startswith("_") and not isinstance(value, ModuleType)}
    assert package.__all__ == sorted(package.__all__)
    assert sorted(public) == package.__all__


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_each_module_lists_what_it_defines(package: ModuleType) -> None:
    """Every submodule has a docstring and a sorted ``__all__`` naming what it defines."""
    for module in _submodules(package):
        assert module.__doc__, module.__name__
        assert module.__all__ == sorted(module.__all__), module.__name__
        defined = {name for name, value in vars(module).items()
                   if not name.startswith("_") and defined_in(value) == module.__name__}
        assert defined <= set(module.__all__), module.__name__
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_exported_class_and_function_has_one_home(package: ModuleType) -> None:
    """A package name is the very object its submodule defines, and no other submodule
    defines an object of that name: ``isinstance`` holds whichever path a caller imported."""
    homes: dict[str, str] = {}
    for module in _submodules(package):
        for name, value in vars(module).items():
            if defined_in(value) == module.__name__ and not name.startswith("_"):
                assert name not in homes, f"{name} is defined in {homes.get(name)} and {module}"
                homes[name] = module.__name__
    for name in package.__all__:
        value = getattr(package, name)
        if hasattr(value, "__module__") and callable(value):
            assert defined_in(value) == homes[name], name
            assert getattr(importlib.import_module(homes[name]), name) is value


def test_the_nodes_package_re_exports_the_same_message_classes() -> None:
    """``rillet.nodes.AIMessageChunk`` and ``rillet.nodes.messages.AIMessageChunk`` are one
    class, so chunks built through either add up and decode alike."""
    for name in rillet.nodes.messages.__all__:
        if hasattr(rillet.nodes, name):
            assert getattr(rillet.nodes, name) is getattr(rillet.nodes.messages, name), name
