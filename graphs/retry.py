"""Retries and fallbacks, with a streaming rule: never after the first chunk.

Both run the wrapped runnable as a child run and stream it through. A failure *before* the
first chunk is retried (or handed to the next fallback); a failure after it propagates, because
trying again would repeat output the consumer already has. ``invoke`` follows the same rule
(LangChain retries a whole ``invoke`` but never a stream; rillet has one rule for both).
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import trio

from rillet.graphs.base import Runnable
from rillet.runtime.lowlevel import RunScope

if TYPE_CHECKING:
    from rillet.graphs.draw import DrawableGraph

__all__ = ["RunnableRetry", "RunnableWithFallbacks"]


class RunnableRetry(Runnable[Any, Any]):
    """``bound`` retried up to ``stop_after_attempt`` times (see :meth:`Runnable.with_retry`)."""

    def __init__(
        self,
        bound: Runnable[Any, Any],
        *,
        stop_after_attempt: int = 3,
        retry_if_exception_type: tuple[type[BaseException], ...] = (Exception,),
        wait_exponential_jitter: bool = True,
        initial_wait: float = 1.0,
        max_wait: float = 10.0,
    ) -> None:
        if stop_after_attempt < 1:
            raise ValueError(f"stop_after_attempt must be >= 1, got {stop_after_attempt}")
        self.bound = bound
        self.stop_after_attempt = stop_after_attempt
        self.retry_if_exception_type = retry_if_exception_type
        self.wait_exponential_jitter = wait_exponential_jitter
        self.initial_wait, self.max_wait = initial_wait, max_wait
        self.name = None

    def get_name(self) -> str:
        return self.name or f"RunnableRetry<{self.bound.get_name()}>"

    def output_mode(self, input_mode: str) -> str:
        return self.bound.output_mode(input_mode)

    def finalize(self, value: object) -> object:
        return self.bound.finalize(value)

    def get_input_jsonschema(self) -> dict[str, object]:
        return self.bound.get_input_jsonschema()

    def _wait(self, attempt: int) -> float:
        if not self.wait_exponential_jitter:
            return 0.0
        base = min(self.max_wait, self.initial_wait * 2 ** (attempt - 1))
        return float(base + random.uniform(0, base / 2))

    async def _astream(self, input: object, ctx: RunScope) -> AsyncGenerator[object, None]:
        for attempt in range(1, self.stop_after_attempt + 1):
            emitted = False
            try:
                async with self.bound.astream(input, {"tags": [f"retry:attempt:{attempt}"]}) as s:
                    async for chunk in s:
                        emitted = True
                        yield chunk
                return
            except self.retry_if_exception_type:
                if emitted or attempt == self.stop_after_attempt:
                    raise
            await trio.sleep(self._wait(attempt))

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        # Nothing reached the caller before invoke returns: every failure may be retried.
        for attempt in range(1, self.stop_after_attempt):
            try:
                return await self.bound.ainvoke(input, {"tags": [f"retry:attempt:{attempt}"]})
            except self.retry_if_exception_type:
                pass
            await trio.sleep(self._wait(attempt))
        last = self.stop_after_attempt
        return await self.bound.ainvoke(input, {"tags": [f"retry:attempt:{last}"]})

    def get_graph(self) -> DrawableGraph:
        return self.bound.get_graph()


class RunnableWithFallbacks(Runnable[Any, Any]):
    """``runnable``, then each fallback in turn while they fail before their first chunk."""

    def __init__(
        self,
        runnable: Runnable[Any, Any],
        fallbacks: list[Runnable[Any, Any]],
        *,
        exceptions_to_handle: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        if not fallbacks:
            raise ValueError("with_fallbacks needs at least one fallback")
        self.runnable, self.fallbacks = runnable, fallbacks
        self.exceptions_to_handle = exceptions_to_handle
        self.name = None

    def get_name(self) -> str:
        return self.name or f"RunnableWithFallbacks<{self.runnable.get_name()}>"

    def output_mode(self, input_mode: str) -> str:
        return self.runnable.output_mode(input_mode)

    def finalize(self, value: object) -> object:
        return self.runnable.finalize(value)

    def get_input_jsonschema(self) -> dict[str, object]:
        return self.runnable.get_input_jsonschema()

    async def _astream(self, input: object, ctx: RunScope) -> AsyncGenerator[object, None]:
        first_error: BaseException | None = None
        for candidate in (self.runnable, *self.fallbacks):
            emitted = False
            try:
                async with candidate.astream(input) as s:
                    async for chunk in s:
                        emitted = True
                        yield chunk
                return
            except self.exceptions_to_handle as error:
                if emitted:
                    raise
                if first_error is None:
                    first_error = error
        assert first_error is not None
        raise first_error

    async def _ainvoke_whole(self, input: Any, ctx: RunScope) -> Any:
        first_error: BaseException | None = None
        for candidate in (self.runnable, *self.fallbacks):
            try:
                return await candidate.ainvoke(input)
            except self.exceptions_to_handle as error:
                if first_error is None:
                    first_error = error
        assert first_error is not None
        raise first_error

    def get_graph(self) -> DrawableGraph:
        return self.runnable.get_graph()
