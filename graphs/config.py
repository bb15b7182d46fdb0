"""Run configuration as callers write it: the ``config`` dict, LangChain's ``RunnableConfig``.

Callers pass plain dicts; each Runnable method checks one once with
:meth:`rillet.runtime.lowlevel.RunConfig.from_dict` (one list of keys, one error text per bad
key) and the run carries the checked value. Keys (LangChain's): ``run_name`` and ``run_id``
name and identify *this* run only; ``tags`` and ``metadata`` are inherited by every child run
(tags union, metadata merged, the child's keys win); ``max_concurrency``, ``recursion_limit``
and ``configurable`` are inherited as they are. rillet adds ``bound`` (capacity of every edge of
the run, default 16) and takes ``EventBus`` objects in ``callbacks``. Unknown top-level keys
are moved into ``configurable`` as LangChain does.

>>> merge_configs({"tags": ["a"], "metadata": {"x": 1}}, {"tags": ["b"], "run_name": "r"})
{'run_name': 'r', 'tags': ['a', 'b'], 'metadata': {'x': 1}}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypedDict, cast

from rillet.runtime import EventBus
from rillet.runtime.lowlevel import CONFIG_KEYS, RunConfig

__all__ = ["CONFIG_KEYS", "RunnableConfig", "ensure_config", "merge_configs"]


class RunnableConfig(TypedDict, total=False):
    """The ``config`` dict a caller passes (every key optional)."""

    run_name: str
    run_id: str | uuid.UUID
    tags: list[str]
    metadata: dict[str, Any]
    configurable: dict[str, Any]
    max_concurrency: int | None
    recursion_limit: int
    bound: int
    callbacks: list[EventBus]


def ensure_config(config: Mapping[str, object] | None) -> RunnableConfig:
    """A caller's config checked, with unknown keys moved into ``configurable``.

    Raises:
        ConfigError: ``config`` is not a dict or a key has the wrong type (a TypeError and a
            ValueError both).
    """
    return cast(RunnableConfig, RunConfig.from_dict(config).to_dict())


def merge_configs(*configs: Mapping[str, object] | None) -> RunnableConfig:
    """Merge configs left to right: tags union (order kept), metadata and configurable merged,
    other keys: the later value wins."""
    merged = RunConfig()
    for config in configs:
        merged = merged.merge(RunConfig.from_dict(config))
    return cast(RunnableConfig, merged.to_dict())
