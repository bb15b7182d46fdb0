"""What the viewer's servers send: the page's files, its config, and a saved log as a stream."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from viewer_apps import APPS, JOKE, joke

from rillet.graphs import RunnableParallel
from rillet.runtime.errors import TruncatedLogError, WireFormatError
from rillet.runtime.events.eventlog import open_event_log
from rillet.runtime.serve.server import open_server, served_names
from rillet.runtime.serve.viewer import ASSETS, LogViewServer, graph_tree, log_frames, ui_asset
from rillet.runtime.wire.sse import SSEParser

ROOT = Path(__file__).resolve().parents[2]


def frames(data: bytes) -> list[tuple[str, object]]:
    return [(event, json.loads(text) if text else None)
            for event, text in SSEParser().feed(data)]


async def test_the_server_serves_the_page_and_its_config() -> None:
    async with open_server(APPS) as server, httpx.AsyncClient(base_url=server.url) as client:
        moved = await client.get("/ui")
        assert (moved.status_code, moved.headers["location"]) == (307, "/ui/")
        page = await client.get("/ui/")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script src="viewer.js">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name, content_type in ASSETS.items():
            reply = await client.get(f"/ui/{name}")
            assert (reply.status_code, reply.headers["content-type"]) == (200, content_type)
            assert reply.content == ui_asset(name)[0]
        missing = await client.get("/ui/secrets.txt")
        assert missing.status_code == 404
        assert missing.json()["message"] == "no page at /ui/secrets.txt; the viewer is at /ui/"
        config = (await client.get("/ui/config.json")).json()
    assert config["mode"] == "live"
    assert config["events"] == "../events?policy=drop_oldest&bound=1024"
    assert sorted(config["graphs"]) == ["failing", "joke", "story"]
    assert [node["label"] for node in config["graphs"]["joke"]["nodes"]] == [
        "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser", "shout"]


async def test_with_a_token_only_the_static_page_is_open() -> None:
    async with open_server(APPS, token="s3cret") as server, \
            httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/ui/")).status_code == 200
        assert (await client.get("/ui/viewer.js")).status_code == 200
        assert (await client.get("/ui/config.json")).status_code == 401
        assert (await client.get("/events")).status_code == 401
        assert (await client.get("/joke/graph")).status_code == 401
        guarded = await client.get("/ui/config.json", headers={"authorization": "Bearer s3cret"})
        assert guarded.status_code == 200


def test_ui_is_a_reserved_name() -> None:
    with pytest.raises(ValueError, match=r"and not be 'events', 'healthz' or 'ui'$"):
        served_names({"ui": joke})


def test_graph_tree_numbers_nodes_and_keeps_edges() -> None:
    both = RunnableParallel({"a": joke, "b": joke})
    tree = graph_tree(both)
    assert tree is not None
    labels = [node["label"] for node in tree["nodes"]]
    assert labels[0] == "RunnableParallel<a,b>Input" and labels[1] == "RunnableParallel<a,b>Output"
    assert [node["id"] for node in tree["nodes"]] == [f"n{i}" for i in range(len(labels))]
    assert ["n0", "n2"] in tree["edges"] and len(tree["edges"]) == 10
    assert tree["root"] == "RunnableParallel<a,b>"
    assert graph_tree(object()) is None


def test_package_data_ships_every_file_of_the_page() -> None:
    """A non-editable install carries ui/: pyproject's package-data names each file's kind."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["rillet.runtime.serve"]
    shipped = {path.name for pattern in patterns for path in (ROOT / "runtime/serve").glob(pattern)}
    on_disk = {path.name for path in (ROOT / "runtime/serve/ui").iterdir()}
    assert shipped == on_disk == set(ASSETS)


@pytest.fixture
def saved_log(tmp_path: Path) -> Path:
    """One run of ``joke`` recorded, with its graph in the header (as ``rillet run --log``)."""
    path = tmp_path / "run.rlog"

    async def record() -> None:
        async with open_event_log(path, header={"graphs": {"joke": graph_tree(joke)}}) as log:
            output = await joke.ainvoke({"topic": "x"}, config={"callbacks": [log.bus]})
        assert output == JOKE.upper()

    trio.run(record)
    return path


def test_a_saved_log_streams_as_v2_events_with_their_times(saved_log: Path) -> None:
    streamed = frames(b"".join(log_frames(saved_log)))
    assert streamed[0] == ("metadata", {"source": "run.rlog"})
    assert streamed[-1] == ("end", None)
    events = [tree for kind, tree in streamed[1:-1]]
    assert all(kind == "data" for kind, _ in streamed[1:-1])
    assert events[0]["event"] == "on_chain_start" and events[0]["name"] == "joke"
    assert events[-1]["event"] == "on_chain_end" and events[-1]["data"] == {
        "output": JOKE.upper()}
    times = [event["time"] for event in events]
    assert times == sorted(times) and times[0] > 0


def test_a_truncated_log_streams_what_it_holds_then_says_where_it_broke(
    saved_log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.rlog"
    broken.write_bytes(saved_log.read_bytes()[:-7])
    streamed = frames(b"".join(log_frames(broken)))
    kinds = [kind for kind, _ in streamed]
    assert kinds[0] == "metadata" and kinds[-2:] == ["error", "end"]
    assert kinds.count("data") == len(frames(b"".join(log_frames(saved_log)))) - 3
    error = streamed[-2][1]
    assert isinstance(error, dict) and error["type"] == "TruncatedLogError"


@pytest.fixture
def log_server(saved_log: Path) -> Iterator[str]:
    server = LogViewServer(saved_log, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_log_server_serves_the_page_config_and_stream(log_server: str) -> None:
    base = log_server.removesuffix("/ui/")
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/").headers["location"] == "/ui/"
        page = client.get("/ui/")
        assert page.text == ui_asset("index.html")[0].decode()
        assert "default-src 'self'" in page.headers["content-security-policy"]
        config = client.get("/ui/config.json").json()
        assert (config["mode"], config["title"], config["events"]) == (
            "log", "run.rlog", "log-events")
        assert config["graphs"]["joke"] == graph_tree(joke)
        stream = client.get("/ui/log-events")
        assert stream.headers["content-type"] == "text/event-stream"
        assert frames(stream.content)[-1] == ("end", None)
        assert client.get("/ui/nothing").status_code == 404


def test_a_log_server_refuses_what_is_not_a_log(tmp_path: Path) -> None:
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_bytes(b"\x93\x01\x02\x03")
    with pytest.raises(WireFormatError, match="is not a rillet event log"):
        LogViewServer(not_a_log, port=0)
    empty = tmp_path / "empty.rlog"
    empty.write_bytes(b"")
    with pytest.raises(TruncatedLogError, match="is empty"):
        LogViewServer(empty, port=0)


def test_rillet_view_explains_a_missing_or_foreign_file(tmp_path: Path) -> None:
    def view(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rillet.runtime.cli", "view", str(path),
                               "--port", "0"], capture_output=True, text=True, timeout=60)

    missing = view(tmp_path / "nope.rlog")
    assert missing.returncode == 2
    assert f"rillet: error: no such event log: {tmp_path / 'nope.rlog'}" in missing.stderr
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    refused = view(foreign)
    assert refused.returncode == 1
    assert f"rillet: cannot read {foreign}:" in refused.stderr
