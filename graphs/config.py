"""Run configuration: the ``config`` dict callers pass, and how it merges and inherits.

Keys (LangChain's): ``run_name`` and ``run_id`` name and identify *this* run only; ``tags`` and
``metadata`` are inherited by every child run (tags union, metadata merged, the child's keys
win); ``max_concurrency``, ``recursion_limit`` and ``configurable`` are inherited as they are.
rillet adds ``bound`` (capacity of every edge of the run, default 16). Unknown top-level keys are
moved into ``configurable`` as LangChain does.

>>> merge_configs({"tags": ["a"], "metadata": {"x": 1}}, {"tags": ["b"], "run_name": "r"})
{'tags': ['a', 'b'], 'metadata': {'x': 1}, 'run_name': 'r'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CONFIG_KEYS", "RunnableConfig", "ensure_config", "merge_configs"]

RunnableConfig = dict[str, Any]

CONFIG_KEYS: Final = frozenset(
    {"run_name", "run_id", "tags", "metadata", "max_concurrency", "recursion_limit",
     "configurable", "bound", "callbacks"}
)
NOT_INHERITED: Final = frozenset({"run_name", "run_id"})


def ensure_config(config: Mapping[str, Any] | None) -> RunnableConfig:
    """Validate a caller's config and move unknown keys into ``configurable``.

    Raises:
        TypeError: when ``config`` is not a mapping or a key has the wrong type.
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}: {config!r:.80}")
    out: RunnableConfig = {}
    extra: dict[str, Any] = {}
    for key, value in config.items():
        if key in CONFIG_KEYS:
            out[key] = value
        else:
            extra[key] = value
    if extra:
        out["configurable"] = {**extra, **out.get("configurable", {})}
    tags = out.get("tags")
    if tags is not None:
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise TypeError(f"config['tags'] must be a list of str, got {tags!r:.80}")
        out["tags"] = list(tags)
    metadata = out.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"config['metadata'] must be a dict, got {metadata!r:.80}")
    limit = out.get("max_concurrency")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"config['max_concurrency'] must be an int >= 1, got {limit!r}")
    return out


def merge_configs(*configs: Mapping[str, Any] | None) -> RunnableConfig:
    """Merge configs left to right: tags union (order kept), metadata and configurable merged,
    other keys: the later non-empty value wins."""
    out: RunnableConfig = {}
    for config in configs:
        if not config:
            continue
        for key, value in config.items():
            if key == "tags":
                tags = out.setdefault("tags", [])
                tags.extend(t for t in value if t not in tags)
            elif key in ("metadata", "configurable"):
                out[key] = {**out.get(key, {}), **value}
            elif value is not None:
                out[key] = value
    return out


def inheritable(config: Mapping[str, Any]) -> RunnableConfig:
    """The part of a config that child runs inherit."""
    return {k: v for k, v in config.items() if k not in NOT_INHERITED}
