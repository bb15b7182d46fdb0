"""The raw limit: bare trio tasks joined by ``trio.open_memory_channel``, no framework.

A raw pipeline has the shape of the rillet run it is measured against — a feeder task, one task
per stage, the caller reading the last channel, every channel bounded (16) — and does no work
per chunk beyond moving it (a stage that stands for a model splits its response with the same
:func:`~rillet.nodes.chat_models.split_text`). Two flavours:

- **naive**: one ``await`` per send and per receive (``async for item in recv: await
  send.send(item)``), the obvious way to write it;
- **batched**: what rillet's actors do — move every item already available with
  ``receive_nowait``/``send_nowait``, await only on ``trio.WouldBlock``, checkpoint every 256
  items so other tasks and cancellation are never starved. The loops are written inline (no
  coroutine call per item), so this is the floor the transport allows.

>>> import trio
>>> async def demo():
...     async with open_raw_pipeline([Forward(), Forward()], ["a", "b"], batched=True) as out:
...         return [item async for item in out]
>>> trio.run(demo)
['a', 'b']
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

import attrs
import trio

__all__ = ["BOUND", "Expand", "Forward", "Once", "Reader", "Stage", "StageOutput", "items",
           "open_raw_pipeline"]

BOUND: Final = 16
CHECKPOINT_EVERY: Final = 256

Send = trio.MemorySendChannel[Any]
Recv = trio.MemoryReceiveChannel[Any]


class StageOutput:
    """Where a stage's items go: the next channel, and in events mode an event channel too.

    :meth:`send_all` / :meth:`send_all_async` move a whole stream with the fast path inline;
    :meth:`put` moves one item (and reports its events).
    """

    __slots__ = ("send", "events", "names", "batched", "count")

    def __init__(self, send: Send, events: Send | None, names: tuple[str, ...],
                 batched: bool) -> None:
        self.send, self.events, self.names, self.batched = send, events, names, batched
        self.count = 0

    async def put(self, item: Any) -> None:
        if self.events is not None:
            for name in self.names:
                await self._put(self.events, {"event": "on_stream", "name": name,
                                              "data": {"chunk": item}})
        await self._put(self.send, item)

    async def event(self, phase: str) -> None:
        if self.events is not None:
            for name in self.names:
                await self._put(self.events, {"event": f"on_{phase}", "name": name, "data": {}})

    async def _put(self, channel: Send, item: Any) -> None:
        if not self.batched:
            await channel.send(item)
            return
        try:
            channel.send_nowait(item)
        except trio.WouldBlock:
            await channel.send(item)
        self.count += 1
        if self.count >= CHECKPOINT_EVERY:
            self.count = 0
            await trio.lowlevel.checkpoint()

    async def send_all(self, source: Iterable[Any]) -> None:
        """Send every item of ``source``."""
        if self.events is not None or not self.batched:
            for item in source:
                await self.put(item)
            return
        send, count = self.send, self.count
        for item in source:
            try:
                send.send_nowait(item)
            except trio.WouldBlock:
                await send.send(item)
            count += 1
            if count >= CHECKPOINT_EVERY:
                count = 0
                await trio.lowlevel.checkpoint()
        self.count = count

    async def send_all_async(self, source: AsyncIterator[Any]) -> None:
        """Send every item of an async ``source`` (a node's generator)."""
        if self.events is not None or not self.batched:
            async for item in source:
                await self.put(item)
            return
        send, count = self.send, self.count
        async for item in source:
            try:
                send.send_nowait(item)
            except trio.WouldBlock:
                await send.send(item)
            count += 1
            if count >= CHECKPOINT_EVERY:
                count = 0
                await trio.lowlevel.checkpoint()
        self.count = count

    def close(self) -> None:
        self.send.close()
        if self.events is not None:
            self.events.close()


class Reader:
    """The batched way to read a channel, as an async iterator (like rillet's ``astream``)."""

    __slots__ = ("_recv", "_count")

    def __init__(self, recv: Recv) -> None:
        self._recv, self._count = recv, 0

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> Any:
        try:
            item = self._recv.receive_nowait()
        except trio.WouldBlock:
            try:
                return await self._recv.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        self._count += 1
        if self._count >= CHECKPOINT_EVERY:
            self._count = 0
            await trio.lowlevel.checkpoint()
        return item


def items(recv: Recv, batched: bool) -> AsyncIterator[Any]:
    """A channel's items, read the naive or the batched way."""
    return Reader(recv) if batched else recv


async def _last(recv: Recv, batched: bool) -> Any:
    last = None
    async for item in items(recv, batched):
        last = item
    return last


@attrs.frozen
class Forward:
    """A pass-through stage (a parser, a generator step): each item, as it comes.

    In events mode a stage reports one event per item for each of its names (``also``: the
    last stage of a chain reports the chain's stream too).
    """

    name: str = "forward"
    also: tuple[str, ...] = ()

    async def run(self, recv: Recv, out: StageOutput) -> None:
        with recv:
            await out.event("start")
            if out.events is not None or not out.batched:
                async for item in items(recv, out.batched):
                    await out.put(item)
            else:
                await _forward_batched(recv, out.send)
            await out.event("end")


async def _forward_batched(recv: Recv, send: Send) -> None:
    count = 0
    while True:
        try:
            item = recv.receive_nowait()
        except trio.WouldBlock:
            try:
                item = await recv.receive()
            except trio.EndOfChannel:
                return
        except trio.EndOfChannel:
            return
        try:
            send.send_nowait(item)
        except trio.WouldBlock:
            await send.send(item)
        count += 1
        if count >= CHECKPOINT_EVERY:
            count = 0
            await trio.lowlevel.checkpoint()


@attrs.frozen
class Expand:
    """A stage that needs its whole input, then streams ``fn(input)`` (a chat model)."""

    fn: Callable[[Any], Iterable[Any]]
    name: str = "model"

    async def run(self, recv: Recv, out: StageOutput) -> None:
        with recv:
            last = await _last(recv, out.batched)
            await out.event("start")
            await out.send_all(self.fn(last))
            await out.event("end")


@attrs.frozen
class Once:
    """A stage that needs its whole input and emits one item ``fn(input)`` (a prompt)."""

    fn: Callable[[Any], Any]
    name: str = "prompt"

    async def run(self, recv: Recv, out: StageOutput) -> None:
        with recv:
            last = await _last(recv, out.batched)
            await out.event("start")
            await out.put(self.fn(last))
            await out.event("end")


class Stage(Protocol):
    """What :func:`open_raw_pipeline` runs: ``run`` reads ``recv`` and writes ``out``."""

    @property
    def name(self) -> str: ...

    async def run(self, recv: Recv, out: StageOutput) -> None: ...


async def _stage(stage: Stage, recv: Recv, out: StageOutput) -> None:
    try:
        await stage.run(recv, out)
    except trio.BrokenResourceError:
        pass  # the reader left early (a time box ran out): a stop, not a failure
    finally:
        out.close()


async def _feed(inputs: Iterable[Any], out: StageOutput) -> None:
    try:
        await out.send_all(inputs)
    except trio.BrokenResourceError:
        pass
    finally:
        out.close()


@asynccontextmanager
async def open_raw_pipeline(
    stages: Sequence[Stage],
    inputs: Iterable[Any],
    *,
    batched: bool,
    bound: int = BOUND,
    events: bool = False,
) -> AsyncIterator[AsyncIterator[Any]]:
    """Start a feeder and one task per stage; yield an iterator over the last channel.

    With ``events=True`` every stage also sends a small event dict per item (and one at its
    start and end) to a shared event channel, and the iterator yields those events instead of
    the output: the raw limit of an event stream.
    """
    async with trio.open_nursery() as nursery:
        send, recv = trio.open_memory_channel[Any](bound)
        ev_send, ev_recv = trio.open_memory_channel[Any](bound) if events else (None, None)
        nursery.start_soon(_feed, inputs, StageOutput(send, None, (), batched))
        for stage in stages:
            nxt_send, nxt_recv = trio.open_memory_channel[Any](bound)
            clone = ev_send.clone() if ev_send is not None else None
            names = (stage.name, *getattr(stage, "also", ()))
            out = StageOutput(nxt_send, clone, names, batched)
            nursery.start_soon(_stage, stage, recv, out)
            recv = nxt_recv
        if ev_send is not None and ev_recv is not None:
            ev_send.close()
            nursery.start_soon(_discard, recv)
            recv = ev_recv
        with recv:
            try:
                yield items(recv, batched)
            finally:
                nursery.cancel_scope.cancel()


async def _discard(recv: Recv) -> None:
    with recv:
        async for _ in Reader(recv):
            pass
