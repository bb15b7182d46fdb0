"""The worker-wide event feed on Redis: one capped stream every worker appends to.

Layout (``RedisKeys``): stream ``rillet:feed`` whose entries have ``n`` (the feed's sequence
number, from ``INCRBY rillet:feed:seq`` in the same script, so numbers are gap-free across
workers) and ``e`` (the event, as :func:`~rillet.runtime.scaleout.redis_store.encode_event_bytes`);
``XADD MAXLEN ~ cap`` keeps it bounded. ``rillet:feed:listeners`` exists while a gateway serves
an ``/events`` reader (``SET … EX``); workers publish only then (see :mod:`.feed`).

>>> # feed = RedisEventFeed(redis, keys=RedisKeys("rillet"), cap=10_000)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rillet.runtime.events.types import Event
from rillet.runtime.scaleout.feed import LISTEN_TTL
from rillet.runtime.scaleout.redis_client import MAX_BLOCK_MS, RedisKeys, unavailable_on_outage
from rillet.runtime.scaleout.redis_store import decode_event_bytes, encode_event_bytes
from rillet.runtime.scaleout.resp import PipelinedRedis, Script

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisEventFeed"]

_PUBLISH = """
local last = redis.call('INCRBY', KEYS[2], #ARGV - 1)
local first = last - (#ARGV - 1)
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', first + i - 2, 'e', ARGV[i])
end
return last
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisEventFeed:
    """An :class:`~rillet.runtime.scaleout.feed.EventFeed` on a Redis stream.

    Args:
        redis: an open client (:func:`~rillet.runtime.scaleout.redis_client.open_redis`), for
            blocking reads.
        pipe: the pipelined connection for everything else
            (:func:`~rillet.runtime.scaleout.resp.open_pipelined`).
        keys: key names; one prefix per deployment.
        cap: entries the feed keeps (approximately: ``MAXLEN ~``).
    """

    def __init__(self, redis: coredis.Redis[bytes], *, pipe: PipelinedRedis,
                 keys: RedisKeys = RedisKeys(), cap: int = 10_000) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        self.redis, self.pipe, self.keys, self.cap = redis, pipe, keys, cap
        self._publish = Script(_PUBLISH)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with unavailable_on_outage("the Redis event feed"):
            await self.pipe.evalsha(self._publish, [self.keys.feed, self.keys.feed_seq],
                                    [self.cap, *(encode_event_bytes(e) for e in events)])

    async def read(self, after: str | None, *, count: int, timeout: float
                   ) -> tuple[str, list[tuple[int, Event]]]:
        with unavailable_on_outage("the Redis event feed"):
            if after is None:  # from now on: start after the newest entry
                top = await self.pipe.execute("XREVRANGE", self.keys.feed, "+", "-", "COUNT", 1)
                return (_text(top[0][0]) if top else "0-0"), []
            block = max(1, min(int(timeout * 1000), MAX_BLOCK_MS))
            reply: Any = await self.redis.xread({self.keys.feed: after}, count=count,
                                                block=block)
        items = []
        for entry in (reply or {}).get(self.keys.feed.encode(), ()):
            after = _text(entry.identifier)
            fields = {_text(k): v for k, v in entry.field_values.items()}
            try:
                items.append((int(fields["n"]), decode_event_bytes(fields["e"])))
            except (KeyError, ValueError):  # a foreign or damaged entry: a gap the reader counts
                continue
        return after, items

    async def listen(self) -> None:
        with unavailable_on_outage("the Redis event feed"):
            await self.pipe.execute("SET", self.keys.feed_listeners, "1", "EX", int(LISTEN_TTL))

    async def listening(self) -> bool:
        with unavailable_on_outage("the Redis event feed"):
            return bool(await self.pipe.execute("EXISTS", self.keys.feed_listeners))
