"""What the command line needs besides argparse: finding ``module:attr``, showing and recording
events.

``load_target("app.py:chain")`` or ``load_target("myapp.chains:joke")`` imports the module (the
current directory first on ``sys.path``, as ``python -m`` does) and follows the dotted
attribute; :func:`load_runnables` is the same for the commands that serve graphs by name
(``serve``, ``worker``), so every command finds the same modules. :func:`format_event` turns one ``astream_events`` dict into one readable line,
indented by nesting depth::

      0.000s  start   chain       RunnableSequence      {'topic': 'parrot'}
      0.004s    chunk chat_model  ScriptedChatModel     'Why'

>>> format_event({"event": "on_parser_stream", "name": "StrOutputParser", "parent_ids": ["r"],
...               "data": {"chunk": "Hi"}}, 0.25)
"   0.250s    chunk  parser      StrOutputParser       'Hi'"
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs

from rillet.runtime.engine.protocols import Launchable
from rillet.runtime.errors import WireFormatError
from rillet.runtime.events.filters import FILTER_KEYS, EventFilter

__all__ = [
    "TargetError",
    "UsageError",
    "add_filter_flags",
    "chunk_text",
    "filter_options",
    "first_error",
    "format_event",
    "load_runnables",
    "load_target",
    "open_event_recorder",
    "register_component_types",
    "short",
]

_PHASES = {"start": "start", "stream": "chunk", "end": "end", "error": "error"}


class TargetError(Exception):
    """``module:attr`` does not name something loadable; the message says what is wrong."""


class UsageError(Exception):
    """Bad arguments: printed as ``rillet: error: ...`` with exit code 2."""


def load_target(spec: str) -> Any:
    """The object ``spec`` (``module:attr`` or ``path/to/file.py:attr``) names.

    Raises:
        TargetError: a malformed spec, a module that fails to import, or a missing attribute.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"expected module:attr (e.g. myapp.chains:joke or app.py:chain), "
                          f"got {spec!r}")
    if module_name.endswith(".py") or os.sep in module_name:
        module = _load_file(module_name)
    else:
        # The cwd first, as `python -m` has it: the console script's sys.path lacks it.
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                raise TargetError(f"cannot import module {module_name!r}: {error} (looked in "
                                  f"{os.getcwd()} and on sys.path)") from error
            raise TargetError(f"importing {module_name} failed: {error}") from error
        except Exception as error:
            raise TargetError(f"importing {module_name} failed: {type(error).__name__}: "
                              f"{error}") from error
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            names = sorted(n for n in vars(value) if not n.startswith("_"))[:20]
            raise TargetError(f"{module_name}:{attr}: {part!r} not found; it has {names}")
        value = getattr(value, part)
    return value


def _load_file(filename: str) -> Any:
    path = Path(filename)
    if not path.is_file():
        raise TargetError(f"no such file: {filename}")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise TargetError(f"importing {filename} failed: {type(error).__name__}: "
                          f"{error}") from error
    return module


def load_runnables(spec: str, name: str | None = None) -> dict[str, Any]:
    """``{name: runnable}`` for ``spec``: a dict of runnables as it is, or one runnable named
    ``name`` (default: the attribute's last part, ``myapp:chains.joke`` -> ``"joke"``).

    Raises:
        TargetError: as :func:`load_target`, or ``spec`` names something that is not a
            runnable or a dict of them.
    """
    target = load_target(spec)
    if isinstance(target, Mapping):
        named = dict(target)
    else:
        named = {name or spec.rpartition(":")[2].rpartition(".")[2]: target}
    if not named:
        raise TargetError(f"{spec} is an empty dict: nothing to serve")
    for key, runnable in named.items():
        if not isinstance(runnable, Launchable):
            raise TargetError(f"{spec} must be a runnable or a dict of runnables; {key!r} is a "
                              f"{type(runnable).__name__}")
    return named


