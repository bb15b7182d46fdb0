"""Workload 1: ``prompt | model | StrOutputParser`` streaming 20,000 tokens.

Figures: chunks/s and time to first chunk for ``astream`` (inside the event loop), sync
``stream`` (from a plain thread) and ``invoke`` (tokens/s and latency). The raw limit runs the
same three stages as bare trio tasks, for ``astream`` only: it has no sync API.

LangChain's ``invoke`` takes its model's non-streaming path (``_generate``: one message), as it
does with a real provider; rillet's ``invoke`` streams through its actors and adds the chunks up.
"""

from __future__ import annotations

import time
from typing import Any

from bench.chains import (
    TOPIC,
    have_langchain,
    lc_chain,
    raw_chain_stages,
    response_text,
    rillet_chain,
)
from bench.harness import (
    Config,
    Deadline,
    Impl,
    Measure,
    Measured,
    count_async,
    count_sync,
    in_asyncio,
    in_trio,
    run_alternating,
)
from bench.raw import open_raw_pipeline
from bench.report import Row

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER = 1
TITLE = "prompt | model | StrOutputParser, streaming"


def _astream(chain: Any) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = chain.astream(TOPIC)
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _raw(text: str, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        async with open_raw_pipeline(raw_chain_stages(text), [TOPIC], batched=batched) as out:
            return await count_async(out, start, deadline)

    return once


def _stream(chain: Any) -> Any:
    def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        return count_sync(chain.stream(TOPIC), start, deadline)

    return once


def _invoke(chain: Any, tokens: int) -> Any:
    def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        result = chain.invoke(TOPIC)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "chunks": tokens, "ttfc": seconds, "length": len(result)}

    return once


def run(config: Config) -> list[Row]:
    text = response_text(config.tokens)
    lc = lc_chain(text) if have_langchain() else None
    ours = rillet_chain(text)

    impls = [Impl("rillet", in_trio(_astream(ours)))]
    if lc is not None:
        impls.append(Impl("langchain", in_asyncio(_astream(lc)), slow=True))
    impls += [Impl("raw-naive", in_trio(_raw(text, batched=False))),
              Impl("raw-batched", in_trio(_raw(text, batched=True)))]
    rows = throughput_rows(NUMBER, "astream", run_alternating(impls, config), config.tokens,
                           have_langchain())

    impls = [Impl("rillet", _stream(ours))]
    if lc is not None:
        impls.append(Impl("langchain", _stream(lc), slow=True))
    rows += throughput_rows(NUMBER, "stream (sync)", run_alternating(impls, config),
                            config.tokens, have_langchain())

    impls = [Impl("rillet", _invoke(ours, config.tokens))]
    if lc is not None:
        impls.append(Impl("langchain", _invoke(lc, config.tokens), slow=True))
    rows += throughput_rows(NUMBER, "invoke", run_alternating(impls, config), config.tokens,
                            have_langchain(), latency="latency")
    return rows


def throughput_rows(workload: int, case: str, measured: dict[str, Measured], expected: int,
                    langchain: bool, *, latency: str = "ttfc", count: str = "chunks",
                    rate: str = "chunks/s") -> list[Row]:
    """Rows "<rate>" and "<latency>" (ms) for a case whose repetitions count ``count``."""
    values: dict[str, float | None] = {}
    firsts: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name, m in measured.items():
        rates = [r[count] / r["seconds"] for r in m.reps if not r.get("dnf") and r["seconds"]]
        values[name] = _median(rates)
        ttfc = m.median("ttfc")
        firsts[name] = None if ttfc is None else ttfc * 1000
        counts = {int(r[count]) for r in m.reps if not r.get("dnf")}
        note = m.note()
        if expected and counts and counts != {expected}:
            note = (note + "; " if note else "") + f"{count}={sorted(counts)} (expected {expected})"
        if note:
            notes[name] = note
    if not langchain:
        notes["langchain"] = "not installed"
        values.setdefault("langchain", None)
    reps = {name: len(m.reps) for name, m in measured.items()}
    counts_by_impl = {name: m.median(count) for name, m in measured.items()}
    per_cpu = {name: _median([r[count] / r["cpu"] for r in m.reps
                              if not r.get("dnf") and r.get("cpu")])
               for name, m in measured.items()}
    return [
        Row(workload=workload, case=case, metric=rate, unit=rate, higher_is_better=True,
            values=values, reps=reps, notes=notes,
            extra={count: counts_by_impl, f"{count} per CPU second": per_cpu}),
        Row(workload=workload, case=case, metric=latency, unit="ms", higher_is_better=False,
            values=firsts, reps=reps, notes=notes),
    ]


def _median(values: list[float]) -> float | None:
    from bench.harness import median

    return median(values) if values else None
