"""A small Redis connection on trio that pipelines by itself: the hot path of scale-out.

Every command a worker runs per run (the fenced event writes, acknowledgements, cancel
lookups) and every command a client runs per run (submit, the result's reads) goes through one
:class:`PipelinedRedis` per process. Commands that tasks issue while a write is on its way are
queued and leave together in the next write, and the replies come back in order on the same
connection: 50 runs appending events at once cost one ``send`` and one ``recv`` per round,
not 50 of each. Through coredis each command costs ~250 µs of client CPU (its task group,
retry policy, per-command timeout scopes); here a pipelined command costs ~10 µs.

Only commands that answer at once belong here: a blocking read (``XREAD BLOCK``) would hold up
every command queued behind it, so those stay on coredis's pool. A command's error reply raises
:class:`RespError` (``NOGROUP`` ones :class:`GroupLost`); a dropped or refused connection, a
reply later than ``timeout``, or a server still ``LOADING`` raise ``OSError``/``TimeoutError``,
which :func:`~rillet.runtime.scaleout.redis_client.unavailable_on_outage` turns into
``StoreUnavailable``. The next command after a failure connects again.

>>> encode_command(("SET", "k", b"v", 10))
b'*4\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n$2\\r\\n10\\r\\n'
>>> RespParser().feed(b"+OK\\r\\n:3\\r\\n*2\\r\\n$1\\r\\na\\r\\n$-1\\r\\n")
[b'OK', 3, [b'a', None]]
"""

from __future__ import annotations

import hashlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs
import trio

from rillet.runtime.engine.supervisor import sole_error

__all__ = ["GroupLost", "PipelinedRedis", "RespError", "RespParser", "Script", "encode_command",
           "open_pipelined", "raise_bare"]

#: Error prefixes that mean "the server cannot answer yet" (an outage, not a bug).
_TRANSIENT: Final = (b"LOADING", b"READONLY", b"MASTERDOWN", b"TRYAGAIN", b"BUSY ")
_MAX_WRITE: Final = 1 << 20  # bytes gathered into one send


class RespError(Exception):
    """The server answered a command with an error (``-ERR …``)."""


class GroupLost(RespError):
    """``NOGROUP``: the stream or its consumer group no longer exists."""


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value).encode()
    raise TypeError(f"a Redis argument must be bytes, str, int or float, got "
                    f"{type(value).__name__}: {value!r:.60}")


