"""The run queue on Redis Streams: a consumer group of workers on any number of machines.

Layout (``RedisKeys``, prefix ``rillet``): stream ``rillet:runs`` with group ``workers``; each
entry has one field ``run`` = msgpack of the
:class:`~rillet.runtime.scaleout.queue.RunSubmission`. Dead letters go to ``rillet:runs:dead``
(fields ``reason``, ``entry``, ``run_id``, ``deliveries``, ``payload``, ``at``).

- **claim**: ``XAUTOCLAIM`` of entries idle for ``lease_timeout`` (a dead worker's) from the
  start of the pending list, following its cursor until ``count`` are found or the list is
  scanned; then ``XREADGROUP … >`` for new ones. The scan runs every ``lease_timeout / 4``, and
  at the very next claim again when it found a full ``count``: a dead worker's runs go before
  the backlog of new ones, so they are redelivered within about one lease even under load.
  ``attempt`` is the entry's delivery count from the pending list.
- **renew**: a script checks the caller still owns the entry, then ``XCLAIM … JUSTID`` resets
  its idle time without counting a delivery. A plain ``XCLAIM`` would steal it back.
- **acknowledge**: ``XACK`` and ``XDEL``, so the stream only holds unfinished runs.
- **submit** is idempotent per ``run_id`` (a ``SET NX`` guard kept ``dedup_ttl`` seconds), so a
  client that retries after a lost reply never queues the run twice.
- **cancel** sets ``rillet:cancel:<run_id>`` (the reason, kept ``dedup_ttl`` seconds); workers
  read the keys of the runs they hold with one ``MGET`` per poll.
- **the stream disappears** (``FLUSHALL``, ``DEL rillet:runs``, a restart without persistence):
  the next claim recreates the group and goes on; a run that was running keeps its worker
  (nobody else can hold an entry that no longer exists) and completes.

>>> # async with open_redis(url) as redis:
>>> #     queue = RedisRunQueue(redis, lease_timeout=30.0)
>>> #     run_id = await queue.submit(RunSubmission.new("joke", {"topic": "parrot"}))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import coredis.exceptions
import trio

from rillet.runtime.errors import WireFormatError
from rillet.runtime.scaleout.queue import DeadLetter, Lease, QueueStatistics, RunSubmission
from rillet.runtime.scaleout.redis_client import MAX_BLOCK_MS, RedisKeys, unavailable_on_outage
from rillet.runtime.scaleout.resp import GroupLost, PipelinedRedis, Script

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisRunQueue"]

_SUBMIT = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[1], '*', 'run', ARGV[1])
end
return false
"""
# ARGV: group, consumer, entry id, idle ms to set (0: renew now; lease: release for redelivery)
# An entry that is pending nowhere (its stream was deleted and the group made again) is nobody
# else's either: the owner keeps it.
_RENEW = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return 1 end
if p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""
#: Pages of XAUTOCLAIM (each scans up to 10 x count pending entries) one reclaim follows.
_MAX_RECLAIM_PAGES = 32
#: What coredis (and the pipelined connection) raise when the stream or its group vanished.
_GROUP_LOST = (coredis.exceptions.StreamConsumerGroupError, coredis.exceptions.UnblockedError,
               GroupLost)
# Forget a consumer only when it holds nothing: DELCONSUMER drops its pending entries for good.
_RETIRE = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
# One script, so the entry is acknowledged and deleted together (as MULTI/EXEC did).
_ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any, stream: str) -> list[tuple[str, dict[Any, Any]]]:
    """``(id, fields)`` of one stream's entries in a RESP2 ``XREADGROUP`` reply."""
    out: list[tuple[str, dict[Any, Any]]] = []
    for name, entries in reply or ():
        if _str(name) == stream:
            for identifier, flat in entries:
                flat = flat or []  # an entry deleted while pending has no fields
                out.append((_str(identifier), dict(zip(flat[::2], flat[1::2], strict=True))))
    return out


