"""``rillet worker``: serve graphs from the Redis run queue (scale-out across processes and hosts).

``rillet.runtime.cli.main`` adds the command with :func:`add_worker_command`; it also runs on its own::

    python -m rillet.runtime.cli.worker worker myapp.chains:joke --redis redis://127.0.0.1:6379/0

``module:attr`` names a Runnable (served as ``attr``, or ``--name``) or a dict of them (served by
key). SIGTERM or Ctrl-C stops claiming and lets running runs finish for ``--drain-timeout``
seconds; a second signal, or the timeout, cancels them and releases their leases so other
workers restart them at once.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from rillet.runtime.engine.protocols import Launchable

__all__ = ["add_worker_command", "load_graphs", "main", "worker_main"]


def load_graphs(spec: str, name: str | None = None) -> dict[str, Any]:
    """The graphs named by ``module:attr``: ``{name or attr: runnable}``, or the dict itself.

    Example: ``load_graphs("myapp.chains:joke")`` -> ``{"joke": <the Runnable>}``.

    Raises:
        ValueError: ``spec`` is not ``module:attr``, or names something else.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise ValueError(f"expected module:attr (e.g. myapp.chains:joke), got {spec!r}")
    target = getattr(importlib.import_module(module_name), attr, None)
    if target is None:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
    if isinstance(target, Mapping):
        graphs = dict(target)
    else:
        graphs = {name or attr: target}
    for key, graph in graphs.items():
        if not isinstance(graph, Launchable):
            raise ValueError(f"{spec} must be a Runnable or a dict of Runnables; {key!r} is "
                             f"{type(graph).__name__}")
    return graphs


def add_worker_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``worker`` to an ``argparse`` subparsers object; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="serve graphs from a Redis run queue")
    p.add_argument("graphs", metavar="module:attr", help="a Runnable, or a dict of them")
    p.add_argument("--redis", required=True, metavar="URL", help="redis://host:port/db")
    p.add_argument("--name", help="serve a single Runnable under this graph name")
    p.add_argument("--prefix", default="rillet", help="key prefix, one per deployment")
    p.add_argument("--concurrency", type=int, default=8, help="runs at once in this process")
    p.add_argument("--lease-timeout", type=float, default=30.0,
                   help="seconds without renewal before another worker takes a run")
    p.add_argument("--max-deliveries", type=int, default=3,
                   help="deliveries before a run is dead-lettered")
    p.add_argument("--retry-errors", action="store_true",
                   help="redeliver runs whose graph raised (default: the error is the result)")
    p.add_argument("--event-cap", type=int, default=10_000, help="events kept per run")
    p.add_argument("--event-ttl", type=int, default=3_600,
                   help="seconds a run's events are kept after it ends")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="seconds to let running runs finish on SIGTERM")
    p.add_argument("--log", action="store_true", help="print rillet's structlog lines")
    p.set_defaults(func=worker_main)
    return p


def worker_main(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM/SIGINT; returns the process exit code."""
    from rillet.runtime.logs import configure_logging

    configure_logging(args.log)
    try:
        graphs = load_graphs(args.graphs, args.name)
    except (ValueError, ImportError) as error:
        print(f"rillet worker: {error}", file=sys.stderr)
        return 2
    trio.run(_serve, args, graphs)
    return 0


async def _serve(args: argparse.Namespace, graphs: dict[str, Any]) -> None:
    from rillet.runtime.scaleout.service import ScaleoutWorker, WorkerSettings, open_redis_backends

    settings = WorkerSettings(concurrency=args.concurrency, max_deliveries=args.max_deliveries,
                              retry_errors=args.retry_errors)
    async with open_redis_backends(args.redis, prefix=args.prefix, lease_timeout=args.lease_timeout,
                                   event_cap=args.event_cap, event_ttl=args.event_ttl
                                   ) as (queue, events):
        worker = ScaleoutWorker(graphs, queue, events, settings=settings)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(_run_then_cancel, worker, nursery.cancel_scope)
                print(f"rillet worker {worker.consumer} serving {sorted(graphs)} on {args.redis}",
                      flush=True)
                nursery.start_soon(_on_signals, signals, worker, nursery.cancel_scope,
                                   args.drain_timeout)


async def _run_then_cancel(worker: Any, scope: trio.CancelScope, *,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    # worker.run returns once stopped and drained; then the signal watcher must go too.
    await worker.run(task_status=task_status)
    scope.cancel()


async def _on_signals(signals: Any, worker: Any, scope: trio.CancelScope, drain: float) -> None:
    async for _ in signals:
        if worker.stopping:
            break  # a second signal: stop now
        worker.stop()
        scope.deadline = trio.current_time() + drain  # then cancel: leases are released
    scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rillet.runtime.cli.worker")
    add_worker_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
