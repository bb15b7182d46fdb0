"""The sync bridge: run trio code from plain threads (``invoke``, ``stream``, ``batch``).

Where the caller is decides how:

- inside a thread that trio started (a sync node function run with ``trio.to_thread``), the call
  goes back to *that* run's loop with ``trio.from_thread`` — so a sync lambda calling
  ``chain.invoke(x)`` makes a child run of the current run, and cancelling the parent cancels it;
- anywhere else (the main thread, a thread of the application's own, even while another trio
  loop runs in another thread), the call goes to one background *portal* loop per process,
  started on first use in a daemon thread;
- inside a trio task (also a task of an asyncio loop's trio guest, see :mod:`.hosts`), blocking
  would deadlock the loop: a clear error names the async method to call instead. Plain asyncio
  code on a loop that has a guest (a notebook cell calling ``chain.invoke``) is not inside a
  trio task: its calls go to the portal, as from any thread.

>>> run_sync(trio.sleep, 0)
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sniffio
import trio

__all__ = ["in_trio_task", "portal_token", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_token: trio.lowlevel.TrioToken | None = None
_thread: threading.Thread | None = None


def in_trio_task() -> bool:
    """True inside trio code: a task (or callback) of a trio run on this thread.

    Not "a trio run exists on this thread": while an asyncio loop hosts a trio guest, that is
    true on the whole thread, also in plain asyncio code, which may block (on the portal).
    """
    return sniffio.thread_local.name == "trio"


def _in_trio_worker_thread() -> bool:
    try:
        trio.from_thread.check_cancelled()
    except RuntimeError:
        return False
    except trio.Cancelled:
        return True
    return True


def portal_token() -> trio.lowlevel.TrioToken:
    """The token of the process-wide portal loop, starting it on first use."""
    global _token, _thread
    with _lock:
        if _token is not None and _thread is not None and _thread.is_alive():
            return _token
        ready = threading.Event()
        box: list[trio.lowlevel.TrioToken] = []

        async def serve() -> None:
            box.append(trio.lowlevel.current_trio_token())
            ready.set()
            await trio.sleep_forever()

        _thread = threading.Thread(target=trio.run, args=(serve,), name="rillet-portal", daemon=True)
        _thread.start()
        ready.wait()
        _token = box[0]
        return _token


def is_portal_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(afn: Callable[..., Awaitable[T]], *args: object, method: str = "this call",
             instead: str | None = None) -> T:
    """Run ``await afn(*args)`` to completion from synchronous code and return its result.

    Args:
        method: the blocking call, as the user wrote it (``"joke.invoke()"``).
        instead: what to call inside a trio task (default: derived from ``method``).

    Raises:
        RuntimeError: when called inside a trio task (the message names the async call).
    """
    if _in_trio_worker_thread():
        return trio.from_thread.run(afn, *args)
    if in_trio_task():
        raise RuntimeError(
            f"{method} blocks and was called inside a trio task, where it would deadlock the "
            f"loop; use `{instead or async_variant(method)}` instead"
        )
    return trio.from_thread.run(afn, *args, trio_token=portal_token())


_STREAMING = {"stream", "transform"}
_RUNNABLE = {"invoke", "batch", "stream", "transform"}


def async_variant(method: str) -> str:
    """The async call to suggest for a blocking one.

    >>> async_variant("joke.invoke()"), async_variant("joke.stream()")
    ('await chain.ainvoke(...)', 'async for ... in chain.astream(...)')
    >>> async_variant("OpenAIEmbeddings.embed_query()")
    'await OpenAIEmbeddings.aembed_query(...)'
    """
    owner, _, verb = method.removesuffix("()").rpartition(".")
    if verb in _RUNNABLE:
        owner = "chain"
    call = f"{owner or 'x'}.a{verb}(...)"
    return f"async for ... in {call}" if verb in _STREAMING else f"await {call}"


def call_soon_in_portal(fn: Callable[[], object]) -> None:
    """Schedule ``fn()`` on the portal loop without waiting (for finalizers)."""
    if _token is not None:
        try:
            _token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass
