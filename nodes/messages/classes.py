"""The message classes: :class:`BaseMessage` and the four whole messages.

Frozen attrs classes shaped like LangChain's: ``content`` may be positional, every other field
is keyword only, and fields are checked and copied on the way in
(:mod:`rillet.nodes.messages.fields`). The streamed piece of a reply, ``AIMessageChunk``, lives
in :mod:`rillet.nodes.messages.chunks`.

>>> AIMessage("hello", id="m1") == AIMessage(content="hello", id="m1")
True
>>> HumanMessage("hi", name="ann")
HumanMessage(content='hi', name='ann')
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from rillet.nodes.messages.fields import (
    Content,
    check,
    content_ok,
    copy_content,
    copy_dict,
    copy_invalid_tool_calls,
    copy_optional_dict,
    copy_tool_calls,
    dict_ok,
    entries_ok,
    optional_dict_ok,
    optional_str_ok,
    str_ok,
)

__all__ = ["AIMessage", "BaseMessage", "HumanMessage", "SystemMessage", "ToolMessage"]


@attrs.frozen(repr=False, unsafe_hash=False)
class BaseMessage:
    """The fields every message has; use a subclass.

    ``content`` is a string or a list of strings and content-block dicts
    (``{"type": "text", "text": "..."}``); ``type`` is LangChain's type string.

    >>> HumanMessage("hi").type, AIMessage(content="hello", id="m1").id
    ('human', 'm1')
    """

    type: ClassVar[str]

    content: Content = attrs.field(converter=copy_content, validator=content_ok)
    id: str | None = attrs.field(default=None, kw_only=True, validator=optional_str_ok)
    additional_kwargs: dict[str, Any] = attrs.field(
        factory=dict, kw_only=True, converter=copy_dict, validator=dict_ok)
    response_metadata: dict[str, Any] = attrs.field(
        factory=dict, kw_only=True, converter=copy_dict, validator=dict_ok)
    name: str | None = attrs.field(default=None, kw_only=True, validator=optional_str_ok)

    def __attrs_pre_init__(self) -> None:
        if type(self) is BaseMessage:
            raise TypeError("BaseMessage is abstract: use HumanMessage, AIMessage, SystemMessage, "
                            "ToolMessage or AIMessageChunk")

    @property
    def text(self) -> str:
        """The text of the message: the content string, or its text blocks joined.

        >>> AIMessage(content=["Hel", {"type": "text", "text": "lo"}, {"type": "image"}]).text
        'Hello'
        """
        if isinstance(self.content, str):
            return self.content
        return "".join(
            block if isinstance(block, str) else block["text"]
            for block in self.content
            if isinstance(block, str)
            or (block.get("type") == "text" and isinstance(block.get("text"), str))
        )

    def pretty_repr(self) -> str:
        """A human-readable rendering with a title bar, as LangChain prints messages.

        >>> print(HumanMessage("hi").pretty_repr())
        ================================ Human Message =================================
        <BLANKLINE>
        hi
        """
        title = f" {self.type.title()} Message "  # LangChain's titles, "Ai Message" included
        bar = "=" * ((80 - len(title)) // 2)
        lines = [f"{bar}{title}{bar}{'=' * (len(title) % 2)}"]
        if self.name is not None:
            lines.append(f"Name: {self.name}")
        lines += ["", self.text]
        return "\n".join(lines)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, default in _repr_fields(type(self))
            if (value := getattr(self, name)) != default or name == "content"
        )
        return f"{type(self).__name__}({shown})"


_REPR_FIELDS: dict[type, tuple[tuple[str, object], ...]] = {}


def _repr_fields(cls: type) -> tuple[tuple[str, object], ...]:
    """``(name, default)`` of each field in repr order: content, the class's own fields, then
    the common ones (LangChain's order buries tool calls behind empty dicts)."""
    if cls not in _REPR_FIELDS:
        common = [field.name for field in attrs.fields(BaseMessage)]
        fields = {field.name: field for field in attrs.fields(cls)}
        order = ["content", *(name for name in fields if name not in common), *common[1:]]
        _REPR_FIELDS[cls] = tuple((name, _default(fields[name])) for name in order)
    return _REPR_FIELDS[cls]


def _default(field: attrs.Attribute[Any]) -> object:
    factory = getattr(field.default, "factory", None)  # attrs.Factory(dict) and the like
    return factory() if callable(factory) else field.default


@attrs.frozen(repr=False, unsafe_hash=False)
class HumanMessage(BaseMessage):
    """A message from the user.

    >>> HumanMessage("hi")
    HumanMessage(content='hi')
    """

    type: ClassVar[str] = "human"


@attrs.frozen(repr=False, unsafe_hash=False)
class SystemMessage(BaseMessage):
    """Instructions for the model.

    >>> SystemMessage("You are terse.").type
    'system'
    """

    type: ClassVar[str] = "system"


@attrs.frozen(repr=False, unsafe_hash=False)
class ToolMessage(BaseMessage):
    """The result of a tool call, answering the call with id ``tool_call_id``.

    >>> ToolMessage("42", tool_call_id="call_1")
    ToolMessage(content='42', tool_call_id='call_1')
    """

    type: ClassVar[str] = "tool"

    tool_call_id: str = attrs.field(kw_only=True, validator=str_ok)
    status: str = attrs.field(default="success", kw_only=True, validator=check(
        "'success' or 'error'", lambda value: value in ("success", "error")))


@attrs.frozen(repr=False, unsafe_hash=False)
class AIMessage(BaseMessage):
    """A whole model reply, possibly asking for tool calls.

    ``tool_calls`` entries are ``{"name", "args" (dict), "id", "type": "tool_call"}``;
    ``usage_metadata`` counts tokens (``input_tokens``, ``output_tokens``, ``total_tokens``).

    >>> AIMessage(tool_calls=[{"name": "search", "args": {"q": "cats"}, "id": "c1"}])
    ... # doctest: +NORMALIZE_WHITESPACE
    AIMessage(content='', tool_calls=[{'name': 'search', 'args': {'q': 'cats'}, 'id': 'c1',
                                       'type': 'tool_call'}])
    """

    type: ClassVar[str] = "ai"

    # An empty reply that only calls tools is common: content may be left out.
    content: Content = attrs.field(default="", converter=copy_content, validator=content_ok)
    tool_calls: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=copy_tool_calls, validator=entries_ok("tool_call"))
    invalid_tool_calls: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=copy_invalid_tool_calls,
        validator=entries_ok("invalid_tool_call"))
    usage_metadata: dict[str, Any] | None = attrs.field(
        default=None, kw_only=True, converter=copy_optional_dict, validator=optional_dict_ok)
