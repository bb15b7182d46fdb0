"""Conversions: message-like values to messages, messages to plain dicts and back, and
transcripts.

>>> [coerce_to_message(value) for value in ["hi", ("ai", "hello")]]
[HumanMessage(content='hi'), AIMessage(content='hello')]
>>> messages_from_dict(messages_to_dict(SystemMessage("be brief")))
SystemMessage(content='be brief')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from rillet.nodes.messages.chunks import AIMessageChunk
from rillet.nodes.messages.classes import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.messages.errors import MessageCoercionError
from rillet.runtime.errors import WireFormatError

__all__ = [
    "MessageLike",
    "coerce_to_message",
    "get_buffer_string",
    "messages_from_dict",
    "messages_to_dict",
]

MessageLike: TypeAlias = BaseMessage | str | tuple[str, Any] | list[Any] | Mapping[str, Any]
"""What :func:`coerce_to_message` accepts."""

_ROLES: Final[Mapping[str, type[BaseMessage]]] = {
    "ai": AIMessage, "assistant": AIMessage, "human": HumanMessage, "system": SystemMessage,
    "tool": ToolMessage, "user": HumanMessage,
}
_TYPES: Final[Mapping[str, type[BaseMessage]]] = {
    cls.type: cls for cls in (HumanMessage, AIMessage, SystemMessage, ToolMessage, AIMessageChunk)
}
_NEEDS_TOOL_CALL_ID: Final = (
    "role 'tool' needs a tool_call_id; pass ToolMessage(content, tool_call_id=...) "
    "or a dict with 'tool_call_id'"
)


def coerce_to_message(value: MessageLike) -> BaseMessage:
    """Turn a message-like value into a message.

    Accepts a message (returned as it is), a str (a human message), a ``(role, content)``
    tuple (or two-item list) with role human/user, ai/assistant or system, or a dict with
    ``"role"`` or ``"type"``, ``"content"`` and any other message fields.

    >>> coerce_to_message(("assistant", "hello"))
    AIMessage(content='hello')
    >>> coerce_to_message({"role": "user", "content": "hi"})
    HumanMessage(content='hi')

    Raises:
        MessageCoercionError: the value is none of the above, names an unknown role, or is a
            tool message without a ``tool_call_id``.
    """
    if isinstance(value, BaseMessage):
        return value
    if isinstance(value, str):
        return HumanMessage(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        cls = _class_for(value[0], _ROLES, value)
        if cls is ToolMessage:
            raise MessageCoercionError(got=value, reason=_NEEDS_TOOL_CALL_ID)
        return _build(cls, {"content": value[1]}, value)
    if isinstance(value, Mapping):
        key = "role" if "role" in value else "type"
        if key not in value:
            raise MessageCoercionError(got=value, reason="a message dict needs 'role' or 'type'")
        cls = _class_for(value[key], {**_ROLES, **_TYPES}, value)
        fields = {name: item for name, item in value.items() if name not in ("role", "type")}
        if cls is ToolMessage and "tool_call_id" not in fields:
            raise MessageCoercionError(got=value, reason=_NEEDS_TOOL_CALL_ID)
        if fields.get("content", "") is None:  # OpenAI's assistant messages calling tools
            fields["content"] = ""
        return _build(cls, fields, value)
    raise MessageCoercionError(got=value, reason=(
        "expected a message, a str, a (role, content) tuple or a dict with 'role' or 'type' "
        "and 'content'"))


def _class_for(
    role: object, classes: Mapping[str, type[BaseMessage]], got: object
) -> type[BaseMessage]:
    if isinstance(role, str) and role in classes:
        return classes[role]
    raise MessageCoercionError(
        got=got, reason=f"unknown role {role!r}; expected one of {sorted(classes)}")


def _build(cls: type[BaseMessage], fields: Mapping[str, Any], got: object) -> BaseMessage:
    allowed = {field.name for field in attrs.fields(cls)}
    if unknown := sorted(set(fields) - allowed):
        raise MessageCoercionError(
            got=got, reason=f"{cls.__name__} has no fields {unknown}; it has {sorted(allowed)}")
    try:
        return cls(**fields)
    except TypeError as error:  # a bad field value, or content missing
        raise MessageCoercionError(got=got, reason=str(error)) from error


def messages_to_dict(message: BaseMessage) -> dict[str, Any]:
    """A plain, JSON-able dict of one message: ``"type"`` and every field.

    Derived fields (a chunk's ``tool_calls``) are left out; the dict shares the message's
    lists and dicts, so treat it as read-only.

    >>> messages_to_dict(SystemMessage("hi"))  # doctest: +NORMALIZE_WHITESPACE
    {'type': 'system', 'content': 'hi', 'id': None, 'additional_kwargs': {},
     'response_metadata': {}, 'name': None}
    """
    fields = {field.name: getattr(message, field.name) for field in attrs.fields(type(message))}
    return {"type": message.type, **fields}


def messages_from_dict(data: Mapping[str, Any]) -> BaseMessage:
    """The message a :func:`messages_to_dict` dict describes.

    LangChain's ``{"type": ..., "data": {...}}`` form is accepted too; a chunk's derived
    ``tool_calls`` / ``invalid_tool_calls`` are ignored.

    >>> messages_from_dict({"type": "ai", "content": "hello"})
    AIMessage(content='hello')

    Raises:
        WireFormatError: an unknown ``type``, unknown fields or field values of the wrong type.
    """
    tag = data.get("type")
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise WireFormatError(f"unknown message type {tag!r}; expected one of {sorted(_TYPES)}")
    body = data["data"] if isinstance(data.get("data"), Mapping) and "content" not in data else data
    ignored = {"type", "example"} | (
        {"tool_calls", "invalid_tool_calls"} if cls is AIMessageChunk else set())
    fields = {name: value for name, value in body.items() if name not in ignored}
    allowed = {field.name for field in attrs.fields(cls)}
    if unknown := sorted(set(fields) - allowed):
        raise WireFormatError(
            f"message type {tag!r} has no fields {unknown}; expected some of {sorted(allowed)}")
    try:
        return cls(**fields)
    except TypeError as error:
        raise WireFormatError(f"bad {tag!r} message: {error}") from error


def get_buffer_string(
    messages: Sequence[BaseMessage], human_prefix: str = "Human", ai_prefix: str = "AI"
) -> str:
    """The messages as a transcript, one ``Role: text`` line each.

    >>> get_buffer_string([HumanMessage("hi"), AIMessage("hello")])
    'Human: hi\\nAI: hello'
    """
    prefixes: dict[str, str] = {"human": human_prefix, "ai": ai_prefix,
                                "AIMessageChunk": ai_prefix, "system": "System", "tool": "Tool"}
    return "\n".join(
        f"{prefixes.get(message.type, message.type.title())}: {message.text}"
        for message in messages)
