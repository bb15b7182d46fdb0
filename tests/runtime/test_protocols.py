"""The engine's protocols: anything that implements ``Launchable`` runs on a worker and a
server, with no private name read; what does not is refused up front."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rillet.graphs import RunnableLambda
from rillet.runtime import RunHandle, Worker
from rillet.runtime.engine.protocols import is_launchable
from rillet.runtime.lowlevel import FeedSource, Launchable, RunConfig
from rillet.runtime.serve.server import open_server, served_names


class Shouting:
    """An extension's own runnable: it implements the protocol by delegating to a chain."""

    def __init__(self) -> None:
        self._inner = RunnableLambda(lambda text: text.upper(), name="shout")

    def get_name(self) -> str:
        return "Shouting"

    def output_mode(self, input_mode: str) -> str:
        return self._inner.output_mode(input_mode)

    def finalize(self, value: Any) -> Any:
        return f"{value}!"

    def launch(self, inputs: FeedSource, config: RunConfig | None = None,
               **options: Any) -> RunHandle:
        return self._inner.launch(inputs, config, **options)

    def get_input_jsonschema(self) -> dict[str, object]:
        return {"type": "string"}

    def get_output_jsonschema(self) -> dict[str, object]:
        return {"type": "string"}

    def draw_ascii(self) -> str:
        return "Shouting"

    def draw_mermaid(self) -> str:
        return "graph TD; Shouting"


def test_an_object_implementing_the_protocol_is_launchable() -> None:
    assert isinstance(Shouting(), Launchable) and is_launchable(Shouting())
    assert not is_launchable(object()) and not isinstance(object(), Launchable)
    assert is_launchable(RunnableLambda(abs))


async def test_the_worker_runs_it_through_its_public_methods() -> None:
    """Output added up with its output_mode and finished with its finalize."""
    async with Worker() as worker:
        run = await worker.submit(Shouting(), "hi")
        assert await run.result() == "HI!"
        with pytest.raises(TypeError, match=r"^Worker.submit expected a runnable .* got int: 3$"):
            await worker.submit(3, "hi")  # type: ignore[arg-type]


async def test_the_server_serves_it_and_checks_requests_with_its_schema() -> None:
    async with Worker() as worker, open_server({"shout": Shouting()}, worker=worker) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        reply = await client.post("/shout/invoke", json={"input": "hi"})
        assert reply.json()["output"] == "HI!"
        schema = await client.get("/shout/input_schema")
        assert schema.json() == {"title": "shoutInput", "type": "string"}
        graph = await client.get("/shout/graph")
        assert graph.json()["ascii"] == "Shouting"


def test_serving_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^cannot serve 'x': expected a runnable"):
        served_names({"x": object()})  # type: ignore[dict-item]
