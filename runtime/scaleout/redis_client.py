"""Connecting to Redis with coredis, and turning its outage errors into ``StoreUnavailable``.

coredis 6 runs natively on trio (through anyio). Its client is an async context manager that
owns a task group for its connections; :func:`open_redis` wraps it so a failure in the body
comes out bare rather than inside an ``ExceptionGroup``, and keeps every blocking read shorter
than the client's read timeout (a hung server is then an error, not a hang).

>>> # async with open_redis("redis://127.0.0.1:6379/0") as redis:
>>> #     await redis.ping()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import attrs
import coredis
import coredis.exceptions

from rillet.runtime.scaleout.queue import StoreUnavailable
from rillet.runtime.scaleout.resp import raise_bare

__all__ = ["RedisKeys", "TRANSIENT_ERRORS", "open_redis", "unavailable_on_outage"]

#: What an outage looks like through coredis: refused or dropped connections, timeouts, a server
#: still loading its data after a restart, a replica that is not writable yet.
TRANSIENT_ERRORS: Final = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.ReadOnlyError,
    TimeoutError,
    OSError,
)
#: Reads block for at most this long (ms), well under ``READ_TIMEOUT``.
MAX_BLOCK_MS: Final = 5_000
READ_TIMEOUT: Final = 30.0


@attrs.frozen
class RedisKeys:
    """The key names under one prefix: one deployment (or one test) per prefix.

    >>> RedisKeys("rillet").events("r1")
    'rillet:events:r1'
    """

    prefix: str = "rillet"

    @property
    def runs(self) -> str:
        return f"{self.prefix}:runs"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:runs:dead"

    @property
    def group(self) -> str:
        return "workers"

    def submitted(self, run_id: str) -> str:
        return f"{self.prefix}:submitted:{run_id}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}:events:{run_id}"

    def cancel(self, run_id: str) -> str:
        return f"{self.prefix}:cancel:{run_id}"

    @property
    def feed(self) -> str:
        """The worker-wide event stream that ``GET /events`` reads behind a gateway."""
        return f"{self.prefix}:feed"

    @property
    def feed_seq(self) -> str:
        return f"{self.prefix}:feed:seq"

    @property
    def feed_listeners(self) -> str:
        return f"{self.prefix}:feed:listeners"


@contextmanager
def unavailable_on_outage(what: str) -> Iterator[None]:
    """Raise :class:`~rillet.runtime.scaleout.queue.StoreUnavailable` for Redis outage errors
    inside."""
    try:
        yield
    except TRANSIENT_ERRORS as error:
        raise StoreUnavailable(
            f"{what} is unavailable ({type(error).__name__}: {error})") from error


@asynccontextmanager
async def open_redis(url: str, **options: Any) -> AsyncIterator[coredis.Redis[bytes]]:
    """A connected coredis client for ``url`` (``redis://host:port/db``), closed on exit.

    Connecting is lazy: a server that is down makes the first command raise, not this call.

    Raises:
        ValueError: ``url`` is not a redis URL.
    """
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"expected a redis URL like redis://127.0.0.1:6379/0, got {url!r}")
    options.setdefault("stream_timeout", READ_TIMEOUT)
    options.setdefault("connect_timeout", 5.0)
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url, **options)
    try:
        async with client:
            yield client
    except BaseExceptionGroup as group:
        raise_bare(group)  # coredis's task group wraps whatever the body raised
