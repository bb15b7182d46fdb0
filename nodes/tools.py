"""Tools: typed functions as runnables, with JSON-schema arguments and validated calls.

``@tool`` turns a typed sync or async function into a :class:`Tool`: its name is the function's,
its description the docstring's first paragraph, its argument schema comes from the type hints
(see :func:`rillet.nodes.providers.tool_schema.function_schema`). Calls are validated before
the function runs, with an error naming the tool, the argument, what was expected and what
arrived. A tool that calls a chain inside makes that chain a child run: its events appear
under the tool's.

>>> @tool
... def add(a: int, b: int = 1) -> int:
...     '''Add two integers.'''
...     return a + b
>>> add.invoke({"a": 2}), add.name, add.description
(3, 'add', 'Add two integers.')
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Union

import trio

from rillet.graphs.base import Runnable
from rillet.nodes.messages import ToolMessage
from rillet.runtime.errors import NodeInputError
from rillet.runtime.lowlevel import RunScope, await_user

__all__ = ["Tool", "ToolArgumentError", "tool"]


class ToolArgumentError(NodeInputError):
    """A tool was called with arguments that do not fit its signature."""


class Tool(Runnable[Any, Any]):
    """A function with a name, a description and a JSON schema for its arguments.

    Input: a dict of arguments, a bare value when the tool takes exactly one argument, or a
    tool call (``{"name", "args", "id", "type": "tool_call"}``) — then the result comes back as
    a :class:`~rillet.nodes.messages.ToolMessage` carrying the call's id.
    """

    kind: ClassVar[str] = "tool"

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        from rillet.nodes.providers.tool_schema import function_schema

        if not callable(func):
            raise TypeError(f"a tool wraps a callable, got {type(func).__name__}")
        schema = function_schema(func)
        self.func = func
        self.name = name or schema["name"]
        self.description = description or schema.get("description", "")
        self.args_schema: dict[str, Any] = schema["parameters"]
        self._signature = inspect.signature(func)
        self._hints = typing.get_type_hints(func)
        self._async = inspect.iscoroutinefunction(func)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema (what ``bind_tools`` sends)."""
        return {"name": self.name, "description": self.description, "parameters": self.args_schema}

    def _event_input(self, value: object) -> object:
        if isinstance(value, Mapping) and value.get("type") == "tool_call":
            return value.get("args", {})
        return value

    def _arguments(self, value: object, node: str) -> dict[str, object]:
        params = list(self._signature.parameters.values())
        if isinstance(value, Mapping):
            args = dict(value)
        elif len(params) == 1:
            args = {params[0].name: value}
        else:
            raise ToolArgumentError(
                node=node, expected=f"a dict of arguments {[p.name for p in params]}", got=value
            )
        unknown = sorted(set(args) - {p.name for p in params})
        if unknown:
            raise ToolArgumentError(
                node=node, expected=f"arguments among {[p.name for p in params]}", got=args
            )
        for param in params:
            if param.name not in args:
                if param.default is inspect.Parameter.empty:
                    raise ToolArgumentError(
                        node=node, expected=f"a value for required argument {param.name!r}",
                        got=args,
                    )
                continue
            hint = self._hints.get(param.name, Any)
            if not _fits(args[param.name], hint):
                raise ToolArgumentError(
                    node=node, expected=f"argument {param.name!r} of type {_type_name(hint)}",
                    got=args[param.name],
                )
        return args

    async def _ainvoke(self, input: Any, ctx: RunScope) -> object:
        call_id = None
        if isinstance(input, Mapping) and input.get("type") == "tool_call":
            call_id = input.get("id")
            input = input.get("args", {})
        args = self._arguments(input, ctx.name)
        if self._async:
            result = await await_user(self.func(**args), node=ctx.name, func=self.func)
        else:
            result = await trio.to_thread.run_sync(lambda: self.func(**args))
        if call_id is not None:
            content = result if isinstance(result, (str, list)) else str(result)
            return ToolMessage(content=content, tool_call_id=call_id, name=self.name)
        return result


def tool(func: Callable[..., object] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Decorator: make a typed function a :class:`Tool` (``@tool`` or ``@tool(name=...)``)."""
    if func is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(func, name=name, description=description)


def _fits(value: object, hint: object) -> bool:
    """A shallow check of ``value`` against a type hint (containers: the outer type only)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    target = origin or hint
    if not isinstance(target, type):
        return True
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if target is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if target in (list, tuple, set, frozenset):
        return isinstance(value, (list, tuple))
    return isinstance(value, target)


def _type_name(hint: object) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
