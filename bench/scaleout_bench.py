"""Runs per second through the Redis run queue with 1 and with 3 worker processes.

``python -m bench.scaleout_bench [--runs 400] [--tokens 20] [--delay 0] [--workers 1,3]``

Starts its own redis-server on a free loopback port (no persistence), starts N worker
processes (``python -m rillet.runtime.cli.worker worker bench.scaleout_bench:GRAPHS``), warms them
up, then submits ``--runs`` runs as fast as one client can and waits for every result. A run is
``prepare | tokens``: ``--tokens`` chunks (``--delay`` seconds apart), so about
``2 * tokens + 7`` events, each stored in Redis and read by nobody but ``result()``. Prints
runs/s and the CPU seconds each process used, which shows what the limit is.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from rillet.graphs import RunnableGenerator, RunnableLambda

ROOT = Path(__file__).resolve().parents[1]


def _prepare(request: dict[str, Any]) -> dict[str, Any]:
    return {"n": int(request["n"]), "delay": float(request.get("delay", 0.0))}


async def _tokens(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for request in chunks:
        for i in range(request["n"]):
            if request["delay"]:
                await trio.sleep(request["delay"])
            yield f" tok{i}"


GRAPHS = {"bench": RunnableLambda(_prepare, name="prepare") | RunnableGenerator(_tokens,
                                                                                name="tokens")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def measure(url: str, workers: int, args: argparse.Namespace,
                  redis_pid: int) -> dict[str, Any]:
    from rillet.runtime.scaleout.service import open_scaleout_client

    prefix = f"bench-{workers}-{time.time_ns()}"
    procs = [subprocess.Popen([sys.executable, "-m", "rillet.runtime.cli.worker", "worker",
                               "bench.scaleout_bench:GRAPHS", "--redis", url, "--prefix", prefix,
                               "--concurrency", str(args.concurrency)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(workers)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()  # "rillet worker … serving …"
        request = {"n": args.tokens, "delay": args.delay}
        async with open_scaleout_client(url, prefix=prefix) as client:
            for run_id in [await client.submit("bench", request) for _ in range(20)]:
                await client.result(run_id)  # warm-up: imports, connections, scripts
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in procs}
            redis_before, client_before = cpu_seconds(redis_pid), time.process_time()
            start = time.perf_counter()
            run_ids = [await client.submit("bench", request) for _ in range(args.runs)]
            submitted = time.perf_counter() - start
            for run_id in run_ids:
                await client.result(run_id)
            elapsed = time.perf_counter() - start
        return {
            "workers": workers, "runs": args.runs, "seconds": elapsed,
            "runs_per_s": args.runs / elapsed, "submit_s": submitted,
            "worker_cpu_s": sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in procs),
            "redis_cpu_s": cpu_seconds(redis_pid) - redis_before,
            "client_cpu_s": time.process_time() - client_before,
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", default="1,3")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", tmp],
                                 stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            url = f"redis://127.0.0.1:{port}/0"
            print(f"{os.cpu_count()} cores; {args.runs} runs of {args.tokens} tokens "
                  f"(delay {args.delay} s), worker concurrency {args.concurrency}")
            for count in (int(n) for n in args.workers.split(",")):
                row = trio.run(measure, url, count, args, redis.pid)
                per_run = {k: row[f"{k}_cpu_s"] / args.runs * 1000
                           for k in ("worker", "redis", "client")}
                print(f"{row['workers']} worker(s): {row['runs_per_s']:7.1f} runs/s  "
                      f"({row['seconds']:.2f} s; load average {os.getloadavg()[0]:.1f}); CPU ms "
                      f"per run: workers {per_run['worker']:.2f}, redis {per_run['redis']:.2f}, "
                      f"client {per_run['client']:.2f}", flush=True)
        finally:
            redis.kill()
            redis.wait(5)


if __name__ == "__main__":
    main()
