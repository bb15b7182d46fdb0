"""``rillet serve``'s protective options: the token and where it may come from, the bind check,
and the :class:`~rillet.runtime.serve.limits.ServerLimits` flags (README, "Reliability").

``rillet.runtime.cli.main`` adds these to its ``serve`` command; nothing here imports the
``serve`` extra until a server is made.

>>> parser = argparse.ArgumentParser()
>>> add_server_options(parser)
>>> server_limits(parser.parse_args(["--max-streams", "10"])).max_streams
10
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from rillet.runtime.cli.views import UsageError

if TYPE_CHECKING:
    from rillet.runtime.serve.limits import ServerLimits

__all__ = ["add_server_options", "server_limits", "server_token"]


def add_server_options(serve: argparse.ArgumentParser) -> None:
    """The token, ``--insecure`` and the limit flags, with the defaults of ``ServerLimits``."""
    serve.add_argument("--token", help="require 'Authorization: Bearer TOKEN'; prefer "
                       "$RILLET_TOKEN, which other users cannot see in ps")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a --host other than loopback without a token")
    serve.add_argument("--max-body-bytes", type=int, default=1024 * 1024,
                       help="larger request bodies get 413 (default 1 MiB)")
    serve.add_argument("--body-timeout", type=float, default=30.0,
                       help="seconds a request body may take to arrive, then 408")
    serve.add_argument("--max-streams", type=int, default=1000,
                       help="streaming responses open at once, then 503")
    serve.add_argument("--idle-timeout", type=float, default=60.0,
                       help="seconds a client may stop reading before it is cut off")
    serve.add_argument("--keep-alive-timeout", type=float, default=5.0,
                       help="seconds an idle keep-alive connection stays open")


def server_token(args: argparse.Namespace) -> str | None:
    """The bearer token (``--token``, else ``$RILLET_TOKEN``); warns that ``--token`` shows in
    ``ps``.

    Raises:
        UsageError: ``--host`` is not loopback, there is no token, and no ``--insecure``.
    """
    from rillet.runtime.serve.server import is_loopback

    token = args.token or os.environ.get("RILLET_TOKEN") or None
    if args.token:
        print("rillet: warning: --token is visible to every user of this machine (ps); set "
              "RILLET_TOKEN instead", file=sys.stderr, flush=True)
    if not token and not is_loopback(args.host) and not args.insecure:
        raise UsageError(
            f"refusing to serve on {args.host} without a token: anyone who can reach it could "
            f"run your graphs. Set RILLET_TOKEN (then clients send 'Authorization: Bearer "
            f"<token>'), or pass --insecure to serve without one")
    return token


def server_limits(args: argparse.Namespace) -> ServerLimits:
    """The limits the flags ask for.

    Raises:
        UsageError: a limit is zero or negative.
    """
    from rillet.runtime.serve.limits import ServerLimits

    try:
        return ServerLimits(max_body_bytes=args.max_body_bytes, body_timeout=args.body_timeout,
                            max_streams=args.max_streams, idle_timeout=args.idle_timeout,
                            keep_alive_timeout=args.keep_alive_timeout)
    except ValueError as error:
        raise UsageError(f"serve: {error}") from None
