"""The tree keeps its shape: imports point down the layers, modules stay small, and nothing is
imported under a second, top-level name (README, "Architecture")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Where each installed package lives in the repository (pyproject's package-dir).
PACKAGE_DIRS = {"rillet": ROOT / "runtime" / "_facade", "rillet.runtime": ROOT / "runtime",
                "rillet.graphs": ROOT / "graphs", "rillet.nodes": ROOT / "nodes"}
#: runtime's floors, lowest first: a subpackage may import its own floor and those below it.
#: ``lowlevel`` gathers the extension-author API from the floors below (not scale-out).
RUNTIME_FLOORS = [
    {"errors", "logs", "chunks", "extras", "exports"},
    {"wire"},
    {"events"},
    {"engine"},
    {"serve", "scaleout"},
    {"lowlevel"},
    {"cli"},
]
#: What graphs and nodes may import from runtime: its public package, the extension-author API
#: and the errors.
ENGINE_API = {"rillet.runtime", "rillet.runtime.lowlevel", "rillet.runtime.errors"}
#: Imports that point up on purpose, each resolved on first use inside a function (a test below
#: checks that importing the importer does not import the target).
LAZY_UPWARD = {
    # RemoteRunnable moved to graphs; rillet.runtime.RemoteRunnable still resolves to it.
    ("rillet.runtime", "rillet.graphs.remote"),
}
MAX_LINES = 500
MAX_FLAT_RUNTIME_MODULES = 12


def _module_name(path: Path) -> str:
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda kv: -len(str(kv[1]))):
        if folder in path.parents or path.parent == folder:
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join([package, *parts])
    raise AssertionError(path)


def _sources() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            if package != "rillet" and "_facade" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _import_froms(name: str, path: Path) -> list[tuple[str, str]]:
    """``(module, imported name)`` of every ``from ... import`` in the module."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out += [(module, alias.name) for alias in node.names]
    return out


def _imports(name: str, path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    for module, imported in _import_froms(name, path):
        out |= {module, f"{module}.{imported}"}
    return {m for m in out if m.split(".")[0] in {"rillet", "runtime", "graphs", "nodes"}
            and (name, m.rpartition(".")[0]) not in LAZY_UPWARD and (name, m) not in LAZY_UPWARD}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["rillet", "runtime"] or len(parts) < 3:
        return None
    for level, names in enumerate(RUNTIME_FLOORS):
        if parts[2] in names:
            return level
    return None


SOURCES = _sources()


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_imports_point_down(name: str) -> None:
    """nodes -> graphs -> runtime, and inside runtime up its floors only; never a top-level
    ``runtime``/``graphs``/``nodes``."""
    bad = []
    for target in sorted(_imports(name, SOURCES[name])):
        top = target.split(".")[0]
        if top != "rillet":
            bad.append(f"{target} (a top-level name; import rillet.{target})")
            continue
        if name == "rillet" or target == "rillet":
            continue
        layer, other = name.split(".")[1], target.split(".")[1]
        if layer == "runtime" and other == "graphs":
            bad.append(target)
        if layer == "runtime" and other == "nodes" and not name.startswith("rillet.runtime.cli"):
            bad.append(target)
        if layer == "graphs" and other == "nodes":
            bad.append(target)
        mine, theirs = _floor(name), _floor(target)
        if mine is not None and theirs is not None and theirs > mine:
            bad.append(f"{target} (floor {theirs} above {name}'s floor {mine})")
        sides = {name.split(".")[2:3][0] if mine is not None else "",
                 target.split(".")[2:3][0] if theirs is not None else ""}
        if sides in ({"serve", "scaleout"}, {"lowlevel", "scaleout"}):
            bad.append(f"{target} (serve and scaleout stay independent; the CLI joins them)")
        if layer in ("graphs", "nodes") and other == "runtime" and target not in ENGINE_API \
                and target.rpartition(".")[0] not in ENGINE_API:
            bad.append(f"{target} (graphs and nodes use {sorted(ENGINE_API)} only)")
    assert not bad, f"{name} imports upward: {bad}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_private_name_crosses_a_package(name: str) -> None:
    """Nothing imports an ``_underscored`` name from another package or runtime subpackage,
    and runtime never reads one with ``getattr(x, "_name")``: layers talk through public,
    typed names (the engine's protocols)."""

    def home(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3] if parts[1:2] == ["runtime"] else parts[:2])

    bad = [f"{module}.{imported}" for module, imported in _import_froms(name, SOURCES[name])
           if imported.startswith("_") and not imported.startswith("__")
           and home(module) != home(name)]
    if name.startswith("rillet.runtime"):
        for node in ast.walk(ast.parse(SOURCES[name].read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)
                    and node.args[1].value.startswith("_")
                    and not node.args[1].value.startswith("__")):
                bad.append(f"{node.func.id}(..., {node.args[1].value!r}) at line {node.lineno}")
    assert not bad, f"{name} reaches for private names: {bad}"


def test_lazy_upward_imports_stay_lazy() -> None:
    """Importing ``rillet.runtime`` imports no ``rillet.graphs`` (the allowed upward import
    runs on first use only), and the lazy name still resolves."""
    code = ("import sys, rillet.runtime as r; assert 'rillet.graphs' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith('rillet.graphs')); "
            "from rillet.graphs import RemoteRunnable; assert r.RemoteRunnable is RemoteRunnable")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lowlevel_holds_what_graphs_and_nodes_use() -> None:
    """``rillet.runtime.lowlevel`` exports names that ``rillet.runtime`` does not, and each is
    used by graphs or nodes, or is a contract for other extensions (serving backends)."""
    import rillet.runtime
    import rillet.runtime.lowlevel

    lowlevel = set(rillet.runtime.lowlevel.__all__)
    assert not lowlevel & set(rillet.runtime.__all__)
    used = {imported for name, path in SOURCES.items()
            if name.startswith(("rillet.graphs", "rillet.nodes"))
            for module, imported in _import_froms(name, path)
            if module == "rillet.runtime.lowlevel"}
    assert lowlevel - used == {"RunService", "ServedRun"}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_modules_stay_small(name: str) -> None:
    """No module is over 500 lines (the aim is 50-400)."""
    lines = len(SOURCES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_runtime_holds_few_flat_modules() -> None:
    """runtime/ keeps at most 12 modules of its own; the rest live in named subpackages."""
    flat = sorted(p.name for p in (ROOT / "runtime").glob("*.py"))
    assert len(flat) <= MAX_FLAT_RUNTIME_MODULES, flat


def test_every_subpackage_says_what_it_holds_and_may_import() -> None:
    """Each runtime subpackage's docstring names what it holds and what it may import."""
    for init in sorted((ROOT / "runtime").glob("*/__init__.py")):
        if init.parent.name.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "Holds" in doc and "May import" in doc, init


def test_nothing_is_imported_under_a_top_level_name() -> None:
    """The checkout's runtime/, graphs/ and nodes/ never load as top-level packages."""
    stray = sorted(n for n in sys.modules if n.split(".")[0] in {"runtime", "graphs", "nodes"})
    assert not stray


def test_pyproject_installs_every_package() -> None:
    """Every folder with an ``__init__.py`` is listed in pyproject's packages (a plain
    ``pip install .`` copies only the listed ones)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    present = {name for name, path in SOURCES.items() if path.name == "__init__.py"}
    assert present == listed
