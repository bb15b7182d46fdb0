"""Functions as runnables: ``RunnableLambda`` (whole input) and ``RunnableGenerator`` (stream).

How a function runs:

- ``async def f(x)`` is awaited on the run's loop — on the caller's asyncio loop when the caller
  runs asyncio, so it may await asyncio code; ``def f(x)`` runs in a worker thread, so a
  blocking call (an HTTP request, a file read) never stalls other runs. A sync function can call
  ``chain.invoke(...)``: the call goes back to the run's loop as a child run.
- a (async) generator function wrapped in ``RunnableLambda`` gets the whole input and streams
  its yields; piped bare (``chain | gen``) it becomes a ``RunnableGenerator`` and receives the
  *input stream*, yielding as it goes — both sync and async flavours work under ``astream``
  (LangChain raises for the sync one).
- a function that returns a runnable: that runnable is streamed on the same input, as a child run.
- a parameter named ``config`` receives the run's config (tags, metadata, configurable …).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import trio

from rillet.graphs.base import Runnable
from rillet.graphs.invoking import accumulate
from rillet.runtime.lowlevel import RunScope, await_user

__all__ = ["RunnableGenerator", "RunnableLambda", "chain"]

_END = object()


def _function_name(func: Callable[..., Any], default: str) -> str:
    name = getattr(func, "__name__", None)
    return default if name in (None, "<lambda>") else str(name)


def _unwrap(func: Any) -> object:
    """What decides the calling convention: the wrapped function of a partial, or the
    ``__call__`` of a callable object."""
    while isinstance(func, functools.partial):
        func = func.func
    if not inspect.isfunction(func) and not inspect.ismethod(func) and callable(func):
        call = getattr(type(func), "__call__", None)
        if call is not None and not inspect.isbuiltin(func):
            return call
    return func


def _wants_config(func: Callable[..., Any]) -> bool:
    try:
        return "config" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


class RunnableLambda(Runnable[Any, Any]):
    """A function of the whole input: ``RunnableLambda(len)``, or any callable in a chain.

    >>> RunnableLambda(lambda x: x["a"] + 1).invoke({"a": 1})
    2

    Args:
        func: sync or async function, or (async) generator function streaming its yields.
        afunc: an async variant used instead of ``func`` (kept for LangChain compatibility).
        name: run name (default: the function's ``__name__``, ``RunnableLambda`` for lambdas).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        afunc: Callable[..., Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"RunnableLambda expects a callable, got {type(func).__name__}")
        self.func = afunc or func
        self.name = name or _function_name(func, "RunnableLambda")
        self._config = _wants_config(self.func)
        target = _unwrap(self.func)
        self._async = inspect.iscoroutinefunction(target)
        self._agen = inspect.isasyncgenfunction(target)
        self._gen = inspect.isgeneratorfunction(target)

    def __repr__(self) -> str:
        return f"RunnableLambda({self.name})"

    def _args(self, input: object, ctx: RunScope) -> tuple[tuple[object, ...], dict[str, object]]:
        return (input,), ({"config": ctx.config.to_dict()} if self._config else {})

    async def _astream(self, input: Any, ctx: RunScope) -> AsyncGenerator[object, None]:
        args, kwargs = self._args(input, ctx)
        # aclosing: leaving early must run the user's generator's finally now, not at GC.
        if self._agen:
            async with aclosing(self.func(*args, **kwargs)) as items:
                async for item in items:
                    yield item
            return
        if self._gen:
            async with aclosing(_iterate_in_threads(self.func(*args, **kwargs))) as items:
                async for item in items:
                    yield item
            return
        if self._async:
            result = await await_user(self.func(*args, **kwargs), node=ctx.name, func=self.func)
        else:
            result = await trio.to_thread.run_sync(lambda: self.func(*args, **kwargs))
            if inspect.isawaitable(result):  # a sync wrapper handing back a coroutine
                result = await await_user(result, node=ctx.name, func=self.func)
        if isinstance(result, Runnable):
            async with result.astream(input) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        yield result


    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        # LangChain's invoke: a generator's yields added up; a returned runnable is invoked.
        args, kwargs = self._args(input, ctx)
        if self._agen:
            return await accumulate(self.func(*args, **kwargs))
        if self._gen:
            return await accumulate(_iterate_in_threads(self.func(*args, **kwargs)))
        if self._async:
            result = await await_user(self.func(*args, **kwargs), node=ctx.name, func=self.func)
        else:
            result = await trio.to_thread.run_sync(lambda: self.func(*args, **kwargs))
            if inspect.isawaitable(result):
                result = await await_user(result, node=ctx.name, func=self.func)
        if isinstance(result, Runnable):
            return await result.ainvoke(input)
        return result


class RunnableGenerator(Runnable[Any, Any]):
    """A generator function over the *input stream*: chunk in, chunk out.

    >>> async def upper(chunks):
    ...     async for text in chunks:
    ...         yield text.upper()
    >>> RunnableGenerator(upper).invoke("abc")
    'ABC'

    Sync generator functions (``def f(it): for x in it: yield ...``) run in a worker thread.
    """

    def __init__(self, transform: Callable[..., Any], *, name: str | None = None) -> None:
        target = _unwrap(transform)
        if not (inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target)):
            raise TypeError(
                f"RunnableGenerator expects a generator or async generator function, got "
                f"{_function_name(transform, type(transform).__name__)}"
            )
        self.func = transform
        self.name = name or _function_name(transform, "RunnableGenerator")
        self._config = _wants_config(transform)
        self._agen = inspect.isasyncgenfunction(target)

    def __repr__(self) -> str:
        return f"RunnableGenerator({self.name})"

    def _atransform(self, chunks: AsyncIterator[Any],
                    ctx: RunScope) -> AsyncGenerator[object, None]:
        # The user's own async generator is the node's output stream: no re-yield layer (the
        # actor closes it with aclosing). A sync one is driven from worker threads.
        kwargs = {"config": ctx.config.to_dict()} if self._config else {}
        if self._agen:
            return self.func(chunks, **kwargs)  # type: ignore[no-any-return]
        return _iterate_in_threads(self.func(_ThreadInput(chunks), **kwargs))


class _ThreadInput(Iterator[object]):
    """The input stream as a sync iterator for a generator running in a worker thread."""

    def __init__(self, chunks: AsyncIterator[object]) -> None:
        self._chunks = chunks

    def __next__(self) -> object:
        item = trio.from_thread.run(_next_or_end, self._chunks)
        if item is _END:
            raise StopIteration
        return item


async def _next_or_end(chunks: AsyncIterator[object]) -> object:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return _END


async def _iterate_in_threads(gen: Iterator[object]) -> AsyncGenerator[object, None]:
    """Drive a sync generator from worker threads, one ``next`` per hop; close it on exit."""
    try:
        while True:
            item = await trio.to_thread.run_sync(next, gen, _END)
            if item is _END:
                return
            yield item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(close)


def chain(func: Callable[..., Any]) -> Runnable[Any, Any]:
    """Decorator: make a function a runnable named after it.

    >>> @chain
    ... def shout(text):
    ...     return text.upper() + "!"
    >>> shout.invoke("hi")
    'HI!'
    """
    return RunnableLambda(func)
