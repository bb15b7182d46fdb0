"""Tools in each provider's format, from whatever describes them.

:func:`to_function_schema` reads a tool in any supported form into the neutral
``{"name", "description", "parameters"}``; :func:`convert_to_openai_tool` and
:func:`convert_to_anthropic_tool` wrap that in each provider's envelope. A function's schema
comes from :func:`~rillet.nodes.providers.tool_schema.function_schema`.

>>> neutral = {"name": "f", "description": "Do f.", "parameters": {"type": "object"}}
>>> convert_to_anthropic_tool(convert_to_openai_tool(neutral)) == {
...     "name": "f", "description": "Do f.", "input_schema": {"type": "object"}}
True
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from rillet.nodes.providers.tool_schema import ToolSchemaError, function_schema, type_schema

__all__ = ["convert_to_anthropic_tool", "convert_to_openai_tool", "to_function_schema"]


def to_function_schema(tool: Any) -> dict[str, Any]:
    """Any supported tool description as ``{"name", "description", "parameters"}``.

    Accepts: an OpenAI tool dict (``{"type": "function", "function": {...}}``), an Anthropic
    one (``{"name", "input_schema"}``), the neutral form itself, a :class:`~rillet.nodes.tools.Tool`
    (its ``schema``), an object with ``name``, ``description`` and ``parameters`` (or
    ``args_schema``: a dict or a pydantic model) attributes, or a function.

    >>> to_function_schema({"name": "f", "input_schema": {"type": "object", "properties": {}}})
    {'name': 'f', 'description': '', 'parameters': {'type': 'object', 'properties': {}}}

    Raises:
        ToolSchemaError: ``tool`` is none of those.
    """
    if isinstance(tool, Mapping):
        if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
            tool = tool["function"]
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise ToolSchemaError(f"a tool dict needs a 'name', got {dict(tool)!r:.120}")
        parameters = tool.get("parameters", tool.get("input_schema"))
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise ToolSchemaError(f"tool {name!r}: parameters must be a JSON-schema dict, "
                                  f"got {type(parameters).__name__}")
        return {"name": name, "description": str(tool.get("description") or ""),
                "parameters": dict(parameters)}
    schema = getattr(tool, "schema", None)
    if isinstance(schema, Mapping) and isinstance(schema.get("name"), str):
        return to_function_schema(schema)  # rillet's Tool: its schema is what a model gets
    name = getattr(tool, "name", None)
    parameters = getattr(tool, "parameters", None)
    if parameters is None:
        parameters = getattr(tool, "args_schema", None)  # LangChain-style tools
        if inspect.isclass(parameters) and callable(getattr(parameters, "model_json_schema", None)):
            parameters = type_schema(parameters, where=f"tool {name!r}")
    if isinstance(name, str) and isinstance(parameters, Mapping):
        return {"name": name, "description": str(getattr(tool, "description", "") or ""),
                "parameters": dict(parameters)}
    if callable(tool):
        return function_schema(tool)
    raise ToolSchemaError(
        f"cannot use {type(tool).__name__} {tool!r:.80} as a tool; pass a function, a tool dict "
        "(OpenAI or Anthropic format), or an object with name, description and parameters")


def convert_to_openai_tool(tool: Any, *, strict: bool | None = None) -> dict[str, Any]:
    """A tool in OpenAI's format: ``{"type": "function", "function": {...}}``.

    >>> convert_to_openai_tool({"name": "f", "parameters": {"type": "object"}})
    {'type': 'function', 'function': {'name': 'f', 'description': '', 'parameters': {'type': 'object'}}}
    """
    function = to_function_schema(tool)
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def convert_to_anthropic_tool(tool: Any) -> dict[str, Any]:
    """A tool in Anthropic's format: ``{"name", "description", "input_schema"}``.

    A dict already in that form keeps its other keys (``cache_control``); a server tool
    (``{"type": "web_search_20250305", ...}``) passes through unchanged.

    >>> convert_to_anthropic_tool({"name": "f", "parameters": {"type": "object"}})
    {'name': 'f', 'input_schema': {'type': 'object'}}
    """
    if isinstance(tool, Mapping) and "input_schema" in tool:
        return dict(tool)
    if isinstance(tool, Mapping) and isinstance(tool.get("type"), str) and tool["type"] not in (
            "function", "custom") and "parameters" not in tool and "function" not in tool:
        return dict(tool)
    schema = to_function_schema(tool)
    result = {"name": schema["name"], "description": schema["description"],
              "input_schema": schema["parameters"]}
    if not result["description"]:
        del result["description"]  # optional for Anthropic; better absent than empty
    return result
