"""One run-config schema, checked once at the edge: the same message for a bad key from a
Python call, ``with_config``, ``Worker.submit``, an HTTP body and ``rillet run --config``
(issue 19, point 4); the checked value is passed down as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from rillet.graphs import RunnableLambda
from rillet.runtime import ConfigError, EventBus, RilletError, Worker
from rillet.runtime.lowlevel import RunConfig
from rillet.runtime.serve.server import open_server

APPS = Path(__file__).parent.parent / "serving" / "serving_apps.py"
echo = RunnableLambda(lambda x: x, name="echo")

BAD = [
    ({"tags": 3}, "config['tags'] must be a list of strings, got int: 3"),
    ({"tags": "a"}, "config['tags'] must be a list of strings, got str: 'a'"),
    ({"metadata": [1]}, "config['metadata'] must be a dict (a JSON object), got list: [1]"),
    ({"max_concurrency": 0}, "config['max_concurrency'] must be an integer >= 1, got int: 0"),
    ({"max_concurrency": True}, "config['max_concurrency'] must be an integer >= 1, got bool: "
                                "True"),
    ({"bound": 5000}, "config['bound'] must be an integer from 0 to 1024, got int: 5000"),
    ({"run_name": ""}, "config['run_name'] must be a non-empty string of at most 200 "
                       "characters, got str: ''"),
    ({"recursion_limit": "9"}, "config['recursion_limit'] must be an integer >= 1, got str: "
                               "'9'"),
]


@pytest.mark.parametrize(("config", "message"), BAD)
async def test_a_bad_key_is_one_config_error_from_python(config: dict[str, Any],
                                                         message: str) -> None:
    """invoke, astream, batch, astream_events, with_config and Worker.submit all refuse it
    with the same ConfigError (a RilletError, a TypeError and a ValueError)."""
    pattern = "^" + message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)") + "$"
    with pytest.raises(ConfigError, match=pattern) as info:
        await echo.ainvoke(1, config)  # type: ignore[arg-type]
    assert all(isinstance(info.value, cls) for cls in (RilletError, TypeError, ValueError))
    with pytest.raises(ConfigError, match=pattern):
        [c async for c in echo.astream(1, config)]  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=pattern):
        await echo.abatch([1, 2], config)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=pattern):
        [e async for e in echo.astream_events(1, config)]  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=pattern):
        echo.with_config(config)  # type: ignore[arg-type]
    async with Worker() as worker:
        with pytest.raises(ConfigError, match=pattern):
            await worker.submit(echo, 1, config)
        assert worker.statistics().running == 0


async def test_the_same_message_comes_over_http() -> None:
    """The server answers 422 with exactly the Python message, for every bad key."""
    async with Worker() as worker, open_server({"echo": echo}, worker=worker) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        for config, message in BAD:
            reply = await client.post("/echo/invoke", json={"input": 1, "config": config})
            assert reply.status_code == 422
            assert reply.json() == {"status_code": 422, "type": "InvalidConfig",
                                    "message": message}
        reply = await client.post("/echo/invoke", json={"input": 1, "config": {"callbacks": []}})
        assert reply.status_code == 422
        assert "has keys ['callbacks'] that are not accepted over HTTP" in reply.json()["message"]


def test_rillet_run_config_gives_the_same_message() -> None:
    """``rillet run --config '{"tags": 3}'``: one line, exit 2, no traceback."""
    done = subprocess.run([sys.executable, "-m", "rillet.runtime.cli", "run", f"{APPS}:joke",
                           "--input", '{"topic": "x"}', "--config", '{"tags": 3}'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "rillet: error: --config: config['tags'] must be a list of strings, got int: 3"]


async def test_a_batch_config_list_names_the_bad_item() -> None:
    with pytest.raises(ConfigError, match=r"^config\[1\]\['tags'\] must be a list of strings"):
        await echo.abatch([1, 2], [{}, {"tags": 3}])  # type: ignore[list-item]


def test_unknown_keys_go_into_configurable_in_python_only() -> None:
    """LangChain's rule in Python; over HTTP an unknown key is refused instead."""
    assert RunConfig.from_dict({"user": "u1", "configurable": {"k": 2}}) == RunConfig(
        configurable={"user": "u1", "k": 2})
    with pytest.raises(ConfigError, match=r"^'config' has keys \['user'\] that are not "
                                          r"accepted over HTTP"):
        RunConfig.from_dict({"user": "u1"}, remote=True)


def test_a_checked_config_passes_through_and_callbacks_take_buses() -> None:
    checked = RunConfig.from_dict({"tags": ["a"], "callbacks": [bus := EventBus()]})
    assert RunConfig.from_dict(checked) is checked
    assert checked.callbacks == (bus,) and checked.to_wire() == {"tags": ["a"]}
    with pytest.raises(ConfigError, match=r"^config\['callbacks'\] must be a list of rillet "
                                          r"EventBus objects, got list: \[1\]$"):
        RunConfig.from_dict({"callbacks": [1]})


async def test_the_run_id_is_passed_down_as_a_value() -> None:
    """A run_id given to the worker is the run's (handle and events); none given: one is
    made, and the events carry the same."""
    async with Worker() as worker:
        given = await worker.submit(echo, 1, {"run_id": "r-1"}, events=True)
        ids = {e.run_id async for e in given.events(version=None)}
        assert given.run_id == "r-1" and ids == {"r-1"}
        made = await worker.submit(echo, 1, events=True)
        ids = {e.run_id async for e in made.events(version=None)}
        assert ids == {made.run_id} and made.run_id != "r-1"


def test_the_function_config_parameter_gets_a_plain_dict() -> None:
    """A lambda asking for ``config`` receives the LangChain-shaped dict (tags as a list)."""
    seen: list[object] = []

    def look(x: int, config: dict[str, Any]) -> int:
        seen.append(config)
        return x

    RunnableLambda(look).invoke(1, {"tags": ["t"], "metadata": {"m": 1}, "extra": 2})
    assert seen == [{"tags": ["t"], "metadata": {"m": 1}, "configurable": {"extra": 2}}]
