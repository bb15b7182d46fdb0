"""Workload 6: what the event machinery costs when nobody subscribes.

rillet promises that a run with no subscriber builds no event objects. A rillet run cannot be
built without its runtime, so the workload brackets that cost with three measurements of
workload 1's ``astream`` (same chain, same tokens), alternated repetition by repetition:

- **nobody subscribes** — plain ``astream``: the machinery is present, nobody listens;
- **a subscriber that accepts nothing** — ``config={"callbacks": [bus]}`` with
  ``bus.subscribe(accept=lambda e: False)``: the run publishes, so every event is built and
  then filtered out. The time ratio to plain ``astream`` is what building events costs, i.e.
  what "nobody subscribes" saves;
- **same nodes, no runtime** — the same prompt, model and parser objects driven by bare batched
  trio tasks (their ``_ainvoke`` / ``_astream`` / ``_atransform`` hooks, a stand-in context):
  no supervisor, scopes, emitters or events at all — "a run that never built any". The time
  ratio *nobody subscribes / no runtime* is the target (≤ 1.05). It is an upper bound on the
  events' share: it also counts everything else the runtime does per run and per chunk.

Time ratios are medians over back-to-back pairs of repetitions (9 by default) of the process's
CPU time, which other work on a shared machine does not inflate the way it does wall time.

The raw batched pipeline (transport only, no node work) is in the first row, so its
``rillet/raw batched`` ratio is the machinery-present run against the physical limit.
LangChain's pair is ``astream`` without and with a do-nothing async callback handler.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from bench.chains import TOPIC, have_langchain, lc_chain, raw_chain_stages, response_text
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
    run_alternating,
)
from bench.raw import Reader, StageOutput, items, open_raw_pipeline
from bench.report import Row

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER = 6
TITLE = "the cost of events when nobody subscribes"


def _astream(chain: Any, config: Any = None, make_config: Any = None) -> Any:
    async def once(deadline: Deadline) -> Measure:
        cfg = make_config() if make_config is not None else config
        start = time.perf_counter()
        stream = chain.astream(TOPIC, cfg)
        try:
            return await count_async(stream, start, deadline)
        finally:
            await stream.aclose()

    return once


def _deaf_bus_config() -> dict[str, Any]:
    from rillet.runtime import EventBus

    bus = EventBus()
    bus.subscribe(accept=lambda event: False)
    return {"callbacks": [bus]}


class _NodeStage:
    """A bare task running one rillet node's hook, moving items the batched way."""

    def __init__(self, node: Any, hook: str) -> None:
        self.node, self.hook = node, hook
        self.name = node.get_name()
        self.ctx = SimpleNamespace(name=self.name, run_id="bench-no-runtime", config={})

    async def run(self, recv: Any, out: StageOutput) -> None:
        with recv:
            if self.hook == "_atransform":
                await out.send_all_async(self.node._atransform(Reader(recv), self.ctx))
                return
            last = None
            async for item in items(recv, batched=True):
                last = item
            if self.hook == "_ainvoke":
                await out.put(await self.node._ainvoke(last, self.ctx))
                return
            await out.send_all_async(self.node._astream(last, self.ctx))


def _no_runtime(chain: Any) -> Any:
    prompt, model, parser = chain.steps
    stages = [_NodeStage(prompt, "_ainvoke"), _NodeStage(model, "_astream"),
              _NodeStage(parser, "_atransform")]

    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        async with open_raw_pipeline(stages, [TOPIC], batched=True) as out:
            return await count_async(out, start, deadline)

    return once


