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
from collections.abc import Iterator
from typing import Any

import pytest
from viewer_apps import APPS, GATE
from viewer_helpers import CHROMIUM_ARGS, ThreadServer


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
