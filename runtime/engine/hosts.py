"""Hosts: the engine runs on trio, and every public async method also works under asyncio.

Who awaits decides, at the call (``sniffio``):

- a trio task: the method runs as it always did; one thread-local read decides that;
- an asyncio task: the work runs in the loop's **guest**, one trio run started on first use
  on the loop's own thread (``trio.lowlevel.start_guest_run``) and kept until the loop closes,
  so trio and asyncio take turns on one thread and share objects without locks. A keeper task
  ends the guest when ``asyncio.run`` (or uvicorn, or Jupyter at exit) cancels every task.
  Where no guest can start (a trio run already lives on this thread, e.g. under a nested
  loop) the work goes to the portal thread of :mod:`.bridge` instead: correct, slower.

Crossing from asyncio into trio: :meth:`Host.call` awaits one trio coroutine (``ainvoke``,
``abatch``, ``Worker.submit``); :mod:`.hosts_streams` carries streams through a bounded
buffer. Cancelling the asyncio task cancels the trio side at once; errors cross unchanged (the
original exception object, with its ``rillet_node`` note).

>>> import asyncio
>>> async def double(x):
...     return await hosted(_twice)(x)
>>> asyncio.run(double(21))
42
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import signal
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import sniffio
import trio

from rillet.runtime.engine.bridge import portal_token
from rillet.runtime.errors import HostClosed
from rillet.runtime.logs import get_logger

__all__ = ["Host", "foreign_host", "guest_host", "hosted", "hosted_with"]

T = TypeVar("T")
P = ParamSpec("P")

_log = get_logger(component="hosts")


class Host:
    """Where the trio side of an asyncio loop's calls runs: its guest run, or the portal.

    ``to_loop`` is how trio code hands a result to asyncio, ``to_trio`` how asyncio code wakes
    trio: plain calls when both share the thread (the guest), thread-safe hops otherwise.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken, *,
                 same_thread: bool) -> None:
        self._loop = weakref.ref(loop)
        self.token, self.same_thread = token, same_thread
        self.thread = threading.get_ident()
        self.closing = False
        self.bursts: _TickBursts | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise HostClosed("the asyncio loop of this host was garbage collected")
        return loop

    def __repr__(self) -> str:
        kind = "guest" if self.same_thread else "portal"
        return f"<Host {kind} of {self._loop()!r}>"

    def to_loop(self, fn: Callable[..., object], *args: object, wake: bool = True) -> None:
        """From trio code: run ``fn(*args)`` on the asyncio side (now, in the guest).

        ``wake``: asyncio has work now (a waiter to resume), so the guest's current burst of
        ticks ends; ``False`` for a hand-over nobody waits for yet.
        """
        if self.same_thread:
            fn(*args)
            if wake:
                self.handoff()
            return
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def handoff(self) -> None:
        """Trio code just gave asyncio work: let the asyncio loop run after this tick."""
        if self.bursts is not None:
            self.bursts.stop()

    def to_trio(self, fn: Callable[..., object], *args: object) -> None:
        """From asyncio code: run ``fn(*args)`` in trio. On the guest's own thread this is a
        plain call: trio wakes its guest when a task is rescheduled from outside a tick."""
        if self.same_thread and threading.get_ident() == self.thread:
            fn(*args)
        else:
            self.to_trio_threadsafe(fn, *args)

    def to_trio_threadsafe(self, fn: Callable[..., object], *args: object) -> None:
        """``to_trio`` from any thread (finalizers run wherever the collector runs)."""
        try:
            self.token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    def spawn(self, afn: Callable[..., Awaitable[Any]], *args: object,
              context: contextvars.Context | None = None) -> None:
        """Start ``afn(*args)`` as a trio system task (it must never raise)."""
        self.to_trio(functools.partial(trio.lowlevel.spawn_system_task, afn, *args,
                                       name=_task_name(afn), context=context))

    async def call(self, afn: Callable[[], Awaitable[T]],
                   abandon: Callable[[T], object] | None = None) -> T:
        """Await ``afn()`` in trio from an asyncio task and return its result.

        Cancelling the asyncio task cancels the trio side and re-raises at once, without
        waiting (anyio and Starlette cancel again and again; waiting belongs to ``aclose``).
        ``abandon`` (run in trio) disposes of a result that was made but that the cancelled
        caller never received — a run handle, say, whose run would otherwise go on unread.
        """
        if self.closing:
            raise HostClosed("the asyncio loop is closing: its trio guest accepts no new work")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        scope = trio.CancelScope()
        self.spawn(_call_in_trio, self, afn, future, scope, abandon,
                   context=contextvars.copy_context())
        try:
            return await future
        except asyncio.CancelledError:
            self.to_trio(scope.cancel)
            # The result may have arrived just before the cancellation: nobody will read it.
            if (abandon is not None and future.done() and not future.cancelled()
                    and future.exception() is None):
                self.to_trio(abandon, future.result())
            raise


