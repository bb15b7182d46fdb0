"""The Runnable base class: the API users compose with, on top of the actor runtime.

A runnable is either a *leaf* — it implements exactly one of three hooks, and becomes one actor
per run — or a *composite* that wires its children's actors together (``_wire``):

- ``_atransform(chunks, ctx)``: an async generator from the input stream to the output stream
  (parsers, passthrough, generator functions);
- ``_astream(input, ctx)``: an async generator over the whole input (chat models);
- ``_ainvoke(input, ctx)``: one output for the whole input (prompts, retrievers, functions).

``ctx`` is the node's :class:`~rillet.runtime.lowlevel.RunScope` (``ctx.run_id``, ``ctx.name``,
``ctx.config``). Every public method (``invoke``, ``stream``, ``astream``, ``batch`` …) is
built on :meth:`Runnable.launch`, which starts one supervised run: a Runnable is the engine's
:class:`~rillet.runtime.lowlevel.Launchable`.

>>> from rillet.graphs import RunnableLambda
>>> (RunnableLambda(lambda x: x + 1) | (lambda x: x * 2)).invoke(3)
8
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Unpack

import attrs

from rillet.graphs.config import RunnableConfig
from rillet.graphs.invoking import invoke_hooks, invoke_leaf, invoke_root
from rillet.graphs.slots import Slot
from rillet.runtime import (
    DEFAULT_BOUND,
    AsyncRunStream,
    EventBus,
    EventFilter,
    EventStream,
    RunHandle,
    SyncRunStream,
    current_scope,
    render_event,
)
from rillet.runtime.lowlevel import (
    DELTA,
    EMPTY_CONFIG,
    INVOKE,
    MISSING,
    SNAPSHOT,
    STREAM,
    TRANSFORM,
    AsyncioSource,
    FeedSource,
    FilterOptions,
    Outlet,
    RunConfig,
    RunLogBuilder,
    RunScope,
    RunState,
    Wiring,
    hosted,
    launch_run,
    run_sync,
)

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["Runnable"]

In = TypeVar("In")
Out = TypeVar("Out")


class Runnable(Generic[In, Out]):
    """Base class of everything that runs: components, functions and compositions.

    Subclasses set ``kind`` (the event family: chain, chat_model, prompt, parser, retriever,
    tool) and implement one hook (see the module docstring), or ``_wire`` for composites.
    """

    kind: ClassVar[str] = "chain"
    #: True when the output stream carries snapshots (each replaces the last), not deltas.
    emits_snapshots: ClassVar[bool] = False
    #: May run in its producer's actor (fused): it never blocks while the producer could work
    #: and never needs to be the current run (prompts, chat models, parsers).
    runs_inline: bool = False
    name: str | None = None

    # -- identity ------------------------------------------------------------------------------

    def get_name(self) -> str:
        """The run name used in events: an explicit ``name``, else the class name."""
        return self.name or type(self).__name__

    def output_mode(self, input_mode: str) -> str:
        """Whether the output stream carries deltas or snapshots, given the input's."""
        return SNAPSHOT if self.emits_snapshots else DELTA

    def finalize(self, value: Any) -> Any:
        """The added-up output stream as ``invoke`` returns it (a model's chunk as a message)."""
        return value

    def get_input_jsonschema(self) -> dict[str, object]:
        """A JSON schema of the input (``{}``: anything; a sequence answers for its first step,
        a prompt with its variables); ``rillet serve`` checks requests against it."""
        return {}

    def get_output_jsonschema(self) -> dict[str, object]:
        """A JSON schema of what this returns (``{}``: not known)."""
        return {}

    def _node_metadata(self) -> dict[str, object] | None:
        """Metadata this component adds to its runs (a chat model's ``ls_*`` keys)."""
        return None

    def _bound_config(self) -> RunConfig:
        """Config bound around this runnable with ``with_config`` (none for most runnables)."""
        return EMPTY_CONFIG

    def _event_input(self, value: Any) -> Any:
        """How lifecycle events show this runnable's input (override to reshape it)."""
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}()" if self.name is None else f"{type(self).__name__}(name={self.name!r})"

    # -- wiring --------------------------------------------------------------------------------

    def _wire(self, w: Wiring, out: Outlet, slot: Slot, input_mode: str) -> Outlet:
        """Place this runnable's actors; return the outlet its input must be sent to."""
        cls = type(self)
        scope = slot.make_scope(
            w, self, output_mode=self.output_mode(input_mode), metadata=self._node_metadata()
        )
        fn: Callable[[Any, RunScope], Any]
        if cls._atransform is not Runnable._atransform:
            hook, fn = TRANSFORM, self._atransform
        elif cls._astream is not Runnable._astream:
            hook, fn = STREAM, self._astream
        elif cls._ainvoke is not Runnable._ainvoke:
            hook, fn = INVOKE, self._ainvoke
        else:
            raise TypeError(
                f"{cls.__name__} must implement one of _atransform, _astream, _ainvoke or _wire"
            )
        return w.place(hook, _bind_ctx(fn, scope), scope, out.tapped(scope), input_mode,
                       inline=self.runs_inline)

    def _atransform(self, chunks: AsyncIterator[In], ctx: RunScope) -> AsyncGenerator[Out, None]:
        raise NotImplementedError

    def _astream(self, input: In, ctx: RunScope) -> AsyncGenerator[Out, None]:
        raise NotImplementedError

    async def _ainvoke(self, input: In, ctx: RunScope) -> Out:
        raise NotImplementedError

    # -- running -------------------------------------------------------------------------------

    def launch(
        self,
        inputs: FeedSource,
        config: RunConfig | Mapping[str, Any] | None = None,
        *,
        start_input: object = MISSING,
        buses: tuple[EventBus, ...] = (),
        sink: bool = True,
        attempt: int = 1,
        on_done: Callable[[RunHandle], object] | None = None,
        invoked: bool = False,
    ) -> RunHandle:
        """Start one supervised run of this runnable (inside trio) and return its handle
        (:class:`~rillet.runtime.lowlevel.Launchable`; every entry point builds on it).

        Called from inside another run's code, the new run becomes a child of that run: it
        shares its event buses and ``seq`` counter and inherits its tags and metadata. A dict
        ``config`` is checked here (``ConfigError``); a ``RunConfig`` passes as it is.
        ``invoked``: the caller wants the whole output (``ainvoke``), so, as in LangChain, the
        run reports no stream events of its own (a chat model still reports its tokens) and
        its end event carries what ``invoke`` returns.
        """
        cfg = RunConfig.from_dict(config)
        bound_here = self._bound_config().bound
        if cfg.bound is None and bound_here is not None:
            cfg = attrs.evolve(cfg, bound=bound_here)  # the sink edge honours it too
        parent = current_scope()
        if parent is not None:
            state = parent.state
            slot = Slot(state=state, parent=parent, is_root=True, config=cfg)
        else:
            # EventBus objects in config["callbacks"] subscribe this run (and its children).
            state = RunState(buses + cfg.callbacks, attempt=attempt)
            slot = Slot(state=state, is_root=True, config=cfg)
        inherited = parent.config.bound if parent is not None else None
        bound = next((b for b in (cfg.bound, inherited) if b is not None), DEFAULT_BOUND)

        def wire(w: Wiring, outlet: Outlet) -> Outlet:
            entry = self._wire(w, outlet, slot, DELTA)
            if invoked and w.root is not None:  # a chat model reports tokens even then
                w.root.mark_invoked(self.finalize, streams=w.root.kind == "chat_model")
            return entry

        wire.__qualname__ = self.get_name()
        return launch_run(wire, inputs, state=state, bound=bound, sink=sink,
                          start_input=start_input, on_done=on_done)

    def astream(
        self, input: In, config: RunnableConfig | None = None, **kwargs: object
    ) -> AsyncRunStream[Out]:
        """Stream the output chunks of one run, from trio or asyncio.

        Leaving the ``async for`` early (break, exception, cancellation) cancels the run:
        every actor stops and upstream generators' ``finally`` blocks run.

        Example::

            async for token in chain.astream({"topic": "parrot"}):
                print(token, end="", flush=True)
        """
        return AsyncRunStream(lambda: self.launch([input], config, start_input=input))

    def atransform(
        self, inputs: AsyncIterator[In], config: RunnableConfig | None = None, **kwargs: object
    ) -> AsyncRunStream[Out]:
        """Stream the output of one run whose input is itself a stream of chunks.

        From asyncio, ``inputs`` may be an asyncio async iterator: an asyncio task reads it
        (bounded) and stops, closing it, when the run ends.
        """
        source = AsyncioSource.wrap(inputs)
        if source is None:
            return AsyncRunStream(lambda: self.launch(inputs, config))
        return AsyncRunStream(lambda: self.launch(source, config, on_done=source.stop))

    @hosted
    async def ainvoke(self, input: In, config: RunnableConfig | RunConfig | None = None,
                      **kwargs: object) -> Out:
        """Run once and return the whole output. As in LangChain, each step receives the
        previous step's whole output, and nothing is streamed that nobody reads
        (:mod:`rillet.graphs.invoking`).

        Example::

            joke = await chain.ainvoke({"topic": "parrot"})
        """
        return await invoke_root(self, input, config)  # type: ignore[no-any-return]

    async def _ainvoke_in(self, input: Any, slot: Slot) -> Any:
        """The invoke path: run once on the whole ``input`` in ``slot``, return the final
        output (what ``invoke`` returns). Composites override it to invoke their children."""
        return await invoke_leaf(self, input, slot)

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        """A leaf's invoked work: its final output for the whole input. By default its hook,
        the outputs added up (a transform gets a one-chunk stream); components override it."""
        return await invoke_hooks(self, input, ctx)

    def invoke(self, input: In, config: RunnableConfig | None = None, **kwargs: object) -> Out:
        """Run once from synchronous code and return the whole output.

        >>> from rillet.graphs import RunnableLambda
        >>> RunnableLambda(str.upper).invoke("hi")
        'HI'
        """
        return run_sync(self.ainvoke, input, config, method=f"{self.get_name()}.invoke()",
                        instead="await chain.ainvoke(...)")

    def stream(
        self, input: In, config: RunnableConfig | None = None, **kwargs: object
    ) -> Iterator[Out]:
        """Stream from synchronous code (any thread). Closing or dropping the iterator early
        cancels the run."""
        return SyncRunStream(lambda: self.launch([input], config, start_input=input),
                             method=f"{self.get_name()}.stream()")

    def transform(
        self, inputs: Iterable[In], config: RunnableConfig | None = None, **kwargs: object
    ) -> Iterator[Out]:
        """Synchronous :meth:`atransform` over an iterable of input chunks."""
        return SyncRunStream(lambda: self.launch(iter(inputs), config),
                             method=f"{self.get_name()}.transform()")

    @hosted
    async def abatch(
        self,
        inputs: list[In],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        max_concurrency: int | None = None,
        **kwargs: object,
    ) -> list[Out | BaseException]:
        """Run every input concurrently (at most ``max_concurrency`` at once); keep order.

        Args:
            config: one config for all inputs, or a list with one per input.
            return_exceptions: put each failure in its place instead of raising the first.
            max_concurrency: also read from ``config["max_concurrency"]``.
        """
        from rillet.graphs.batching import run_batch

        return await run_batch(self.ainvoke, inputs, config, return_exceptions=return_exceptions,
                               max_concurrency=max_concurrency)

    def batch(
        self,
        inputs: list[In],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        max_concurrency: int | None = None,
        **kwargs: object,
    ) -> list[Out | BaseException]:
        """Synchronous :meth:`abatch`.

        >>> from rillet.graphs import RunnableLambda
        >>> RunnableLambda(lambda x: x * 10).batch([1, 2, 3], max_concurrency=2)
        [10, 20, 30]
        """
        return run_sync(
            lambda: self.abatch(inputs, config, return_exceptions=return_exceptions,
                                max_concurrency=max_concurrency),
            method=f"{self.get_name()}.batch()", instead="await chain.abatch(...)",
        )

    def astream_events(
        self,
        input: In,
        config: RunnableConfig | None = None,
        *,
        version: str = "v2",
        **filters: Unpack[FilterOptions],
    ) -> EventStream[dict[str, Any]]:
        """Stream the run's lifecycle events as LangChain-shaped dicts.

        Filters: an event passes if it matches any ``include_*`` (or none is given) and no
        ``exclude_*``; names are run names, types are kinds (``chat_model``, ``parser``…),
        tags include inherited ones. Lossless and bounded: a slow reader parks the run.

        Example::

            async for ev in chain.astream_events({"topic": "parrot"}, version="v2",
                                                 include_types=["chat_model"]):
                if ev["event"] == "on_chat_model_stream":
                    print(ev["data"]["chunk"].content, end="")
        """
        if version not in ("v1", "v2"):
            raise ValueError(f"astream_events version must be 'v1' or 'v2', got {version!r}")
        event_filter = EventFilter.from_options(filters)
        return EventStream(self._event_launcher(input, config),
                           lambda event: render_event(event, version),
                           accept=event_filter.as_predicate(),
                           prefilter=event_filter.as_prefilter())

    def astream_log(
        self,
        input: In,
        config: RunnableConfig | None = None,
        *,
        diff: bool = True,
        with_streamed_output_list: bool = True,
        **filters: Unpack[FilterOptions],
    ) -> EventStream[Any]:
        """Stream the run as JSON-patch ``RunLogPatch``es (``diff=False``: cumulative
        ``RunLog``s). Patches add up: ``sum`` of them is a ``RunLog`` whose ``state`` has
        ``streamed_output``, ``final_output`` and ``logs`` keyed by run name.

        Example::

            log = None
            async for patch in chain.astream_log({"topic": "parrot"}):
                log = patch if log is None else log + patch
            print(log.state["final_output"])
        """
        builder = RunLogBuilder(
            diff=diff,
            with_streamed_output_list=with_streamed_output_list,
            event_filter=EventFilter.from_options(filters),
        )

        return EventStream(self._event_launcher(input, config), builder.feed)

    def _event_launcher(
        self, input: Any, config: RunnableConfig | None
    ) -> Callable[[EventBus, Callable[[RunHandle], None]], RunHandle]:
        """Starts a run whose only reader is an event subscription (its output is tapped)."""

        def launch(bus: EventBus, on_done: Callable[[RunHandle], None]) -> RunHandle:
            return self.launch([input], config, start_input=input, buses=(bus,), sink=False,
                               on_done=on_done)

        return launch

    # -- composition ---------------------------------------------------------------------------

    def __or__(self, other: Any) -> Runnable[In, Any]:
        return self.pipe(other)

    def __ror__(self, other: Any) -> Runnable[Any, Out]:
        from rillet.graphs.coerce import coerce_to_runnable
        from rillet.graphs.sequence import RunnableSequence

        return RunnableSequence(coerce_to_runnable(other), self)

    def pipe(self, *others: Any, name: str | None = None) -> Runnable[In, Any]:
        from rillet.graphs.coerce import coerce_to_runnable
        from rillet.graphs.sequence import RunnableSequence

        return RunnableSequence(self, *(coerce_to_runnable(o) for o in others), name=name)

    def with_config(self, config: RunnableConfig | None = None,
                    **kwargs: object) -> Runnable[In, Out]:
        """Bind config: ``run_name`` names this run; ``tags`` and ``metadata`` reach every
        child run; ``max_concurrency`` bounds parallel branches and batches.

        >>> from rillet.graphs import RunnableLambda
        >>> RunnableLambda(len).with_config(run_name="Docs").get_name()
        'Docs'
        """
        from rillet.graphs.binding import RunnableBinding

        return RunnableBinding(self, RunConfig.from_dict({**(config or {}), **kwargs}))

    def with_retry(
        self,
        *,
        stop_after_attempt: int = 3,
        retry_if_exception_type: tuple[type[BaseException], ...] = (Exception,),
        wait_exponential_jitter: bool = True,
        initial_wait: float = 1.0,
        max_wait: float = 10.0,
    ) -> Runnable[In, Out]:
        """Retry failed runs; a stream is retried only before its first chunk.

        ``invoke`` retries the whole run; ``stream``/``astream`` retry while nothing has been
        emitted yet (after that a retry would duplicate output, so the error propagates).
        """
        from rillet.graphs.retry import RunnableRetry

        return RunnableRetry(
            self, stop_after_attempt=stop_after_attempt,
            retry_if_exception_type=retry_if_exception_type,
            wait_exponential_jitter=wait_exponential_jitter, initial_wait=initial_wait,
            max_wait=max_wait,
        )

    def with_fallbacks(
        self,
        fallbacks: list[Runnable[In, Out]],
        *,
        exceptions_to_handle: tuple[type[BaseException], ...] = (Exception,),
    ) -> Runnable[In, Out]:
        """Try ``fallbacks`` in order when this fails before emitting its first chunk."""
        from rillet.graphs.coerce import coerce_to_runnable
        from rillet.graphs.retry import RunnableWithFallbacks

        return RunnableWithFallbacks(self, [coerce_to_runnable(f) for f in fallbacks],
                                     exceptions_to_handle=exceptions_to_handle)

    def assign(self, **mapping: Any) -> Runnable[In, dict[str, Any]]:
        """``self | RunnablePassthrough.assign(**mapping)``."""
        from rillet.graphs.passthrough import RunnableAssign

        return self | RunnableAssign(mapping)

    def pick(self, keys: str | list[str]) -> Runnable[In, Any]:
        """``self | RunnablePick(keys)``: keep one key (its value) or several (a dict)."""
        from rillet.graphs.passthrough import RunnablePick

        return self | RunnablePick(keys)

    # -- drawing -------------------------------------------------------------------------------

    def get_graph(self) -> DrawableGraph:
        """This runnable as a drawable graph of its components."""
        from rillet.graphs.draw import DrawableGraph

        return DrawableGraph.single(self.get_name())

    def draw_ascii(self) -> str:
        """A text drawing of the graph (boxes and arrows)."""
        return self.get_graph().draw_ascii()

    def draw_mermaid(self) -> str:
        """A Mermaid flowchart of the graph."""
        return self.get_graph().draw_mermaid()


def _bind_ctx(method: Callable[[Any, RunScope], Any], scope: RunScope) -> Callable[[Any], Any]:
    def bound(value: Any) -> Any:
        return method(value, scope)

    return bound
