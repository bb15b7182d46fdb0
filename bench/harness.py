"""Running repetitions fairly: alternating implementations, time boxes, medians.

Every implementation of a case runs in its own event loop inside this process (``trio.run``
for rillet and the raw limit, ``asyncio.run`` for LangChain); repetitions alternate
(A B C A B C …) so slow drift of a noisy machine spreads over all of them, and a figure is the
median of its repetitions. A repetition that overruns its time box stops and says so: the case
reports "did not finish in N s" instead of waiting minutes.

>>> median([3.0, 1.0, 2.0])
2.0
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import attrs

__all__ = [
    "Config",
    "Deadline",
    "Impl",
    "Measure",
    "Measured",
    "count_async",
    "count_sync",
    "growth_exponent",
    "in_asyncio",
    "in_trio",
    "median",
    "percentile",
    "run_alternating",
]

#: One repetition's figures, e.g. ``{"seconds": 0.12, "chunks": 20000, "ttfc": 0.002}``.
Measure = dict[str, float]


@attrs.frozen(kw_only=True)
class Config:
    """Sizes, repetitions and time boxes of one run of the suite."""

    quick: bool = False
    reps: int = 5
    tokens: int = 20_000  # workloads 1, 3 and 6
    step_chunks: int = 20_000  # workload 2
    steps: int = 10
    events_tokens: int = 20_000
    concurrent: tuple[int, ...] = (1_000, 10_000)
    concurrent_tokens: int = 100
    concurrent_reps: tuple[int, ...] = (3, 1)  # repetitions at each of ``concurrent``
    concurrent_time_box: float = 120.0  # seconds one batch of concurrent runs may take
    json_sizes: tuple[int, ...] = (2_000, 8_000, 32_000, 128_000)
    json_peer_cap: int = 32_000
    json_chunk: int = 4
    time_box: float = 30.0  # seconds one repetition may take
    peer_budget: float = 45.0  # seconds of repetitions per slow implementation and case
    rss_sizes: tuple[int, ...] = (1_000, 10_000)  # workload 4: peak RSS, in subprocesses
    overhead_reps: int = 9  # workload 6 compares runs within a few percent: more repetitions

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick_run(cls) -> Config:
        """Small sizes for a smoke run (``python -m bench --quick``, well under 20 s)."""
        return cls(
            quick=True, reps=2, tokens=2_000, step_chunks=2_000, events_tokens=1_000,
            concurrent=(100, 300), concurrent_tokens=20, concurrent_reps=(1, 1),
            concurrent_time_box=10.0, json_sizes=(1_000, 4_000), json_peer_cap=4_000,
            time_box=4.0, peer_budget=4.0, rss_sizes=(100,), overhead_reps=3,
        )


class Deadline:
    """A time box: ``expired()`` is cheap enough to ask every few hundred chunks."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.perf_counter() + seconds

    def expired(self) -> bool:
        return time.perf_counter() > self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.perf_counter())


@attrs.frozen
class Impl:
    """One implementation of a case: ``run(deadline)`` does one repetition.

    ``run`` returns its figures; a repetition that overran its time box sets ``"dnf": 1``
    (and whatever partial figures it has). ``slow`` implementations get fewer repetitions once
    they have used ``Config.peer_budget`` seconds.
    """

    name: str
    run: Callable[[Deadline], Measure]
    slow: bool = False


@attrs.frozen
class Measured:
    """Every repetition of one implementation, and whether any overran its time box."""

    name: str
    reps: tuple[Measure, ...]
    dnf: bool
    time_box: float
    error: str | None = None

    def median(self, key: str) -> float | None:
        values = [r[key] for r in self.reps if key in r and not r.get("dnf")]
        return median(values) if values else None

    @property
    def finished_reps(self) -> int:
        return sum(1 for r in self.reps if not r.get("dnf"))

    def note(self) -> str:
        if self.error is not None:
            return self.error[:120]
        if self.dnf and not self.finished_reps:
            return f"did not finish in {self.time_box:g} s"
        if self.dnf:
            return f"{len(self.reps) - self.finished_reps} of {len(self.reps)} reps did not finish"
        return ""


