"""Which events a subscriber sees: LangChain's include/exclude rules, spelled once.

Every API that filters events (``astream_events``, ``astream_log``, ``Worker.subscribe``,
``WorkerRun.events``, the scale-out client, the HTTP body of ``/stream_events``, the CLI) takes
the same six keywords, typed by :class:`FilterOptions` and checked by
:meth:`EventFilter.from_options`, so a misspelt keyword is an error everywhere rather than an
unfiltered stream somewhere.

>>> f = EventFilter.from_options({"include_types": ["chat_model"]})
>>> f.accepts_values("model", "chat_model", ())
True
>>> EventFilter.from_options({"include_type": ["chat_model"]})
Traceback (most recent call last):
...
TypeError: unknown event filter 'include_type'; expected one of include_names, include_types, include_tags, exclude_names, exclude_types, exclude_tags
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypedDict

import attrs

from rillet.runtime.events.types import CustomEvent, Event

__all__ = ["FILTER_KEYS", "EventFilter", "FilterOptions"]

#: The filter keywords, in the order LangChain documents them.
FILTER_KEYS: Final = ("include_names", "include_types", "include_tags", "exclude_names",
                      "exclude_types", "exclude_tags")


class FilterOptions(TypedDict, total=False):
    """The keyword arguments of every event filter (``**filters: Unpack[FilterOptions]``)."""

    include_names: Sequence[str] | None
    include_types: Sequence[str] | None
    include_tags: Sequence[str] | None
    exclude_names: Sequence[str] | None
    exclude_types: Sequence[str] | None
    exclude_tags: Sequence[str] | None


def _checked_names(key: str, value: Iterable[str] | str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):  # one name, not its characters
        return frozenset((value,))
    try:
        items = frozenset(value)
    except TypeError:
        raise TypeError(f"event filter {key!r} must be a list of strings, got "
                        f"{type(value).__name__}: {value!r:.80}") from None
    wrong = next((item for item in items if not isinstance(item, str)), None)
    if wrong is not None:
        raise TypeError(f"event filter {key!r} must be a list of strings, got an item "
                        f"of type {type(wrong).__name__}: {wrong!r:.80}")
    return items


def _names(value: Iterable[str] | str | None) -> frozenset[str]:
    return _checked_names("names", value)


@attrs.frozen(kw_only=True)
class EventFilter:
    """LangChain's include/exclude rules: any include matches (or none given), no exclude does.

    Names are run names, types are kinds (``chat_model``, ``parser`` …), tags include inherited
    ones. Custom events are matched by their own name, used both as name and as type.
    """

    include_names: frozenset[str] = attrs.field(default=None, converter=_names)
    include_types: frozenset[str] = attrs.field(default=None, converter=_names)
    include_tags: frozenset[str] = attrs.field(default=None, converter=_names)
    exclude_names: frozenset[str] = attrs.field(default=None, converter=_names)
    exclude_types: frozenset[str] = attrs.field(default=None, converter=_names)
    exclude_tags: frozenset[str] = attrs.field(default=None, converter=_names)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> EventFilter:
        """The filter for ``options`` (the six keywords); an unknown key is a TypeError."""
        if not options:
            return _EVERYTHING
        unknown = [key for key in options if key not in FILTER_KEYS]
        if unknown:
            raise TypeError(f"unknown event filter {unknown[0]!r}; expected one of "
                            f"{', '.join(FILTER_KEYS)}")
        return cls(**{key: _checked_names(key, value) for key, value in options.items()})

    @property
    def any_include(self) -> bool:
        return bool(self.include_names or self.include_types or self.include_tags)

    @property
    def trivial(self) -> bool:
        """True when the filter lets every event through."""
        return not self.any_include and not (
            self.exclude_names or self.exclude_types or self.exclude_tags)

    def options(self) -> dict[str, list[str]]:
        """The non-empty rules as keyword arguments (sorted lists), e.g. for an HTTP body."""
        return {key: sorted(getattr(self, key)) for key in FILTER_KEYS if getattr(self, key)}

    def accepts_values(self, name: str, kind: str, tags: Sequence[str]) -> bool:
        """Whether a run with this name, kind and tags passes."""
        if self.any_include and not (
            name in self.include_names
            or kind in self.include_types
            or not self.include_tags.isdisjoint(tags)
        ):
            return False
        return not (
            name in self.exclude_names
            or kind in self.exclude_types
            or not self.exclude_tags.isdisjoint(tags)
        )

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` passes."""
        kind = event.name if isinstance(event, CustomEvent) else event.kind
        return self.accepts_values(event.name, kind, event.tags)

    def as_predicate(self) -> Callable[[Event], bool] | None:
        """:meth:`accepts`, or None when every event passes (nothing to check)."""
        return None if self.trivial else self.accepts

    def as_prefilter(self) -> Callable[[str, str, tuple[str, ...]], bool] | None:
        """:meth:`accepts_values` for run-level prefiltering, or None when trivial."""
        return None if self.trivial else self.accepts_values


_EVERYTHING: Final = EventFilter()
