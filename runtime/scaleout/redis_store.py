"""Run event logs on Redis Streams: one stream per run, ids that are the cursors themselves.

The log of run ``r`` is the stream ``rillet:events:r``. An entry's id is its position
``<attempt>-<index>`` (see :mod:`rillet.runtime.scaleout.store`); its one field names the kind:

==========  =========================================================================
``attempt``  ``rillet.runtime.wire.codec.packb({"consumer", "started_at", "entry"})`` at ``<a>-0``
``event``    ``msgpack(encode_event(event))``, carrying the event's own ``seq``/``attempt``
``end``      ``rillet.runtime.wire.codec.packb(RunOutcome.to_tree())``, the last entry of the stream
==========  =========================================================================

Every write is one Lua script that reads the stream's top entry first: it refuses a write of an
older attempt, or any write after the end record, and skips positions already written, so a
retried batch is never duplicated. Streams are capped with ``XADD MAXLEN ~ cap``, and expire
``ttl`` seconds after the end record (``EXPIRE``). Readers use ``XRANGE`` from their cursor and
``XREAD BLOCK`` (bounded by ``COUNT``) to wait for more.

Values of types nobody registered with :func:`rillet.runtime.wire.codec.register_wire_type`
cannot travel; inside *events* they are replaced by their ``repr()`` (logged once per type),
because an event is for watching. A run's *result* is never degraded: see
:mod:`rillet.runtime.scaleout.service`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import msgpack

from rillet.runtime.errors import WireFormatError
from rillet.runtime.events.eventlog import decode_event, encode_event
from rillet.runtime.events.types import Event
from rillet.runtime.logs import get_logger
from rillet.runtime.scaleout.redis_client import MAX_BLOCK_MS, RedisKeys, unavailable_on_outage
from rillet.runtime.scaleout.resp import PipelinedRedis, Script
from rillet.runtime.scaleout.store import (
    ATTEMPT,
    END,
    EVENT,
    LogEntry,
    RunOutcome,
    RunSuperseded,
    parse_cursor,
)
from rillet.runtime.wire.codec import decode_value, encode_value, error_info, packb, unpackb

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisEventLog", "decode_event_bytes", "encode_event_bytes"]

_WRITE = """
local attempt = tonumber(ARGV[2])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local ta, ti = 0, -1
if top then
  local dash = string.find(top[1], '-', 1, true)
  ta = tonumber(string.sub(top[1], 1, dash - 1))
  ti = tonumber(string.sub(top[1], dash + 1))
  if top[2][1] == 'end' then
    if ARGV[1] == 'end' and ta == attempt and ti == tonumber(ARGV[5]) then return 'ok' end
    return 'ended'
  end
elseif ARGV[1] == 'append' then
  return 'missing'
end
if ta > attempt then return 'superseded' end
for i = 5, #ARGV, 3 do
  if ta < attempt or tonumber(ARGV[i]) > ti then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], ARGV[2] .. '-' .. ARGV[i],
               ARGV[i + 1], ARGV[i + 2])
  end