def short(value: Any, width: int = 60) -> str:
    """A one-line preview of a value: text content for messages, a clipped repr otherwise."""
    content = getattr(value, "content", None)
    if content is None and isinstance(value, dict) and "__type__" in value:
        content = value.get("content")  # a remote message sent as its fields
    text = repr(content if isinstance(content, str) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def chunk_text(chunk: Any) -> str:
    """How ``rillet run`` prints an output chunk: text as it is, anything else on a line."""
    if isinstance(chunk, str):
        return chunk
    content = getattr(chunk, "content", None)
    if isinstance(content, str):
        return content
    return f"{chunk!r}\n"


def format_event(event: dict[str, Any], elapsed: float) -> str:
    """One readable line for an ``astream_events`` dict; ``elapsed`` seconds since the start."""
    name = str(event.get("event", "?"))
    if name == "on_custom_event":
        phase, kind = "custom", "custom"
    else:
        stem, _, last = name.removeprefix("on_").rpartition("_")
        phase, kind = _PHASES.get(last, last), stem
    data = event.get("data") or {}
    if not isinstance(data, dict):
        detail = short(data)
    elif "error" in data:
        error = data["error"]
        kind_name = getattr(error, "type", None) or type(error).__name__
        detail = f"{kind_name}: {getattr(error, 'message', None) or error}"
    elif "chunk" in data:
        detail = short(data["chunk"])
    elif "output" in data:
        detail = "-> " + short(data["output"])
    elif "input" in data:
        detail = short(data["input"])
    else:
        detail = ""
    depth = "  " * len(event.get("parent_ids") or ())
    return f"{elapsed:8.3f}s  {depth}{phase:<6} {kind:<11} {event.get('name', '?'):<21} {detail}"


@asynccontextmanager
async def open_event_recorder(path: str | None, run_id: str,
                              graphs: dict[str, Any] | None = None) -> AsyncIterator[Any]:
    """``async with open_event_recorder(path, run_id) as record``: ``await record(event)``
    appends ``event`` to an event log at ``path`` (``rillet replay`` reads it); no path: ``None``.
    ``graphs`` (``{name: graph_tree(runnable)}``) go in the header for ``rillet view``.

    Raises:
        UsageError: ``rillet.runtime.events.eventlog`` is not installed.
    """
    if path is None:
        yield None
        return
    try:
        from rillet.runtime.events.eventlog import encode_event
        from rillet.runtime.wire.logfile import open_log_writer
        from rillet.runtime.wire.sse import sendable
    except ImportError:
        raise UsageError("--log needs rillet.runtime.events.eventlog, which this installation lacks") from None

    header = {"run_id": run_id, **({"graphs": graphs} if graphs else {})}
    async with open_log_writer(path, header=header) as writer:

        async def write(event: Any) -> None:
            try:
                tree = encode_event(event)
            except WireFormatError:
                # A value of no registered wire type: record its plain description instead
                # of losing the event (``rillet replay`` shows it the same way).
                tree = encode_event(attrs.evolve(event, data=sendable(dict(event.data))))
            await writer.write(tree)

        yield write


def first_error(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` inside ``error`` (nurseries wrap errors in groups)."""
    if isinstance(error, kind):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = first_error(inner, kind)
            if found is not None:
                return found
    return None


def register_component_types() -> None:
    """Import ``nodes`` so logs and servers' messages and prompt values decode as themselves."""
    try:
        import rillet.nodes  # noqa: F401 - registers its wire types as a side effect
    except ImportError:
        pass


def _names(text: str) -> list[str]:
    """A filter flag's value: one name or a comma-separated list (``chat_model,parser``)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a name or a comma-separated list, got "
                                         f"{text!r}")
    return names


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    """The six event filter flags, each taking a comma-separated list or repeated."""
    for key in FILTER_KEYS:
        verb, _, what = key.partition("_")
        parser.add_argument(
            f"--{key.replace('_', '-')}", dest=key, action="extend", type=_names,
            metavar="A,B",
            help=f"{verb} events of runs with these {what} (comma-separated or repeated)"
            if what != "types" else
                 f"{verb} events of runs of these kinds: chain, chat_model, prompt, parser, "
                 f"retriever, tool (comma-separated or repeated)")


def filter_options(args: argparse.Namespace) -> dict[str, Any]:
    """The filter flags given, checked once by the one event filter every API uses."""
    options = {key: getattr(args, key) for key in FILTER_KEYS if getattr(args, key, None)}
    return dict(EventFilter.from_options(options).options())
