"""The sync bridge: run trio code from plain threads (``invoke``, ``stream``, ``batch``).

Where the caller is decides how:

- inside a thread that trio started (a sync node function run with ``trio.to_thread``), the call
  goes back to *that* run's loop with ``trio.from_thread`` — so a sync lambda calling
  ``chain.invoke(x)`` makes a child run of the current run, and cancelling the parent cancels it;
- anywhere else (the main thread, a thread of the application's own, even while another trio
  loop runs in another thread), the call goes to one background *portal* loop per process,
  started on first use in a daemon thread;
- on a trio loop's own thread, blocking would deadlock the loop: a clear error says to use the
  ``a``-prefixed method instead.

>>> run_sync(trio.sleep, 0)
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

__all__ = ["in_trio_thread", "portal_token", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_token: trio.lowlevel.TrioToken | None = None
_thread: threading.Thread | None = None


def in_trio_thread() -> bool:
    """True on a thread that is running a trio loop right now."""
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


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


def run_sync(afn: Callable[..., Awaitable[T]], *args: Any, method: str = "this call") -> T:
    """Run ``await afn(*args)`` to completion from synchronous code and return its result.

    Raises:
        RuntimeError: when called on a trio loop's own thread (use the async method there).
    """
    if _in_trio_worker_thread():
        return trio.from_thread.run(afn, *args)
    if in_trio_thread():
        raise RuntimeError(
            f"{method} blocks, and was called on a thread that runs a trio loop, which would "
            f"deadlock it; await the async variant instead (e.g. ainvoke / astream / abatch)"
        )
    return trio.from_thread.run(afn, *args, trio_token=portal_token())


def call_soon_in_portal(fn: Callable[[], Any]) -> None:
    """Schedule ``fn()`` on the portal loop without waiting (for finalizers)."""
    if _token is not None:
        try:
            _token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass
