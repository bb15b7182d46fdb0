"""``batch`` / ``abatch``: many inputs, each its own run, at most ``max_concurrency`` at once.

>>> from rillet.graphs import RunnableLambda
>>> RunnableLambda(lambda x: x + 1).batch([1, 2, 3])
[2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from rillet.graphs.config import RunnableConfig
from rillet.runtime.lowlevel import RunConfig, sole_error

__all__ = ["batch_configs", "run_batch"]


async def run_batch(
    ainvoke: Callable[[Any, RunConfig], Awaitable[Any]],
    inputs: Sequence[object],
    config: RunnableConfig | list[RunnableConfig] | None,
    *,
    return_exceptions: bool,
    max_concurrency: int | None,
) -> list[Any]:
    """Run ``ainvoke`` on every input concurrently; results (or errors) in input order.

    Raises:
        the first failure's own exception, unless ``return_exceptions``.
    """
    configs = batch_configs(config, len(inputs))
    limit = max_concurrency or (configs[0].max_concurrency if configs else None)
    limiter = trio.CapacityLimiter(limit) if limit else None
    results: list[Any] = [None] * len(inputs)

    async def one(i: int) -> None:
        if limiter is not None:
            async with limiter:
                results[i] = await _one(ainvoke, inputs[i], configs[i], return_exceptions)
        else:
            results[i] = await _one(ainvoke, inputs[i], configs[i], return_exceptions)

    try:
        async with trio.open_nursery() as nursery:
            for i in range(len(inputs)):
                nursery.start_soon(one, i)
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is None:
            raise
        raise error from None
    return results


async def _one(ainvoke: Callable[[Any, RunConfig], Awaitable[Any]], input: object,
               config: RunConfig, return_exceptions: bool) -> Any:
    if not return_exceptions:
        return await ainvoke(input, config)
    try:
        return await ainvoke(input, config)
    except Exception as error:  # noqa: BLE001 - returned in place, as asked
        return error


def batch_configs(config: RunnableConfig | list[RunnableConfig] | None,
                  n: int) -> list[RunConfig]:
    """One checked config per input: the list given (its length checked), or one for all.

    Raises:
        ConfigError: a config has a bad key (``config[2]['tags'] must be ...`` for a list).
    """
    if isinstance(config, list):
        if len(config) != n:
            raise ValueError(
                f"batch got {len(config)} configs for {n} inputs; pass one config or one per input"
            )
        return [RunConfig.from_dict(c, where=f"config[{i}]") for i, c in enumerate(config)]
    one = RunConfig.from_dict(config)
    return [one] * n
