"""The README's "Using rillet from asyncio" blocks, run as written: the asyncio.run example,
and the Starlette SSE app on a real uvicorn server, where a client that hangs up cancels the
run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from rillet.graphs import RunnableGenerator
from rillet.runtime.engine.hosts_streams import BOUND

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Using rillet from asyncio\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _block(first_line: str) -> str:
    found = [b for b in _section_blocks() if b.startswith(first_line)]
    assert len(found) == 1, f"no single README block starts with {first_line!r}"
    return found[0]


def test_the_asyncio_run_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The first block, executed as a script, prints the answer and the streamed tokens."""
    exec(compile(_block("import asyncio"), "README:asyncio", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert out.startswith("At Kensho.\nAt Kensho.['At Kensho.', 'At Kensho.']")


def _sse_app() -> types.ModuleType:
    module = types.ModuleType("sse_app")
    exec(compile(_block("# sse_app.py"), "README:sse_app.py", "exec"), module.__dict__)
    return module


@contextlib.asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[str]:
    import uvicorn

    # A socket listening already: clients queue in its backlog until uvicorn accepts them.
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def test_the_sse_app_streams_the_chain() -> None:
    """GET /joke streams one SSE data frame per token, then the end frame."""
    module = _sse_app()
    expected = [t for t in module.chain.stream({"topic": "cats"})]

    async def main() -> tuple[list[Any], str]:
        async with _serving(module.app) as url, httpx.AsyncClient() as client:
            reply = await client.get(f"{url}/joke", params={"topic": "cats"})
        frames = [f for f in reply.text.split("\n\n") if f]
        data = [json.loads(f.removeprefix("data: ")) for f in frames if f.startswith("data: ")]
        return data, frames[-1]

    data, last = asyncio.run(main())
    assert data == expected and last == "event: end\ndata: {}"


def test_a_client_that_hangs_up_cancels_the_run() -> None:
    """Five times: read three frames of an endless stream, hang up; the run's producer stops
    (its finally runs) within a bound of what was sent."""
    module = _sse_app()
    state: dict[str, Any] = {"produced": 0}

    async def endless(chunks: AsyncIterator[Any]) -> AsyncIterator[str]:
        try:
            async for _ in chunks:
                while True:
                    state["produced"] += 1
                    yield "tick"
                    await trio.sleep(0.001)
        finally:
            state["closed"].set()  # the guest shares the loop's thread

    module.chain = RunnableGenerator(endless)  # the endpoint reads the module's `chain`

    async def main() -> list[int]:
        after_hangup = []
        async with _serving(module.app) as url, httpx.AsyncClient() as client:
            for _ in range(5):
                state["closed"], state["produced"] = asyncio.Event(), 0
                async with client.stream("GET", f"{url}/joke") as reply:
                    frames = 0
                    async for line in reply.aiter_lines():
                        frames += line.startswith("data: ")
                        if frames == 3:
                            break
                await asyncio.wait_for(state["closed"].wait(), 30)
                after_hangup.append(state["produced"])
        return after_hangup

    for produced in asyncio.run(main()):
        assert 3 <= produced <= 3 + BOUND + 2 * 16
