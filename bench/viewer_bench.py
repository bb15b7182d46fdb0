"""How many events per second the viewer page keeps up with in headless Chromium.

Three measurements, each bounded in time, traffic on 127.0.0.1 only:

- **page**: synthetic ``astream_events`` v2 dicts of ``prompt | model | parser`` runs (113
  events per run) fed to the page's ingest hook every 10 ms (what is due by the clock), at
  increasing offered rates, for ``--seconds`` each. Reports the rate the page actually took,
  the animation-frame gaps (p50, p99, max: a frozen page shows as a long gap) and the DOM
  updates still pending at the end (bounded by what the page keeps; 0: it kept up).
- **server**: ``rillet serve``'s own stack in this process (the server on a thread) with the
  page at ``/ui/`` reading ``GET /events``, while ``--clients`` concurrent clients invoke a
  scripted ``prompt | model | parser`` chain for ``--seconds``. Reports the events per second
  the page received and how many the ``drop_oldest`` subscription dropped.
- **log**: ``rillet view``'s server sends a saved log of ``--log-runs`` runs as fast as the
  page reads it: the whole path (fetch, the SSE parser, ``JSON.parse``, the model, the DOM).
  Reports events per second until the page shows "loaded", and the frame gaps meanwhile.

Needs Playwright for Python and Debian's ``chromium`` (the ``ui-test`` extra)::

    python -m bench.viewer_bench                       # rates 2000 5000 10000 20000 40000
    python -m bench.viewer_bench --rates 10000 --seconds 5 --clients 8
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "viewer"))

from viewer_helpers import CHROMIUM_ARGS, ThreadServer  # noqa: E402 - the tests' server

from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser  # noqa: E402
from rillet.runtime.events.eventlog import open_event_log  # noqa: E402
from rillet.runtime.serve.viewer import LogViewServer, graph_tree  # noqa: E402

WORDS = 50
chain = (ChatPromptTemplate.from_template("tell me about {topic}")
         | ScriptedChatModel(responses=[" ".join(f"w{i}" for i in range(WORDS))])
         | StrOutputParser()).with_config(run_name="bench")

# Runs in the page: builds runs of prompt | model | parser and feeds them at `rate` events/s.
_FEED = """async ([rate, seconds]) => {
  const v = window.rilletViewer;
  let serial = 0, queue = [];
  const ev = (event, name, run_id, parent_ids, data) =>
    ({event, name, run_id, parent_ids, tags: [], metadata: {}, data});
  function oneRun() {
    const root = `root${serial++}`, out = [];
    out.push(ev("on_chain_start", "bench", root, [], {input: {topic: "x"}}));
    out.push(ev("on_prompt_start", "ChatPromptTemplate", root + "p", [root], {}));
    out.push(ev("on_prompt_end", "ChatPromptTemplate", root + "p", [root], {output: "x"}));
    out.push(ev("on_chat_model_start", "ScriptedChatModel", root + "m", [root], {}));
    out.push(ev("on_parser_start", "StrOutputParser", root + "s", [root], {}));
    for (let i = 0; i < 35; i++) {
      const word = ` w${i}`;
      out.push(ev("on_chat_model_stream", "ScriptedChatModel", root + "m", [root],
                  {chunk: {__rillet__: "AIMessageChunk", content: word}}));
      out.push(ev("on_parser_stream", "StrOutputParser", root + "s", [root], {chunk: word}));
      out.push(ev("on_chain_stream", "bench", root, [], {chunk: word}));
    }
    out.push(ev("on_chat_model_end", "ScriptedChatModel", root + "m", [root], {}));
    out.push(ev("on_parser_end", "StrOutputParser", root + "s", [root], {}));
    out.push(ev("on_chain_end", "bench", root, [], {output: "..."}));
    return out;
  }
  const gaps = [];
  let sent = 0;
  const t0 = performance.now();
  let last = t0;
  return await new Promise((resolve) => {
    // Each tick sends what is due by the clock, so a late tick sends more: a page that cannot
    // keep up shows as long frame gaps, not as a lower offered rate.
    const feeder = setInterval(() => {
      const due = Math.floor((rate * (performance.now() - t0)) / 1000) - sent;
      const batch = [];
      for (let i = 0; i < due; i++) {
        if (!queue.length) queue = oneRun();
        batch.push(queue.shift());
      }
      v.ingest(batch);
      sent += batch.length;
    }, 10);
    function frame(now) {
      gaps.push(now - last);
      last = now;
      if (now - t0 < seconds * 1000) return requestAnimationFrame(frame);
      clearInterval(feeder);
      gaps.sort((a, b) => a - b);
      const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
      resolve({taken: sent / ((now - t0) / 1000), p50: q(0.5), p99: q(0.99),
               max: gaps[gaps.length - 1], pending: v.stats().pending});
    }
    requestAnimationFrame(frame);
  });
}"""


def _page_rates(browser: Any, url: str, rates: list[int], seconds: float) -> None:
    print("page: offered ev/s | taken ev/s | frame gap p50 / p99 / max (ms) | pending")
    for rate in rates:
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{url}/ui/")
        page.wait_for_selector("#status.live")
        result = page.evaluate(_FEED, [rate, seconds])
        print(f"      {rate:>14,} | {result['taken']:>10,.0f} | {result['p50']:6.1f} / "
              f"{result['p99']:6.1f} / {result['max']:6.1f}           | {result['pending']}")
        page.close()


def _server_rate(browser: Any, url: str, clients: int, seconds: float) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(f"{url}/ui/")
    page.wait_for_selector("#status.live")
    stop = time.monotonic() + seconds
    runs = [0] * clients

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                http.post("/bench/invoke", json={"input": {"topic": "x"}}).raise_for_status()
                runs[i] += 1

    before = page.evaluate("() => window.rilletViewer.stats()")
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    page.wait_for_function("() => window.rilletViewer.stats().pending === 0")
    elapsed = time.monotonic() - started
    after = page.evaluate("() => window.rilletViewer.stats()")
    received = after["events"] - before["events"]
    print(f"server: {sum(runs)} runs by {clients} clients in {elapsed:.1f} s; the page received "
          f"{received / elapsed:,.0f} ev/s, dropped {after['dropped'] - before['dropped']}")
    page.close()


_GAPS = """() => {
  window.benchGaps = [];
  let last = performance.now();
  const frame = (now) => { window.benchGaps.push(now - last); last = now;
                           requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""


def _log_rate(browser: Any, runs: int, folder: Path) -> None:
    """A saved log of ``runs`` runs through fetch, the SSE parser and JSON.parse, at full speed."""
    path = folder / "bench.rlog"

    async def record() -> None:
        async with open_event_log(path, header={"graphs": {"bench": graph_tree(chain)}}) as log:
            for _ in range(runs):
                await chain.ainvoke({"topic": "x"}, config={"callbacks": [log.bus]})

    trio.run(record)
    server = LogViewServer(path, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.add_init_script(f"({_GAPS})()")
        started = time.monotonic()
        page.goto(server.url)
        page.wait_for_selector("#status.done", timeout=300_000)
        page.wait_for_function("() => window.rilletViewer.stats().pending === 0")
        elapsed = time.monotonic() - started
        events = page.evaluate("() => window.rilletViewer.stats().events")
        gaps = sorted(page.evaluate("() => window.benchGaps"))
        p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
        print(f"log: {events:,} events of {runs} runs loaded in {elapsed:.1f} s = "
              f"{events / elapsed:,.0f} ev/s; frame gap p99 {p99:.0f} ms, max {gaps[-1]:.0f} ms")
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[2000, 5000, 10000, 20000, 40000])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--log-runs", type=int, default=600, help="runs in the saved log")
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("needs Playwright for Python: pip install 'rillet[ui-test]'", file=sys.stderr)
        return 2
    executable = shutil.which("chromium")
    if executable is None:
        print("needs Debian's chromium: apt-get install chromium", file=sys.stderr)
        return 2
    with ThreadServer({"bench": chain}) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            _page_rates(browser, url, args.rates, args.seconds)
            _server_rate(browser, url, args.clients, args.seconds)
            with tempfile.TemporaryDirectory() as folder:
                _log_rate(browser, args.log_runs, Path(folder))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
