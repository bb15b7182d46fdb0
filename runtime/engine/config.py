"""The run config: one schema for what a caller may set on a run, checked once at the edge.

Callers pass plain dicts (LangChain's ``RunnableConfig``). Whatever receives one first — a
Runnable method's ``config=``, ``with_config``, ``Worker.submit``, an HTTP body, ``rillet run
--config`` — turns it into a :class:`RunConfig` with :meth:`RunConfig.from_dict`, which checks
every key against one table and raises :class:`~rillet.runtime.errors.ConfigError` with one text
per bad key, the same in Python and over HTTP. From there the run carries the value; nothing
puts keys into a dict to take them out again.

Keys (LangChain's): ``run_name`` and ``run_id`` name and identify *this* run only; ``tags`` and
``metadata`` are inherited by every child run (tags union, metadata merged, the child's keys
win); ``max_concurrency``, ``recursion_limit`` and ``configurable`` are inherited as they are.
rillet adds ``bound`` (capacity of every edge of the run, default 16) and takes
:class:`~rillet.runtime.events.bus.EventBus` objects in ``callbacks`` (they subscribe the run).
Unknown keys go into ``configurable``, as LangChain does; over HTTP they are refused, and so are
``callbacks`` (a bus cannot cross the wire).

>>> RunConfig.from_dict({"tags": ["a"], "user": "u1"})
RunConfig(tags=('a',), configurable={'user': 'u1'})
>>> try:
...     RunConfig.from_dict({"tags": 3})
... except TypeError as error:
...     print(error)
config['tags'] must be a list of strings, got int: 3
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Final, final

import attrs

from rillet.runtime.errors import ConfigError
from rillet.runtime.events.bus import EventBus

__all__ = ["CONFIG_KEYS", "EMPTY_CONFIG", "MAX_BOUND", "WIRE_CONFIG_KEYS", "RunConfig"]

#: The largest edge capacity a config may ask for: a run buffers at most this per edge.
MAX_BOUND: Final = 1024


class _Invalid(Exception):
    """A converter's way of saying the value does not fit its key."""


def _count(low: int, high: int | None = None) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if type(value) is int and value >= low and (high is None or value <= high):
            return value
        raise _Invalid

    return convert


def _name(limit: int) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if isinstance(value, uuid.UUID):
            value = str(value)
        if isinstance(value, str) and 0 < len(value) <= limit:
            return value
        raise _Invalid

    return convert


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise _Invalid


def _mapping(value: object) -> dict[str, object]:
    if isinstance(value, Mapping):
        return dict(value)  # copied: a caller mutating its dict later changes no run
    raise _Invalid


def _buses(value: object) -> tuple[EventBus, ...]:
    if isinstance(value, EventBus):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(b, EventBus) for b in value):
        return tuple(value)
    raise _Invalid


# The one list of keys: how each value is checked and converted, and how its error says what
# it must be. A ``None`` value means "not set".
_RULES: Final[dict[str, tuple[Callable[[object], object], str]]] = {
    "run_name": (_name(200), "a non-empty string of at most 200 characters"),
    "run_id": (_name(128), "a non-empty string of at most 128 characters (or a UUID)"),
    "tags": (_strings, "a list of strings"),
    "metadata": (_mapping, "a dict (a JSON object)"),
    "configurable": (_mapping, "a dict (a JSON object)"),
    "max_concurrency": (_count(1), "an integer >= 1"),
    "recursion_limit": (_count(1), "an integer >= 1"),
    "bound": (_count(0, MAX_BOUND), f"an integer from 0 to {MAX_BOUND}"),
    "callbacks": (_buses, "a list of rillet EventBus objects"),
}
CONFIG_KEYS: Final = tuple(_RULES)
#: What a client may set over HTTP: every key but ``callbacks``.
WIRE_CONFIG_KEYS: Final = tuple(key for key in CONFIG_KEYS if key != "callbacks")


