"""``RemoteRunnable``: a runnable served by ``rillet serve`` elsewhere, usable as a local one.

It is a :class:`~rillet.graphs.Runnable`, so it composes on both sides of ``|``, goes into
parallels and graphs, and has every entry point (``invoke``/``ainvoke``, ``batch``,
``stream``/``astream``, ``astream_events``, ``astream_log``), from trio, threads, and wherever
the base class works. Inside a run it is one node:

- nobody listens to events: it streams ``POST /stream`` and emits the server's chunks;
- a subscriber listens (``astream_events``, ``astream_log``, an ``EventBus`` in callbacks): it
  streams ``POST /stream_events`` instead, re-publishes the remote run's events nested under
  its own run (``parent_ids`` continue across the wire), and emits the remote root's chunks.

Called on its own (not inside a run, no buses), ``invoke``/``ainvoke`` make one ``POST
/invoke`` and return the server's result, as LangServe's client does. Leaving a stream early
closes the connection, which cancels the run on the server; a failed remote run raises
:class:`~rillet.runtime.errors.RemoteError`. The tags, metadata and configurable of the run
it is part of travel with the request.

>>> # chain = RemoteRunnable("http://127.0.0.1:8000/joke") | StrOutputParser()
>>> # async for text in chain.astream({"topic": "parrot"}): print(text, end="")
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import attrs

from rillet.graphs.base import Runnable
from rillet.graphs.config import RunnableConfig
from rillet.runtime import ChunkEmitted, CustomEvent, current_scope
from rillet.runtime.lowlevel import RemoteClient, RunConfig, RunScope, event_from_dict, hosted

__all__ = ["RemoteRunnable"]


class RemoteRunnable(Runnable[Any, Any]):
    """The runnable served at ``url`` (a served name's base URL, e.g.
    ``http://host:8000/joke``).

    Args:
        url: the served name's base URL.
        token: bearer token, when the server asks for one.
        timeout: seconds for connecting and between bytes (``None``: wait forever).
        use_msgpack: talk msgpack instead of JSON.
        name: the run name of its own (local) run; ``RemoteRunnable`` by default.

    Example::

        joke = RemoteRunnable("http://127.0.0.1:8000/joke")
        print(joke.invoke({"topic": "parrot"}))
        async for text in (joke | StrOutputParser()).astream({"topic": "parrot"}):
            print(text, end="")
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = 60.0,
                 use_msgpack: bool = False, name: str | None = None) -> None:
        self.client = RemoteClient(url, token=token, timeout=timeout, use_msgpack=use_msgpack)
        self.name = name

    @property
    def url(self) -> str:
        return self.client.url

    def __repr__(self) -> str:
        return f"RemoteRunnable({self.url!r})"

    @hosted  # from asyncio too, in the loop's trio guest, as every Runnable method
    async def ainvoke(self, input: object, config: RunnableConfig | RunConfig | None = None,
                      **kwargs: object) -> Any:
        """Run once on the server and return its output.

        Not inside a run and with no event bus in ``config``: one ``POST /invoke`` (the
        server's own result, as LangServe's client returns it). Otherwise a run of this node,
        so its events reach the subscribers.
        """
        checked = RunConfig.from_dict(config)
        if current_scope() is None and not checked.callbacks:
            return await self.client.invoke(input, checked.to_wire())
        return await super().ainvoke(input, checked, **kwargs)

    async def _astream(self, input: object, ctx: RunScope) -> AsyncGenerator[object, None]:
        config = ctx.config.to_wire()
        if not ctx.state.publishing:
            async with self.client.stream(input, config) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        nest = (*ctx.parent_ids, ctx.run_id)
        state = ctx.state
        async with self.client.stream_events(input, config) as events:
            async for tree in events:
                event = event_from_dict(tree, seq=0, parent_ids=nest)
                # A custom event is filtered by its own name, used as name and as kind.
                kind = event.name if isinstance(event, CustomEvent) else event.kind
                if state.wants(event.name, kind, event.tags):
                    await state.publish(attrs.evolve(event, seq=state.next_seq()))
                if isinstance(event, ChunkEmitted) and len(event.parent_ids) == len(nest):
                    yield event.data.get("chunk")  # the remote root's output
