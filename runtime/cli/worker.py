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
import signal
from collections.abc import Sequence
from typing import Any

import trio

from rillet.runtime.cli.views import load_runnables
from rillet.runtime.extras import require_extra

__all__ = ["add_worker_command", "main", "worker_main"]


def add_worker_command(
    subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """Add ``worker`` to an ``argparse`` subparsers object; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="serve graphs from a Redis run queue (needs the redis extra)",
        parents=list(parents))
    p.add_argument("graphs", metavar="module:attr",
                   help="a Runnable, or a dict of them (module:attr or path/to/file.py:attr)")
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

    require_extra("redis", "coredis", what="rillet worker")
    configure_logging(args.log)
    graphs = load_runnables(args.graphs, args.name)
    trio.run(_serve, args, graphs)
    return 0


async def _serve(args: argparse.Namespace, graphs: dict[str, Any]) -> None:
    from rillet.runtime.scaleout.redis_feed import RedisEventFeed
    from rillet.runtime.scaleout.service import ScaleoutWorker, WorkerSettings, open_redis_backends

    settings = WorkerSettings(concurrency=args.concurrency, max_deliveries=args.max_deliveries,
                              retry_errors=args.retry_errors)
    async with open_redis_backends(args.redis, prefix=args.prefix, lease_timeout=args.lease_timeout,
                                   event_cap=args.event_cap, event_ttl=args.event_ttl
                                   ) as (queue, events):
        worker = ScaleoutWorker(graphs, queue, events, settings=settings,
                                feed=RedisEventFeed(events.redis, pipe=events.pipe,
                                                    keys=events.keys))
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
    """``python -m rillet.runtime.cli.worker worker ...``: the same as ``rillet worker ...``."""
    from rillet.runtime.cli.main import main as rillet_main

    return rillet_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
