"""What the engine needs from the layers around it, as typed protocols the engine owns.

- :class:`Launchable`: a runnable the engine can run. The worker, the scale-out worker and the
  HTTP server take one; :class:`rillet.graphs.Runnable` implements it, so the engine never
  imports ``graphs`` and never reaches for a private name.
- :class:`RunService`: what the HTTP endpoints need from whatever executes their runs: the
  in-process :class:`~rillet.runtime.engine.worker.Worker`, or the scale-out ``QueueGateway``
  that hands runs to a queue. :class:`ServedRun` is a run such a service accepted.

mypy checks that ``Worker``, ``QueueGateway`` and ``Runnable`` satisfy these (each module
that defines one holds a ``TYPE_CHECKING`` assignment to its protocol).

Example::

    def serve_one(service: RunService, runnable: Launchable) -> None: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final, Protocol, Self, TypeGuard, Unpack, runtime_checkable

from rillet.runtime.engine.config import RunConfig
from rillet.runtime.engine.scope import MISSING
from rillet.runtime.engine.supervisor import FeedSource, RunHandle
from rillet.runtime.events.bus import EventBus
from rillet.runtime.events.filters import FilterOptions

if TYPE_CHECKING:
    from attrs import AttrsInstance

    from rillet.runtime.events.types import Event

__all__ = ["EventSubscription", "Launchable", "RunService", "ServedRun", "is_launchable"]


@runtime_checkable
class Launchable(Protocol):
    """A runnable the engine can run: start runs, add up and finish their output, describe
    its input and output for a server, draw itself.

    Implement it by subclassing :class:`rillet.graphs.Runnable` (which does all of it); an
    object that implements these methods itself runs on a worker and a server as well.
    """

    def get_name(self) -> str:
        """The run name of the root run (events, logs, the served name by default)."""
        ...

    def output_mode(self, input_mode: str) -> str:
        """``DELTA`` or ``SNAPSHOT``: how to add up the output chunks, given the input's."""
        ...

    def finalize(self, value: object) -> object:
        """The added-up output stream turned into what ``invoke`` returns."""
        ...

    def launch(
        self,
        inputs: FeedSource,
        config: RunConfig | None = None,
        *,
        start_input: object = MISSING,
        buses: tuple[EventBus, ...] = (),
        sink: bool = True,
        attempt: int = 1,
        on_done: Callable[[RunHandle], object] | None = None,
    ) -> RunHandle:
        """Start one supervised run in a system task (sync; call inside trio).

        Args:
            inputs: the input stream (``[value]`` for one input).
            config: the run's checked config (its ``run_id``, tags, bound …).
            start_input: reported on the root's start event when known.
            buses: event buses that subscribe this run and its children.
            sink: False when nobody reads the output (events only).
            attempt: which delivery of a queued run this is (on every event).
            on_done: called (sync) in the run's task as it ends.
        """
        ...

    def get_input_jsonschema(self) -> dict[str, object]:
        """A JSON schema of the input (``{}``: anything); the server checks requests with it."""
        ...

    def get_output_jsonschema(self) -> dict[str, object]:
        """A JSON schema of the output (``{}``: unknown)."""
        ...

    def draw_ascii(self) -> str:
        """A text drawing of the graph."""
        ...

    def draw_mermaid(self) -> str:
        """A Mermaid flowchart of the graph."""
        ...


_LAUNCHABLE_METHODS: Final = tuple(name for name in vars(Launchable) if not name.startswith("_"))


def is_launchable(obj: object) -> TypeGuard[Launchable]:
    """``isinstance(obj, Launchable)``, remembered per class: the protocol check looks up every
    method, which would cost each ``Worker.submit`` about 10 µs.

    >>> is_launchable(object())
    False
    """
    cls = type(obj)
    known = _LAUNCHABLE_CLASSES.get(cls)
    if known is None:
        if len(_LAUNCHABLE_CLASSES) >= 512:  # bounded: a program making classes in a loop
            _LAUNCHABLE_CLASSES.clear()
        known = _LAUNCHABLE_CLASSES[cls] = all(
            callable(getattr(cls, name, None)) for name in _LAUNCHABLE_METHODS)
    return known


_LAUNCHABLE_CLASSES: dict[type, bool] = {}


class ServedRun(Protocol):
    """A run a :class:`RunService` accepted: read it once, as output or as events."""

    @property
    def run_id(self) -> str:
        """The run's id (known when ``submit`` returns)."""
        ...

    async def result(self) -> object:
        """Wait for the whole output; raises the run's error."""
        ...

    async def receive_chunks(self, limit: int) -> list[object]:
        """At least one output chunk and at most ``limit``; ``[]`` at the end. Raises the
        run's error at the end."""
        ...

    async def receive_events(self, limit: int) -> list[Event]:
        """At least one event and at most ``limit``; ``[]`` at the end. Raises the run's error
        at the end."""
        ...

    async def aclose(self) -> None:
        """Stop reading; an in-process run is cancelled if it still runs."""
        ...


class EventSubscription(Protocol):
    """A reader of every run's events (``GET /events``): the in-process bus's
    :class:`~rillet.runtime.events.bus.Subscription`, or the scale-out feed's reader."""

    policy: str
    bound: int

    @property
    def dropped(self) -> int:
        """Events this reader lost to its drop policy so far."""
        ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    def receive_nowait(self) -> Event:
        """The next buffered event; raises ``trio.WouldBlock`` when none is."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class RunService(Protocol):
    """What the HTTP endpoints need from whatever executes their runs."""

    @property
    def max_concurrent_runs(self) -> int:
        """Runs at once; a ``/batch`` request submits at most this many together."""
        ...

    @property
    def shutdown_timeout(self) -> float:
        """Seconds running runs get to finish when the service shuts down."""
        ...

    async def submit(self, runnable: Launchable, input: object, config: RunConfig | None = None,
                     *, events: bool = False) -> ServedRun:
        """Accept one run; ``events``: it is read as events instead of output.

        Raises:
            WorkerBusy: the service is full or shutting down.
        """
        ...

    def subscribe(self, *, policy: str = "drop_oldest", bound: int = 256,
                  **filters: Unpack[FilterOptions]) -> EventSubscription:
        """The events of every run from now on (``GET /events``).

        Raises:
            WorkerBusy: the service cannot see every run.
        """
        ...

    async def check_store(self) -> str | None:
        """None while whatever the runs depend on answers; else why not (``/healthz``)."""
        ...

    def statistics(self) -> AttrsInstance:
        """A frozen snapshot for ``/healthz``; it has an ``accepting`` field."""
        ...

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let runs finish within ``timeout``, then stop them."""
        ...
