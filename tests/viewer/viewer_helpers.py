"""What the viewer tests and ``bench.viewer_bench`` share: Chromium's flags, and a server
on a thread of its own."""

from __future__ import annotations

import threading
from typing import Any

import trio

from rillet.runtime.serve.server import open_server

#: Headless, and nothing that would reach off this machine.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


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
