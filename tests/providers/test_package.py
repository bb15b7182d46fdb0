"""rillet.nodes.providers: one module per concern, each listing what it defines; no old paths."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import rillet.nodes
from rillet.nodes import providers
from rillet.runtime.exports import defined_in

MODULES = sorted(info.name for info in pkgutil.iter_modules(providers.__path__,
                                                            f"{providers.__name__}."))


def _sort_key(name: str) -> tuple[int, str]:
    """isort-style order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_the_package_lists_exactly_its_public_names_in_order() -> None:
    """``__all__`` names every public, non-module attribute of the package, sorted."""
    public = {n for n, v in vars(providers).items()
              if not n.startswith("_") and not isinstance(v, ModuleType)}
    assert sorted(public) == sorted(providers.__all__)
    assert providers.__all__ == sorted(providers.__all__, key=_sort_key)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_lists_what_it_defines(name: str) -> None:
    """A module's ``__all__`` is sorted and is exactly the public classes and functions it
    defines (nothing it merely imports) and its constants; its docstring says what it holds."""
    module = importlib.import_module(name)
    defined = {n for n, v in vars(module).items()
               if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
               and defined_in(v) == name}
    assert module.__all__ == sorted(module.__all__)
    assert defined == {n for n in module.__all__ if not n.isupper()}
    assert module.__doc__ and len(module.__doc__.strip()) > 80


def test_rillet_nodes_exports_the_same_objects() -> None:
    """The names ``rillet.nodes`` exported before the split are the package's objects."""
    for name in ["AnthropicChatModel", "OpenAIChatModel", "OpenAIEmbeddings", "ProviderError"]:
        assert getattr(rillet.nodes, name) is getattr(providers, name)
        assert name in rillet.nodes.__all__


@pytest.mark.parametrize("old", ["http", "openai", "anthropic", "sse", "tool_schema"])
def test_the_flat_modules_are_gone(old: str) -> None:
    """No shim stays behind at the old flat paths: each name has one home."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"rillet.nodes.{old}")
