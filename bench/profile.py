"""Where rillet's time goes in each workload: ``python -m bench.profile [--only 1,2,3,4]``.

Runs the rillet side of a workload a few times under a sampling profiler (pyinstrument, in the
``bench`` extra; cProfile when it is missing) and prints the functions with the most *self*
time — time spent in the function's own code, not in what it calls — as a share of the whole.
``--tree`` also prints pyinstrument's call tree; ``--html DIR`` saves it as HTML.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from bench.chains import TOPIC, response_text, rillet_chain

__all__ = ["CASES", "hot_spots", "main"]


def _astream(tokens: int) -> Callable[[], None]:
    chain = rillet_chain(response_text(tokens))

    async def once() -> None:
        async with chain.astream(TOPIC) as stream:
            async for _ in stream:
                pass

    return lambda: trio.run(once)


def _steps(chunks: int, steps: int) -> Callable[[], None]:
    from bench.steps import _rillet_chain, _source

    chain = _rillet_chain(steps)

    async def once() -> None:
        async with chain.atransform(_source(chunks)) as stream:
            async for _ in stream:
                pass

    return lambda: trio.run(once)


def _events(tokens: int) -> Callable[[], None]:
    chain = rillet_chain(response_text(tokens))

    async def once() -> None:
        stream = chain.astream_events(TOPIC, version="v2")
        try:
            async for _ in stream:
                pass
        finally:
            await stream.aclose()

    return lambda: trio.run(once)


def _concurrent(runs: int, tokens: int) -> Callable[[], None]:
    from bench.concurrency import _rillet
    from bench.harness import Deadline

    once = _rillet(rillet_chain(response_text(tokens)), runs)
    return lambda: trio.run(once, Deadline(600))


def _json(size: int) -> Callable[[], None]:
    from bench.json_parsing import json_document, rillet_parser
    from rillet.nodes import ScriptedChatModel

    parser = rillet_parser()
    if parser is None:
        raise SystemExit("workload 5: rillet.nodes.JsonOutputParser is not importable yet")
    chain = ScriptedChatModel(responses=[json_document(size)], chunking=4) | parser

    async def once() -> None:
        async with chain.astream("go") as stream:
            async for _ in stream:
                pass

    return lambda: trio.run(once)


def _deaf(tokens: int) -> Callable[[], None]:
    from bench.no_subscriber import _deaf_bus_config

    chain = rillet_chain(response_text(tokens))

    async def once() -> None:
        async with chain.astream(TOPIC, _deaf_bus_config()) as stream:
            async for _ in stream:
                pass

    return lambda: trio.run(once)


#: Workload number -> (what runs, how to build it, how many times).
CASES: dict[int, tuple[str, Callable[[], Callable[[], None]], int]] = {
    1: ("astream, prompt | model | parser, 20,000 tokens", lambda: _astream(20_000), 5),
    2: ("atransform, 10 pass-through steps, 20,000 chunks", lambda: _steps(20_000, 10), 5),
    3: ("astream_events v2, 20,000 tokens", lambda: _events(20_000), 3),
    4: ("1,000 concurrent runs of 100 tokens", lambda: _concurrent(1_000, 100), 3),
    5: ("model | JsonOutputParser, 32k characters", lambda: _json(32_000), 3),
    6: ("astream with a subscriber that accepts nothing, 20,000 tokens",
        lambda: _deaf(20_000), 3),
}


def hot_spots(fn: Callable[[], None], times: int, *, top: int = 15, tree: bool = False,
              html: Path | None = None, label: str = "profile") -> list[tuple[float, str]]:
    """Run ``fn`` ``times`` times under the profiler; the ``top`` functions by self time (%)."""
    fn()  # warm-up outside the profile
    try:
        from pyinstrument import Profiler
    except ImportError:
        return _cprofile_hot_spots(fn, times, top)
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    for _ in range(times):
        fn()
    profiler.stop()
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is None:
        return []
    if tree:
        print(profiler.output_text(unicode=True, show_all=False))
    if html is not None:
        html.mkdir(parents=True, exist_ok=True)
        (html / f"{label}.html").write_text(profiler.output_html())
    own: dict[str, float] = defaultdict(float)
    stack = [root]
    while stack:
        frame = stack.pop()
        # pyinstrument shows a function's own time as a synthetic "[self]" child.
        real = [child for child in frame.children if not child.is_synthetic]
        own[_where(frame)] += frame.time - sum(child.time for child in real)
        stack.extend(real)
    total = root.time or 1.0
    ranked = sorted(((t / total * 100, name) for name, t in own.items()), reverse=True)
    return ranked[:top]


def _where(frame: Any) -> str:
    path = str(frame.file_path_short or frame.file_path or "?")
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{frame.function} ({path}:{frame.line_no})"


def _cprofile_hot_spots(fn: Callable[[], None], times: int, top: int) -> list[tuple[float, str]]:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(times):
        fn()
    profile.disable()
    stats = pstats.Stats(profile)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in entries.values()) or 1.0
    ranked = sorted(((value[2] / total * 100, f"{name[2]} ({name[0]}:{name[1]})")
                     for name, value in entries.items()), reverse=True)
    return ranked[:top]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="1,2,3,4", help="workloads to profile (1–6)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--tree", action="store_true", help="also print the call tree")
    parser.add_argument("--html", type=Path, default=None, metavar="DIR")
    args = parser.parse_args(argv)
    for number in (int(n) for n in args.only.split(",") if n):
        title, build, times = CASES[number]
        print(f"== workload {number}: {title} (× {times})", flush=True)
        start = time.perf_counter()
        spots = hot_spots(build(), times, top=args.top, tree=args.tree, html=args.html,
                          label=f"workload-{number}")
        for share, name in spots:
            print(f"  {share:5.1f}%  {name}")
        print(f"  ({time.perf_counter() - start:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
