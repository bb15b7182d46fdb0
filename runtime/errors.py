"""Errors raised by rillet, under one base class with the facts as attributes.

Hierarchy::

    RilletError
    ├── NodeInputError (also TypeError)     a node got a value it cannot handle
    ├── WireFormatError (also ValueError)   bytes that do not decode to a rillet value or event
    │   └── TruncatedLogError               an event log ends in the middle of a record
    ├── WorkerBusy                          a worker's submission queue is full
    └── RemoteError                         a remote run failed on the server

Trio's channel errors are translated into these only at the public boundary.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NodeInputError",
    "RemoteError",
    "RilletError",
    "TruncatedLogError",
    "WireFormatError",
    "WorkerBusy",
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


class WireFormatError(RilletError, ValueError):
    """Bytes that do not decode to a rillet value or event."""


class TruncatedLogError(WireFormatError):
    """An event log is malformed or ends inside a record.

    ``offset`` is the byte offset of the first bad record; ``events`` holds every complete
    event decoded before it, so nothing already written is lost.
    """

    def __init__(self, message: str, *, offset: int, events: list[Any]) -> None:
        self.offset, self.events = offset, events
        super().__init__(message)


class WorkerBusy(RilletError):
    """A worker's queue of waiting submissions is full; try again later."""


class RemoteError(RilletError):
    """A run on a remote server failed; ``type`` and ``message`` describe the original error."""

    def __init__(self, type: str, message: str, *, status: int | None = None) -> None:
        self.type, self.message, self.status = type, message, status
        super().__init__(f"{type}: {message}" if status is None else f"HTTP {status}: {type}: {message}")