def _task_name(afn: Callable[..., object]) -> str:
    target = getattr(afn, "func", afn)
    return f"rillet.host:{getattr(target, '__qualname__', type(target).__name__)}"


async def _call_in_trio(host: Host, afn: Callable[[], Awaitable[Any]],
                        future: asyncio.Future[Any], scope: trio.CancelScope,
                        abandon: Callable[[Any], object] | None) -> None:
    try:
        with scope:
            value = await afn()
    except BaseException as error:  # noqa: BLE001 - a system task must never raise
        host.to_loop(settle, future, None, crossing(error))
        return
    if scope.cancel_called:  # the caller left while the result was being made
        if abandon is not None:
            abandon(value)
    else:
        host.to_loop(settle, future, value, None, _abandoner(host, abandon))


def _abandoner(host: Host, abandon: Callable[[Any], object] | None
               ) -> Callable[[Any], object] | None:
    if abandon is None:
        return None
    return functools.partial(host.to_trio, abandon)


def crossing(error: BaseException) -> BaseException:
    """What asyncio sees for an error of the trio side: the error itself, except trio's own
    cancellation (the guest shutting down), which means nothing to an asyncio caller."""
    if isinstance(error, trio.Cancelled):
        return HostClosed("the asyncio loop is closing: its trio guest was cancelled")
    return error


def settle(future: asyncio.Future[Any], value: object, error: BaseException | None,
           abandon: Callable[[Any], object] | None = None) -> None:
    """Complete ``future`` unless its waiter already left (cancelled); then a value made for
    it goes to ``abandon``."""
    if future.done():
        if error is None and abandon is not None:
            abandon(value)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


# -- who is calling ---------------------------------------------------------------------------

def foreign_host() -> Host | None:
    """The host to hand work to when the caller is an asyncio task; ``None`` in trio.

    Raises:
        RuntimeError: the caller runs another async library (rillet knows trio and asyncio).
    """
    if sniffio.thread_local.name == "trio":  # a trio task: native, or inside a guest's tick
        return None
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    if library == "trio":
        return None
    if library != "asyncio":
        raise RuntimeError(f"rillet runs under trio or asyncio; this caller runs {library}")
    return host_for(asyncio.get_running_loop())