def _raw(text: str, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        async with open_raw_pipeline(raw_chain_stages(text), [TOPIC], batched=batched) as out:
            return await count_async(out, start, deadline)

    return once


def _noop_handler_config() -> dict[str, Any]:
    from langchain_core.callbacks import AsyncCallbackHandler

    class DoNothing(AsyncCallbackHandler):
        """Subscribes to everything, does nothing."""

    return {"callbacks": [DoNothing()]}


def run(config: Config) -> list[Row]:
    from bench.chains import rillet_chain

    text = response_text(config.tokens)
    ours = rillet_chain(text)
    impls = [
        Impl("rillet", in_trio(_astream(ours))),
        Impl("rillet+deaf", in_trio(_astream(ours, make_config=_deaf_bus_config))),
        Impl("rillet-bare", in_trio(_no_runtime(ours))),
        Impl("raw-naive", in_trio(_raw(text, batched=False))),
        Impl("raw-batched", in_trio(_raw(text, batched=True))),
    ]
    if have_langchain():
        lc = lc_chain(text)
        impls += [Impl("langchain", in_asyncio(_astream(lc)), slow=True),
                  Impl("langchain+noop", in_asyncio(_astream(lc, make_config=_noop_handler_config)),
                       slow=True)]
    measured = run_alternating(impls, config, reps=config.overhead_reps)
    return _rows(measured, config.tokens)


def _rate(m: Measured | None) -> float | None:
    if m is None:
        return None
    rates = [r["chunks"] / r["seconds"] for r in m.reps if not r.get("dnf") and r["seconds"]]
    return median(rates) if rates else None


def _time_ratio(a: Measured | None, b: Measured | None) -> float | None:
    """Median over paired repetitions of ``cpu(a) / cpu(b)`` (pairs ran back to back).

    CPU seconds of the process, not wall time: a few percent is within what other work on a
    shared machine adds to wall time, and not to the CPU time this process used.
    """
    if a is None or b is None:
        return None
    pairs = [x["cpu"] / y["cpu"] for x, y in zip(a.reps, b.reps)
             if not x.get("dnf") and not y.get("dnf") and y.get("cpu") and x.get("cpu")]
    return median(pairs) if pairs else None


def _rows(measured: dict[str, Measured], tokens: int) -> list[Row]:
    m = measured.get
    lc_note = {} if have_langchain() else {"langchain": "not installed"}
    notes = {name: got.note() for name, got in measured.items() if got.note()}
    reps = {name: len(got.reps) for name, got in measured.items()}

    def row(case: str, metric: str, unit: str, values: dict[str, float | None],
            higher: bool = True, keys: tuple[str, ...] = ()) -> Row:
        row_notes = {**lc_note, **{k.split("+")[0].split("-bare")[0]: notes[k]
                                   for k in keys if k in notes}}
        return Row(workload=NUMBER, case=case, metric=metric, unit=unit, higher_is_better=higher,
                   values=values, reps={k.split("+")[0].split("-bare")[0]: reps[k]
                                        for k in keys if k in reps},
                   notes=row_notes)

    return [
        row("astream, nobody subscribes", "chunks/s", "chunks/s",
            {"rillet": _rate(m("rillet")), "langchain": _rate(m("langchain")),
             "raw-naive": _rate(m("raw-naive")), "raw-batched": _rate(m("raw-batched"))},
            keys=("rillet", "langchain", "raw-naive", "raw-batched")),
        row("astream, a subscriber that accepts nothing", "chunks/s", "chunks/s",
            {"rillet": _rate(m("rillet+deaf")), "langchain": _rate(m("langchain+noop"))},
            keys=("rillet+deaf", "langchain+noop")),
        row("same nodes, no runtime (bare batched tasks)", "chunks/s", "chunks/s",
            {"rillet": _rate(m("rillet-bare"))}, keys=("rillet-bare",)),
        row("overhead: nobody subscribes / no runtime", "time ratio", "ratio",
            {"rillet": _time_ratio(m("rillet"), m("rillet-bare"))}, higher=False,
            keys=("rillet", "rillet-bare")),
        row("overhead: deaf subscriber / nobody subscribes", "time ratio", "ratio",
            {"rillet": _time_ratio(m("rillet+deaf"), m("rillet")),
             "langchain": _time_ratio(m("langchain+noop"), m("langchain"))}, higher=False,
            keys=("rillet+deaf", "langchain+noop")),
    ]
