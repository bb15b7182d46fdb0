"""Workload 5: ``model | JsonOutputParser`` over documents of 2k to 128k characters.

The scripted model streams a JSON document in 4-character chunks; the parser emits each new
partial value. Figures: seconds per document size, and the **growth exponent** — the slope of
log(time) over log(size), 1.0 for linear work, 2.0 when every chunk re-reads all the text so far.
LangChain re-parses the whole text per chunk, so it is capped (``Config.json_peer_cap``, 32k)
and time-boxed; a size that does not finish says so, and bounds the exponent from below.

The raw limit moves the same chunks through two bare stages and parses the joined text once
with ``json.loads`` at the end — the least work that yields the final value (no partials).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from bench.chains import have_langchain, quiet_langchain
from bench.harness import (
    Config,
    Deadline,
    Impl,
    Measure,
    Measured,
    growth_exponent,
    in_asyncio,
    in_trio,
    run_alternating,
)
from bench.raw import Expand, Forward, Stage, open_raw_pipeline
from bench.report import Row
from rillet.nodes.chat_models import split_text

__all__ = ["NUMBER", "TITLE", "json_document", "run"]

NUMBER = 5
TITLE = "JsonOutputParser over growing documents"
_CLOCK_MASK = 255


def json_document(size: int) -> str:
    """A JSON list of records, as long as fits in ``size`` characters (at least one record).

    >>> doc = json_document(2000); 1800 < len(doc) <= 2000 and isinstance(json.loads(doc), list)
    True
    """
    records: list[dict[str, Any]] = []
    total = 2
    i = 0
    while True:
        record = {"id": i, "name": f"item {i}", "tags": ["alpha", 'say "hi"'],
                  "score": i * 0.25, "active": i % 3 == 0, "parent": None,
                  "pos": {"x": i, "y": [1, 2.5, -3e2]}}
        add = len(json.dumps(record)) + (2 if records else 0)
        if records and total + add > size:
            return json.dumps(records)
        records.append(record)
        total += add
        i += 1


def rillet_parser() -> Any:
    """``rillet.nodes.JsonOutputParser()``, or None while it is not importable."""
    # Looked up by name: the suite runs (and type-checks) before the parser lands.
    parser_class = getattr(importlib.import_module("rillet.nodes"), "JsonOutputParser", None)
    return None if parser_class is None else parser_class()


async def _last(stream: AsyncIterator[Any], start: float, deadline: Deadline) -> Measure:
    n = 0
    last: Any = None
    async for value in stream:
        last = value
        n += 1
        if not n & _CLOCK_MASK and deadline.expired():
            return {"dnf": 1, "outputs": n, "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "outputs": n, "last": last}


def _framework(chain: Any, expected: Any) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stream = chain.astream("go")
        try:
            measure = await _last(stream, start, deadline)
        finally:
            await stream.aclose()
        return _checked(measure, expected)

    return once


def _raw(doc: str, chunk: int, expected: Any, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        start = time.perf_counter()
        stages: list[Stage] = [Expand(lambda _: split_text(doc, chunk)), Forward(name="parser")]
        parts: list[str] = []
        async with open_raw_pipeline(stages, ["go"], batched=batched) as out:
            async for piece in out:
                parts.append(piece)
                if not len(parts) & _CLOCK_MASK and deadline.expired():
                    return {"dnf": 1, "seconds": time.perf_counter() - start}
        value = json.loads("".join(parts))
        return _checked({"seconds": time.perf_counter() - start, "outputs": 1, "last": value},
                        expected)

    return once


def _checked(measure: dict[str, Any], expected: Any) -> Measure:
    last = measure.pop("last", None)
    if not measure.get("dnf"):
        measure["correct"] = float(last == expected)
    return measure


def _chains(doc: str, chunk: int) -> tuple[Any, Any]:
    from rillet.nodes import ScriptedChatModel

    parser = rillet_parser()
    ours = None if parser is None else ScriptedChatModel(responses=[doc], chunking=chunk) | parser
    lc = None
    if have_langchain():
        from langchain_core.output_parsers import JsonOutputParser

        from bench.lc_models import LCScriptedChatModel

        quiet_langchain()
        lc = LCScriptedChatModel(responses=[doc], chunking=chunk) | JsonOutputParser()
    return ours, lc


def run(config: Config) -> list[Row]:
    per_size: dict[int, dict[str, Measured]] = {}
    lengths: dict[int, int] = {}
    available = rillet_parser() is not None
    for size in config.json_sizes:
        doc = json_document(size)
        lengths[size] = len(doc)
        expected = json.loads(doc)
        ours, lc = _chains(doc, config.json_chunk)
        impls = []
        if ours is not None:
            impls.append(Impl("rillet", in_trio(_framework(ours, expected))))
        if lc is not None and size <= config.json_peer_cap:
            impls.append(Impl("langchain", in_asyncio(_framework(lc, expected)), slow=True))
        impls += [Impl("raw-naive", in_trio(_raw(doc, config.json_chunk, expected, False))),
                  Impl("raw-batched", in_trio(_raw(doc, config.json_chunk, expected, True)))]
        per_size[size] = run_alternating(impls, config)
    return _rows(config, per_size, lengths, available)


def _missing(available: bool) -> dict[str, str]:
    notes = {}
    if not available:
        notes["rillet"] = "not available: rillet.nodes.JsonOutputParser is not importable yet"
    if not have_langchain():
        notes["langchain"] = "not installed"
    return notes


def _rows(config: Config, per_size: dict[int, dict[str, Measured]], lengths: dict[int, int],
          available: bool) -> list[Row]:
    rows = []
    names = ("rillet", "langchain", "raw-naive", "raw-batched")
    finished: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
    dnf_at: dict[str, int] = {}
    for size, measured in per_size.items():
        values: dict[str, float | None] = dict.fromkeys(names)
        notes = _missing(available)
        outputs: dict[str, float | None] = {}
        for name, m in measured.items():
            seconds = m.median("seconds")
            values[name] = seconds
            outputs[name] = m.median("outputs")
            if seconds is not None:
                finished[name].append((lengths[size], seconds))
            elif name not in dnf_at:
                dnf_at[name] = lengths[size]
            note = m.note()
            if any(r.get("correct") == 0.0 for r in m.reps):
                note = (note + "; " if note else "") + "final value differs from json.loads"
            if note:
                notes[name] = note
        if "langchain" not in measured and have_langchain():
            notes["langchain"] = f"not run above {config.json_peer_cap} chars"
        rows.append(Row(workload=NUMBER, case=f"{size}-char document", metric="seconds",
                        unit="s", higher_is_better=False, values=values,
                        reps={n: len(m.reps) for n, m in measured.items()}, notes=notes,
                        extra={"length": lengths[size], "chunks": math.ceil(
                            lengths[size] / config.json_chunk), "outputs": outputs}))
    exponents: dict[str, float | None] = {}
    notes = _missing(available)
    for name in names:
        points = finished[name]
        exponents[name] = growth_exponent([p[0] for p in points], [p[1] for p in points])
        if points and name in dnf_at:
            largest, seconds = points[-1]
            bound = math.log(config.time_box / seconds) / math.log(dnf_at[name] / largest)
            notes[name] = (f"fit over {points[0][0]}–{largest} chars; "
                           f"{dnf_at[name]} did not finish in {config.time_box:g} s "
                           f"(exponent from there ≥ {bound:.2f})")
    rows.append(Row(workload=NUMBER, case="growth", metric="exponent", unit="",
                    higher_is_better=False, values=exponents, notes=notes))
    return rows
