"""``python -m bench [--quick] [--only N[,N…]] [--json PATH] [--markdown PATH]``.

Runs the workloads in order, prints each one's rows as it finishes, then the whole table with
the issue's targets, and saves the figures as JSON (``bench/results/latest.json`` for a full
run of every workload, the tracked figures the README quotes; ``quick.json`` / ``only-N.json``
otherwise, which git ignores, so a smoke or partial run never touches a tracked file).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import attrs

from bench import asyncio_host, concurrency, events, json_parsing, no_subscriber, steps, streaming
from bench.harness import Config
from bench.report import Row, check_targets, environment, format_markdown, format_table, write_json

WORKLOADS: tuple[ModuleType, ...] = (streaming, steps, events, concurrency, json_parsing,
                                     no_subscriber, asyncio_host)
RESULTS = Path(__file__).resolve().parent / "results"


def _parse_only(text: str) -> set[int]:
    try:
        chosen = {int(part) for part in text.replace(" ", "").split(",") if part}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--only takes workload numbers like 1,3; got {text!r}")
    unknown = chosen - {w.NUMBER for w in WORKLOADS}
    if unknown:
        raise argparse.ArgumentTypeError(
            f"no workload {sorted(unknown)}; choose from {[w.NUMBER for w in WORKLOADS]}")
    return chosen


def default_json_path(*, quick: bool, only: set[int] | None) -> Path:
    """Where a run saves its figures unless ``--json`` says otherwise."""
    if quick:
        return RESULTS / "quick.json"
    if only is None:
        return RESULTS / "latest.json"
    return RESULTS / ("only-" + "-".join(str(n) for n in sorted(only)) + ".json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and two repetitions: a smoke run (< 20 s)")
    parser.add_argument("--only", type=_parse_only, default=None, metavar="N[,N…]",
                        help="run only these workloads (1–7)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per case")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="where to save the figures")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                        help="also save the table as GitHub markdown")
    args = parser.parse_args(argv)

    config = Config.quick_run() if args.quick else Config.full()
    if args.reps is not None:
        config = attrs.evolve(config, reps=args.reps)
    chosen = [w for w in WORKLOADS if args.only is None or w.NUMBER in args.only]
    path = args.json or default_json_path(quick=args.quick, only=args.only)

    env = environment()
    print(f"rillet bench — Python {env['python']} on {env['platform']}, {env['cpus']} CPUs; "
          f"versions {env['versions']}")
    print(f"config: {attrs.asdict(config)}\n", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    errors: dict[int, str] = {}
    for workload in chosen:
        print(f"== workload {workload.NUMBER}: {workload.TITLE}", flush=True)
        t0 = time.perf_counter()
        try:
            got = check_targets(workload.run(config))
        except Exception as error:  # noqa: BLE001 - one broken workload must not hide the rest
            traceback.print_exc()
            errors[workload.NUMBER] = f"{type(error).__name__}: {error}"
            print(f"   workload {workload.NUMBER} failed: {errors[workload.NUMBER]}\n", flush=True)
            continue
        rows += got
        print(format_table(got))
        print(f"   ({time.perf_counter() - t0:.1f} s)\n", flush=True)

    print("== all results (medians; ratios are rillet / other; ↑ higher is better, ↓ lower)")
    print(format_table(rows))
    verdicts = [(row, text, met) for row in rows for text, met in row.verdicts]
    print("\n== targets")
    for row, text, met in verdicts:
        mark = {True: "MET   ", False: "MISSED", None: "n/a   "}[met]
        print(f"  {mark} ({row.workload}) {row.case}, {row.metric}: {text}")
    for number, failure in errors.items():
        print(f"  FAILED workload {number}: {failure}")
    meta = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "config": attrs.asdict(config),
        "environment": env,
        "errors": errors,
    }
    write_json(path, rows, meta)
    if args.markdown is not None:
        args.markdown.write_text(format_markdown(rows) + "\n")
    print(f"\nsaved {path} ({meta['seconds']} s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