def hosted(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorator: awaited from asyncio, the coroutine function runs in the loop's guest.

    Under trio it runs as written (one thread-local read more).

    Example::

        class Worker:
            @hosted
            async def submit(self, runnable, input): ...   # trio code, also awaitable from asyncio
    """
    return hosted_with(None)(method)


def hosted_with(
    abandon: Callable[[Any], object] | None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """:func:`hosted`, with ``abandon(result)`` (run in trio) for a result an asyncio caller
    cancelled too late to stop but never received (e.g. ``WorkerRun.cancel``)."""

    def decorate(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(method)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            if sniffio.thread_local.name != "trio":
                host = foreign_host()
                if host is not None:
                    return await host.call(functools.partial(method, *args, **kwargs),
                                           abandon)
            return await method(*args, **kwargs)

        return run

    return decorate


# -- one guest run per loop -------------------------------------------------------------------

_hosts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Host] = weakref.WeakKeyDictionary()
_HOST = trio.lowlevel.RunVar["Host | None"]("rillet_host", default=None)


def guest_host() -> Host | None:
    """Inside trio: the host whose guest this run is (``None`` on plain trio).

    Lets trio code reach the asyncio loop it shares a thread with, e.g. to run a user's
    asyncio coroutine there.
    """
    return _HOST.get()


def host_for(loop: asyncio.AbstractEventLoop) -> Host:
    """The host of ``loop``: its guest (started now if needed), or the portal fallback."""
    host = _hosts.get(loop)
    if host is None:
        host = _start_guest(loop) or Host(loop, portal_token(), same_thread=False)
        _hosts[loop] = host
    return host


class _Guest:
    """One trio guest run: its main task sleeps until the keeper cancels it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.scope = trio.CancelScope()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self.host: Host | None = None
        self.keeper: asyncio.Task[None] | None = None

    async def main(self) -> None:
        with self.scope:
            await trio.sleep_forever()

    def done(self, outcome: object) -> None:
        """trio's done_callback, on the loop's thread: the run has ended."""
        if self.host is not None:
            self.host.closing = True
            if _hosts.get(self.loop) is self.host:
                del _hosts[self.loop]
        error = getattr(outcome, "error", None)
        if error is not None:
            _log.error("trio_guest_failed", error=repr(error))
        if not self.stopped.done():
            self.stopped.set_result(None)
        if self.keeper is not None and not self.keeper.done():
            self.keeper.cancel()  # the guest ended on its own (it never should)

    async def keep(self) -> None:
        """Lives as long as the loop runs tasks; when cancelled (the loop shuts down), stops
        the guest and waits for it, so no trio task outlives the loop."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self.host is not None:
                self.host.closing = True
            self.scope.cancel()
            await wait_uncancellable(self.stopped)


def _start_guest(loop: asyncio.AbstractEventLoop) -> Host | None:
    guest = _Guest(loop)
    bursts = _TickBursts(loop)
    try:
        with _sigint_left_to_the_host():
            # A fresh context: the guest's tasks must not inherit the first caller's variables.
            contextvars.Context().run(
                trio.lowlevel.start_guest_run, guest.main,
                run_sync_soon_threadsafe=loop.call_soon_threadsafe,
                run_sync_soon_not_threadsafe=bursts.soon,
                done_callback=guest.done,
                host_uses_signal_set_wakeup_fd=True,
            )
    except RuntimeError as error:  # one trio run per thread: another one lives here
        _log.info("trio_guest_unavailable", error=str(error))
        return None
    host = guest.host = Host(loop, trio.lowlevel.current_trio_token(), same_thread=True)
    host.bursts = bursts
    _HOST.set(host)
    guest.keeper = contextvars.Context().run(loop.create_task, guest.keep(),
                                             name="rillet-trio-guest")
    return host


class _TickBursts:
    """Runs a guest's consecutive ticks in bursts: when a tick asks for the next one at once
    (trio has runnable tasks), the next runs right away, before asyncio gets its turn, until
    trio hands asyncio some work (:meth:`stop`) or ``_BURST_SECONDS`` passed. Each such tick
    skips a trip through asyncio's loop (a select call and a handle)."""

    __slots__ = ("_loop", "_next", "_running", "_stop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._next: Callable[[], object] | None = None
        self._running = self._stop = False

    def stop(self) -> None:
        """Asyncio has work: end the burst after the current tick."""
        self._stop = True

    def soon(self, tick: Callable[[], object]) -> None:
        """trio's ``run_sync_soon_not_threadsafe``, called during a tick for the next one."""
        if self._running:
            self._next = tick
        else:
            self._loop.call_soon(self._burst, tick)

    def _burst(self, tick: Callable[[], object]) -> None:
        self._running, self._stop = True, False
        until = time.perf_counter() + _BURST_SECONDS
        try:
            while True:
                self._next = None
                tick()
                following = self._next
                if following is None:
                    return
                tick = following
                if self._stop or time.perf_counter() >= until:
                    break
        finally:
            self._running = False
        self._loop.call_soon(self._burst, tick)


# How long a burst of guest ticks may keep asyncio waiting (a trio batch is typically tens
# of microseconds; a server's asyncio handlers wait at most about this much longer).
_BURST_SECONDS = 0.0005


@contextmanager
def _sigint_left_to_the_host() -> Iterator[None]:
    """trio takes over SIGINT when it finds Python's default handler (a Jupyter cell runs with
    it); Ctrl-C would then cancel the guest instead of interrupting the user's code. Hide the
    default handler while the guest starts."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _interrupt(signum: int, frame: Any) -> None:
    signal.default_int_handler(signum, frame)


async def wait_uncancellable(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` even if the task is cancelled meanwhile (again and again, as
    anyio does); re-raise the cancellation once it is done."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _twice(x: int) -> int:
    """For the module's example: trio code awaited from asyncio."""
    await trio.lowlevel.checkpoint()
    return 2 * x
