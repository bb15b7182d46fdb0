"""Errors raised by the engine, under one base class with the facts as attributes.

:mod:`rillet.errors` re-exports these with the errors of :mod:`rillet.graphs` and
:mod:`rillet.nodes` and draws the whole tree; the engine's part::

    RilletError
    ├── NodeInputError (also TypeError)      a node got a value it cannot handle
    ├── ConfigError (also TypeError, ValueError)  a run config key of the wrong type or value
    ├── WireFormatError (also ValueError)    bytes that do not decode to a rillet value or event
    │   └── TruncatedLogError                an event log is damaged or ends inside a record
    ├── JsonPatchError (also ValueError)     a JSON-patch op that cannot be applied
    ├── WorkerBusy                           a worker's submission queue is full
    ├── RunCancelled                         a worker's run was cancelled before it finished
    ├── RemoteError                          a remote run failed on the server
    ├── RequestRejected                      an HTTP request refused, with its status
    ├── ClientGone                           the HTTP client left before its request arrived
    ├── StoreUnavailable                     the scale-out queue or event store is unreachable
    ├── RunSuperseded                        a later attempt of a queued run took over
    ├── RunNotFound (also LookupError)       no event log for this run id
    ├── MissingExtraError (also ImportError) an optional extra is not installed
    ├── AsyncioRequiredError (also RuntimeError)  a step's asyncio code ran on plain trio
    └── HostClosed (also RuntimeError)       an asyncio loop's trio guest stopped

Trio's channel errors are translated into these only at the public boundary.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "AsyncioRequiredError",
    "ClientGone",
    "ConfigError",
    "HostClosed",
    "JsonPatchError",
    "MissingExtraError",
    "NodeInputError",
    "RemoteError",
    "RequestRejected",
    "RilletError",
    "RunCancelled",
    "RunNotFound",
    "RunSuperseded",
    "StoreUnavailable",
    "TruncatedLogError",
    "WireFormatError",
    "WorkerBusy",
    "shown",
]


class RilletError(Exception):
    """Base class of every error rillet raises on purpose."""


class NodeInputError(RilletError, TypeError):
    """A node received a value it cannot handle.

    >>> str(NodeInputError(node="parser", expected="str or AIMessageChunk", got={"a": 1}))
    "node 'parser' expected str or AIMessageChunk, got dict: {'a': 1}"
    """

    def __init__(self, *, node: str, expected: str, got: object) -> None:
        self.node, self.expected, self.got = node, expected, got
        super().__init__(
            f"node {node!r} expected {expected}, got {type(got).__name__}: {got!r:.80}"
        )

    def __reduce__(self) -> Any:
        return (_rebuild_node_input_error, (self.node, self.expected, self.got))


def _rebuild_node_input_error(node: str, expected: str, got: object) -> NodeInputError:
    return NodeInputError(node=node, expected=expected, got=got)


class ConfigError(RilletError, TypeError, ValueError):
    """A run config that cannot be used: ``key`` names the bad key (``None``: the whole config),
    ``expected`` says what it must be, ``got`` is what arrived. The same text in Python and
    over HTTP (where it is a 422).

    A TypeError and a ValueError both, so code that caught either from LangChain keeps working.

    >>> str(ConfigError(key="tags", expected="a list of strings", got=3))
    "config['tags'] must be a list of strings, got int: 3"
    """

    def __init__(self, *, key: str | None, expected: str, got: object, where: str = "config",
                 detail: str | None = None) -> None:
        self.key, self.expected, self.got, self.where = key, expected, got, where
        place = where if key is None else f"{where}[{key!r}]"
        super().__init__(detail or f"{place} must be {expected}, got {shown(got)}")

    def __reduce__(self) -> Any:
        return (_rebuild_config_error, (self.key, self.expected, self.got, self.where,
                                        str(self)))


def _rebuild_config_error(key: str | None, expected: str, got: object, where: str,
                          text: str) -> ConfigError:
    return ConfigError(key=key, expected=expected, got=got, where=where, detail=text)


def shown(value: object) -> str:
    """``type: repr`` of a value for an error message, cut at 80 characters; safe for values
    whose repr fails or is huge (a 10,000-digit int).

    >>> shown([1, 2])
    'list: [1, 2]'
    """
    try:
        text = reprlib.repr(value)
    except Exception:  # e.g. an int too long to print, a broken __repr__
        text = f"<a {type(value).__name__} that cannot be shown>"
    return f"{type(value).__name__}: {text:.80}"


class WireFormatError(RilletError, ValueError):
    """Bytes that do not decode to a rillet value or event."""


class TruncatedLogError(WireFormatError):
    """An event log is damaged (a checksum fails, a record is malformed) or ends inside a record.

    ``offset`` is the byte offset of the first bad record; ``events`` holds every complete
    event decoded before it, so nothing already written is lost; ``skipped`` counts the bytes
    from ``offset`` to the end of the log, which were not read.
    """

    def __init__(self, message: str, *, offset: int, events: list[Any],
                 skipped: int = 0) -> None:
        self.offset, self.events, self.skipped = offset, events, skipped
        super().__init__(message)


class WorkerBusy(RilletError):
    """A worker's queue of waiting submissions is full; try again later."""


