"""The user's own ``async def`` steps and tools, awaited on the loop they were written for.

A caller on asyncio (the run is a guest of its loop) gets its asyncio code run as asyncio
tasks on that loop; a caller on trio gets a clear error when a step awaits asyncio. One helper,
:func:`await_user`, for every place that awaits a user's coroutine (lambdas, tools, branch
conditions, passthrough functions).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable
from typing import TypeVar

import trio

from rillet.runtime.engine.hosts import Host, guest_host
from rillet.runtime.errors import AsyncioRequiredError

__all__ = ["await_user"]

T = TypeVar("T")


async def await_user(awaitable: Awaitable[T], *, node: str, func: object = None) -> T:
    """Await what a user's ``async def`` step or tool returned, on the loop it was written for.

    In a guest run (the caller is on asyncio) it runs as an asyncio task on the host loop, so
    asyncio code (``asyncio.sleep``, an asyncio queue or SDK) works unchanged; a trio cancel
    cancels that task and waits for it. On plain trio it is awaited here, and asyncio code in
    it fails with :class:`~rillet.runtime.errors.AsyncioRequiredError` instead of asyncio's
    "no running event loop".

    Example::

        result = await await_user(self.func(**args), node=ctx.name, func=self.func)
    """
    host = guest_host()
    if host is None:
        try:
            return await awaitable
        except (RuntimeError, TypeError) as error:
            if not _asyncio_on_trio(error):
                raise
            name = getattr(func, "__name__", None) or type(func).__name__
            raise AsyncioRequiredError(node=node, function=name) from error
    return await _on_host_loop(host, awaitable)


def _asyncio_on_trio(error: BaseException) -> bool:
    text = str(error)
    return text == "no running event loop" or "unrecognized yield message" in text


async def _on_host_loop(host: Host, awaitable: Awaitable[T]) -> T:
    coro = awaitable if asyncio.iscoroutine(awaitable) else _await(awaitable)
    done = trio.Event()
    # The run's context (its scope, for nested runs and custom events) goes with the task.
    task = host.loop.create_task(coro, context=contextvars.copy_context())
    task.add_done_callback(lambda _task: done.set())
    host.handoff()
    try:
        await done.wait()
    except BaseException:
        task.cancel()
        with trio.CancelScope(shield=True):
            await done.wait()
        if not task.cancelled():
            task.exception()  # retrieved: its error is not this run's (it was cancelled)
        raise
    return task.result()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
