"""Fixtures of the viewer tests: a real server on a loopback port, and headless Chromium.

The browser is Debian's ``chromium`` driven by Playwright for Python (the ``ui-test`` extra),
never a browser Playwright downloads. Without either the browser tests skip, saying which is
missing, unless ``RILLET_REQUIRE_BROWSER`` is set (``.ci/run`` sets it once it has installed
chromium): then a missing browser fails them. Tests wait for what the page shows with
Playwright's bounded waits, never with sleeps.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from viewer_apps import APPS, GATE

from rillet.runtime.serve.server import open_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("RILLET_REQUIRE_BROWSER"):
        pytest.fail(f"RILLET_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per test module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("needs Playwright for Python: pip install 'rillet[ui-test]'")
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("needs Debian's chromium on PATH: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that fails the test on a script error or a request off this machine."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("console", lambda message: problems.append(f"console error: {message.text}")
           if message.type == "error" and "401" not in message.text else None)
    tab.on("request", lambda request: None if request.url.startswith(
        ("http://127.0.0.1:", "data:")) else problems.append(f"request to {request.url}"))
    try:
        yield tab
    finally:
        context.close()
    assert problems == []


class ThreadServer:
    """``open_server`` on a trio loop in its own thread, so sync browser tests can drive it.

    Example::

        with ThreadServer(APPS) as url:
            httpx.post(f"{url}/joke/invoke", json={"input": {"topic": "x"}})
    """

    def __init__(self, runnables: Any, **options: Any) -> None:
        self.runnables, self.options = runnables, options
        self._ready = threading.Event()
        self._url: str | None = None
        self._failure: BaseException | None = None

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with open_server(self.runnables, port=0, **self.options) as server:
            self._url = server.url
            self._ready.set()
            await self._stop.wait()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 - reported by __enter__ / __exit__
            self._failure = error
        finally:
            self._ready.set()

    def __enter__(self) -> str:
        self._thread = threading.Thread(target=self._run, name="viewer-test-server")
        self._thread.start()
        self._ready.wait(30)
        if self._url is None:
            raise RuntimeError(f"the test server did not start: {self._failure!r}")
        return self._url

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the test server did not stop"
        if self._failure is not None:
            raise self._failure


@pytest.fixture
def live() -> Iterator[str]:
    """The viewer apps served on a free port; list it before ``page`` so it outlives the page."""
    GATE.clear()
    server = ThreadServer(APPS)
    url = server.__enter__()
    try:
        yield url
    finally:
        GATE.set()  # a held run goes on, so the server drains at once
        server.__exit__(None, None, None)