def run_alternating(impls: Sequence[Impl], config: Config, *, reps: int | None = None,
                    time_box: float | None = None) -> dict[str, Measured]:
    """Run ``reps`` repetitions of every implementation, alternating, and collect them.

    A slow implementation stops repeating once it has spent ``config.peer_budget`` seconds
    (after at least one repetition); one that overran its time box is not repeated.
    """
    reps = config.reps if reps is None else reps
    box = config.time_box if time_box is None else time_box
    done: dict[str, list[Measure]] = {impl.name: [] for impl in impls}
    spent = dict.fromkeys(done, 0.0)
    stopped: set[str] = set()
    errors: dict[str, str] = {}
    for _ in range(reps):
        for impl in impls:
            if impl.name in stopped:
                continue
            gc.collect()
            start = time.perf_counter()
            try:
                measure = impl.run(Deadline(box))
            except Exception as error:  # noqa: BLE001 - reported in the table, not fatal
                errors[impl.name] = f"failed: {type(error).__name__}: {error}"
                stopped.add(impl.name)
                continue
            spent[impl.name] += time.perf_counter() - start
            done[impl.name].append(measure)
            if measure.get("dnf") or (impl.slow and spent[impl.name] > config.peer_budget):
                stopped.add(impl.name)
    return {
        name: Measured(name, tuple(ms), any(m.get("dnf") for m in ms), box,
                       errors.get(name))
        for name, ms in done.items()
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def growth_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float | None:
    """The least-squares slope of log(time) over log(size): 1.0 is linear, 2.0 quadratic.

    >>> round(growth_exponent([1, 2, 4], [1.0, 4.0, 16.0]), 6)
    2.0
    """
    points = [(math.log(s), math.log(t)) for s, t in zip(sizes, seconds) if t and t > 0]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else None




# -- one repetition ---------------------------------------------------------------------------

#: How often the consumers below look at the clock (a power of two, minus one).
_CLOCK_MASK = 1023


async def count_async(chunks: AsyncIterator[Any], start: float, deadline: Deadline) -> Measure:
    """Read an async stream to its end: chunks, seconds and time to first chunk.

    ``start`` is when the caller began (before creating the stream); the same loop reads every
    implementation's stream, so what it costs per chunk is paid equally. ``cpu`` is the
    process's CPU seconds over the same span (all threads): steadier than wall time when other
    work shares the machine.
    """
    n = 0
    first = 0.0
    cpu = time.process_time()
    async for _ in chunks:
        if not n:
            first = time.perf_counter()
        n += 1
        if not n & _CLOCK_MASK and deadline.expired():
            return {"dnf": 1, "chunks": n, "seconds": time.perf_counter() - start}
    end = time.perf_counter()
    return {"seconds": end - start, "chunks": n, "ttfc": (first or end) - start,
            "cpu": time.process_time() - cpu}


def count_sync(chunks: Iterator[Any], start: float, deadline: Deadline) -> Measure:
    """:func:`count_async` for a synchronous iterator (closed on a time-box exit)."""
    n = 0
    first = 0.0
    cpu = time.process_time()
    try:
        for _ in chunks:
            if not n:
                first = time.perf_counter()
            n += 1
            if not n & _CLOCK_MASK and deadline.expired():
                return {"dnf": 1, "chunks": n, "seconds": time.perf_counter() - start}
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    end = time.perf_counter()
    return {"seconds": end - start, "chunks": n, "ttfc": (first or end) - start,
            "cpu": time.process_time() - cpu}


def in_trio(afn: Callable[[Deadline], Awaitable[Measure]]) -> Callable[[Deadline], Measure]:
    """One repetition in a fresh ``trio.run``, cancelled a little after its time box."""
    import trio

    async def main(deadline: Deadline) -> Measure:
        with trio.move_on_after(deadline.remaining() + _GRACE):
            return await afn(deadline)
        return {"dnf": 1}

    return lambda deadline: trio.run(main, deadline)


def in_asyncio(afn: Callable[[Deadline], Awaitable[Measure]]) -> Callable[[Deadline], Measure]:
    """One repetition in a fresh ``asyncio.run``, cancelled a little after its time box."""
    import asyncio

    async def main(deadline: Deadline) -> Measure:
        try:
            async with asyncio.timeout(deadline.remaining() + _GRACE):
                return await afn(deadline)
        except TimeoutError:
            return {"dnf": 1}

    return lambda deadline: asyncio.run(main(deadline))


# Slack past the time box before a repetition is cancelled outright: the consumers above stop
# themselves at the box, which keeps their partial counts.
_GRACE = 2.0
