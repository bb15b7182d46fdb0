"""Workload 2: a chain of async generator steps that pass every chunk through.

Each step is ``async def step(chunks): async for c in chunks: yield c``; the input is a stream
of ``step_chunks`` short strings (``atransform``). Two figures per implementation:

- **marginal** µs per chunk per step: ``(T(10 steps) − T(2 steps)) / (8 × chunks)``, the cost
  one more step adds — what "per pass-through step" means, without the feeder and the reader;
- **all-in** µs per chunk per step: ``T(10 steps) / (10 × chunks)``.

The raw limit runs the same number of bare tasks (a feeder, one task per step, the reader).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from bench.chains import have_langchain
from bench.harness import (
    Config,
    Deadline,
    Impl,
    Measure,
    count_async,
    in_asyncio,
    in_trio,
    run_alternating,
)
from bench.raw import Forward, open_raw_pipeline
from bench.report import Row

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER = 2
TITLE = "a chain of pass-through async generator steps"
_FEW = 2  # a sequence needs two steps; the marginal cost is measured from here


async def _step(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for chunk in chunks:
        yield chunk


def _rillet_chain(steps: int) -> Any:
    from rillet.graphs import RunnableGenerator, RunnableSequence

    return RunnableSequence(*(RunnableGenerator(_step, name=f"step{i}") for i in range(steps)))


def _lc_chain(steps: int) -> Any:
    from langchain_core.runnables import RunnableGenerator, RunnableSequence

    return RunnableSequence(*(RunnableGenerator(_step, name=f"step{i}") for i in range(steps)))


async def _source(n: int) -> AsyncIterator[str]:
    for i in range(n):
        yield "tok"


def _framework(chain: Any, n: int) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = chain.atransform(_source(n))
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _raw(steps: int, n: int, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stages = [Forward(name=f"step{i}") for i in range(steps)]
        async with open_raw_pipeline(stages, ["tok"] * n, batched=batched) as out:
            return await count_async(out, start, deadline)

    return once


def run(config: Config) -> list[Row]:
    n, many = config.step_chunks, config.steps
    impls = []
    for steps in (many, _FEW):
        impls.append(Impl(f"rillet@{steps}", in_trio(_framework(_rillet_chain(steps), n))))
        if have_langchain():
            impls.append(Impl(f"langchain@{steps}",
                              in_asyncio(_framework(_lc_chain(steps), n)), slow=True))
        impls.append(Impl(f"raw-naive@{steps}", in_trio(_raw(steps, n, batched=False))))
        impls.append(Impl(f"raw-batched@{steps}", in_trio(_raw(steps, n, batched=True))))
    measured = run_alternating(impls, config)

    marginal: dict[str, float | None] = {}
    all_in: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    reps: dict[str, int] = {}
    for name in ("rillet", "langchain", "raw-naive", "raw-batched"):
        if f"{name}@{many}" not in measured:
            marginal[name] = all_in[name] = None
            notes[name] = "not installed"
            continue
        m_many, m_few = measured[f"{name}@{many}"], measured[f"{name}@{_FEW}"]
        reps[name] = len(m_many.reps)
        t_many, t_few = m_many.median("seconds"), m_few.median("seconds")
        counts = {int(r["chunks"]) for r in m_many.reps + m_few.reps if not r.get("dnf")}
        note = m_many.note() or m_few.note()
        if counts and counts != {n}:
            note = (note + "; " if note else "") + f"chunks={sorted(counts)} (expected {n})"
        if note:
            notes[name] = note
        all_in[name] = None if t_many is None else t_many / (many * n) * 1e6
        marginal[name] = (None if t_many is None or t_few is None
                          else (t_many - t_few) / ((many - _FEW) * n) * 1e6)
    case = f"{many} pass-through steps"
    return [
        Row(workload=NUMBER, case=case, metric="marginal, per chunk per step", unit="µs",
            higher_is_better=False, values=marginal, reps=reps, notes=notes),
        Row(workload=NUMBER, case=case, metric="all-in, per chunk per step", unit="µs",
            higher_is_better=False, values=all_in, reps=reps, notes=notes),
    ]
