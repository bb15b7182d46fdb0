"""The ``rillet`` command line.

::

    rillet demo [--model SPEC]                  stream a prompt | model | parser chain
    rillet run module:attr --input JSON         stream one run's output (--events: live events,
                                                --log FILE: record them for replay)
    rillet serve module:attr [--port 8000]      serve a runnable (or a dict of them) over HTTP
    rillet events URL                           tail a server's worker-wide event channel
    rillet replay FILE                          show a recorded run's events
    rillet view FILE [--port 8765] [--open]     open a recorded run in the viewer page
    rillet draw module:attr [--mermaid]         draw a runnable's graph
    rillet worker module:attr --redis URL       serve graphs from a Redis run queue (scale-out)

``rillet demo`` streams on the embedded scripted model (no key, no network). ``serve`` shuts
down gracefully on SIGINT/SIGTERM: new runs get 503, running runs get ``--shutdown-timeout``
seconds to finish, then are cancelled; a second signal cancels them at once. Exit codes: 0
done, 1 the run failed (or another error: one line on stderr; ``--debug`` or ``RILLET_DEBUG=1``
shows the traceback), 2 bad usage, 130 interrupted, 141 the reader of stdout left (``| head``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from rillet.runtime.cli.serve_options import add_server_options, server_limits, server_token
from rillet.runtime.cli.views import (
    TargetError,
    UsageError,
    add_filter_flags,
    chunk_text,
    filter_options,
    first_error,
    format_event,
    load_runnables,
    load_target,
    open_event_recorder,
    register_component_types,
)
from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.protocols import Launchable
from rillet.runtime.errors import ConfigError, MissingExtraError, WireFormatError
from rillet.runtime.extras import require_extra

__all__ = ["main"]

DEMO_STORY = (
    "Once upon a time, a small stream learned to carry every word the moment it was spoken, "
    "so nobody downstream ever had to wait for the whole sentence. It never grew a lake: "
    "when the sea was busy, it simply slowed down."
)


def _say(*parts: object) -> None:
    print("rillet:", *parts, file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser

    prompt = ChatPromptTemplate.from_template("Tell me a short story about {topic}.")
    model: Any = ScriptedChatModel(responses=[DEMO_STORY], delay=args.delay)
    if args.model != "scripted":
        try:
            from rillet.nodes.providers import model_from_spec
        except ImportError:
            raise UsageError(f"--model {args.model} needs rillet.nodes.providers, which this "
                             f"installation lacks; use --model scripted") from None
        try:
            model, note = model_from_spec(args.model, fallback=model)
        except ValueError as error:
            raise UsageError(f"--model: {error}") from None
        if note:
            _say(note)
    chain = prompt | model | StrOutputParser()
    print(f"$ chain = prompt | {type(model).__name__} | StrOutputParser; chain.stream({{'topic': {args.topic!r}}})")
    for token in chain.stream({"topic": args.topic}):
        sys.stdout.write(token)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _json_arg(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option} must be JSON ({error}), got {text!r:.80}") from None


def _runnable(spec: str) -> Any:
    target = load_target(spec)
    if isinstance(target, dict):
        raise UsageError(f"{spec} is a dict of runnables {sorted(target)}; this command takes "
                         f"one runnable (serve takes dicts)")
    if not isinstance(target, Launchable):
        raise UsageError(f"{spec} is a {type(target).__name__}, not a runnable")
    return target


def _run(args: argparse.Namespace) -> int:
    runnable = _runnable(args.target)
    if args.log:
        from rillet.runtime.serve.viewer import graph_tree

        args.graphs = {args.target.rpartition(":")[2].rpartition(".")[2]: graph_tree(runnable)}
    value, config = _json_arg(args.input, "--input"), _json_arg(args.config, "--config")
    try:  # checked here, before any run starts, with the message Python and HTTP give
        checked = RunConfig.from_dict(config)
    except ConfigError as error:
        raise UsageError(f"--config: {error}") from None
    return trio.run(_run_async, runnable, value, checked, args)


async def _run_async(runnable: Any, value: Any, config: Any, args: argparse.Namespace) -> int:
    from rillet.runtime.engine.worker import Worker
    from rillet.runtime.events.render import render_event

    async with Worker(max_concurrent_runs=1, max_queued=0) as worker:
        run = await worker.submit(runnable, value, config, events=bool(args.events or args.log))
        try:
            if not run.publishes_events:
                async for chunk in run.stream():
                    sys.stdout.write(chunk_text(chunk))
                    sys.stdout.flush()
            else:
                async with open_event_recorder(args.log, run.run_id,
                                               getattr(args, "graphs", None)) as log:
                    start: float | None = None
                    async for event in run.events(version=None):
                        start = event.time if start is None else start
                        if log is not None:
                            await log(event)
                        if args.events:
                            shaped = render_event(event, "v2")
                            if shaped is not None:
                                print(format_event(shaped, event.time - start), flush=True)
                        elif event.phase == "stream" and event.run_id == run.run_id:
                            sys.stdout.write(chunk_text(event.data["chunk"]))
                            sys.stdout.flush()
        except BrokenPipeError:
            raise  # stdout's reader left (`| head`): not the run's failure
        except Exception as error:  # noqa: BLE001 - the run's own error, shown to the user
            print(file=sys.stdout)
            _say(f"run failed: {type(error).__name__}: {error}")
            return 1
    if not args.events:
        sys.stdout.write("\n")
    if args.log:
        _say(f"events recorded to {args.log} (rillet replay {args.log})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    require_extra("serve", "starlette", "hypercorn", what="rillet serve")
    if args.redis:
        require_extra("redis", "coredis", what="rillet serve --redis")
    from rillet.runtime.serve.server import served_names

    try:
        named = served_names(load_runnables(args.target, args.name))
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    token = server_token(args)
    try:
        trio.run(_serve_async, named, token, args)
    except (OSError, BaseExceptionGroup) as error:
        cause = first_error(error, OSError)
        if cause is None or isinstance(cause, BrokenPipeError):
            raise
        reason = getattr(cause, "strerror", None) or cause
        _say(f"cannot serve on {args.host}:{args.port}: {reason}")
        return 1
    return 0


@asynccontextmanager
async def _open_backend(named: dict[str, Any], args: argparse.Namespace) -> AsyncIterator[Any]:
    """The in-process Worker, or with --redis a gateway to the shared run queue."""
    if args.redis:
        from rillet.runtime.scaleout.gateway import QueueGateway
        from rillet.runtime.scaleout.service import open_scaleout_client

        async with open_scaleout_client(args.redis, prefix=args.prefix) as client:
            yield QueueGateway(client, named, max_concurrent_runs=args.max_concurrent_runs,
                               shutdown_timeout=args.shutdown_timeout)
        return
    from rillet.runtime.engine.worker import Worker

    async with Worker(max_concurrent_runs=args.max_concurrent_runs, max_queued=args.max_queued,
                      shutdown_timeout=args.shutdown_timeout) as worker:
        yield worker


async def _serve_async(named: dict[str, Any], token: str | None, args: argparse.Namespace) -> None:
    from rillet.runtime.serve.server import serve

    limits = server_limits(args)
    async with _open_backend(named, args) as worker:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_on_signals, worker, stop)

            async def run_server(task_status: trio.TaskStatus[str]) -> None:
                await serve(named, host=args.host, port=args.port, token=token, worker=worker,
                            limits=limits, shutdown_trigger=stop.wait,
                            log_level="WARNING", task_status=task_status)
                nursery.cancel_scope.cancel()

            url = await nursery.start(run_server)
            print(f"rillet: serving on {url}" + (" (bearer token required)" if token else ""))
            for name in named:
                print(f"  {name}: {url}/{name}/invoke  /batch  /stream  /stream_events  "
                      f"/stream_log")
            print(f"  events: {url}/events   health: {url}/healthz   viewer: {url}/ui/",
                  flush=True)
    _say("stopped")


async def _on_signals(worker: Any, stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            _say(f"shutting down: running runs get {worker.shutdown_timeout:g}s to finish "
                 f"(signal again to cancel them now)")
            stop.set()
            break
        async for _ in signals:
            _say("cancelling running runs")
            await worker.shutdown(timeout=0)
            return


def _events(args: argparse.Namespace) -> int:
    from rillet.runtime.errors import RemoteError

    try:
        return trio.run(_events_async, args)
    except RemoteError as error:
        _say(f"events: {error}")
        return 1


async def _events_async(args: argparse.Namespace) -> int:
    from rillet.runtime.serve.remote import remote_events
    from rillet.runtime.wire.sse import JSON, dumps, to_tree

    register_component_types()
    filters = filter_options(args)
    token = args.token or os.environ.get("RILLET_TOKEN") or None
    seen = 0
    async with remote_events(args.url, token=token, policy=args.policy, **filters) as events:
        await events.connect()
        _say(f"subscribed to {args.url.rstrip('/')}/events (policy {args.policy})")
        start = time.monotonic()
        async for event in events:
            if args.json:
                print(dumps(to_tree(event), JSON).decode(), flush=True)
            else:
                print(format_event(event, time.monotonic() - start), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                break
        if events.dropped:
            _say(f"{events.dropped} events were dropped (reader too slow for policy {args.policy})")
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        from rillet.runtime.events.eventlog import read_event_log
    except ImportError:
        raise UsageError("replay needs rillet.runtime.events.eventlog, which this installation lacks") from None
    from rillet.runtime.errors import TruncatedLogError
    from rillet.runtime.events.render import render_event
    from rillet.runtime.wire.sse import JSON, dumps, to_tree

    if not os.path.isfile(args.file):
        raise UsageError(f"no such event log: {args.file}")
    register_component_types()
    code = 0
    try:
        events = read_event_log(args.file)
    except TruncatedLogError as error:
        _say(f"warning: {error}; showing the {len(error.events)} complete events before it")
        events, code = error.events, 1
    except WireFormatError as error:
        _say(f"cannot read {args.file}: {error}")
        return 1
    start = events[0].time if events else 0.0
    previous = start
    for event in events:
        if args.realtime:
            time.sleep(min(max(event.time - previous, 0.0), 1.0))  # pauses capped at 1 s
            previous = event.time
        shaped = render_event(event, "v2")
        if shaped is None:
            continue
        if args.json:
            print(dumps(to_tree(shaped), JSON).decode(), flush=True)
        else:
            print(format_event(shaped, event.time - start), flush=True)
    runs = len({event.run_id for event in events})
    _say(f"{len(events)} events of {runs} runs from {args.file}")
    return code


def _view(args: argparse.Namespace) -> int:
    import webbrowser

    from rillet.runtime.errors import TruncatedLogError
    from rillet.runtime.serve.viewer import LogViewServer

    if not os.path.isfile(args.file):
        raise UsageError(f"no such event log: {args.file}")
    register_component_types()
    try:
        server = LogViewServer(args.file, host=args.host, port=args.port)
    except (WireFormatError, TruncatedLogError) as error:
        _say(f"cannot read {args.file}: {error}")
        return 1
    except OSError as error:
        _say(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}")
        return 1
    print(f"rillet: viewing {args.file} at {server.url} (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _draw(args: argparse.Namespace) -> int:
    runnable = _runnable(args.target)
    print(runnable.draw_mermaid() if args.mermaid else runnable.draw_ascii())
    return 0


def _debug_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error (or set RILLET_DEBUG=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rillet", description="Stream LLM pipelines as bounded actors on trio."
    )
    _debug_flag(parser, False)
    # Each command takes --debug too (after its name); SUPPRESS keeps the top-level value.
    common = argparse.ArgumentParser(add_help=False)
    _debug_flag(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], **kwargs)

    demo = add_command("demo", help="stream a prompt | model | parser chain (no key needed)")
    demo.add_argument("--topic", default="a river")
    demo.add_argument("--delay", type=float, default=0.03, help="seconds between tokens")
    demo.add_argument("--model", default="scripted",
                      help="scripted (default), openai:MODEL, anthropic:MODEL or ollama:MODEL")
    demo.set_defaults(func=_demo)

    run = add_command("run", help="stream one run of module:attr to the terminal")
    run.add_argument("target", help="module:attr or path/to/file.py:attr")
    run.add_argument("--input", required=True, help="the input, as JSON")
    run.add_argument("--config", help="the run's config, as JSON")
    run.add_argument("--events", action="store_true", help="show a live view of the run's events")
    run.add_argument("--log", metavar="FILE", help="record the run's events (rillet replay FILE)")
    run.set_defaults(func=_run)

    serve = add_command("serve", help="serve a runnable (or a dict of them) over HTTP "
                                              "(needs the serve extra)")
    serve.add_argument("target", help="module:attr (or path/to/file.py:attr) naming a runnable "
                                      "or a dict name -> runnable")
    serve.add_argument("--name", help="serve a single runnable under this name (default: attr)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    add_server_options(serve)
    serve.add_argument("--max-concurrent-runs", type=int, default=64)
    serve.add_argument("--max-queued", type=int, default=256,
                       help="submissions that may wait for a slot before 503 busy")
    serve.add_argument("--shutdown-timeout", type=float, default=10.0,
                       help="seconds running runs get to finish on SIGINT/SIGTERM")
    serve.add_argument("--redis", metavar="URL",
                       help="queue runs on Redis for `rillet worker` processes instead of "
                            "running them here (redis://host:port/db; needs the redis extra)")
    serve.add_argument("--prefix", default="rillet", help="Redis key prefix (with --redis)")
    serve.set_defaults(func=_serve)

    events = add_command("events", help="tail a server's event channel")
    events.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8000")
    events.add_argument("--token", help="bearer token (or $RILLET_TOKEN)")
    events.add_argument("--policy", default="drop_oldest", choices=["drop_oldest", "drop_newest"])
    add_filter_flags(events)
    events.add_argument("--json", action="store_true", help="one JSON event per line")
    events.add_argument("--count", type=int, default=0, help="stop after N events")
    events.set_defaults(func=_events)

    replay = add_command("replay", help="show the events of a recorded run")
    replay.add_argument("file", help="an event log written by rillet run --log")
    replay.add_argument("--json", action="store_true", help="one JSON event per line")
    replay.add_argument("--realtime", action="store_true", help="keep the recorded pauses")
    replay.set_defaults(func=_replay)

    view = add_command("view", help="open a recorded run in the viewer page")
    view.add_argument("file", help="an event log written by rillet run --log")
    view.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    view.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    view.add_argument("--open", action="store_true", help="open the page in a browser")
    view.set_defaults(func=_view)

    draw = add_command("draw", help="draw a runnable's graph")
    draw.add_argument("target", help="module:attr or path/to/file.py:attr")
    draw.add_argument("--mermaid", action="store_true", help="Mermaid instead of ASCII")
    draw.set_defaults(func=_draw)

    try:  # scale-out: serve graphs from a Redis run queue (rillet.runtime.cli.worker owns it)
        from rillet.runtime.cli.worker import add_worker_command
    except ImportError:
        pass
    else:
        add_worker_command(commands, parents=[common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``rillet`` command; returns its exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("RILLET_DEBUG", "").lower() in ("1", "true", "yes")
    try:
        code: int = args.func(args)
    except (UsageError, TargetError) as error:
        if debug:
            raise
        print(f"rillet: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        if first_error(error, BrokenPipeError) is not None:
            return _reader_left()
        if debug or not isinstance(error, Exception):
            raise
        hint = "" if isinstance(error, MissingExtraError) else " (--debug shows the traceback)"
        print(f"rillet: error: {_one_line(error)}{hint}", file=sys.stderr)
        return 1
    return code


def _one_line(error: BaseException) -> str:
    """An error as one line: the innermost single error of a group, its type and message."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, MissingExtraError):
        return str(error)
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _reader_left() -> int:
    # Whoever read stdout is gone (`rillet demo | head`): exit as a Unix tool does, without
    # a traceback, and without the interpreter failing again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