class RemoteError(RilletError):
    """A run on a remote server failed; ``type`` and ``message`` describe the original error."""

    def __init__(self, type: str, message: str, *, status: int | None = None) -> None:
        self.type, self.message, self.status = type, message, status
        super().__init__(f"{type}: {message}" if status is None else f"HTTP {status}: {type}: {message}")


class RunCancelled(RilletError):
    """A run was cancelled before it finished; ``reason`` says by whom.

    >>> str(RunCancelled("r1", reason="cancelled by its caller"))
    "run 'r1' did not finish: cancelled by its caller"
    """

    def __init__(self, run_id: str, *, reason: str) -> None:
        self.run_id, self.reason = run_id, reason
        super().__init__(f"run {run_id!r} did not finish: {reason}")


class JsonPatchError(RilletError, ValueError):
    """An op that cannot be applied: ``op`` and ``path`` name it, ``reason`` says why.

    >>> str(JsonPatchError(op="remove", path="/a/b", reason="no member 'b' in the object at '/a'"))
    "cannot remove '/a/b': no member 'b' in the object at '/a'"
    """

    def __init__(self, *, op: str, path: str, reason: str) -> None:
        self.op, self.path, self.reason = op, path, reason
        super().__init__(f"cannot {op} {path!r}: {reason}")


class StoreUnavailable(RilletError):
    """The queue or event store cannot be reached right now (Redis down, timed out, loading).

    Transient: the worker and the client retry with backoff; the message names the store.
    """


class RunSuperseded(RilletError):
    """A write was refused: a later attempt of the run began, or the run already ended.

    The writer has lost the run: it must stop it and must not acknowledge it.
    """

    def __init__(self, run_id: str, attempt: int, reason: str) -> None:
        self.run_id, self.attempt, self.reason = run_id, attempt, reason
        super().__init__(f"attempt {attempt} of run {run_id!r} was superseded: {reason}")


class RunNotFound(RilletError, LookupError):
    """No event log for this run: it expired, or the run id is unknown."""


class RequestRejected(RilletError):
    """An HTTP request refused with ``status``; ``kind`` names the problem for clients."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status, self.kind, self.message = status, kind, message
        super().__init__(f"{status} {kind}: {message}")


class ClientGone(RilletError):
    """The client disconnected before its request body arrived."""


class MissingExtraError(RilletError, ImportError):
    """A feature needs an optional extra that is not installed; the message says what to run.

    >>> str(MissingExtraError(extra="serve", what="rillet serve", module="starlette"))
    "rillet serve needs the serve extra: pip install 'rillet[serve]'"
    """

    def __init__(self, *, extra: str, what: str, module: str) -> None:
        self.extra, self.what = extra, what
        super().__init__(f"{what} needs the {extra} extra: pip install 'rillet[{extra}]'",
                         name=module)


class AsyncioRequiredError(RilletError, RuntimeError):
    """A node's ``async def`` function awaited asyncio code, but the run is on plain trio.

    Called from asyncio (``asyncio.run``, FastAPI, Jupyter), such functions run on the caller's
    loop; called from trio, or through a sync method (which runs on rillet's own trio thread),
    they cannot.

    >>> str(AsyncioRequiredError(node="fetch", function="fetch_user"))[:72]
    "node 'fetch': fetch_user awaited asyncio code, but this run is on plain "
    """

    def __init__(self, *, node: str, function: str) -> None:
        self.node, self.function = node, function
        super().__init__(
            f"node {node!r}: {function} awaited asyncio code, but this run is on plain trio; "
            f"call the chain from asyncio with `await chain.ainvoke(...)` / `chain.astream(...)` "
            f"(then asyncio steps run on your loop), or write the step with trio or anyio")


class HostClosed(RilletError, RuntimeError):
    """An asyncio loop's trio guest stopped (the loop is closing) while work was pending."""
