"""``rillet serve --redis``: the HTTP server queues runs for workers elsewhere (QueueGateway).

In-memory queue and event log here (the Redis backends are the same interfaces, tested with a
real redis-server in test_redis_*.py); the worker runs in-process, the server for real on a
loopback port, driven with httpx.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from rillet.runtime.scaleout.gateway import QueueGateway
from rillet.runtime.scaleout.queue import InMemoryRunQueue
from rillet.runtime.scaleout.service import ScaleoutClient, ScaleoutWorker
from rillet.runtime.scaleout.store import InMemoryEventLog
from rillet.runtime.serve.server import open_server

from .conftest import ROOT, free_port
from .graphs import GRAPHS, expected_output


def _sse_data(text: str) -> list[Any]:
    frames, event = [], None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "data":
            frames.append(json.loads(line.split(":", 1)[1]))
    return frames


async def test_server_with_a_gateway_runs_requests_on_queue_workers() -> None:
    """invoke, stream and stream_events through the queue: a worker runs them, the server
    relays outputs and events; /events explains that it needs an event feed."""
    queue, log = InMemoryRunQueue(lease_timeout=5.0), InMemoryEventLog()
    client = ScaleoutClient(queue, log)
    served = {"slow_chain": GRAPHS["slow_chain"]}
    gateway = QueueGateway(client, served)
    async with trio.open_nursery() as nursery:
        worker = ScaleoutWorker(GRAPHS, queue, log)
        await nursery.start(worker.run)
        async with open_server(served, worker=gateway) as server, httpx.AsyncClient(
                base_url=server.url, timeout=10) as http:
            reply = await http.post("/slow_chain/invoke", json={"input": {"n": 4}})
            assert reply.status_code == 200, reply.text
            assert reply.json()["output"] == expected_output(4)

            reply = await http.post("/slow_chain/stream", json={"input": {"n": 3}})
            assert "".join(_sse_data(reply.text)) == expected_output(3)

            reply = await http.post("/slow_chain/stream_events", json={"input": {"n": 2}})
            events = _sse_data(reply.text)
            assert events[0]["event"] == "on_chain_start" and events[-1]["event"] == "on_chain_end"
            assert events[-1]["data"]["output"] == expected_output(2)

            reply = await http.get("/events")  # this client has no event feed
            assert reply.status_code == 503 and "event feed" in reply.json()["message"]
            health = await http.get("/healthz")
            assert health.status_code == 200
        worker.stop()
        nursery.cancel_scope.cancel()
    assert gateway.statistics().submitted == 3
    assert gateway.statistics().following == 0


@pytest.mark.redis
async def test_rillet_serve_redis_with_worker_processes(
    redis_url: str, prefix: str, workers: Any, tmp_path: Path
) -> None:
    """`rillet serve --redis` in one process, `rillet worker` in another: an HTTP invoke and
    stream are run by the worker, through Redis."""
    await workers.start(redis_url, prefix)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rillet.runtime.cli", "serve", "tests.scaleout.graphs:GRAPHS",
             "--redis", redis_url, "--prefix", prefix, "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        with trio.fail_after(30):
            while b"serving on" not in log.read_bytes():
                assert server.poll() is None, log.read_text(errors="replace")
                await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            reply = await http.post("/slow_chain/invoke", json={"input": {"n": 5}})
            assert reply.status_code == 200, reply.text
            assert reply.json()["output"] == expected_output(5)
            reply = await http.post("/slow_chain/stream", json={"input": {"n": 3}})
            assert "".join(_sse_data(reply.text)) == expected_output(3)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
