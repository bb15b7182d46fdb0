"""Workload 7: workload 1's chain consumed from asyncio, against LangChain on asyncio.

Figures, all from one run with the repetitions alternated:

- chunks/s of ``astream`` and events/s of ``astream_events(version="v2")``, rillet called from
  ``asyncio.run`` (its runs live in the loop's trio guest) against LangChain under asyncio;
- the **cost over native trio**, per chunk and per event: the median over back-to-back pairs of
  (CPU seconds from asyncio − CPU seconds on native ``trio.run``) ÷ items, for the very same
  stream (CPU time of the process, steadier than wall time on a shared machine);
- the time from leaving a stream after its first chunk (``break``) to the producer's
  ``finally``, p50 and p99 over ``cancels`` streams, from asyncio and on native trio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from bench.chains import TOPIC, have_langchain, lc_chain, response_text, rillet_chain
from bench.harness import (
    Config,
    Deadline,
    Impl,
    Measure,
    Measured,
    count_async,
    in_asyncio,
    in_trio,
    median,
    percentile,
    run_alternating,
)
from bench.report import Row
from bench.streaming import throughput_rows

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER = 7
TITLE = "consumed from asyncio (a trio guest run per loop)"
#: Streams per repetition of the cancellation case.
CANCELS = 200


def _stream_of(method: str, chain: Any) -> Callable[[Deadline], Any]:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = (chain.astream(TOPIC) if method == "astream"
                  else chain.astream_events(TOPIC, version="v2"))
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _endless(closed: Callable[[], None]) -> Any:
    """A generator step that streams until it is cancelled, then reports its ``finally``."""
    from rillet.graphs import RunnableGenerator

    async def ticks(chunks: AsyncIterator[Any]) -> AsyncIterator[int]:
        try:
            async for _ in chunks:
                n = 0
                while True:
                    n += 1
                    yield n
                    await trio.lowlevel.checkpoint()
        finally:
            closed()

    return RunnableGenerator(ticks)


def _cancels(count: int, *, on_asyncio: bool) -> Callable[[Deadline], Measure]:
    """``count`` streams, each left after its first chunk; how long until its producer's
    ``finally`` ran (an event of the caller's own library)."""

    async def once(deadline: Deadline) -> Measure:
        waits = []
        for _ in range(count):
            done: Any = asyncio.Event() if on_asyncio else trio.Event()
            async for _ in _endless(done.set).astream(0):
                break
            left = time.perf_counter()
            await done.wait()
            waits.append(time.perf_counter() - left)
        return _latencies(waits)

    return in_asyncio(once) if on_asyncio else in_trio(once)


def _latencies(waits: list[float]) -> Measure:
    return {"p50": median(waits) * 1000, "p99": percentile(waits, 99) * 1000,
            "seconds": sum(waits), "streams": len(waits)}


def _cost_over_trio(hosted: Measured, native: Measured, count: str) -> float | None:
    """Median over back-to-back pairs of (CPU from asyncio − CPU on trio) per item, in µs."""
    pairs = [(a["cpu"] / a[count] - t["cpu"] / t[count]) * 1e6
             for a, t in zip(hosted.reps, native.reps)
             if not a.get("dnf") and not t.get("dnf") and a.get(count) and t.get(count)]
    return median(pairs) if pairs else None


def _rate(measured: Measured, count: str) -> float | None:
    rates = [r[count] / r["seconds"] for r in measured.reps if not r.get("dnf") and r["seconds"]]
    return median(rates) if rates else None


def _case(config: Config, method: str, ours: Any, lc: Any) -> dict[str, Measured]:
    impls = [Impl("rillet", in_asyncio(_stream_of(method, ours))),
             Impl("rillet-trio", in_trio(_stream_of(method, ours)))]
    if lc is not None:
        impls.append(Impl("langchain", in_asyncio(_stream_of(method, lc)), slow=True))
    return run_alternating(impls, config, reps=config.overhead_reps)


def run(config: Config) -> list[Row]:
    text = response_text(config.tokens)
    ours = rillet_chain(text)
    lc = lc_chain(text) if have_langchain() else None
    rows: list[Row] = []
    for method, case, rate, count, latency, expected in (
        ("astream", "astream from asyncio", "chunks/s", "chunks", "ttfc", config.tokens),
        ("astream_events", "astream_events v2 from asyncio", "events/s", "chunks",
         "time to first event", 0),
    ):
        measured = _case(config, method, ours, lc)
        native = measured.pop("rillet-trio")
        rows += throughput_rows(NUMBER, case, measured, expected, lc is not None,
                                latency=latency, rate=rate)
        unit = "chunk" if method == "astream" else "event"
        rows.append(Row(
            workload=NUMBER, case=case, metric=f"cost over native trio, per {unit}", unit="µs",
            higher_is_better=False,
            values={"rillet": _cost_over_trio(measured["rillet"], native, count)},
            reps={"rillet": len(native.reps)},
            extra={f"native trio {rate}": _rate(native, count)},
        ))
    cancels = CANCELS if not config.quick else 20
    measured = run_alternating([Impl("rillet", _cancels(cancels, on_asyncio=True)),
                                Impl("rillet-trio", _cancels(cancels, on_asyncio=False))], config)
    for name, case in (("rillet", "leave after the first chunk, from asyncio"),
                       ("rillet-trio", "leave after the first chunk, native trio")):
        for pct in ("p50", "p99"):
            rows.append(Row(workload=NUMBER, case=case, metric=f"to the producer's finally, {pct}",
                            unit="ms", higher_is_better=False,
                            values={"rillet": measured[name].median(pct)},
                            reps={"rillet": len(measured[name].reps)},
                            extra={"streams per repetition": cancels}))
    return rows
