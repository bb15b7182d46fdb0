"""Fixtures for the provider tests: a loopback server in the test's own trio run.

No test here touches the internet: every model points at 127.0.0.1. Provider environment
variables are cleared so a developer's real key can never leak into a request.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator

import pytest
import trio
from loopback import LoopbackServer

_PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                 "OLLAMA_BASE_URL")


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server(nursery: trio.Nursery) -> LoopbackServer:
    """A started :class:`LoopbackServer`; it stops when the test ends."""
    srv = LoopbackServer()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, srv.handle, 0,
                                                      host="127.0.0.1"))
    srv.port = listeners[0].socket.getsockname()[1]
    return srv


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: a connect hangs until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # more than the backlog admits; the extra SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
