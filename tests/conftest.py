"""Fixtures shared by the runtime and Runnable API tests: leftover tasks and threads."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import CodeType, FrameType

import pytest
import trio
from hypothesis import HealthCheck, settings

# Property tests are verdicts on behaviour, never on speed: no per-example deadline and no
# "too slow" health check (both fail on a loaded machine), and the same examples on every run
# (derandomize), so a CI result does not depend on which random inputs came up that day.
settings.register_profile(
    "rillet", deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("rillet")


def _live_task_names() -> list[str]:
    """Every task of the current trio run, found by walking down from the root task."""
    names: list[str] = []
    root = trio.lowlevel.current_root_task()
    assert root is not None
    todo = [root]
    while todo:
        task = todo.pop()
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                names.append(child.name)
                todo.append(child)
    return names


@pytest.fixture
def rillet_tasks() -> Callable[[], list[str]]:
    """A function listing the live tasks that belong to rillet runs (run tasks and actors)."""

    def live() -> list[str]:
        return [
            name for name in _live_task_names()
            if name.startswith("rillet-run") or name.startswith("rillet.")
        ]

    return live


def _wait_until_stable(read: Callable[[], object], *, polls: int = 4) -> object:
    """Poll ``read()`` with short real sleeps until it returns the same value ``polls`` times in
    a row; return that value. Bounded (about 30 s) only so that a real failure ends: on a
    loaded machine threads take longer to finish, and returning early would be a verdict on
    speed."""
    last, same = read(), 0
    for _ in range(6000):
        time.sleep(0.005)
        now = read()
        same = same + 1 if now == last else 0
        last = now
        if same >= polls:
            return now
    return last


@pytest.fixture
def wait_until_stable() -> Callable[[Callable[[], object]], object]:
    """Wait (bounded, short real sleeps) until a value read from other threads stops changing."""
    return _wait_until_stable


def _threads_running(code: CodeType) -> list[str]:
    """Names of the threads whose stack is currently inside ``code``."""
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        f: FrameType | None = frame
        while f is not None:
            if f.f_code is code:
                busy.append(names.get(ident, str(ident)))
                break
            f = f.f_back
    return busy


@pytest.fixture
def threads_running() -> Callable[[CodeType], list[str]]:
    """A function naming the threads whose stack is inside a given function's code right now."""
    return _threads_running


@pytest.fixture
def settled_threads() -> Iterator[Callable[[int], int]]:
    """A function that waits (bounded) until ``threading.active_count()`` is at most
    ``baseline`` and returns the count it settled at."""

    def settle(baseline: int) -> int:
        for _ in range(6000):  # about 30 s, only so that a real leak ends the wait
            count = threading.active_count()
            if count <= baseline:
                return count
            time.sleep(0.005)
        return threading.active_count()

    yield settle


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if any test imported the checkout's folders as top-level packages."""
    stray = sorted(n for n in sys.modules if n.split(".")[0] in {"runtime", "graphs", "nodes"})
    if stray:
        print(f"\nmodules imported under a top-level name (use rillet.*): {stray}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
