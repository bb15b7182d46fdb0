"""Chat messages and streamed message chunks, shaped like LangChain's.

    BaseMessage                 content, id, additional_kwargs, response_metadata, name
    ├── HumanMessage            type "human"
    ├── SystemMessage           type "system"
    ├── ToolMessage             type "tool"; tool_call_id, status
    ├── AIMessage               type "ai"; tool_calls, invalid_tool_calls, usage_metadata
    └── AIMessageChunk          type "AIMessageChunk"; tool_call_chunks, chunk_position, and
                                tool_calls / invalid_tool_calls derived from the chunks

Messages are frozen attrs classes: ``content`` may be positional, every other field is keyword
only, and fields are checked and copied on the way in. ``AIMessageChunk`` is not a subclass of
``AIMessage`` (its tool calls are derived, not stored); use :func:`message_chunk_to_message`.

``chunk + chunk`` (or ``chunk + [chunks]``, one pass for any number) follows the rules in
:mod:`rillet.nodes.merge`: LangChain's, except that repeated labels such as ``model_name`` are not
concatenated. Tool-call arguments are parsed only when ``tool_calls`` is first read, so a model
can stream thousands of chunks without parsing anything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, overload

import attrs

from rillet.nodes import merge
from rillet.runtime.errors import RilletError, WireFormatError

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "BaseMessage",
    "HumanMessage",
    "MessageCoercionError",
    "MessageFieldError",
    "MessageLike",
    "SystemMessage",
    "ToolMessage",
    "coerce_to_message",
    "get_buffer_string",
    "message_chunk_to_message",
    "messages_from_dict",
    "messages_to_dict",
]


class MessageFieldError(RilletError, TypeError):
    """A message field was given a value it cannot hold.

    >>> str(MessageFieldError(message_class="HumanMessage", field="content",
    ...                       expected="str or list of str/dict blocks", got=5))
    'HumanMessage.content expected str or list of str/dict blocks, got int: 5'
    """

    def __init__(self, *, message_class: str, field: str, expected: str, got: object) -> None:
        self.message_class, self.field = message_class, field
        self.expected, self.got = expected, got
        super().__init__(
            f"{message_class}.{field} expected {expected}, got {type(got).__name__}: {got!r:.80}"
        )

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), vars(self))


class MessageCoercionError(RilletError, TypeError):
    """A value cannot be turned into a message; ``reason`` says why.

    >>> str(MessageCoercionError(got=("robot", "hi"), reason="unknown role 'robot'"))
    "cannot make a message from tuple ('robot', 'hi'): unknown role 'robot'"
    """

    def __init__(self, *, got: object, reason: str) -> None:
        self.got, self.reason = got, reason
        super().__init__(f"cannot make a message from {type(got).__name__} {got!r:.80}: {reason}")

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), vars(self))


def _rebuild(cls: Callable[..., Exception], facts: dict[str, Any]) -> Exception:
    return cls(**facts)  # errors are rebuilt from their keyword-only facts when unpickled


# -- fields: converters copy on the way in, validators check and name the class and field ----

_Validator: TypeAlias = Callable[[Any, "attrs.Attribute[Any]", Any], None]
_Content: TypeAlias = "str | list[str | dict[str, Any]]"


def _fail(
    owner: object, field: attrs.Attribute[Any], expected: str, got: object
) -> MessageFieldError:
    return MessageFieldError(
        message_class=type(owner).__name__, field=field.name, expected=expected, got=got)


def _check(expected: str, ok: Callable[[Any], bool]) -> _Validator:
    def validate(owner: Any, field: attrs.Attribute[Any], value: Any) -> None:
        if not ok(value):
            raise _fail(owner, field, expected, value)
    return validate


# The validators run for every streamed chunk: plain functions, cheapest test first.
def _content_ok(owner: Any, field: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not str and not (isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(block, (str, dict)) for block in value)
    )):
        raise _fail(owner, field, "str or list of str/dict blocks", value)


def _optional_str_ok(owner: Any, field: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(owner, field, "str or None", value)


def _dict_ok(owner: Any, field: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not dict:
        raise _fail(owner, field, "dict", value)


_str_ok: Final = _check("str", lambda value: isinstance(value, str))
_optional_dict_ok: Final = _check(
    "dict or None", lambda value: value is None or isinstance(value, dict))


def _copy_content(value: _Content) -> _Content:
    # Copied, so a caller mutating its blocks later cannot change the message.
    if type(value) is list:
        return [dict(block) if isinstance(block, dict) else block for block in value]
    return value


def _copy_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):
        return dict(value)
    return value  # not a mapping: validation reports it


def _copy_optional_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
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


def _copy_entries(value: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
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


def _copy_tool_calls(value: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return _copy_entries(value, "tool_call")


def _copy_invalid_tool_calls(value: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return _copy_entries(value, "invalid_tool_call")


def _copy_tool_call_chunks(value: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return _copy_entries(value, "tool_call_chunk")


def _entries_ok(kind: str) -> _Validator:
    keys = _ENTRY_KEYS[kind]
    expected = f"list of {kind} dicts with keys {sorted(keys)}"

    def validate(owner: Any, field: attrs.Attribute[Any], value: Any) -> None:
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


# -- the messages ---------------------------------------------------------------------------

@attrs.frozen(repr=False, unsafe_hash=False)
class BaseMessage:
    """The fields every message has; use a subclass.

    ``content`` is a string or a list of strings and content-block dicts
    (``{"type": "text", "text": "..."}``); ``type`` is LangChain's type string.

    >>> HumanMessage("hi").type, AIMessage(content="hello", id="m1").id
    ('human', 'm1')
    """

    type: ClassVar[str]

    content: _Content = attrs.field(converter=_copy_content, validator=_content_ok)
    id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_str_ok)
    additional_kwargs: dict[str, Any] = attrs.field(
        factory=dict, kw_only=True, converter=_copy_dict, validator=_dict_ok)
    response_metadata: dict[str, Any] = attrs.field(
        factory=dict, kw_only=True, converter=_copy_dict, validator=_dict_ok)
    name: str | None = attrs.field(default=None, kw_only=True, validator=_optional_str_ok)

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


_REPR_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _repr_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(name, default)`` of each field in repr order: content, the class's own fields, then
    the common ones (LangChain's order buries tool calls behind empty dicts)."""
    if cls not in _REPR_FIELDS:
        common = [field.name for field in attrs.fields(BaseMessage)]
        fields = {field.name: field for field in attrs.fields(cls)}
        order = ["content", *(name for name in fields if name not in common), *common[1:]]
        _REPR_FIELDS[cls] = tuple((name, _default(fields[name])) for name in order)
    return _REPR_FIELDS[cls]