class RedisRunQueue:
    """A :class:`~rillet.runtime.scaleout.queue.RunQueue` on Redis Streams; see the module
    docstring.

    Args:
        redis: an open client (:func:`~rillet.runtime.scaleout.redis_client.open_redis`), for
            blocking reads and the rare commands.
        pipe: the pipelined connection (:func:`~rillet.runtime.scaleout.resp.open_pipelined`)
            for every command of the per-run path.
        keys: key names; one prefix per deployment.
        lease_timeout: seconds without renewal after which another worker takes the run.
        dead_cap: dead letters kept (approximately; the oldest are trimmed).
        dedup_ttl: seconds a submitted ``run_id`` is remembered to refuse duplicates.
    """

    def __init__(
        self, redis: coredis.Redis[bytes], *, pipe: PipelinedRedis, keys: RedisKeys = RedisKeys(),
        lease_timeout: float = 30.0, dead_cap: int = 10_000, dedup_ttl: int = 86_400,
    ) -> None:
        if lease_timeout <= 0:
            raise ValueError(f"lease_timeout must be > 0 seconds, got {lease_timeout}")
        self.redis, self.pipe, self.keys, self.lease_timeout = redis, pipe, keys, lease_timeout
        self.dead_cap, self.dedup_ttl = dead_cap, dedup_ttl
        self._lease_ms = max(1, int(lease_timeout * 1000))
        self._reclaim_every = max(0.05, lease_timeout / 4)
        self._next_reclaim = 0.0
        self._submit, self._renew, self._ack = Script(_SUBMIT), Script(_RENEW), Script(_ACK)
        self._retire = redis.register_script(_RETIRE)
        self._group_ready = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        with unavailable_on_outage("the Redis run queue"):
            try:
                await self.redis.xgroup_create(self.keys.runs, self.keys.group, identifier="0",
                                               mkstream=True)
            except coredis.exceptions.StreamDuplicateConsumerGroupError:
                pass
        self._group_ready = True

    async def submit(self, request: RunSubmission) -> str:
        payload = request.to_wire()
        with unavailable_on_outage("the Redis run queue"):
            await self.pipe.evalsha(self._submit, [self.keys.runs,
                                                   self.keys.submitted(request.run_id)],
                                    [payload, self.dedup_ttl])
        return request.run_id

    async def submit_raw(self, payload: bytes) -> str:
        """Append an entry as bytes, as a foreign client might (tests use it for bad input)."""
        with unavailable_on_outage("the Redis run queue"):
            return _str(await self.redis.xadd(self.keys.runs, {"run": payload}) or b"")

    async def claim(self, consumer: str, *, count: int = 1, timeout: float = 1.0) -> list[Lease]:
        await self._ensure_group()
        found: list[tuple[str, dict[Any, Any], int]] = []
        try:
            with unavailable_on_outage("the Redis run queue"):
                if trio.current_time() >= self._next_reclaim:
                    found += await self._reclaim(consumer, count)
                    # A full page: more expired entries may wait; look again at the next claim.
                    full = len(found) >= count
                    self._next_reclaim = trio.current_time() + (0 if full else
                                                                self._reclaim_every)
                if len(found) < count:
                    # What is there already comes through the pipeline; only an empty queue
                    # takes a blocking read (on a connection of its own).
                    reply = await self.pipe.execute(
                        "XREADGROUP", "GROUP", self.keys.group, consumer, "COUNT",
                        count - len(found), "STREAMS", self.keys.runs, ">")
                    found += [(i, f, 1) for i, f in _entries(reply, self.keys.runs)]
                if not found:
                    block = max(1, min(int(timeout * 1000), MAX_BLOCK_MS))
                    blocked = await self.redis.xreadgroup(
                        self.keys.group, consumer, {self.keys.runs: ">"}, count=count,
                        block=block)
                    for entry in (blocked or {}).get(self.keys.runs.encode(), ()):
                        found.append((_str(entry.identifier), dict(entry.field_values), 1))
        except _GROUP_LOST:
            # The stream or its group is gone (FLUSHALL, DEL, a restart without persistence):
            # make them again at the next claim.
            self._group_ready = False
            return []
        return [lease for lease in [await self._lease(consumer, *f) for f in found] if lease]

    async def _reclaim(self, consumer: str, count: int) -> list[tuple[str, dict[Any, Any], int]]:
        """Claim up to ``count`` expired entries, scanning the pending list from its start."""
        out: list[tuple[str, dict[Any, Any], int]] = []
        cursor = "0-0"
        for _ in range(_MAX_RECLAIM_PAGES):
            reply: Any = await self.redis.xautoclaim(self.keys.runs, self.keys.group, consumer,
                                                     self._lease_ms, cursor,
                                                     count=count - len(out))
            cursor, entries = _str(reply[0]), reply[1]
            if len(reply) > 2 and reply[2]:  # entries deleted from the stream while pending
                await self.redis.xack(self.keys.runs, self.keys.group, list(reply[2]))
            for entry in entries:
                entry_id = _str(entry.identifier)
                pending: Any = await self.redis.xpending(self.keys.runs, self.keys.group,
                                                         entry_id, entry_id, 1)
                deliveries = pending[0].delivered if pending else 1
                out.append((entry_id, dict(entry.field_values), deliveries))
            if len(out) >= count or cursor == "0-0":
                break
        return out

    async def _lease(self, consumer: str, entry_id: str, fields: dict[Any, Any],
                     deliveries: int) -> Lease | None:
        payload = fields.get(b"run")
        try:
            if payload is None:
                raise WireFormatError(f"no 'run' field (fields: {sorted(_str(k) for k in fields)})")
            request = RunSubmission.from_wire(payload)
        except WireFormatError as error:
            await self._bury(entry_id, f"malformed run entry: {error}", None, deliveries,
                             payload or b"")
            return None
        return Lease(request=request, entry_id=entry_id, attempt=deliveries, consumer=consumer)

    async def renew(self, lease: Lease) -> bool:
        try:
            with unavailable_on_outage("the Redis run queue"):
                owned: Any = await self.pipe.evalsha(self._renew, [self.keys.runs], [
                    self.keys.group, lease.consumer, lease.entry_id, 0])
        except _GROUP_LOST:
            self._group_ready = False
            return True  # no group, so nobody else can hold the entry: keep running it
        return bool(owned)

    async def release(self, lease: Lease) -> None:
        try:
            with unavailable_on_outage("the Redis run queue"):
                await self.pipe.evalsha(self._renew, [self.keys.runs], [
                    self.keys.group, lease.consumer, lease.entry_id, self._lease_ms * 10])
        except _GROUP_LOST:
            self._group_ready = False  # nothing left to release
        self._next_reclaim = 0.0

    async def acknowledge(self, lease: Lease) -> None:
        with unavailable_on_outage("the Redis run queue"):
            await self.pipe.evalsha(self._ack, [self.keys.runs],
                                    [self.keys.group, lease.entry_id])

    async def dead_letter(self, lease: Lease, reason: str) -> None:
        await self._bury(lease.entry_id, reason, lease.run_id, lease.attempt,
                         lease.request.to_wire())

    async def _bury(self, entry_id: str, reason: str, run_id: str | None, deliveries: int,
                    payload: bytes) -> None:
        fields: dict[str, str | bytes] = {
            "reason": reason, "entry": entry_id, "run_id": run_id or "",
            "deliveries": str(deliveries), "payload": payload, "at": repr(time.time())}
        with unavailable_on_outage("the Redis run queue"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.keys.dead, fields, trim_strategy=coredis.PureToken.MAXLEN,
                          trim_operator=coredis.PureToken.APPROXIMATELY, threshold=self.dead_cap)
                pipe.xack(self.keys.runs, self.keys.group, [entry_id])
                pipe.xdel(self.keys.runs, [entry_id])

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        with unavailable_on_outage("the Redis run queue"):
            entries = await self.redis.xrange(self.keys.dead, "-", "+", count=count)
        out = []
        for entry in entries:
            f = {_str(k): v for k, v in entry.field_values.items()}
            out.append(DeadLetter(
                entry_id=_str(f["entry"]), reason=_str(f["reason"]),
                run_id=_str(f["run_id"]) or None, deliveries=int(f["deliveries"]),
                payload=f["payload"] if isinstance(f["payload"], bytes) else f["payload"].encode(),
                at=float(f["at"])))
        return out

    async def retire(self, consumer: str) -> None:
        """Forget ``consumer`` in the group if it holds no lease (a worker shutting down)."""
        try:
            with unavailable_on_outage("the Redis run queue"):
                await self._retire(keys=[self.keys.runs], args=[self.keys.group, consumer])
        except _GROUP_LOST:
            self._group_ready = False  # no group: nothing to leave

    async def cancel(self, run_id: str, reason: str) -> None:
        with unavailable_on_outage("the Redis run queue"):
            await self.pipe.execute("SET", self.keys.cancel(run_id), reason, "EX",
                                    self.dedup_ttl)

    async def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]:
        if not run_ids:
            await trio.lowlevel.checkpoint()
            return {}
        with unavailable_on_outage("the Redis run queue"):
            reasons = await self.pipe.execute(
                "MGET", *[self.keys.cancel(run_id) for run_id in run_ids])
        return {run_id: _str(reason) for run_id, reason in zip(run_ids, reasons, strict=True)
                if reason is not None}

    async def statistics(self) -> QueueStatistics:
        for _ in range(2):  # once more after remaking a group that vanished
            await self._ensure_group()
            try:
                with unavailable_on_outage("the Redis run queue"):
                    length = await self.redis.xlen(self.keys.runs)
                    summary: Any = await self.redis.xpending(self.keys.runs, self.keys.group)
                    dead = await self.redis.xlen(self.keys.dead)
                return QueueStatistics(length - summary.pending, summary.pending, dead)
            except _GROUP_LOST:
                self._group_ready = False
        return QueueStatistics(0, 0, 0)
