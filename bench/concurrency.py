"""Workload 4: 1,000 and 10,000 concurrent runs of a 100-token chain in one process.

All runs are submitted at once (one task each, reading ``astream`` to the end). Figures:

- runs/s: runs ÷ wall time from submission until the last run ended;
- time to first chunk p50/p99: from submission (the moment all runs were started together)
  until each run's first chunk — the wait a client sees when that many requests arrive at once;
- runs completed: how many ended within the time box (the 10,000-run target: all of them);
- peak RSS per run: measured in a fresh subprocess per implementation,
  ``python -m bench.concurrency --impl rillet --runs 1000``, as (``ru_maxrss`` after the runs −
  ``ru_maxrss`` after imports, the chain and one warm-up run) ÷ runs.

The raw limit runs the same number of bare 3-stage pipelines at once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

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
    in_asyncio,
    in_trio,
    median,
    percentile,
    run_alternating,
)
from bench.raw import open_raw_pipeline
from bench.report import Row

__all__ = ["IMPLS", "NUMBER", "TITLE", "main", "measure_rss", "run"]

NUMBER = 4
TITLE = "many concurrent runs of a 100-token chain"
IMPLS = ("rillet", "langchain", "raw-naive", "raw-batched")


def _summary(start: float, firsts: list[float], done: int, runs: int) -> Measure:
    seconds = time.perf_counter() - start
    measure: Measure = {"seconds": seconds, "runs": done}
    if firsts:
        measure["ttfc_p50"] = percentile(firsts, 50)
        measure["ttfc_p99"] = percentile(firsts, 99)
    if done < runs:
        measure["dnf"] = 1
    return measure


def _rillet(chain: Any, runs: int) -> Any:
    async def once(deadline: Deadline) -> Measure:
        firsts: list[float] = []
        done = 0

        async def one() -> None:
            nonlocal done
            async with chain.astream(TOPIC) as stream:
                async for _ in stream:
                    firsts.append(time.perf_counter() - start)
                    break
                async for _ in stream:
                    pass
            done += 1

        start = time.perf_counter()
        with trio.move_on_after(deadline.remaining()):
            async with trio.open_nursery() as nursery:
                for _ in range(runs):
                    nursery.start_soon(one)
        return _summary(start, firsts, done, runs)

    return once


def _raw(text: str, runs: int, batched: bool) -> Any:
    async def once(deadline: Deadline) -> Measure:
        firsts: list[float] = []
        done = 0

        async def one() -> None:
            nonlocal done
            async with open_raw_pipeline(raw_chain_stages(text), [TOPIC], batched=batched) as out:
                async for _ in out:
                    firsts.append(time.perf_counter() - start)
                    break
                async for _ in out:
                    pass
            done += 1

        start = time.perf_counter()
        with trio.move_on_after(deadline.remaining()):
            async with trio.open_nursery() as nursery:
                for _ in range(runs):
                    nursery.start_soon(one)
        return _summary(start, firsts, done, runs)

    return once


def _langchain(chain: Any, runs: int) -> Any:
    async def once(deadline: Deadline) -> Measure:
        firsts: list[float] = []
        done = 0

        async def one() -> None:
            nonlocal done
            stream = chain.astream(TOPIC)
            try:
                async for _ in stream:
                    firsts.append(time.perf_counter() - start)
                    break
                async for _ in stream:
                    pass
            finally:
                await stream.aclose()
            done += 1

        start = time.perf_counter()
        try:
            async with asyncio.timeout(deadline.remaining()):
                async with asyncio.TaskGroup() as group:
                    for _ in range(runs):
                        group.create_task(one())
        except TimeoutError:
            pass
        return _summary(start, firsts, done, runs)

    return once


def _impl(name: str, runs: int, tokens: int) -> Impl:
    text = response_text(tokens)
    if name == "rillet":
        return Impl(name, in_trio(_rillet(rillet_chain(text), runs)))
    if name == "langchain":
        return Impl(name, in_asyncio(_langchain(lc_chain(text), runs)), slow=True)
    return Impl(name, in_trio(_raw(text, runs, batched=name == "raw-batched")))


def run(config: Config) -> list[Row]:
    names = [n for n in IMPLS if n != "langchain" or have_langchain()]
    rows: list[Row] = []
    for i, runs in enumerate(config.concurrent):
        impls = [_impl(name, runs, config.concurrent_tokens) for name in names]
        reps = config.concurrent_reps[min(i, len(config.concurrent_reps) - 1)]
        measured = run_alternating(impls, config, reps=reps, time_box=config.concurrent_time_box)
        rss: dict[str, dict[str, Any]] = {}
        if runs in config.rss_sizes:
            # A batch that did not finish in this process would not finish there either, and
            # its memory at the time box says little: not measured.
            finished = [n for n in names if measured[n].finished_reps]
            rss = _rss_in_subprocesses(finished, runs, config)
            for name in names:
                if name not in finished:
                    rss[name] = {"error": "not measured: the batch did not finish in-process"}
        rows += _rows(runs, measured, rss, have_langchain())
    return rows


def _rows(runs: int, measured: dict[str, Measured], rss: dict[str, dict[str, Any]],
          langchain: bool) -> list[Row]:
    case = f"{runs} concurrent runs"
    rate: dict[str, float | None] = {}
    p50: dict[str, float | None] = {}
    p99: dict[str, float | None] = {}
    completed: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name, m in measured.items():
        finished = [r for r in m.reps if not r.get("dnf")]
        rate[name] = median([r["runs"] / r["seconds"] for r in finished]) if finished else None
        p50[name] = _ms(m.median("ttfc_p50"))
        p99[name] = _ms(m.median("ttfc_p99"))
        completed[name] = float(min(r.get("runs", 0) for r in m.reps)) if m.reps else None
        if m.note():
            notes[name] = m.note()
    if not langchain:
        for values in (rate, p50, p99, completed):
            values["langchain"] = None
        notes["langchain"] = "not installed"
    reps = {name: len(m.reps) for name, m in measured.items()}
    rows = [
        Row(workload=NUMBER, case=case, metric="runs/s", unit="runs/s", higher_is_better=True,
            values=rate, reps=reps, notes=notes),
        Row(workload=NUMBER, case=case, metric="ttfc p50", unit="ms", higher_is_better=False,
            values=p50, reps=reps, notes=notes),
        Row(workload=NUMBER, case=case, metric="ttfc p99", unit="ms", higher_is_better=False,
            values=p99, reps=reps, notes=notes),
        Row(workload=NUMBER, case=case, metric="runs completed", unit="runs",
            higher_is_better=True, values=completed, reps=reps, notes=notes,
            extra={"expected": runs}),
    ]
    if rss:
        per_run: dict[str, float | None] = {}
        rss_notes: dict[str, str] = {}
        for name, result in rss.items():
            per_run[name] = result.get("rss_per_run_kib")
            if result.get("error"):
                rss_notes[name] = str(result["error"])[:120]
            elif result.get("completed", runs) < runs:
                # Memory at the time box, before the runs grew to their peak: not comparable.
                per_run[name] = None
                rss_notes[name] = (f"did not finish: {result['completed']} of {runs} runs "
                                   f"({result['rss_per_run_kib']:.0f} KiB/run so far)")
        if not langchain:
            per_run["langchain"] = None
            rss_notes["langchain"] = "not installed"
        rows.append(Row(workload=NUMBER, case=case, metric="peak RSS per run", unit="KiB",
                        higher_is_better=False, values=per_run, reps=dict.fromkeys(rss, 1),
                        notes=rss_notes, extra={"subprocess": rss}))
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _rss_in_subprocesses(names: list[str], runs: int, config: Config) -> dict[str, dict[str, Any]]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        command = [sys.executable, "-m", "bench.concurrency", "--impl", name, "--runs", str(runs),
                   "--tokens", str(config.concurrent_tokens),
                   "--time-box", str(config.concurrent_time_box)]
        limit = 2 * config.concurrent_time_box + 60  # warm-up, imports, the batch
        try:
            proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            results[name] = {"error": f"subprocess did not end in {limit:g} s"}
            continue
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results[name] = {"error": f"subprocess failed ({proc.returncode}): {tail}"}
            continue
        results[name] = json.loads(lines[-1])
    return results


def measure_rss(impl: str, runs: int, tokens: int, time_box: float) -> dict[str, Any]:
    """In this process: baseline RSS, ``runs`` concurrent runs, peak RSS per run (KiB).

    The baseline is taken after imports, building the chain and one warm-up run. ``ru_maxrss``
    is a high-water mark, and importing LangChain peaks higher than it settles, so a run's
    memory first refills that gap unseen; on Linux the mark is therefore reset first
    (``/proc/self/clear_refs``) and the figure is ``VmHWM`` after − ``VmRSS`` before. Where
    that is not possible it falls back to ``ru_maxrss`` after − ``ru_maxrss`` before.
    """
    _impl(impl, 1, tokens).run(Deadline(time_box))  # warm-up: lazy imports, caches
    batch = _impl(impl, runs, tokens)
    gc.collect()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = _reset_high_water_mark()
    before = _proc_status_kib("VmRSS") if reset else None
    measure = batch.run(Deadline(time_box))
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    after = _proc_status_kib("VmHWM") if reset else None
    if before is not None and after is not None:
        method, grown = "VmHWM after - VmRSS before (high-water mark reset)", after - before
    else:
        method, grown = "ru_maxrss after - ru_maxrss before", maxrss_after - maxrss_before
    return {
        "impl": impl, "runs": runs, "tokens": tokens, "completed": int(measure.get("runs", 0)),
        "seconds": measure.get("seconds"), "method": method,
        "ru_maxrss_before_kib": maxrss_before, "ru_maxrss_after_kib": maxrss_after,
        "vmrss_before_kib": before, "vmhwm_after_kib": after,
        "rss_per_run_kib": max(0, grown) / runs,
    }


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.concurrency --impl rillet --runs 1000``: one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--time-box", type=float, default=60.0)
    args = parser.parse_args(argv)
    print(json.dumps(measure_rss(args.impl, args.runs, args.tokens, args.time_box)))


if __name__ == "__main__":
    main()
