"""Reliability soaks (issue 16): ``python -m bench.soak faults|leaks|fuzz [options]``.

- ``faults``: queued runs over worker processes killed with SIGKILL, and a Redis restart;
  counts runs lost and completed twice (:mod:`bench.soak_faults`).
- ``leaks``: ten thousand HTTP streams dropped mid-way against one server in this process;
  tasks, file descriptors and resident memory before and after.
- ``sse``: one ``data:`` line of 2 MB to 80 MB fed to the provider SSE parser in 64 KiB
  reads: seconds and memory (linear, and refused past the 16 MiB event cap).
- ``fuzz``: the fuzz tests, ``--scale`` times longer than in the test suite.

Each prints its figures and saves them to ``bench/results/soak-<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from bench import soak_faults

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
FUZZ_TESTS = ["tests/serving/test_fuzz_http.py", "tests/runtime/test_logfile.py",
              "tests/providers/test_sse_fuzz.py", "tests/nodes/test_partial_json_fuzz.py"]


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def task_count() -> int:
    """Every task of the current trio run, counted from the root down (the leak tests use it)."""
    count, todo = 0, [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        assert task is not None
        for nursery in task.child_nurseries:
            count += len(nursery.child_tasks)
            todo.extend(nursery.child_tasks)
    return count


def open_fds() -> int:
    """File descriptors this process holds open."""
    return len(os.listdir("/proc/self/fd"))


async def _leaks(streams: int, concurrency: int) -> dict[str, Any]:
    from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser
    from rillet.runtime.engine.worker import Worker
    from rillet.runtime.serve.server import open_server

    chain = (ChatPromptTemplate.from_template("tell me about {topic}")
             | ScriptedChatModel(responses=[" ".join(f"w{i}" for i in range(10_000))],
                                 delay=0.001) | StrOutputParser())
    request = (b"POST /chain/stream HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               b"content-length: 25\r\n\r\n" + b'{"input": {"topic": "x"}}')
    async with Worker(max_concurrent_runs=concurrency, max_queued=0) as worker, \
            open_server({"chain": chain}, worker=worker) as running:
        port = int(running.url.rsplit(":", 1)[1])

        async def one() -> None:
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(request)
                received = b""
                while b"event: data" not in received:
                    received += await stream.receive_some(65536)

        async def wave(size: int) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(size):
                    nursery.start_soon(one)
            while worker.statistics().running:
                await trio.sleep(0.01)
            await trio.sleep(0.2)

        await wave(concurrency)
        before = {"tasks": task_count(), "fds": open_fds(), "rss_kib": _rss_kib()}
        for _ in range(streams // concurrency):
            await wave(concurrency)
        after = {"tasks": task_count(), "fds": open_fds(), "rss_kib": _rss_kib()}
    return {"streams dropped mid-way": streams, "at once": concurrency,
            **{f"{key} before / after": (before[key], after[key]) for key in before}}


def _sse() -> dict[str, Any]:
    import time

    from rillet.nodes.providers.sse import SSEDecoder
    from rillet.runtime.errors import WireFormatError

    piece = b"x" * 65536
    rows: dict[str, Any] = {}
    for megabytes in (2, 4, 8, 16, 80):
        decoder, rss, fed = SSEDecoder(), _rss_kib(), 0
        start = time.perf_counter()
        try:
            decoder.feed(b"data: ")
            while fed < megabytes * 1_000_000:
                decoder.feed(piece)
                fed += len(piece)
            events = decoder.feed(b"\n\n")
            outcome = f"{len(events)} event of {len(events[0].data) / 1e6:.0f} MB"
        except WireFormatError:
            outcome = f"refused after {fed / 2**20:.0f} MiB"
        rows[f"{megabytes} MB line: seconds, RSS growth MiB, outcome"] = (
            round(time.perf_counter() - start, 3), round((_rss_kib() - rss) / 1024), outcome)
    return rows


def _fuzz(scale: float) -> dict[str, Any]:
    files = [name for name in FUZZ_TESTS if (ROOT / name).exists()]
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", *files],
                          cwd=ROOT, env={**os.environ, "RILLET_FUZZ_SCALE": str(scale)})
    return {"scale": scale, "files": files, "exit code": done.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    soak_faults.add_arguments(commands.add_parser("faults", help="SIGKILL workers, restart Redis"))
    leaks = commands.add_parser("leaks", help="drop HTTP streams mid-way; watch tasks/fds/RSS")
    leaks.add_argument("--streams", type=int, default=10_000)
    leaks.add_argument("--at-once", type=int, default=100)
    commands.add_parser("sse", help="the provider SSE parser on lines of 2-80 MB")
    fuzz = commands.add_parser("fuzz", help="the fuzz tests, longer")
    fuzz.add_argument("--scale", type=float, default=50.0)
    args = parser.parse_args(argv)
    if args.command == "faults":
        result = soak_faults.run(args)
        failed = result["lost"] or result["completed twice"]
    elif args.command in ("leaks", "sse"):
        result = trio.run(_leaks, args.streams, args.at_once) if args.command == "leaks" \
            else _sse()
        for key, value in result.items():
            print(f"  {key:<28}  {value}")
        failed = False
    else:
        result = _fuzz(args.scale)
        failed = bool(result["exit code"])
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"soak-{args.command}.json"
    path.write_text(json.dumps({"command": " ".join(["python -m bench.soak", *(argv or
                                                                              sys.argv[1:])]),
                                **result}, indent=2) + "\n")
    print(f"saved {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