def _default(field: attrs.Attribute[Any]) -> Any:
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

    tool_call_id: str = attrs.field(kw_only=True, validator=_str_ok)
    status: str = attrs.field(default="success", kw_only=True, validator=_check(
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
    content: _Content = attrs.field(default="", converter=_copy_content, validator=_content_ok)
    tool_calls: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=_copy_tool_calls, validator=_entries_ok("tool_call"))
    invalid_tool_calls: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=_copy_invalid_tool_calls,
        validator=_entries_ok("invalid_tool_call"))
    usage_metadata: dict[str, Any] | None = attrs.field(
        default=None, kw_only=True, converter=_copy_optional_dict, validator=_optional_dict_ok)


@attrs.frozen(repr=False, unsafe_hash=False)
class AIMessageChunk(BaseMessage):
    """A piece of a streamed model reply; pieces add up with ``+``.

    ``tool_call_chunks`` entries are ``{"name", "args" (str piece), "id", "index",
    "type": "tool_call_chunk"}``; ``tool_calls`` and ``invalid_tool_calls`` are derived from
    them on first access. ``chunk_position`` is ``"last"`` on a stream's final chunk.

    >>> AIMessageChunk(content="Hel") + AIMessageChunk(content="lo")
    AIMessageChunk(content='Hello')
    >>> AIMessageChunk(content="a") + [AIMessageChunk(content="b"), AIMessageChunk(content="c")]
    AIMessageChunk(content='abc')
    """

    type: ClassVar[str] = "AIMessageChunk"

    content: _Content = attrs.field(default="", converter=_copy_content, validator=_content_ok)
    usage_metadata: dict[str, Any] | None = attrs.field(
        default=None, kw_only=True, converter=_copy_optional_dict, validator=_optional_dict_ok)
    tool_call_chunks: list[dict[str, Any]] = attrs.field(
        factory=list, kw_only=True, converter=_copy_tool_call_chunks,
        validator=_entries_ok("tool_call_chunk"))
    chunk_position: str | None = attrs.field(
        default=None, kw_only=True, validator=_check(
        "None or 'last'", lambda value: value in (None, "last")))

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """Tool calls whose (partial) ``args`` parse to a dict, from ``tool_call_chunks``.

        >>> piece = {"name": "f", "args": '{"q": "ca', "index": 0}
        >>> chunk = AIMessageChunk(tool_call_chunks=[piece])
        >>> chunk.tool_calls
        [{'name': 'f', 'args': {'q': 'ca'}, 'id': None, 'type': 'tool_call'}]
        """
        return self._derived_tool_calls[0]

    @property
    def invalid_tool_calls(self) -> list[dict[str, Any]]:
        """Tool-call chunks whose ``args`` do not parse to a dict (``error`` is ``None``)."""
        return self._derived_tool_calls[1]

    @functools.cached_property
    def _derived_tool_calls(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Derived once per chunk and only when asked: streaming never pays for parsing.
        return merge.tool_calls_from_chunks(self.tool_call_chunks)

    def __add__(self, other: AIMessageChunk | list[AIMessageChunk]) -> AIMessageChunk:
        if isinstance(other, AIMessageChunk):
            others: Sequence[AIMessageChunk] = (other,)
        elif isinstance(other, list):
            for position, item in enumerate(other):
                if not isinstance(item, AIMessageChunk):
                    raise TypeError(
                        f"can only add AIMessageChunks to an AIMessageChunk; item {position} of "
                        f"the list is {type(item).__name__}: {item!r:.80}")
            if not other:
                return self
            others = other
        else:
            return NotImplemented
        return merge.add_chunks(self, *others)

    def to_message(self) -> AIMessage:
        """The whole message this chunk stands for, with its tool calls parsed.

        >>> AIMessageChunk(content="hi", chunk_position="last").to_message()
        AIMessage(content='hi')
        """
        return AIMessage(
            content=self.content, id=self.id, additional_kwargs=self.additional_kwargs,
            response_metadata=self.response_metadata, name=self.name,
            tool_calls=self.tool_calls, invalid_tool_calls=self.invalid_tool_calls,
            usage_metadata=self.usage_metadata)

    @classmethod
    def of_text(cls, content: str, id: str | None = None) -> AIMessageChunk:
        """A plain text delta, built without re-checking fields known to be valid.

        The hot path of every streaming model: about 3x cheaper than the checked constructor.

        >>> AIMessageChunk.of_text(" Hello", id="r1") == AIMessageChunk(content=" Hello", id="r1")
        True
        """
        if type(content) is not str:
            return cls(content=content, id=id)
        chunk = object.__new__(cls)
        put = object.__setattr__
        put(chunk, "content", content)
        put(chunk, "id", id)
        put(chunk, "additional_kwargs", {})
        put(chunk, "response_metadata", {})
        put(chunk, "name", None)
        put(chunk, "usage_metadata", None)
        put(chunk, "tool_call_chunks", [])
        put(chunk, "chunk_position", None)
        return chunk

    @classmethod
    def from_message(cls, message: AIMessage) -> AIMessageChunk:
        """One chunk carrying a whole message: how a non-streaming reply is streamed.

        Tool calls become chunks with their ``args`` as JSON and ``index`` their position.

        >>> AIMessageChunk.from_message(AIMessage("hi")).content
        'hi'
        """
        calls = [(c["name"], json.dumps(c["args"]), c["id"]) for c in message.tool_calls]
        calls += [(c["name"], c["args"], c["id"]) for c in message.invalid_tool_calls]
        return cls(
            content=message.content, id=message.id,
            additional_kwargs=message.additional_kwargs,
            response_metadata=message.response_metadata, name=message.name,
            usage_metadata=message.usage_metadata,
            tool_call_chunks=[{"name": name, "args": args, "id": id_, "index": index}
                              for index, (name, args, id_) in enumerate(calls)])


_M = TypeVar("_M", bound=BaseMessage)


@overload
def message_chunk_to_message(chunk: AIMessageChunk) -> AIMessage: ...
@overload
def message_chunk_to_message(chunk: _M) -> _M: ...
def message_chunk_to_message(chunk: BaseMessage) -> BaseMessage:
    """The whole message for a chunk; any other message is returned as it is.

    >>> message_chunk_to_message(AIMessageChunk(content="a") + AIMessageChunk(content="b"))
    AIMessage(content='ab')
    """
    return chunk.to_message() if isinstance(chunk, AIMessageChunk) else chunk


# -- conversions ----------------------------------------------------------------------------

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
