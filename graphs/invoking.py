"""The invoke path: ``invoke``/``ainvoke``/``batch`` hand each step the previous step's whole
output, as LangChain's ``invoke`` does, and pay for no streaming nobody reads.

No actors, no channels, no system task: the caller's task runs the runnable's
:meth:`~rillet.graphs.Runnable._ainvoke_in` — a sequence runs its steps one after the other, a
parallel (and a graph's independent nodes) run concurrently in a nursery that returns a value
(nothing yields to the caller from inside it), and a leaf runs its whole-input hook
(:meth:`~rillet.graphs.Runnable._ainvoke_whole`): a chat model takes its non-streaming path
unless somebody listens for its tokens, a parser parses the whole text once, a generator step
gets a one-chunk input stream and its outputs are added up.

Events are those of LangChain's invoke: every run starts with its whole input and ends with its
output (a nested run also with its input); nothing streams except a chat model whose run is
watched, which then streams its tokens as it does under LangChain's ``astream_events``. Errors
are reported on the node that raised them and every enclosing run, and reach the caller as the
original exception with ``rillet_node``.

>>> from rillet.graphs import RunnableLambda
>>> (RunnableLambda(lambda x: x + 1) | (lambda x: x * 2)).invoke(3)
8
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from rillet.graphs.slots import Slot
from rillet.runtime import Accumulator, current_scope
from rillet.runtime.lowlevel import (
    DELTA,
    RunConfig,
    RunScope,
    RunState,
    annotate_error,
    current_variable,
    sole_error,
)

if TYPE_CHECKING:
    from rillet.graphs.base import Runnable

__all__ = ["accumulate", "gather", "invoke_hooks", "invoke_leaf", "invoke_root", "invoked", "one_chunk",
           "reraise"]

_current = current_variable()


async def invoke_hooks(runnable: Runnable[Any, Any], input: object, ctx: RunScope) -> Any:
    """A leaf's default invoked work: the hook it overrides, the outputs added up (a transform
    gets a one-chunk stream)."""
    from rillet.graphs.base import Runnable

    cls = type(runnable)
    if cls._ainvoke is not Runnable._ainvoke:
        return await runnable._ainvoke(input, ctx)
    if cls._astream is not Runnable._astream:
        outputs = runnable._astream(input, ctx)
    else:
        outputs = runnable._atransform(one_chunk(input), ctx)
    return runnable.finalize(await accumulate(outputs, runnable.output_mode(DELTA)))


async def invoke_root(runnable: Runnable[Any, Any], input: object,
                      config: RunConfig | Mapping[str, Any] | None) -> Any:
    """One invoked run of ``runnable``; a child of the current run when called inside one.
    A dict ``config`` is checked here (``ConfigError``), as :meth:`Runnable.launch` does."""
    cfg = RunConfig.from_dict(config)
    parent = current_scope()
    # EventBus objects in config["callbacks"] subscribe this run (and its children).
    state = parent.state if parent is not None else RunState(cfg.callbacks)
    state.launched()
    try:
        return await runnable._ainvoke_in(input, Slot(state=state, parent=parent, is_root=True,
                                                      config=cfg))
    finally:
        state.landed()


async def invoke_leaf(runnable: Runnable[Any, Any], input: Any, slot: Slot) -> Any:
    """A leaf's invoked run: its whole-input hook, with the run current while it works."""
    scope = _scope(runnable, slot, metadata=runnable._node_metadata())
    token = _current.set(scope)
    try:
        await scope.start(input)
        output = await runnable._ainvoke_whole(input, scope)
        await scope.finish(output)
        return output
    except BaseException as error:
        await _fail(error, scope)
        raise
    finally:
        _current.reset(token)


async def invoked(runnable: Runnable[Any, Any], input: Any, slot: Slot,
                  body: Callable[[RunScope], Awaitable[Any]]) -> Any:
    """A composite's invoked run: start with ``input``, end with what ``body(scope)`` returns
    (it invokes the children in slots of ``scope``)."""
    scope = _scope(runnable, slot)
    try:
        await scope.start(input)
        output = await body(scope)
        await scope.finish(output)
        return output
    except BaseException as error:
        await _fail(error, scope)
        raise


def _scope(runnable: Runnable[Any, Any], slot: Slot,
           metadata: dict[str, Any] | None = None) -> RunScope:
    scope = slot.make_scope(None, runnable, output_mode=runnable.output_mode(DELTA),
                            metadata=metadata)
    if scope.is_root:
        # Every run under this root starts with its whole input (no lazy chain starts), and
        # only a watched chat model streams (its tokens), as under LangChain's invoke.
        scope.invoked = True
        scope.streams = scope.streams and scope.kind == "chat_model"
    return scope


async def _fail(error: BaseException, scope: RunScope) -> None:
    if isinstance(error, trio.Cancelled):
        return
    annotate_error(error, scope)  # the innermost node's name wins
    with trio.CancelScope(shield=True):
        await scope.fail(error)  # a no-op for runs a child's failure already reported


async def gather(calls: Mapping[str, Callable[[], Awaitable[Any]]],
                 limit: int | None = None) -> dict[str, Any]:
    """Await every call concurrently (at most ``limit`` at once); results by key, in order.

    Raises:
        the first failure's own exception (the others are cancelled).
    """
    results: dict[str, Any] = {}
    if len(calls) == 1:
        (key, call), = calls.items()
        results[key] = await call()
        return results
    limiter = trio.CapacityLimiter(limit) if limit and limit < len(calls) else None

    async def one(key: str, call: Callable[[], Awaitable[Any]]) -> None:
        if limiter is None:
            results[key] = await call()
            return
        async with limiter:
            results[key] = await call()

    try:
        async with trio.open_nursery() as nursery:
            for key, call in calls.items():
                nursery.start_soon(one, key, call)
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is None:
            raise
        reraise(error)
    return {key: results[key] for key in calls}


def reraise(error: BaseException) -> NoReturn:
    """Raise ``error`` out of an ``except`` block keeping its own context (the node's cause
    chain), not the exception group it was found in."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context


async def accumulate(outputs: AsyncIterator[Any], mode: str = DELTA) -> Any:
    """The added-up output of a stream (``None`` when it is empty); the stream is closed."""
    acc = Accumulator(mode)
    async with aclosing(outputs) as items:  # type: ignore[type-var]
        async for item in items:
            acc.add(item)
    return acc.value


async def one_chunk(value: Any) -> AsyncIterator[Any]:
    """A one-chunk input stream: how a streaming node receives a whole value."""
    yield value
