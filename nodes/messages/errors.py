"""The errors a message raises: a field given a value it cannot hold, a value that is no message.

Both are :class:`~rillet.runtime.errors.RilletError` and :class:`TypeError`, carry their facts
as attributes, and pickle with them (process pools, worker boundaries):

>>> import pickle
>>> error = MessageCoercionError(got=5, reason="not a message")
>>> pickle.loads(pickle.dumps(error)).reason
'not a message'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rillet.runtime.errors import RilletError

__all__ = ["MessageCoercionError", "MessageFieldError"]


class MessageFieldError(RilletError, TypeError):
    """A message field was given a value it cannot hold.

    >>> str(MessageFieldError(message_class="HumanMessage", field="content",
    ...                       expected="str or list of str/dict blocks", got=5))
    'HumanMessage.content expected str or list of str/dict blocks, got int: 5'
    """

    def __init__(self, *, message_class: str, field: str, expected: str, got: object) -> None:
        self.message_class, self.field = message_class, field
        self.expected, self.got = expected, got
        super().__init__(
            f"{message_class}.{field} expected {expected}, got {type(got).__name__}: {got!r:.80}"
        )

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), vars(self))


class MessageCoercionError(RilletError, TypeError):
    """A value cannot be turned into a message; ``reason`` says why.

    >>> str(MessageCoercionError(got=("robot", "hi"), reason="unknown role 'robot'"))
    "cannot make a message from tuple ('robot', 'hi'): unknown role 'robot'"
    """

    def __init__(self, *, got: object, reason: str) -> None:
        self.got, self.reason = got, reason
        super().__init__(f"cannot make a message from {type(got).__name__} {got!r:.80}: {reason}")

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), vars(self))


def _rebuild(cls: Callable[..., Exception], facts: Mapping[str, object]) -> Exception:
    return cls(**facts)  # errors are rebuilt from their keyword-only facts when unpickled

