"""Tool schemas: a Python function (or a dict) as the JSON schema a model calls tools with.

:func:`function_schema` reads a function's type hints and docstring::

    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        \"\"\"Current weather in a city.

        Args:
            city: the city name, e.g. "Paris".
            unit: temperature unit.
        \"\"\"

    function_schema(get_weather) == {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": 'the city name, e.g. "Paris".'},
            "unit": {"type": "string", "enum": ["c", "f"], "default": "c",
                     "description": "temperature unit."}},
            "required": ["city"]}}

This neutral form ``{"name", "description", "parameters"}`` converts to each provider's in
:mod:`~rillet.nodes.providers.tool_formats`, whose :func:`convert_to_openai_tool` and
:func:`convert_to_anthropic_tool` accept a function, a dict in any of the three forms, or an
object with ``name``, ``description`` and ``parameters`` attributes (the duck type a ``Tool``
class can satisfy).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import json
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from rillet.runtime.errors import RilletError

__all__ = ["ToolSchemaError", "function_schema", "parse_docstring", "type_schema"]


class ToolSchemaError(RilletError, TypeError):
    """A function or value cannot be described as a tool schema; the message says which part.

    >>> str(ToolSchemaError("parameter 'when' of f: cannot describe type object"))
    "parameter 'when' of f: cannot describe type object"
    """


_SIMPLE: Final[Mapping[Any, dict[str, Any]]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_ARRAYS: Final = frozenset({list, Sequence, typing.Sequence, typing.List, tuple, set, frozenset,
                            typing.AbstractSet, typing.MutableSequence})
_OBJECTS: Final = frozenset({dict, Mapping, typing.Mapping, typing.Dict, typing.MutableMapping})
_JSON_TYPES: Final[Mapping[type, str]] = {str: "string", bool: "boolean", int: "integer",
                                          float: "number", type(None): "null"}


def function_schema(
    fn: Callable[..., object], *, name: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """Describe ``fn`` as a tool: ``{"name", "description", "parameters"}``.

    The description is the first paragraph of the docstring; each parameter's description
    comes from a Google-style ``Args:`` section (``name (type): text``, continued on indented
    lines), a reST ``:param name:`` line, or ``Annotated[T, "text"]``. A parameter with a
    default is not required (its default is shown when it is JSON). ``self``, ``cls``,
    ``*args`` and ``**kwargs`` are left out.

    Types: ``str``, ``int``, ``float``, ``bool``, ``None``; ``X | None`` / ``Optional[X]`` and
    other unions; ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``set[X]``; ``dict[str, X]``;
    ``Literal[...]``; ``Enum`` subclasses; ``TypedDict`` and dataclasses (nested); datetimes
    and UUIDs (strings with a ``format``); classes with pydantic's ``model_json_schema``;
    ``Any`` or no hint (any value).

    >>> def add(a: int, b: int = 1) -> int:
    ...     '''Add two numbers.'''
    ...     return a + b
    >>> function_schema(add)["parameters"]
    {'type': 'object', 'properties': {'a': {'type': 'integer'}, 'b': {'type': 'integer', 'default': 1}}, 'required': ['a']}

    Raises:
        ToolSchemaError: a parameter's type has no JSON schema (the message names it).
    """
    if not callable(fn):
        raise ToolSchemaError(f"expected a function, got {type(fn).__name__}: {fn!r:.80}")
    target = fn if inspect.isroutine(fn) or inspect.isclass(fn) else type(fn).__call__
    fn_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as error:
        raise ToolSchemaError(f"cannot read the signature of {fn_name}: {error}") from error
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as error:  # NameError for an unresolvable forward reference, and others
        raise ToolSchemaError(f"cannot resolve the type hints of {fn_name}: {error}") from error
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")

    properties: dict[str, Any] = {}
    required: list[str] = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if index == 0 and param.name in ("self", "cls"):
            continue
        where = f"parameter {param.name!r} of {fn_name}"
        hint = hints.get(param.name, Any)
        schema = type_schema(hint, where=where)
        if param.name in arg_docs and "description" not in schema:
            schema["description"] = arg_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif _is_json(param.default):
            schema["default"] = _json_value(param.default)
        properties[param.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {"name": fn_name, "description": description if description is not None else summary,
            "parameters": parameters}


def type_schema(hint: object, *, where: str = "type") -> dict[str, Any]:
    """The JSON schema of one type hint (``where`` names it in errors).

    >>> type_schema(list[int] | None)
    {'anyOf': [{'type': 'array', 'items': {'type': 'integer'}}, {'type': 'null'}]}
    >>> type_schema(str | None)
    {'type': ['string', 'null']}
    """
    return _schema(hint, where, ())


def _schema(hint: Any, where: str, seen: tuple[Any, ...]) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return {}
    if hint is None:
        hint = type(None)
    if type(hint).__name__ == "TypeAliasType":  # `type X = ...` (3.12+)
        return _schema(hint.__value__, where, seen)
    if isinstance(hint, typing.NewType):
        return _schema(hint.__supertype__, where, seen)
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        annotated = _schema(args[0], where, seen)
        text = next((meta for meta in args[1:] if isinstance(meta, str)), None)
        if text is not None:
            annotated["description"] = text
        return annotated
    if origin is typing.Literal:
        return _literal(args, where)
    if origin in (typing.Union, types.UnionType):
        return _union([_schema(arg, where, seen) for arg in args])
    if hint in _ARRAYS or origin in _ARRAYS or origin in (list, tuple, set, frozenset):
        return _array(hint, origin, args, where, seen)
    if hint in _OBJECTS or origin in _OBJECTS:
        if args and args[0] is not str and args[0] is not Any:
            raise ToolSchemaError(f"{where}: JSON object keys are strings, got {hint!r}")
        schema: dict[str, Any] = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = _schema(args[1], where, seen)
        return schema
    if inspect.isclass(hint):
        return _class_schema(hint, where, seen)
    raise ToolSchemaError(f"{where}: cannot describe {hint!r} as JSON schema; use str, int, "
                          "float, bool, list, dict, Literal, an Enum, a TypedDict or a dataclass")


def _literal(values: tuple[object, ...], where: str) -> dict[str, Any]:
    for value in values:
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise ToolSchemaError(f"{where}: Literal values must be JSON scalars, got {value!r}")
    kinds = {_JSON_TYPES[type(v)] for v in values if type(v) in _JSON_TYPES}
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _union(members: list[dict[str, Any]]) -> dict[str, Any]:
    flat: list[dict[str, Any]] = []
    for member in members:
        flat.extend(member["anyOf"] if set(member) == {"anyOf"} else [member])
    if any(member == {} for member in flat):
        return {}  # Any among the members: anything goes
    # Plain scalar types merge into one "type" list, which strict JSON-schema users prefer.
    if all(set(member) == {"type"} and isinstance(member["type"], str) for member in flat):
        kinds = list(dict.fromkeys(member["type"] for member in flat))
        return {"type": kinds[0] if len(kinds) == 1 else kinds}
    return {"anyOf": flat}


def _array(
    hint: object, origin: object, args: tuple[object, ...], where: str, seen: tuple[object, ...]
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array"}
    kind = origin or hint
    if kind in (tuple, typing.Tuple) and args and not (len(args) == 2 and args[1] is Ellipsis):
        if args == ((),):
            return {"type": "array", "maxItems": 0}
        items = [_schema(arg, where, seen) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items),
                "maxItems": len(items)}
    if args and args[0] is not Any:
        schema["items"] = _schema(args[0], where, seen)
    if kind in (set, frozenset, typing.AbstractSet):
        schema["uniqueItems"] = True
    return schema


def _class_schema(cls: type, where: str, seen: tuple[object, ...]) -> dict[str, Any]:
    if issubclass(cls, enum.Enum):
        return _literal(tuple(member.value for member in cls), where)
    for base, base_schema in _SIMPLE.items():  # subclasses: IntEnum handled above, str subclasses
        if isinstance(base, type) and base is not type(None) and issubclass(cls, base):
            return dict(base_schema)
    if cls in seen:
        raise ToolSchemaError(f"{where}: {cls.__name__} refers to itself; recursive types are "
                              "not supported")
    model_json_schema = getattr(cls, "model_json_schema", None)
    if callable(model_json_schema):  # pydantic models, without importing pydantic
        schema = dict(model_json_schema())
        schema.pop("title", None)
        return schema
    nested = (*seen, cls)
    if typing.is_typeddict(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        required_keys = getattr(cls, "__required_keys__", frozenset(hints))
        properties = {key: _schema(hint, f"{where}, field {key!r}", nested)
                      for key, hint in hints.items()}
        return _object(properties, [key for key in hints if key in required_keys], cls)
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        properties, required = {}, []
        for field in dataclasses.fields(cls):
            properties[field.name] = _schema(hints.get(field.name, Any),
                                             f"{where}, field {field.name!r}", nested)
            if field.default is dataclasses.MISSING and (
                    field.default_factory is dataclasses.MISSING):
                required.append(field.name)
            elif _is_json(field.default):
                properties[field.name]["default"] = _json_value(field.default)
        return _object(properties, required, cls)
    raise ToolSchemaError(f"{where}: cannot describe class {cls.__name__} as JSON schema; use a "
                          "TypedDict, a dataclass, or a pydantic model")


def _object(properties: dict[str, Any], required: list[str], cls: type) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    summary, field_docs = parse_docstring(inspect.getdoc(cls) or "")
    if summary and cls.__doc__:  # not the docstring dataclasses invent: "Point(x: int, ...)"
        if not re.fullmatch(rf"{re.escape(cls.__name__)}\(.*\)", summary, re.DOTALL):
            schema["description"] = summary
    for key, text in field_docs.items():
        if key in properties and "description" not in properties[key]:
            properties[key]["description"] = text
    return schema


def _is_json(value: object) -> bool:
    try:
        json.dumps(_json_value(value))
    except (TypeError, ValueError):
        return False
    return True


def _json_value(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


# -- docstrings -----------------------------------------------------------------------------

_SECTION: Final = re.compile(
    r"^(Args|Arguments|Parameters|Params|Attributes|Keyword Args|Keyword Arguments|Returns|"
    r"Return|Yields|Raises|Examples?|Notes?|Warnings?|See Also|Todo)\s*:\s*$")
_ARG_SECTIONS: Final = frozenset({"Args", "Arguments", "Parameters", "Params", "Attributes",
                                  "Keyword Args", "Keyword Arguments"})
_ARG_LINE: Final = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_PARAM: Final = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """A docstring's first paragraph, and per-argument descriptions from its ``Args:`` section.

    >>> parse_docstring('''Find things.
    ...
    ... Args:
    ...     query (str): what to look for,
    ...         in plain words.
    ...     limit: at most this many.
    ... ''')
    ('Find things.', {'query': 'what to look for, in plain words.', 'limit': 'at most this many.'})
    """
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    for line in lines:
        stripped = line.strip()
        if _SECTION.match(stripped) or stripped.startswith(":"):
            break
        if not stripped:
            if summary:
                break  # the first paragraph ended
            continue
        summary.append(stripped)
    args: dict[str, str] = {}
    section: str | None = None
    section_indent = 0
    current: str | None = None
    arg_indent = 0
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if match := _SECTION.match(stripped):
            section, section_indent, current = match.group(1), indent, None
            continue
        if match := _REST_PARAM.match(stripped):
            current, arg_indent = match.group(1), indent
            args[current] = match.group(2).strip()
            section = None
            continue
        if section in _ARG_SECTIONS:
            if not stripped:
                continue
            if indent <= section_indent:
                section, current = None, None  # dedented past the section: it ended
                continue
            match = _ARG_LINE.match(stripped)
            if match and (current is None or indent <= arg_indent):
                current, arg_indent = match.group(1), indent
                args[current] = match.group(2).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
        elif current is not None and section is None and stripped and indent > arg_indent:
            args[current] = f"{args[current]} {stripped}".strip()  # a :param: continuation
        elif section is None and not stripped:
            current = None
    return " ".join(summary), args
