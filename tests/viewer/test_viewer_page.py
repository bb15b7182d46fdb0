"""The viewer page in headless Chromium: what a user sees of live runs and of a saved log."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from viewer_apps import APPS, GATE, JOKE
from viewer_helpers import ThreadServer

pytestmark = pytest.mark.browser

APPS_FILE = Path(__file__).with_name("viewer_apps.py")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_viewer(page: Any, url: str) -> None:
    page.goto(f"{url}/ui/")
    expect(page.locator("#status")).to_have_text("live", timeout=20_000)


def post(url: str, name: str, topic: str, **config: Any) -> httpx.Response:
    return httpx.post(f"{url}/{name}/invoke", json={"input": {"topic": topic}, "config": config},
                      timeout=30)


def root_named(page: Any, name: str) -> Any:
    """The root-run sections whose root run is called ``name``, newest first."""
    return page.locator(f'section.root[data-name="{name}"]')


def is_red(css_color: str) -> bool:
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_color)[:3])
    return red > 150 and green < 90 and blue < 90


def test_a_run_appears_as_a_tree_of_child_runs_under_its_graph(live: str, page: Any) -> None:
    """The served graph is drawn; a run shows its root and one row per child, in order."""
    open_viewer(page, live)
    nodes = page.locator('.graph[data-graph="joke"] .node text')
    assert nodes.all_text_contents() == ["ChatPromptTemplate", "ScriptedChatModel",
                                       "StrOutputParser", "shout"]
    assert post(live, "joke", "parrots").json()["output"] == JOKE.upper()
    root = root_named(page, "joke")
    expect(root.locator(".root-head .state")).to_have_text("ok")
    assert root.locator(".row .name").all_inner_texts() == [
        "joke", "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser", "shout"]
    assert root.locator(".row .kind").all_inner_texts() == [
        "chain", "prompt", "chat_model", "parser", "tool"]
    assert root.locator(":scope > .run > .children > .run").count() == 4
    expect(root.locator(":scope > .run > .out")).to_have_text(JOKE.upper())
    expect(root.locator(".kind-prompt > .out")).to_have_text("human: tell me about parrots")
    expect(root.locator(".kind-chat_model > .out")).to_have_text(JOKE)
    expect(root.locator(":scope > .run > .row .dur")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.locator('.graph[data-graph="joke"] .node[data-label="shout"]')).to_have_class(
        "node ok")
    root.locator(".kind-tool > .row").click()
    expect(root.locator(".kind-tool > .details")).to_contain_text(f'"input": "{JOKE}"')


def test_streamed_text_grows_while_the_run_streams(live: str, page: Any) -> None:
    """A run held mid-stream shows what it streamed so far, then the rest as it comes."""
    open_viewer(page, live)
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(post, live, "story", "rivers")
        root = root_named(page, "story")
        out = root.locator(":scope > .run > .out")
        expect(out).to_have_text("Once upon a time")
        expect(root.locator(".root-head .state")).to_have_text("running")
        expect(root.locator(".kind-chat_model > .out")).to_contain_text("upon a time")
        GATE.set()
        expect(out).to_have_text("Once upon a time the river reached the sea")
        expect(root.locator(".root-head .state")).to_have_text("ok")
        assert reply.result(timeout=30).json()["output"] == (
            "Once upon a time the river reached the sea")


def test_a_failed_run_shows_its_error_in_red(live: str, page: Any) -> None:
    open_viewer(page, live)
    assert post(live, "failing", "x").status_code == 500
    root = root_named(page, "failing")
    expect(root.locator(".root-head .state")).to_have_text("error")
    message = "ValueError: cannot shout 'Why did the '"
    tool_error = root.locator(".kind-tool > .err")
    expect(tool_error).to_have_text(message)
    expect(root.locator(":scope > .run > .err")).to_have_text(message)
    assert is_red(tool_error.evaluate("e => getComputedStyle(e).color"))
    assert is_red(root.locator(".kind-tool > .row .name").evaluate(
        "e => getComputedStyle(e).color"))
    assert not is_red(root.locator(".kind-prompt > .row .name").evaluate(
        "e => getComputedStyle(e).color"))
    failing_graph = page.locator('.graph[data-graph="failing"]')
    expect(failing_graph.locator('.node[data-label="explode"]')).to_have_class("node error")
    expect(failing_graph.locator('.node[data-label="StrOutputParser"]')).to_have_class("node ok")
    # Only the graph whose runnable ran lights up, though the joke has a StrOutputParser too.
    expect(page.locator('.graph[data-graph="joke"] .node[data-label="StrOutputParser"]')
           ).to_have_class("node")


def test_filters_by_name_tag_type_and_errors(live: str, page: Any) -> None:
    """Filters keep the matching runs with their ancestors, and hide the rest."""
    open_viewer(page, live)
    post(live, "joke", "a", tags=["blue"])
    post(live, "failing", "b")
    post(live, "joke", "c")
    roots = page.locator("section.root:visible")
    expect(roots).to_have_count(3)
    expect(page.locator(".root-head .state.running")).to_have_count(0)

    def shown() -> list[list[str]]:
        return [root.locator(".row .name:visible").all_inner_texts() for root in roots.all()]

    page.fill("#f-name", "fail")
    expect(roots).to_have_count(1)
    assert shown() == [["failing"]]
    page.fill("#f-name", "")
    page.fill("#f-tag", "BLUE")
    expect(roots).to_have_count(1)
    assert shown() == [["joke", "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser",
                        "shout"]]
    assert "tags: blue" in roots.first.locator(".root-head").inner_text()
    page.fill("#f-tag", "")
    page.select_option("#f-type", "tool")
    expect(page.locator(".kind-prompt:visible")).to_have_count(0)
    assert shown() == [["joke", "shout"], ["failing", "explode"], ["joke", "shout"]]
    page.select_option("#f-type", "")
    page.check("#f-errors")
    expect(roots).to_have_count(1)
    assert shown() == [["failing", "explode"]]
    page.uncheck("#f-errors")
    expect(page.locator(".row .name:visible")).to_have_count(15)


def test_the_page_keeps_a_bounded_number_of_runs_and_characters(live: str, page: Any) -> None:
    """250 root runs and a 40,000-character stream: the newest 200 roots and the last 16,384
    characters stay, and the page says what it dropped."""
    open_viewer(page, live)
    page.evaluate("""() => {
        const ev = (event, run_id, data, parent_ids = []) =>
            ({event, name: run_id, run_id, parent_ids, tags: [], metadata: {}, data});
        const events = [];
        for (let i = 0; i < 250; i++) {
            events.push(ev("on_chain_start", `burst${i}`, {}), ev("on_chain_end", `burst${i}`, {}));
        }
        events.push(ev("on_chain_start", "long", {}));
        for (let i = 0; i < 4000; i++) {
            events.push(ev("on_chain_stream", "long", {chunk: "0123456789"}));
        }
        window.rilletViewer.ingest(events);
    }""")
    expect(page.locator("section.root")).to_have_count(200)
    out = root_named(page, "long").locator(":scope > .run > .out")
    expect(out).to_contain_text("earlier characters not kept")
    text = out.inner_text()
    assert text.endswith("0123456789") and len(text.split("\n", 1)[1]) <= 16384 * 1.5
    expect(root_named(page, "burst249")).to_have_count(1)
    expect(root_named(page, "burst0")).to_have_count(0)


def test_a_guarded_server_asks_for_its_token(page: Any) -> None:
    with ThreadServer(APPS, token="s3cret") as url:
        page.goto(f"{url}/ui/")
        expect(page.locator("#auth")).to_be_visible()
        page.fill("#token", "s3cret")
        page.click("#auth button")
        expect(page.locator("#status")).to_have_text("live")
        reply = httpx.post(f"{url}/joke/invoke", json={"input": {"topic": "x"}},
                           headers={"authorization": "Bearer s3cret"}, timeout=30)
        assert reply.status_code == 200
        expect(root_named(page, "joke").locator(".root-head .state")).to_have_text("ok")
        page.close()


def test_rillet_view_shows_a_saved_run(page: Any, tmp_path: Path) -> None:
    """``rillet run --log`` then ``rillet view``: the saved run and its graph, from the file."""
    log = tmp_path / "run.rlog"
    cli = [sys.executable, "-m", "rillet.runtime.cli"]
    recorded = subprocess.run([*cli, "run", f"{APPS_FILE}:joke", "--input", '{"topic": "owls"}',
                               "--log", str(log)], capture_output=True, text=True, timeout=60)
    assert recorded.returncode == 0, recorded.stderr
    viewer = subprocess.Popen([*cli, "view", str(log), "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = viewer.stdout.readline() if viewer.stdout else ""
        found = re.search(r"at (http://127\.0\.0\.1:\d+/ui/)", line)
        assert found, (line, viewer.stderr.read() if viewer.poll() is not None else "")
        page.goto(found.group(1))
        expect(page.locator("#status")).to_have_text(re.compile(r"^loaded \d+ events$"))
        expect(page.locator("#title")).to_have_text("run.rlog")
        root = root_named(page, "joke")
        expect(root.locator(".root-head .state")).to_have_text("ok")
        assert root.locator(".row .name").all_inner_texts() == [
            "joke", "ChatPromptTemplate", "ScriptedChatModel", "StrOutputParser", "shout"]
        expect(root.locator(":scope > .run > .out")).to_have_text(JOKE.upper())
        expect(root.locator(".kind-prompt > .out")).to_have_text("human: tell me about owls")
        expect(page.locator('.graph[data-graph="joke"] .node')).to_have_count(4)
    finally:
        viewer.terminate()
        viewer.communicate(timeout=10)
