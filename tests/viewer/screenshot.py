"""Regenerate ``tests/viewer/viewer.png``, the README's picture of the viewer, from real runs.

Serves three chains whose scripted model streams a word every 20 ms, opens ``/ui/`` in
headless Chromium, runs a joke (tagged), a failing chain and a story held mid-stream, and takes
the screenshot while the story streams.
Needs the ``ui-test`` extra and Debian's ``chromium``::

    python tests/viewer/screenshot.py
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from viewer_apps import GATE, STORY, explode, hold_at_gate, shout  # noqa: E402
from viewer_helpers import CHROMIUM_ARGS, ThreadServer  # noqa: E402

from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser  # noqa: E402

JOKE = "Why did the parrot sit on the stream? To hear every word the moment it was spoken."


def _chain(text: str, last: object, name: str) -> object:
    prompt = ChatPromptTemplate.from_template("tell me about {topic}")
    model = ScriptedChatModel(responses=[text], delay=0.02, stream_usage=True)
    return (prompt | model | StrOutputParser() | last).with_config(run_name=name)


APPS = {"joke": _chain(JOKE, shout, "joke"), "failing": _chain(JOKE, explode, "failing"),
        "story": _chain(STORY, hold_at_gate, "story")}


def main() -> int:
    from playwright.sync_api import expect, sync_playwright

    GATE.clear()
    with ThreadServer(APPS) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/ui/")
        expect(page.locator("#status")).to_have_text("live")
        post = lambda name, **config: httpx.post(  # noqa: E731
            f"{url}/{name}/invoke", json={"input": {"topic": "parrots"}, "config": config},
            timeout=30)
        post("joke", tags=["demo"])
        post("failing")
        held = threading.Thread(target=post, args=("story",))
        held.start()
        story = page.locator('section.root[data-name="story"]')
        expect(story.locator(".root-head .state")).to_have_text("running")
        expect(story.locator(":scope > .run > .out")).to_contain_text("upon a")
        page.screenshot(path=str(HERE / "viewer.png"))
        GATE.set()
        held.join(30)
        browser.close()
    print(f"wrote {HERE / 'viewer.png'} ({(HERE / 'viewer.png').stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