end
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return 'ok'
"""
_REFUSED = {b"ended": "the run already ended", b"superseded": "a later attempt began",
            b"missing": "its event log is gone (expired, or Redis lost it)"}
_warned: set[str] = set()


def encode_event_bytes(event: Event) -> bytes:
    """``msgpack(encode_event(event))``; unencodable data values travel as their ``repr()``."""
    try:
        tree = encode_event(event)
    except WireFormatError as error:
        name = type(event).__name__
        if name not in _warned:
            _warned.add(name)
            get_logger(component="redis_events").warning(
                "event_value_not_encodable", event_type=name, error=str(error))
        tree = encode_event(attrs.evolve(event, data=_printable(event.data),
                                         metadata=_printable(event.metadata)))
    data: bytes = msgpack.packb(tree)
    return data


def _printable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, BaseException):
            out[key] = error_info(value)
            continue
        try:
            encode_value(value)
            out[key] = value
        except WireFormatError:
            out[key] = repr(value)
    return out


def decode_event_bytes(data: bytes) -> Event:
    """The event packed by :func:`encode_event_bytes`.

    Raises:
        WireFormatError: not msgpack, or not an encoded event.
    """
    try:
        tree = msgpack.unpackb(data, raw=False)
    except ValueError as error:
        raise WireFormatError(f"an event entry is not msgpack: {error}") from error
    if not isinstance(tree, dict):
        raise WireFormatError(f"an event entry must be a map, got {type(tree).__name__}")
    # decode_event passes ``metadata`` twice when the tree has it; decode it here instead.
    event = decode_event({k: v for k, v in tree.items() if k != "metadata"})
    return attrs.evolve(event, metadata=decode_value(tree.get("metadata", {})))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(run_id: str, reply: Any) -> list[LogEntry]:
    """The entries of a RESP2 ``XRANGE``/``XREVRANGE`` reply: ``[[id, [field, value]], …]``."""
    return [_entry(run_id, identifier, dict(zip(flat[::2], flat[1::2], strict=True)))
            for identifier, flat in reply or ()]


def _entry(run_id: str, identifier: bytes | str, fields: Mapping[Any, Any]) -> LogEntry:
    cursor = _text(identifier)
    attempt = parse_cursor(cursor)[0]
    try:
        ((field, value),) = fields.items()
        kind = _text(field)
        if kind == EVENT:
            return LogEntry(cursor=cursor, attempt=attempt, kind=EVENT,
                            event=decode_event_bytes(value))
        if kind == ATTEMPT:
            return LogEntry(cursor=cursor, attempt=attempt, kind=ATTEMPT, info=unpackb(value))
        if kind == END:
            return LogEntry(cursor=cursor, attempt=attempt, kind=END,
                            outcome=RunOutcome.from_tree(unpackb(value)))
        raise WireFormatError(f"unknown entry kind {kind!r}")
    except (ValueError, KeyError, TypeError) as error:
        raise WireFormatError(f"bad entry {cursor} in the event log of run {run_id!r}: "
                              f"{error}") from error


class RedisEventLog:
    """An :class:`~rillet.runtime.scaleout.store.EventLog` on Redis Streams; see the module
    docstring.

    Args:
        redis: an open client (:func:`~rillet.runtime.scaleout.redis_client.open_redis`), for
            blocking reads.
        pipe: the pipelined connection (:func:`~rillet.runtime.scaleout.resp.open_pipelined`)
            that every write and every read that answers at once goes through.
        keys: key names; one prefix per deployment.
        cap: entries kept per run (approximately: ``MAXLEN ~``); older ones are trimmed.
        ttl: seconds a run's stream lives after its end record.
    """

    def __init__(self, redis: coredis.Redis[bytes], *, pipe: PipelinedRedis,
                 keys: RedisKeys = RedisKeys(), cap: int = 10_000, ttl: int = 3_600) -> None:
        if cap < 2 or ttl < 1:
            raise ValueError(f"cap must be >= 2 and ttl >= 1 second, got cap={cap}, ttl={ttl}")
        self.redis, self.pipe, self.keys, self.cap, self.ttl = redis, pipe, keys, cap, ttl
        self._write = Script(_WRITE)

    async def _run(self, mode: str, run_id: str, attempt: int, ttl: int,
                   items: Sequence[tuple[int, str, bytes]]) -> bytes:
        args: list[Any] = [mode, attempt, self.cap, ttl]
        for index, kind, value in items:
            args += [index, kind, value]
        with unavailable_on_outage("the Redis event log"):
            reply: Any = await self.pipe.evalsha(self._write, [self.keys.events(run_id)], args)
        return reply if isinstance(reply, bytes) else str(reply).encode()

    async def begin(self, run_id: str, attempt: int, info: Mapping[str, Any]) -> bool:
        reply = await self._run("begin", run_id, attempt, 0, [(0, ATTEMPT, packb(dict(info)))])
        if reply == b"ended":
            return False
        if reply != b"ok":
            raise RunSuperseded(run_id, attempt, _REFUSED.get(reply, reply.decode()))
        return True

    async def append(self, run_id: str, attempt: int, index: int, events: Sequence[Event]) -> None:
        items = [(index + i, EVENT, encode_event_bytes(event)) for i, event in enumerate(events)]
        reply = await self._run("append", run_id, attempt, 0, items)
        if reply != b"ok":
            raise RunSuperseded(run_id, attempt, _REFUSED.get(reply, reply.decode()))

    async def end(self, run_id: str, attempt: int, index: int, outcome: RunOutcome) -> None:
        reply = await self._run("end", run_id, attempt, self.ttl,
                                [(index, END, packb(outcome.to_tree()))])
        if reply != b"ok":
            raise RunSuperseded(run_id, attempt, _REFUSED.get(reply, reply.decode()))

    async def read(self, run_id: str, after: str | None, *, count: int = 100,
                   timeout: float = 0.0) -> list[LogEntry]:
        key = self.keys.events(run_id)
        with unavailable_on_outage("the Redis event log"):
            if after is None:
                top = await self.pipe.execute("XREVRANGE", key, "+", "-", "COUNT", 1)
                if top:  # start at the latest attempt's marker: ids are positions
                    start = f"{parse_cursor(_text(top[0][0]))[0]}-0"
                    return _entries(run_id, await self.pipe.execute(
                        "XRANGE", key, start, "+", "COUNT", count))
                after = "0-0"
            else:
                parse_cursor(after)  # a clear error for a bad cursor, not Redis's
                entries = _entries(run_id, await self.pipe.execute(
                    "XRANGE", key, f"({after}", "+", "COUNT", count))
                if entries or timeout <= 0:
                    return entries
            if timeout <= 0:
                return []
            block = max(1, min(int(timeout * 1000), MAX_BLOCK_MS))
            reply = await self.redis.xread({key: after}, count=count, block=block)
        found = (reply or {}).get(key.encode(), ())
        return [_entry(run_id, e.identifier, e.field_values) for e in found]

    async def last(self, run_id: str) -> LogEntry | None:
        with unavailable_on_outage("the Redis event log"):
            top = _entries(run_id, await self.pipe.execute(
                "XREVRANGE", self.keys.events(run_id), "+", "-", "COUNT", 1))
        return top[0] if top else None

    async def ttl_of(self, run_id: str) -> int:
        """Seconds until the run's stream expires (-1: no expiry yet, -2: no stream)."""
        with unavailable_on_outage("the Redis event log"):
            return int(await self.redis.ttl(self.keys.events(run_id)))
