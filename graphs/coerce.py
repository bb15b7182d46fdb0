"""Coercion: what ``|``, dict values and ``Graph`` nodes turn into runnables.

>>> from rillet.graphs.coerce import coerce_to_runnable
>>> type(coerce_to_runnable(lambda x: x)).__name__
'RunnableLambda'
>>> type(coerce_to_runnable({"a": lambda x: x})).__name__
'RunnableParallel'
"""

from __future__ import annotations

import inspect
from typing import Any

from rillet.graphs.base import Runnable

__all__ = ["coerce_to_runnable"]


def coerce_to_runnable(thing: Any) -> Runnable[Any, Any]:
    """Turn a composition operand into a runnable.

    - a runnable stays itself; a dict becomes a ``RunnableParallel`` (values coerced);
    - a generator or async generator function becomes a ``RunnableGenerator``: it receives
      the *input stream* and yields outputs;
    - any other callable becomes a ``RunnableLambda``: it receives the whole input.

    Raises:
        TypeError: for anything else, naming what was given.
    """
    from rillet.graphs.lambdas import RunnableGenerator, RunnableLambda, _unwrap
    from rillet.graphs.parallel import RunnableParallel

    if isinstance(thing, Runnable):
        return thing
    if isinstance(thing, dict):
        return RunnableParallel(thing)
    target = _unwrap(thing)
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        return RunnableGenerator(thing)
    if callable(thing):
        return RunnableLambda(thing)
    raise TypeError(
        f"expected a Runnable, a callable or a dict to compose, got "
        f"{type(thing).__name__}: {thing!r:.80}"
    )
