"""The limits that protect a server, each with its default (README, "Reliability").

One frozen :class:`ServerLimits` travels from ``rillet serve``'s flags (or ``serve(limits=...)``)
to the endpoints. The nesting limit is not here: it is the wire's own
(:data:`rillet.runtime.wire.checks.MAX_NESTING`), the same for every body and file.

>>> ServerLimits().max_body_bytes
1048576
>>> ServerLimits(max_streams=0)
Traceback (most recent call last):
...
ValueError: 'max_streams' must be >= 1: 0
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["RETRY_AFTER_BUSY", "RETRY_AFTER_OUTAGE", "ServerLimits"]

#: Seconds a 503 asks the client to wait: a full worker frees slots quickly...
RETRY_AFTER_BUSY: Final = 1
#: ...an unreachable queue (Redis restarting) takes longer.
RETRY_AFTER_OUTAGE: Final = 5

_positive = attrs.validators.gt(0.0)


@attrs.frozen(kw_only=True)
class ServerLimits:
    """What one server accepts before it refuses (4xx/503) or cuts a connection off.

    Example::

        limits = ServerLimits(max_body_bytes=256 * 1024, max_streams=200)
        async with open_server({"joke": chain}, limits=limits) as server: ...
    """

    #: Request bodies larger than this get 413, counted as they arrive (``--max-body-bytes``).
    max_body_bytes: int = attrs.field(default=1024 * 1024, validator=attrs.validators.ge(1))
    #: Seconds a client has to send its whole request body; then 408 (``--body-timeout``).
    body_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: Streaming responses open at once (``/stream``, ``/stream_events``, ``/stream_log``,
    #: ``/events``); one more gets 503 with ``Retry-After`` (``--max-streams``).
    max_streams: int = attrs.field(default=1000, validator=attrs.validators.ge(1))
    #: Seconds a client may leave sent bytes unacknowledged (it stopped reading) before the
    #: connection is dropped and its run cancelled: ``TCP_USER_TIMEOUT`` on Linux
    #: (``--idle-timeout``).
    idle_timeout: float = attrs.field(default=60.0, validator=_positive)
    #: Seconds an idle keep-alive connection stays open after its last response
    #: (``--keep-alive-timeout``); ``Connection: close`` closes at once.
    keep_alive_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Seconds between ``ping`` frames on an ``/events`` stream with nothing to send.
    ping_interval: float = attrs.field(default=15.0, validator=_positive)
