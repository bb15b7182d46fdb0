"""The message fields' converters and validators: copy on the way in, check, name the class and
field when a value does not fit.

Internal to :mod:`rillet.nodes.messages`; what a caller meets is the error they raise:

>>> from rillet.nodes.messages import ToolMessage
>>> try:
...     ToolMessage("42", tool_call_id=7)
... except MessageFieldError as error:
...     print(error)
ToolMessage.tool_call_id expected str, got int: 7
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from rillet.nodes.messages.errors import MessageFieldError

__all__ = [
    "Content",
    "check",
    "content_ok",
    "copy_content",
    "copy_dict",
    "copy_invalid_tool_calls",
    "copy_optional_dict",
    "copy_tool_call_chunks",
    "copy_tool_calls",
    "dict_ok",
    "entries_ok",
    "optional_dict_ok",
    "optional_str_ok",
    "str_ok",
]

_Validator: TypeAlias = Callable[[Any, "attrs.Attribute[Any]", Any], None]
Content: TypeAlias = "str | list[str | dict[str, Any]]"


def _fail(
    owner: object, field: attrs.Attribute[Any], expected: str, got: object
) -> MessageFieldError:
    return MessageFieldError(
        message_class=type(owner).__name__, field=field.name, expected=expected, got=got)


def check(expected: str, ok: Callable[[Any], bool]) -> _Validator:
    """A validator raising ``MessageFieldError`` (``expected``) for values ``ok`` rejects."""
    def validate(owner: object, field: attrs.Attribute[Any], value: object) -> None:
        if not ok(value):
            raise _fail(owner, field, expected, value)
    return validate


# The validators run for every streamed chunk: plain functions, cheapest test first.
def content_ok(owner: object, field: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str and not (isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(block, (str, dict)) for block in value)
    )):
        raise _fail(owner, field, "str or list of str/dict blocks", value)


def optional_str_ok(owner: object, field: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(owner, field, "str or None", value)


def dict_ok(owner: object, field: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not dict:
        raise _fail(owner, field, "dict", value)


str_ok: Final = check("str", lambda value: isinstance(value, str))
optional_dict_ok: Final = check(
    "dict or None", lambda value: value is None or isinstance(value, dict))


def copy_content(value: Content) -> Content:
    # Copied, so a caller mutating its blocks later cannot change the message.
    if type(value) is list:
        return [dict(block) if isinstance(block, dict) else block for block in value]
    return value


def copy_dict(value: Mapping[str, object]) -> dict[str, object]:
    if type(value) is dict or isinstance(value, Mapping):
        return dict(value)
    return value  # not a mapping: validation reports it


def copy_optional_dict(value: Mapping[str, object] | None) -> dict[str, object] | None:
    return dict(value) if isinstance(value, Mapping) else value


# Each kind of tool-call entry: its keys, with the types each key accepts.
_STR_OR_NONE: Final = (str, type(None))
_ENTRY_KEYS: Final[Mapping[str, Mapping[str, tuple[type, ...]]]] = {
    "tool_call": {"name": (str,), "args": (dict,), "id": _STR_OR_NONE},
    "invalid_tool_call": {"name": _STR_OR_NONE, "args": _STR_OR_NONE, "id": _STR_OR_NONE,
                          "error": _STR_OR_NONE},
    "tool_call_chunk": {"name": _STR_OR_NONE, "args": _STR_OR_NONE, "id": _STR_OR_NONE,
                        "index": (int, type(None))},
}


def _copy_entries(value: Sequence[Mapping[str, object]], kind: str) -> list[dict[str, Any]]:
    """Copies of the entries, missing keys ``None`` and ``type`` set; others fail validation."""
    if type(value) is list and not value:
        return []
    if not isinstance(value, (list, tuple)):
        return value  # type: ignore[return-value]  # not a list: validation reports it
    entries: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            item = {**dict.fromkeys(_ENTRY_KEYS[kind]), **item, "type": item.get("type", kind)}
            if isinstance(item["args"], Mapping):
                item["args"] = dict(item["args"])
        entries.append(item)
    return entries


def copy_tool_calls(value: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    return _copy_entries(value, "tool_call")


def copy_invalid_tool_calls(value: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    return _copy_entries(value, "invalid_tool_call")


def copy_tool_call_chunks(value: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    return _copy_entries(value, "tool_call_chunk")


def entries_ok(kind: str) -> _Validator:
    """A validator for a list of ``kind`` entries, as ``copy_*`` made them (see ``_ENTRY_KEYS``)."""
    keys = _ENTRY_KEYS[kind]
    expected = f"list of {kind} dicts with keys {sorted(keys)}"

    def validate(owner: object, field: attrs.Attribute[Any], value: object) -> None:
        if type(value) is list and not value:
            return
        if not isinstance(value, list):
            raise _fail(owner, field, expected, value)
        for item in value:
            if not isinstance(item, dict) or item.keys() - keys.keys() != {"type"} or any(
                not isinstance(item[key], types) or isinstance(item[key], bool)
                for key, types in keys.items()
            ) or item["type"] != kind:
                raise _fail(owner, field, expected, item)
    return validate
