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
        redis: an open client (:func:`~rillet.runtime.scaleout.redis_client.open_redis`).
        keys: key names; one prefix per deployment.
        cap: entries the feed keeps (approximately: ``MAXLEN ~``).
    """

    def __init__(self, redis: coredis.Redis[bytes], *, keys: RedisKeys = RedisKeys(),
                 cap: int = 10_000) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        self.redis, self.keys, self.cap = redis, keys, cap
        self._publish = redis.register_script(_PUBLISH)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with unavailable_on_outage("the Redis event feed"):
            await self._publish(keys=[self.keys.feed, self.keys.feed_seq],
                                args=[self.cap, *(encode_event_bytes(e) for e in events)])

    async def read(self, after: str | None, *, count: int, timeout: float
                   ) -> tuple[str, list[tuple[int, Event]]]:
        with unavailable_on_outage("the Redis event feed"):
            if after is None:  # from now on: start after the newest entry
                top = await self.redis.xrevrange(self.keys.feed, "+", "-", count=1)
                return (_text(top[0].identifier) if top else "0-0"), []
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
            await self.redis.set(self.keys.feed_listeners, "1", ex=int(LISTEN_TTL))

    async def listening(self) -> bool:
        with unavailable_on_outage("the Redis event feed"):
            return bool(await self.redis.exists([self.keys.feed_listeners]))
