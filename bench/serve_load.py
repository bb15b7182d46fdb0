"""How many concurrent streaming runs one ``rillet serve`` process sustains, and its memory.

Starts ``rillet serve`` in a subprocess (its own process, so its peak RSS is its own), then
opens N concurrent ``POST /<name>/stream`` connections from this process with raw trio sockets
(a light client, so the client is not what saturates), each streaming one run of a scripted
chat model: ``--tokens`` tokens, ``--delay`` seconds apart (default 200 tokens at 50 tokens/s,
a 4 s stream). It reports, per load level: runs completed, errors, time to first token and
total stream time (p50/p99) against the ideal, frames per second, and the server's CPU use and
peak resident memory (``VmHWM``). Traffic goes to 127.0.0.1 only; every level is bounded in
time and the script stops by itself.

Usage::

    python -m bench.serve_load --clients 100 200 300             # 50 tokens/s per stream
    python -m bench.serve_load --clients 1000 --tokens 40 --delay 0.2   # 5 tokens/s
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser

TOKENS = int(os.environ.get("RILLET_BENCH_TOKENS", "200"))
DELAY = float(os.environ.get("RILLET_BENCH_DELAY", "0.02"))

# What the server process serves (it imports this file by path with the settings above).
chain = (
    ChatPromptTemplate.from_template("tell me about {topic}")
    | ScriptedChatModel(responses=[" ".join(f"w{i}" for i in range(TOKENS))], delay=DELAY)
    | StrOutputParser()
)


@attrs.define
class Client:
    """One streaming client's timings (seconds since the level started) and counts."""

    started: float = 0.0
    first: float | None = None
    ended: float | None = None
    frames: int = 0
    error: str | None = None


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _stream_once(port: int, client: Client, t0: float, timeout: float) -> None:
    body = b'{"input": {"topic": "load"}}'
    request = (b"POST /chain/stream HTTP/1.1\r\nhost: 127.0.0.1\r\n"
               b"content-type: application/json\r\ncontent-length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    client.started = trio.current_time() - t0
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(request)
                tail = b""
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        client.error = "closed before end"
                        return
                    window = tail + data
                    # Frames never straddle the chunked-encoding size lines: the server writes
                    # whole frames per chunk, so counting across reads only needs a short tail.
                    count = window.count(b"event: data\n") - tail.count(b"event: data\n")
                    if count and client.first is None:
                        client.first = trio.current_time() - t0
                    client.frames += count
                    if b"event: end\n" in window:
                        client.ended = trio.current_time() - t0
                        return
                    if b"event: error\n" in window or b" 503 " in window[:64]:
                        client.error = window[:200].decode(errors="replace")
                        return
                    tail = window[-16:]
    except trio.TooSlowError:
        client.error = "timeout"
    except OSError as error:
        client.error = f"{type(error).__name__}: {error}"


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _level(port: int, pid: int, clients: int, ramp: float) -> dict[str, Any]:
    ideal = TOKENS * DELAY
    timeout = ideal * 4 + 30
    results = [Client() for _ in range(clients)]
    peak_rss = 0
    cpu0, t0 = _cpu_seconds(pid), trio.current_time()
    own0 = time.process_time()
    async with trio.open_nursery() as nursery:

        async def sample() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, _status(pid, "VmRSS"))
                await trio.sleep(0.1)

        nursery.start_soon(sample)
        async with trio.open_nursery() as streams:
            for client in results:
                streams.start_soon(_stream_once, port, client, t0, timeout)
                await trio.sleep(ramp / clients)  # spread connects over the ramp
        nursery.cancel_scope.cancel()
    wall = trio.current_time() - t0
    done = [c for c in results if c.ended is not None and c.error is None]
    ttft = [c.first - c.started for c in done if c.first is not None]
    total = [c.ended - c.started for c in done if c.ended is not None]
    errors: dict[str, int] = {}
    for c in results:
        if c.error:
            errors[c.error[:60]] = errors.get(c.error[:60], 0) + 1
    return {
        "clients": clients, "completed": len(done), "errors": errors,
        "frames": sum(c.frames for c in results), "wall": wall, "ideal": ideal,
        "ttft_p50": _percentile(ttft, 0.5), "ttft_p99": _percentile(ttft, 0.99),
        "total_p50": _percentile(total, 0.5), "total_p99": _percentile(total, 0.99),
        "cpu": (_cpu_seconds(pid) - cpu0) / wall, "peak_rss": peak_rss,
        "client_cpu": (time.process_time() - own0) / wall,
    }


def main() -> None:
    global TOKENS, DELAY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds to open all clients")
    parser.add_argument("--tokens", type=int, default=TOKENS, help="tokens per stream")
    parser.add_argument("--delay", type=float, default=DELAY, help="seconds between tokens")
    args = parser.parse_args()
    _raise_fd_limit()
    TOKENS, DELAY = args.tokens, args.delay  # the server reads them from its environment
    env = {**os.environ, "RILLET_BENCH_TOKENS": str(TOKENS), "RILLET_BENCH_DELAY": str(DELAY)}
    most = max(args.clients)
    server = subprocess.Popen(
        [sys.executable, "-c", "import resource as r; h = r.getrlimit(r.RLIMIT_NOFILE)[1]; "
         "r.setrlimit(r.RLIMIT_NOFILE, (h, h)); from rillet.runtime.cli.main import main; "
         "raise SystemExit(main())", "serve", f"{Path(__file__)}:chain", "--port", "0",
         "--max-concurrent-runs", str(most), "--max-queued", str(most)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        port = int(url.rsplit(":", 1)[1])
        idle_rss = _status(server.pid, "VmRSS")
        print(f"server pid {server.pid} at {url}; idle RSS {idle_rss / 2**20:.1f} MiB; "
              f"each run streams {TOKENS} tokens {DELAY * 1000:g} ms apart "
              f"(ideal {TOKENS * DELAY:.1f} s)")
        print(f"{'clients':>7} {'done':>5} {'errors':>6} {'ttft p50/p99 s':>15} "
              f"{'stream p50/p99 s':>17} {'frames/s':>9} {'cpu':>5} {'peak RSS':>9} "
              f"{'client cpu':>10}")
        for clients in args.clients:
            r = trio.run(_level, port, server.pid, clients, args.ramp)
            print(f"{r['clients']:>7} {r['completed']:>5} {sum(r['errors'].values()):>6} "
                  f"{r['ttft_p50']:>7.3f}/{r['ttft_p99']:<7.3f} "
                  f"{r['total_p50']:>8.2f}/{r['total_p99']:<8.2f} "
                  f"{r['frames'] / r['wall']:>9.0f} {r['cpu']:>5.0%} "
                  f"{r['peak_rss'] / 2**20:>6.1f} MiB {r['client_cpu']:>10.0%}", flush=True)
            if r["errors"]:
                print(f"        errors: {r['errors']}")
            time.sleep(1.0)
        print(f"server high-water RSS (VmHWM): {_status(server.pid, 'VmHWM') / 2**20:.1f} MiB; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
