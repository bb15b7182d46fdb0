"""Slots: where a runnable is placed in a run, and how its run scope is made.

A :class:`Slot` carries what a runnable cannot know about itself: its parent run, its step tag
(``seq:step:2``, ``map:key:joke``), whether it starts or ends an enclosing composite, and the
config bound around it with ``with_config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from rillet.runtime.lowlevel import DELTA, EMPTY_CONFIG, RunConfig, RunScope, RunState, Wiring

if TYPE_CHECKING:
    from rillet.graphs.base import Runnable

__all__ = ["Slot"]


@attrs.frozen
class Slot:
    """The position of one runnable inside a run being wired."""

    state: RunState
    parent: RunScope | None = None
    step_tag: str | None = None
    entry: RunScope | None = None
    exit: RunScope | None = None
    is_root: bool = False
    # Config bound around this runnable (with_config) or given by the caller (root).
    config: RunConfig = EMPTY_CONFIG
    limiter: trio.CapacityLimiter | None = None

    def with_config(self, inner: RunConfig) -> Slot:
        """Bind ``inner`` closer to the runnable: the outer (already bound) config wins."""
        return attrs.evolve(self, config=inner.merge(self.config))

    def make_scope(
        self,
        w: Wiring | None,
        runnable: Runnable[Any, Any],
        *,
        kind: str | None = None,
        output_mode: str = DELTA,
        metadata: Mapping[str, object] | None = None,
    ) -> RunScope:
        """Create the run scope of ``runnable`` in this slot (name, tags, metadata, config);
        ``w`` is the run being wired (``None`` on the invoke path, which wires nothing)."""
        cfg = self.config
        name = cfg.run_name or runnable.get_name()
        parent = self.parent
        if cfg.empty and parent is not None:
            # Nothing bound here: share the parent's inheritable parts instead of copying them
            # (scopes never mutate them) — most scopes of a run take this path.
            step = (self.step_tag,) if self.step_tag else ()
            inherited = parent.inheritable_tags
            md, config = parent.metadata, parent.config
            if metadata:  # a component's own keys (a chat model's ls_*): this run's only
                md = {**md, **metadata}
                config = attrs.evolve(config, metadata=md)
            return _noted(w, RunScope(
                name=name, kind=kind or runnable.kind, state=self.state, parent=parent,
                tags=(_unique(step + inherited) if inherited else step) if step else inherited,
                inheritable_tags=inherited, metadata=md,
                entry=self.entry, exit=self.exit, is_root=self.is_root, output_mode=output_mode,
                config=config,
                input_view=runnable._event_input if is_overridden(runnable) else None,
                limiter=self.limiter,
            ))
        inherited = self.parent.inheritable_tags if self.parent is not None else ()
        inheritable_tags = _unique(cfg.tags + inherited)
        tags = _unique(((self.step_tag,) if self.step_tag else ()) + inheritable_tags)
        md = dict(self.parent.metadata) if self.parent is not None else {}
        md.update(cfg.metadata)
        if metadata:
            md.update(metadata)
        parent_cfg = self.parent.config if self.parent is not None else EMPTY_CONFIG
        run_config = parent_cfg.inherit(cfg, tags=inheritable_tags, metadata=md)
        scope = RunScope(
            name=name,
            kind=kind or runnable.kind,
            state=self.state,
            parent=self.parent,
            run_id=cfg.run_id if self.is_root else None,
            tags=tags,
            inheritable_tags=inheritable_tags,
            metadata=md,
            entry=self.entry,
            exit=self.exit,
            is_root=self.is_root,
            output_mode=output_mode,
            config=run_config,
            input_view=runnable._event_input if is_overridden(runnable) else None,
            limiter=self.limiter,
        )
        return _noted(w, scope)

    def child(
        self, scope: RunScope, *, step_tag: str | None = None, entry: bool = False,
        exit: bool = False, limiter: trio.CapacityLimiter | None = None,
    ) -> Slot:
        """The slot of a child of ``scope`` (a composite's step or branch)."""
        return Slot(
            state=self.state,
            parent=scope,
            step_tag=step_tag,
            entry=scope if entry else None,
            exit=scope if exit else None,
            limiter=limiter,
        )


def _noted(w: Wiring | None, scope: RunScope) -> RunScope:
    return scope if w is None else w.note_scope(scope)


def is_overridden(runnable: Runnable[Any, Any]) -> bool:
    """Whether ``runnable``'s class reshapes its input for events (answered once per class)."""
    cls = type(runnable)
    known = _RESHAPES.get(cls)
    if known is None:
        from rillet.graphs.base import Runnable

        if len(_RESHAPES) >= 1024:  # bounded: a program making classes in a loop
            _RESHAPES.clear()
        known = _RESHAPES[cls] = cls._event_input is not Runnable._event_input
    return known


_RESHAPES: dict[type, bool] = {}


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
