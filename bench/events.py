"""Workload 3: ``astream_events(version="v2")`` and ``astream_log`` over workload 1's chain.

Figures: events/s (patches/s for ``astream_log``) and the time to the first event. Every
implementation reports about three events per token (the model's, the parser's, the chain's
stream) plus start and end events; the counts are in the JSON.

The raw limit for events: the same three bare stages, each also sending a small event dict per
item (and at its start and end) into one shared bounded channel that the reader consumes —
moving the same number of events with no framework. There is no raw ``astream_log``.
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
    count_async,
    in_asyncio,
    in_trio,
    run_alternating,
)
from bench.raw import open_raw_pipeline
from bench.report import Row
from bench.streaming import throughput_rows

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER = 3
TITLE = "astream_events v2 and astream_log"


def _events(chain: Any) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = chain.astream_events(TOPIC, version="v2")
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _log(chain: Any) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = chain.astream_log(TOPIC)
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _raw(text: str, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        async with open_raw_pipeline(raw_chain_stages(text), [TOPIC], batched=batched,
                                     events=True) as out:
            return await count_async(out, start, deadline)

    return once


def run(config: Config) -> list[Row]:
    text = response_text(config.events_tokens)
    ours = rillet_chain(text)
    lc = lc_chain(text) if have_langchain() else None

    impls = [Impl("rillet", in_trio(_events(ours)))]
    if lc is not None:
        impls.append(Impl("langchain", in_asyncio(_events(lc)), slow=True))
    impls += [Impl("raw-naive", in_trio(_raw(text, batched=False))),
              Impl("raw-batched", in_trio(_raw(text, batched=True)))]
    rows = throughput_rows(NUMBER, "astream_events v2", run_alternating(impls, config), 0,
                           lc is not None, latency="time to first event", rate="events/s")

    impls = [Impl("rillet", in_trio(_log(ours)))]
    if lc is not None:
        impls.append(Impl("langchain", in_asyncio(_log(lc)), slow=True))
    rows += throughput_rows(NUMBER, "astream_log", run_alternating(impls, config), 0,
                            lc is not None, latency="time to first patch", rate="patches/s")
    return rows