@final
@attrs.frozen(kw_only=True, repr=False)
class RunConfig:
    """A checked run config (see the module docstring); build it with :meth:`from_dict`.

    Example::

        config = RunConfig.from_dict({"run_name": "Joke", "tags": ["web"]})
        config.tags                      # ('web',)
    """

    run_name: str | None = None
    run_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, object] = attrs.field(factory=dict)
    configurable: Mapping[str, object] = attrs.field(factory=dict)
    max_concurrency: int | None = None
    recursion_limit: int | None = None
    bound: int | None = None
    callbacks: tuple[EventBus, ...] = ()

    @classmethod
    def from_dict(
        cls, config: Mapping[str, object] | RunConfig | None, *, where: str = "config",
        remote: bool = False,
    ) -> RunConfig:
        """Check a caller's config; a :class:`RunConfig` passes through unchanged.

        Args:
            where: how the error messages name the config (``config[2]`` for a batch item).
            remote: it came over the wire: unknown keys and ``callbacks`` are refused instead
                of moved into ``configurable``.

        Raises:
            ConfigError: ``config`` is not a dict, or a key has the wrong type or value.
        """
        if config is None:
            return EMPTY_CONFIG
        if isinstance(config, RunConfig):
            return config
        if not isinstance(config, Mapping):
            raise ConfigError(key=None, expected="a dict (a JSON object)", got=config,
                              where=where)
        if remote:
            unknown = sorted(k if isinstance(k, str) else repr(k)
                             for k in config if k not in WIRE_CONFIG_KEYS)
            if unknown:
                raise ConfigError(
                    key=None, expected="known keys", got=unknown, where=where,
                    detail=f"{where!r} has keys {unknown} that are not accepted over HTTP; "
                           f"expected some of {list(WIRE_CONFIG_KEYS)}")
        values: dict[str, object] = {}
        extra: dict[str, object] = {}
        for key, value in config.items():
            rule = _RULES.get(key) if isinstance(key, str) else None
            if rule is None:
                extra[str(key)] = value
            elif value is not None:
                convert, expected = rule
                try:
                    values[key] = convert(value)
                except _Invalid:
                    raise ConfigError(key=key, expected=expected, got=value,
                                      where=where) from None
        if extra:
            configurable: dict[str, object] = {**extra, **_mapping(values.get("configurable", {}))}
            values["configurable"] = configurable
        # Every value was converted to its field's type by its rule above.
        return cls(**values)  # type: ignore[arg-type]

    # -- values for the layers above ---------------------------------------------------------

    @property
    def empty(self) -> bool:
        """Whether nothing is set."""
        return self is EMPTY_CONFIG or self == EMPTY_CONFIG

    def to_dict(self) -> dict[str, object]:
        """The set keys as a plain (LangChain ``RunnableConfig``) dict, tags as a list."""
        out: dict[str, object] = {}
        for field in attrs.fields(RunConfig):
            value = getattr(self, field.name)
            if value is None or value == () or (field.name in ("metadata", "configurable")
                                                and not value):
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else (
                dict(value) if isinstance(value, Mapping) else value)
        return out

    def to_wire(self) -> dict[str, object]:
        """:meth:`to_dict` without ``callbacks``: what a server or a run queue can take."""
        out = self.to_dict()
        out.pop("callbacks", None)
        return out

    def merge(self, other: RunConfig) -> RunConfig:
        """``other`` on top of this: tags and callbacks joined (order kept), metadata and
        configurable merged, any other key that ``other`` sets wins."""
        if other.empty:
            return self
        if self.empty:
            return other
        return RunConfig(
            run_name=other.run_name or self.run_name,
            run_id=other.run_id or self.run_id,
            tags=tuple(dict.fromkeys(self.tags + other.tags)),
            metadata={**self.metadata, **other.metadata},
            configurable={**self.configurable, **other.configurable},
            max_concurrency=_later(self.max_concurrency, other.max_concurrency),
            recursion_limit=_later(self.recursion_limit, other.recursion_limit),
            bound=_later(self.bound, other.bound),
            callbacks=tuple(dict.fromkeys(self.callbacks + other.callbacks)),
        )

    def inherit(self, own: RunConfig, *, tags: tuple[str, ...],
                metadata: Mapping[str, object]) -> RunConfig:
        """The config of a child run: what this (its parent's) passes on, ``own``'s keys on
        top, with the child's ``tags`` and ``metadata`` (already joined by the caller).
        ``run_name`` and ``run_id`` name one run only and are not inherited."""
        return RunConfig(
            tags=tags, metadata=metadata,
            configurable={**self.configurable, **own.configurable} if own.configurable
            else self.configurable,
            max_concurrency=_later(self.max_concurrency, own.max_concurrency),
            recursion_limit=_later(self.recursion_limit, own.recursion_limit),
            bound=_later(self.bound, own.bound),
            callbacks=tuple(dict.fromkeys(self.callbacks + own.callbacks)) if own.callbacks
            else self.callbacks,
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in _set_fields(self))
        return f"RunConfig({shown})"


def _later(first: int | None, second: int | None) -> int | None:
    return first if second is None else second


def _set_fields(config: RunConfig) -> list[tuple[str, object]]:
    return [(f.name, getattr(config, f.name)) for f in attrs.fields(RunConfig)
            if getattr(config, f.name) not in (None, (), {})]


#: The config of a run nobody configured.
EMPTY_CONFIG: Final = RunConfig()