def encode_command(args: Sequence[Any]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg(arg)
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    pass


class RespParser:
    """Incremental RESP2 parser: feed bytes, get every complete reply (errors as values)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[Any]:
        self._buffer += data
        out: list[Any] = []
        pos = 0
        try:
            while pos < len(self._buffer):
                value, pos = self._parse(pos)
                out.append(value)
        except _Incomplete:
            pass
        del self._buffer[:pos]
        return out

    def _parse(self, pos: int) -> tuple[Any, int]:
        buffer = self._buffer
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            raise _Incomplete
        kind, line = buffer[pos], bytes(buffer[pos + 1:end])
        pos = end + 2
        if kind == 0x2B:  # + simple string
            return line, pos
        if kind == 0x3A:  # : integer
            return int(line), pos
        if kind == 0x24:  # $ bulk string
            size = int(line)
            if size < 0:
                return None, pos
            if len(buffer) < pos + size + 2:
                raise _Incomplete
            return bytes(buffer[pos:pos + size]), pos + size + 2
        if kind == 0x2A:  # * array
            count = int(line)
            if count < 0:
                return None, pos
            items = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        if kind == 0x2D:  # - error
            cls = GroupLost if line.startswith(b"NOGROUP") else RespError
            return cls(line.decode(errors="replace")), pos
        raise OSError(f"not a Redis reply: {bytes(buffer[pos - len(line) - 3:pos])!r:.80}")


@attrs.frozen
class Script:
    """A Lua script, run with ``EVALSHA`` (and ``EVAL`` once if the server lacks it)."""

    source: str
    sha: str = attrs.field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


class _Waiter:
    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None


def _address(url: str) -> tuple[str, Any, list[tuple[Any, ...]]]:
    """``(kind, where, setup commands)`` for a redis://, rediss:// or unix:// URL."""
    parts = urlsplit(url)
    setup: list[tuple[Any, ...]] = []
    if parts.password is not None:
        user = unquote(parts.username) if parts.username else None
        setup.append(("AUTH", user, unquote(parts.password)) if user
                     else ("AUTH", unquote(parts.password)))
    if parts.scheme == "unix":
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        db = int(query.get("db", "0") or 0)
        where: Any = parts.path
    else:
        db = int(parts.path.strip("/") or 0)
        where = (parts.hostname or "127.0.0.1", parts.port or 6379)
    if db:
        setup.append(("SELECT", db))
    return parts.scheme, where, setup


class PipelinedRedis:
    """One connection to ``url`` shared by every task, pipelining whatever is queued at once.

    Example::

        redis = PipelinedRedis("redis://127.0.0.1:6379/0")
        async with trio.open_nursery() as nursery:
            await nursery.start(redis.run)
            await redis.execute("SET", "k", "v")
            nursery.cancel_scope.cancel()

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://…`` or
            ``unix:///path?db=N``.
        timeout: seconds a reply may take (and a connect): then ``TimeoutError``.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url, self.timeout = url, timeout
        self._kind, self._where, self._setup = _address(url)
        self._pending: list[bytes] = []
        self._waiters: deque[_Waiter] = deque()
        self._writing = False
        self._stream: trio.abc.Stream | None = None
        self._generation = 0
        self._connecting: trio.Event | None = None
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Own the connection's tasks until cancelled (start it in a nursery)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                self._generation += 1
                self._fail(OSError("the Redis connection was closed"))
                if self._stream is not None:
                    stream, self._stream = self._stream, None
                    await trio.aclose_forcefully(stream)

    async def execute(self, *args: Any) -> Any:
        """Send one command; its reply (``RespError`` replies raise)."""
        (reply,) = await self.execute_many([args])
        if isinstance(reply, RespError):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands back to back; their replies in order, errors as values (not raised)."""
        waiters = [_Waiter() for _ in commands]
        try:
            with trio.fail_after(self.timeout):
                await self._ensure_connected()
                # Queued back to back in one go: no other task's command lands in between
                # (so MULTI ... EXEC sent here stays one transaction).
                self._pending.extend(encode_command(c) for c in commands)
                self._waiters.extend(waiters)
                await self._flush()
                for waiter in waiters:
                    await waiter.done.wait()
        except trio.TooSlowError:
            # A server this slow is treated as gone: its late replies would pair up with the
            # wrong commands if anything else waited on this connection.
            error = TimeoutError(f"Redis did not answer within {self.timeout:g} s")
            if self._stream is not None:
                self._drop(self._stream, self._generation, error)
            raise error from None
        out = []
        for waiter in waiters:
            if isinstance(waiter.value, (OSError, TimeoutError)):
                raise waiter.value
            if isinstance(waiter.value, RespError) and str(waiter.value).encode().startswith(
                    _TRANSIENT):
                raise ConnectionError(f"Redis is not ready: {waiter.value}")
            out.append(waiter.value)
        return out

    async def evalsha(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``script`` (loading it first if the server has forgotten it)."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except RespError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def _ensure_connected(self) -> None:
        while self._stream is None:
            if self._nursery is None:
                raise OSError("the Redis connection is not running (start PipelinedRedis.run)")
            if self._connecting is not None:
                await self._connecting.wait()
                continue
            self._connecting = trio.Event()
            try:
                await self._connect()
            finally:
                self._connecting.set()
                self._connecting = None

    async def _connect(self) -> None:
        if self._kind == "unix":
            stream: trio.abc.Stream = await trio.open_unix_socket(self._where)
        elif self._kind == "rediss":
            stream = await trio.open_ssl_over_tcp_stream(
                *self._where, ssl_context=ssl.create_default_context())
        else:
            stream = await trio.open_tcp_stream(*self._where)
        parser = RespParser()
        try:
            for command in self._setup:
                await stream.send_all(encode_command([a for a in command if a is not None]))
                replies: list[Any] = []
                while not replies:
                    data = await stream.receive_some(4096)
                    if not data:
                        raise OSError("Redis closed the connection while it was set up")
                    replies = parser.feed(data)
                if isinstance(replies[0], RespError):
                    raise OSError(f"Redis refused {command[0]}: {replies[0]}")
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        self._stream = stream
        self._generation += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._reader, stream, parser, self._generation)

    async def _flush(self) -> None:
        """Send everything queued, and whatever is queued meanwhile, unless a send is on its
        way already (its task sends ours too). Shielded, so a caller that is cancelled never
        leaves half a command on the wire; bounded by ``timeout``, so a stuck server still
        ends it."""
        if self._writing:
            return
        stream, generation = self._stream, self._generation
        if stream is None:
            return
        self._writing = True
        try:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + self.timeout):
                while self._pending and generation == self._generation:
                    size, count = 0, 0
                    for command in self._pending:
                        size += len(command)
                        count += 1
                        if size >= _MAX_WRITE:
                            break
                    data = b"".join(self._pending[:count])
                    del self._pending[:count]
                    await stream.send_all(data)
            if self._pending and generation == self._generation:
                self._drop(stream, generation, TimeoutError(
                    f"Redis did not take a write within {self.timeout:g} s"))
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as error:
            self._drop(stream, generation, OSError(f"Redis connection lost: {error}"))
        finally:
            self._writing = False

    async def _reader(self, stream: trio.abc.Stream, parser: RespParser,
                      generation: int) -> None:
        try:
            while generation == self._generation:
                data = await stream.receive_some(65536)
                if not data:
                    raise OSError("Redis closed the connection")
                for reply in parser.feed(data):
                    waiter = self._waiters.popleft()
                    waiter.value = reply
                    waiter.done.set()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as error:
            self._drop(stream, generation, OSError(f"Redis connection lost: {error}"))

    def _drop(self, stream: trio.abc.Stream, generation: int, error: Exception) -> None:
        if generation != self._generation or self._stream is not stream:
            return
        self._generation += 1
        self._stream = None
        self._fail(error)
        if self._nursery is not None:
            self._nursery.start_soon(trio.aclose_forcefully, stream)

    def _fail(self, error: Exception) -> None:
        """Every command in flight or queued fails with ``error``."""
        self._pending.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.value = error
            waiter.done.set()


@asynccontextmanager
async def open_pipelined(url: str, *, timeout: float = 30.0) -> AsyncIterator[PipelinedRedis]:
    """A :class:`PipelinedRedis` for ``url``, running for the block (it connects lazily).

    Example::

        async with open_pipelined("redis://127.0.0.1:6379/0") as redis:
            await redis.execute("PING")
    """
    redis = PipelinedRedis(url, timeout=timeout)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(redis.run)
            try:
                yield redis
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_bare(group)


def raise_bare(group: BaseExceptionGroup[Any]) -> None:
    """Raise the one error in ``group`` (a nursery's wrapping of what its body raised) as it
    is, keeping its ``__context__``; re-raise ``group`` when it holds only cancellations."""
    error = sole_error(group)
    if error is None:
        raise group
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context
