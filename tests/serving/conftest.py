"""Fixtures of the serving tests: a real server on a loopback port, and a client for it.

These tests use real sockets, so they never use the autojump clock; every wait is bounded
with ``trio.fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from serving_apps import failing, joke

from rillet.runtime.engine.worker import Worker
from rillet.runtime.serve.server import RunningServer, open_server


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """``joke`` and ``failing`` served on 127.0.0.1 at a free port."""
    async with Worker(max_concurrent_runs=8, max_queued=8, shutdown_timeout=1) as worker:
        async with open_server({"joke": joke, "failing": failing}, worker=worker) as running:
            yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http
