"""The fault soak: queued runs over worker processes that get SIGKILLed, and a Redis restart.

``python -m bench.soak faults [--runs 500] [--workers 3] [--kill-every 4] [--lease 3]``

Starts its own redis-server (AOF, ``appendfsync always``) on a free loopback port and
``--workers`` ``rillet worker`` processes, queues ``--runs`` runs at once (``prepare | tokens``,
10–40 tokens 50 ms apart), follows every ``--follow-every``-th run live, and meanwhile kills a
random worker with SIGKILL every ``--kill-every`` seconds (starting a new one in its place) and
kill -9s redis-server once, restarting it on the same data. Then it reads every run's log and
counts: submitted, completed (right output), lost (no end record), completed twice (more than
one end record, or a wrong output), runs executed more than once, redelivery latency (from the
SIGKILL of the worker that held an attempt to the next attempt's start), and whether each
follower saw each stored event exactly once, in order.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
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
SERVED = "bench.soak_faults:GRAPHS"


def _prepare(request: dict[str, Any]) -> dict[str, Any]:
    return {"n": int(request["n"]), "delay": float(request["delay"])}


async def _tokens(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for request in chunks:
        for i in range(request["n"]):
            await trio.sleep(request["delay"])
            yield f"t{i} "


GRAPHS = {"soak": RunnableLambda(_prepare, name="prepare") | RunnableGenerator(_tokens,
                                                                             name="tokens")}


def expected(n: int) -> str:
    return "".join(f"t{i} " for i in range(n))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Redis:
    """A private redis-server that can be kill -9'd and restarted on the same data."""

    def __init__(self, directory: str) -> None:
        self.port, self.directory = _free_port(), directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", self.directory, "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Pool:
    """Worker processes, replaced as they are killed."""

    def __init__(self, url: str, prefix: str, args: argparse.Namespace, logs: Path) -> None:
        self.url, self.prefix, self.args, self.logs = url, prefix, args, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ready: set[int] = set()  # pids serving (only these are killed)
        self.kills: dict[int, float] = {}  # pid -> wall time of its SIGKILL

    async def start(self) -> None:
        log = self.logs / f"worker-{len(self.procs) + len(self.kills)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rillet.runtime.cli.worker", "worker", SERVED,
                 "--redis", self.url, "--prefix", self.prefix,
                 "--concurrency", str(self.args.concurrency),
                 "--lease-timeout", str(self.args.lease), "--max-deliveries", "50"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        with trio.fail_after(60):
            while b"serving" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text(errors='replace')}")
                await trio.sleep(0.05)
        self.ready.add(proc.pid)

    async def kill_one(self, rng: random.Random, nursery: trio.Nursery) -> None:
        """SIGKILL a random worker (never the last one) and start another in its place."""
        alive = [p for p in self.procs if p.poll() is None and p.pid in self.ready]
        if len(alive) < 2:
            return
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        self.kills[victim.pid] = time.time()
        victim.wait(5)
        self.procs.remove(victim)
        nursery.start_soon(self.start)  # it takes a second or two to import and connect

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _retrying(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from rillet.runtime.errors import StoreUnavailable

    while True:
        try:
            return await fn(*args, **kwargs)
        except StoreUnavailable:
            await trio.sleep(0.2)  # Redis is restarting


async def _follow(client: Any, run_id: str, seen: dict[str, list[str]]) -> None:
    """Follow one run live through the faults; remember the cursor of each event seen."""
    from rillet.runtime.errors import RemoteError, StoreUnavailable

    cursors = seen[run_id] = []
    stream = client.events(run_id)
    while True:
        try:
            async for _ in stream:
                cursors.append(stream.cursor)
            return
        except StoreUnavailable:  # longer than its own reconnect window: resume after it
            await trio.sleep(0.5)
            stream = client.events(run_id, after=stream.cursor)
        except RemoteError:
            return


async def _log_of(client: Any, run_id: str) -> list[Any]:
    entries, cursor = [], "0-0"
    while page := await _retrying(client.log.read, run_id, cursor, count=1000):
        entries += page
        cursor = page[-1].cursor
    return entries


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from rillet.runtime.errors import RemoteError
    from rillet.runtime.scaleout.service import open_scaleout_client

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(tmp)
        redis.start()
        pool = Pool(redis.url, f"soak-{time.time_ns()}", args, Path(tmp))
        try:
            for _ in range(args.workers):
                await pool.start()
            plan = [{"n": rng.randint(10, 40), "delay": 0.05} for _ in range(args.runs)]
            started = time.monotonic()
            async with open_scaleout_client(redis.url, prefix=pool.prefix) as client:
                run_ids = [await client.submit("soak", request) for request in plan]
                seen: dict[str, list[str]] = {}
                outputs: dict[str, Any] = {}
                restarts: list[float] = []
                async with trio.open_nursery() as nursery:
                    for run_id in run_ids[::args.follow_every]:
                        nursery.start_soon(_follow, client, run_id, seen)

                    async def chaos() -> None:
                        while True:
                            await trio.sleep(args.kill_every)
                            await pool.kill_one(rng, nursery)
                            if not restarts and len(outputs) >= args.runs * 0.4:
                                redis.kill()
                                restarts.append(time.time())
                                await trio.sleep(1.0)
                                redis.start()

                    nursery.start_soon(chaos)
                    with trio.move_on_after(args.deadline):
                        for run_id in run_ids:
                            try:
                                outputs[run_id] = await _retrying(client.result, run_id)
                            except RemoteError as error:
                                outputs[run_id] = error
                    elapsed = time.monotonic() - started
                    nursery.cancel_scope.cancel()
                logs = {run_id: await _log_of(client, run_id) for run_id in run_ids}
        finally:
            pool.stop()
            redis.kill()
    return _report(args, plan, run_ids, outputs, logs, seen, pool.kills, restarts, elapsed)


def _report(args: argparse.Namespace, plan: list[dict[str, Any]], run_ids: list[str],
            outputs: dict[str, Any], logs: dict[str, list[Any]], seen: dict[str, list[str]],
            kills: dict[int, float], restarts: list[float], elapsed: float) -> dict[str, Any]:
    ends = {run_id: [e for e in entries if e.kind == "end"] for run_id, entries in logs.items()}
    right = sum(outputs.get(r) == expected(p["n"]) for r, p in zip(run_ids, plan, strict=True))
    failed = sum(not isinstance(outputs.get(r, ""), str) for r in run_ids)
    wrong = sum(isinstance(outputs.get(r), str) and outputs[r] != expected(p["n"])
                for r, p in zip(run_ids, plan, strict=True))
    twice = sum(len(ends[r]) > 1 for r in run_ids) + wrong
    latencies, near_restart, redone = [], [], 0
    for entries in logs.values():
        markers = [e for e in entries if e.kind == "attempt"]
        redone += len(markers) > 1
        for before, after in zip(markers, markers[1:], strict=False):
            pid = int(str(before.info.get("consumer", "::")).split(":")[1] or 0)
            if pid in kills and kills[pid] <= after.info["started_at"]:
                # A kill shortly before or during the Redis outage also waits out the outage.
                overlaps = any(-args.lease <= restart - kills[pid] <= args.lease
                               for restart in restarts)
                (near_restart if overlaps else latencies).append(
                    after.info["started_at"] - kills[pid])
    stored = {r: [e.cursor for e in logs[r] if e.kind == "event"] for r in seen}
    once_in_order = sum(seen[r] == stored[r] for r in seen)
    result = {
        "runs submitted": len(run_ids), "completed": right,
        "lost": sum(not ends[r] for r in run_ids), "completed twice": twice,
        "failed or dead-lettered": failed,
        "executed more than once": redone, "workers killed": len(kills),
        "followers": len(seen),
        "followers that saw each stored event once, in order": once_in_order,
        "redis restarts": len(restarts), "lease s": args.lease, "seconds": round(elapsed, 1),
    }
    if latencies:
        result["redelivery after SIGKILL, s (p50 / max)"] = (
            round(statistics.median(latencies), 2), round(max(latencies), 2))
        result["redelivery, in leases (p50 / max)"] = (
            round(statistics.median(latencies) / args.lease, 2),
            round(max(latencies) / args.lease, 2))
        result["redeliveries measured"] = len(latencies)
    if near_restart:
        result["redelivery of kills around the Redis restart, s (max)"] = round(
            max(near_restart), 2)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once per worker")
    parser.add_argument("--lease", type=float, default=3.0, help="lease timeout, seconds")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--follow-every", type=int, default=5, help="follow every n-th run")
    parser.add_argument("--deadline", type=float, default=600.0, help="give up after, seconds")
    parser.add_argument("--seed", type=int, default=16)


def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"fault soak: {args.runs} runs over {args.workers} workers (concurrency "
          f"{args.concurrency}, lease {args.lease} s), SIGKILL every {args.kill_every} s, one "
          f"Redis restart; {os.cpu_count()} cores", flush=True)
    result = trio.run(soak, args)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    return result
