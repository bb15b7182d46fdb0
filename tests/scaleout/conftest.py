"""Fixtures for the scale-out tests: a real redis-server, worker processes, unique key prefixes.

The Redis URL comes from ``RILLET_TEST_REDIS_URL`` (``.ci/run`` starts a server and sets it);
without it a private ``redis-server`` is started on a free loopback port. With neither, the
``redis`` tests skip — unless ``RILLET_REQUIRE_REDIS=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = "tests.scaleout.graphs:GRAPHS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not answer PING within {timeout} s")


class RedisServer:
    """A private redis-server that a test may kill and restart on the same port and data dir."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.port, self.directory, self.appendonly = free_port(), directory, appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly
                       else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.directory), *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        """kill -9: what survives is what was already on disk."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _require() -> bool:
    return os.environ.get("RILLET_REQUIRE_REDIS") == "1"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared test server's URL (from the environment, or a private server)."""
    url = os.environ.get("RILLET_TEST_REDIS_URL")
    if url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        wait_for_port(port)
        yield url
        return
    if shutil.which("redis-server") is None:
        if _require():
            pytest.fail("RILLET_REQUIRE_REDIS=1 but neither RILLET_TEST_REDIS_URL nor "
                        "redis-server is available (apt-get install redis-server)")
        pytest.skip("no redis-server on PATH and RILLET_TEST_REDIS_URL is not set")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with an fsync-always AOF, not started yet."""
    if shutil.which("redis-server") is None:
        if _require():
            pytest.fail("RILLET_REQUIRE_REDIS=1 but redis-server is not on PATH")
        pytest.skip("no redis-server on PATH")
    server = RedisServer(tmp_path, appendonly=True)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests share a server without seeing each other."""
    return f"test-{uuid.uuid4().hex[:10]}"


class Workers:
    """Worker processes (``python -m rillet.runtime.cli.worker worker``), logs in ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    async def start(self, url: str, prefix: str, *args: str, count: int = 1,
                    graphs: str = GRAPHS) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` workers and wait until each says it is serving."""
        started = []
        for _ in range(count):
            log = self.tmp_path / f"worker-{len(self.procs)}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rillet.runtime.cli.worker", "worker", graphs,
                     "--redis", url, "--prefix", prefix, *args],
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            self.procs.append(proc)
            self.logs.append(log)
            started.append(proc)
        for proc in started:
            await self._wait_ready(proc)
        return started

    async def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        log = self.logs[self.procs.index(proc)]
        with trio.fail_after(30):
            while b"serving" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}:\n"
                                       f"{log.read_text(errors='replace')}")
                await trio.sleep(0.05)

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.procs if p.pid == pid)

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in self.logs)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes with ``await workers.start(url, prefix, *args, count=n)``."""
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def redis_backends(redis_url: str, prefix: str) -> AsyncIterator[Any]:
    """``(queue, events)`` on the shared server under this test's prefix (lease 30 s)."""
    from rillet.runtime.scaleout.service import open_redis_backends

    async with open_redis_backends(redis_url, prefix=prefix) as backends:
        yield backends
