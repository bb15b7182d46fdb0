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
:mod:`nodes.merge`: LangChain's, except that repeated labels such as ``model_name`` are not
concatenated. Tool-call arguments are parsed only when ``tool_calls`` is first read, so a model
can stream thousands of chunks without parsing anything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, overload

import attrs

from nodes import merge
from runtime.errors import RilletError, WireFormatError

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
        self.message_class, self.field, self.expected, self.got = message_class, field, expected, got
        super().__init__(
            f"{message_class}.{field} expected {expected}, got {type(got).__name__}: {got!r:.80}"
        )

    def __reduce__(self) -> Any:
        return (_rebuild, (MessageFieldError, dict(
            message_class=self.message_class, field=self.field, expected=self.expected,
            got=self.got)))


class MessageCoercionError(RilletError, TypeError):
    """A value cannot be turned into a message; ``reason`` says why.

    >>> str(MessageCoercionError(got=("robot", "hi"), reason="unknown role 'robot'"))
    "cannot make a message from tuple ('robot', 'hi'): unknown role 'robot'"
    """

    def __init__(self, *, got: object, reason: str) -> None:
        self.got, self.reason = got, reason
        super().__init__(f"cannot make a message from {type(got).__name__} {got!r:.80}: {reason}")

    def __reduce__(self) -> Any:
        return (_rebuild, (MessageCoercionError, dict(got=self.got, reason=self.reason)))


def _rebuild(cls: Callable[..., Exception], kwargs: dict[str, Any]) -> Exception:
    return cls(**kwargs)


# -- field converters: check and copy on the way in, naming the class and field on error ------

_Converter: TypeAlias = Callable[[Any, object, "attrs.Attribute[Any]"], Any]


def _fail(owner: object, field: attrs.Attribute[Any], expected: str, got: object) -> MessageFieldError:
    return MessageFieldError(
        message_class=type(owner).__name__, field=field.name, expected=expected, got=got)


def _content(value: Any, owner: object, field: attrs.Attribute[Any]) -> str | list[Any]:
    if type(value) is str:  # the streaming hot path
        return value
    if isinstance(value, list) and all(isinstance(block, (str, dict)) for block in value):
        # Copied, so a caller mutating its blocks later cannot change the message.
        return [dict(block) if isinstance(block, dict) else block for block in value]
    if isinstance(value, str):
        return str(value)
    raise _fail(owner, field, "str or list of str/dict blocks", value)


def _typed(expected: str, *types: type) -> _Converter:
    """A converter accepting instances of ``types``; mappings are copied into dicts."""
    def convert(value: Any, owner: object, field: attrs.Attribute[Any]) -> Any:
        if isinstance(value, types):
            return value if value is None or isinstance(value, str) else dict(value)
        raise _fail(owner, field, expected, value)
    return convert


_optional_str: Final = _typed("str or None", str, type(None))
_optional_dict: Final = _typed("dict or None", Mapping, type(None))


def _choice(*allowed: str | None) -> _Converter:
    def check(value: Any, owner: object, field: attrs.Attribute[Any]) -> Any:
        if value in allowed:
            return value
        raise _fail(owner, field, " or ".join(map(repr, allowed)), value)
    return check


# Each entry kind: its keys, with the types each key accepts.
_STR_OR_NONE: Final = (str, type(None))
_ENTRY_KINDS: Final[Mapping[str, Mapping[str, tuple[type, ...]]]] = {
    "tool_call": {"name": (str,), "args": (dict,), "id": _STR_OR_NONE},
    "invalid_tool_call": {"name": _STR_OR_NONE, "args": _STR_OR_NONE, "id": _STR_OR_NONE,
                          "error": _STR_OR_NONE},
    "tool_call_chunk": {"name": _STR_OR_NONE, "args": _STR_OR_NONE, "id": _STR_OR_NONE,
                        "index": (int, type(None))},
}


def _entries(kind: str) -> _Converter:
    """A converter for a list of tool-call dicts: keys checked, missing ones ``None``."""
    spec = _ENTRY_KINDS[kind]
    expected = f"list of {kind} dicts with keys {sorted(spec)}"

    def convert(value: Any, owner: object, field: attrs.Attribute[Any]) -> list[dict[str, Any]]:
        if type(value) is list and not value:
            return []
        if not isinstance(value, (list, tuple)):
            raise _fail(owner, field, expected, value)
        entries = []
        for item in value:
            if not isinstance(item, Mapping) or not set(item) <= {*spec, "type"} or any(
                not isinstance(item.get(key), types) or isinstance(item.get(key), bool)
                for key, types in spec.items()
            ) or item.get("type", kind) != kind:
                raise _fail(owner, field, expected, item)
            entry = {key: item.get(key) for key in spec}
            if kind == "tool_call":
                entry["args"] = dict(entry["args"])
            entry["type"] = kind
            entries.append(entry)
        return entries
    return convert


def _field(convert: _Converter, **kwargs: Any) -> Any:
    return attrs.field(converter=attrs.Converter(convert, takes_self=True, takes_field=True),
                       **kwargs)


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
    _title: ClassVar[str]

    content: str | list[str | dict[str, Any]] = _field(_content)
    id: str | None = _field(_optional_str, default=None, kw_only=True)
    additional_kwargs: dict[str, Any] = _field(_typed("dict", Mapping), factory=dict, kw_only=True)
    response_metadata: dict[str, Any] = _field(_typed("dict", Mapping), factory=dict, kw_only=True)
    name: str | None = _field(_optional_str, default=None, kw_only=True)

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
        title = f" {self._title} "
        bar = "=" * ((80 - len(title)) // 2)
        lines = [f"{bar}{title}{bar}{'=' * (len(title) % 2)}"]
        if self.name is not None:
            lines.append(f"Name: {self.name}")
        lines += ["", self.text]
        return "\n".join(lines)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in _repr_order(type(self))
            if name == "content" or getattr(self, name) != _defaults(type(self))[name]
        )
        return f"{type(self).__name__}({shown})"


@functools.cache
def _repr_order(cls: type[BaseMessage]) -> tuple[str, ...]:
    # content first, then the class's own fields, then the common ones (LangChain's order
    # would bury tool calls behind empty dicts).
    common = [field.name for field in attrs.fields(BaseMessage)]
    own = [field.name for field in attrs.fields(cls) if field.name not in common]
    return ("content", *own, *common[1:])


@functools.cache
def _defaults(cls: type[BaseMessage]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for field in attrs.fields(cls):
        default = field.default
        defaults[field.name] = default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[misc]
    return defaults


@attrs.frozen(repr=False, unsafe_hash=False)
class HumanMessage(BaseMessage):
    """A message from the user.

    >>> HumanMessage("hi")
    HumanMessage(content='hi')
    """

    type: ClassVar[str] = "human"
    _title: ClassVar[str] = "Human Message"


@attrs.frozen(repr=False, unsafe_hash=False)
class SystemMessage(BaseMessage):
    """Instructions for the model.

    >>> SystemMessage("You are terse.").type
    'system'
    """

    type: ClassVar[str] = "system"
    _title: ClassVar[str] = "System Message"


@attrs.frozen(repr=False, unsafe_hash=False)
class ToolMessage(BaseMessage):
    """The result of a tool call, answering the call with id ``tool_call_id``.

    >>> ToolMessage("42", tool_call_id="call_1")
    ToolMessage(content='42', tool_call_id='call_1')
    """

    type: ClassVar[str] = "tool"
    _title: ClassVar[str] = "Tool Message"

    tool_call_id: str = _field(_typed("str", str), kw_only=True)
    status: str = _field(_choice("success", "error"), default="success", kw_only=True)


@attrs.frozen(repr=False, unsafe_hash=False)
class AIMessage(BaseMessage):
    """A whole model reply, possibly asking for tool calls.

    ``tool_calls`` entries are ``{"name", "args" (dict), "id", "type": "tool_call"}``;
    ``usage_metadata`` counts tokens (``input_tokens``, ``output_tokens``, ``total_tokens``).

    >>> AIMessage(content="", tool_calls=[{"name": "search", "args": {"q": "cats"}, "id": "c1"}])
    AIMessage(content='', tool_calls=[{'name': 'search', 'args': {'q': 'cats'}, 'id': 'c1', 'type': 'tool_call'}])
    """

    type: ClassVar[str] = "ai"
    _title: ClassVar[str] = "Ai Message"

    # An empty reply that only calls tools is common: content may be left out.
    content: str | list[str | dict[str, Any]] = _field(_content, default="")
    tool_calls: list[dict[str, Any]] = _field(_entries("tool_call"), factory=list, kw_only=True)
    invalid_tool_calls: list[dict[str, Any]] = _field(
        _entries("invalid_tool_call"), factory=list, kw_only=True)
    usage_metadata: dict[str, Any] | None = _field(_optional_dict, default=None, kw_only=True)


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
    _title: ClassVar[str] = "AIMessageChunk"

    content: str | list[str | dict[str, Any]] = _field(_content, default="")
    usage_metadata: dict[str, Any] | None = _field(_optional_dict, default=None, kw_only=True)
    tool_call_chunks: list[dict[str, Any]] = _field(
        _entries("tool_call_chunk"), factory=list, kw_only=True)
    chunk_position: str | None = _field(_choice(None, "last"), default=None, kw_only=True)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """Tool calls whose (partial) ``args`` parse to a dict, from ``tool_call_chunks``.

        >>> AIMessageChunk(tool_call_chunks=[{"name": "f", "args": '{"q": "ca', "index": 0}]).tool_calls
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
        if not self.tool_call_chunks:
            return [], []
        from nodes.partial_json import parse_partial_json

        valid: list[dict[str, Any]] = []
        invalid: list[dict[str, Any]] = []
        for chunk in self.tool_call_chunks:
            raw = chunk["args"]
            try:
                args = parse_partial_json(raw) if raw else {}
            except ValueError:
                args = None
            if isinstance(args, dict):
                valid.append({"name": chunk["name"] or "", "args": args, "id": chunk["id"],
                              "type": "tool_call"})
            else:
                invalid.append({"name": chunk["name"], "args": raw, "id": chunk["id"],
                                "error": None, "type": "invalid_tool_call"})
        return valid, invalid

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
        return _add_chunks(self, others)

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


def _add_chunks(first: AIMessageChunk, others: Sequence[AIMessageChunk]) -> AIMessageChunk:
    chunks = (first, *others)
    return type(first)(
        content=merge.merge_content(*(chunk.content for chunk in chunks)),
        id=merge.merge_ids(*(chunk.id for chunk in chunks)),
        additional_kwargs=merge.merge_dicts(
            *(chunk.additional_kwargs for chunk in chunks), field="additional_kwargs"),
        response_metadata=merge.merge_dicts(
            *(chunk.response_metadata for chunk in chunks), field="response_metadata"),
        name=next((chunk.name for chunk in chunks if chunk.name is not None), None),
        usage_metadata=merge.merge_usage(*(chunk.usage_metadata for chunk in chunks)),
        tool_call_chunks=merge.merge_tool_call_chunks(
            *(chunk.tool_call_chunks for chunk in chunks)),
        chunk_position="last" if any(c.chunk_position == "last" for c in chunks) else None,
    )


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

    >>> coerce_to_message(("assistant", "hello")), coerce_to_message({"role": "user", "content": "hi"})
    (AIMessage(content='hello'), HumanMessage(content='hi'))

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


def _class_for(role: object, classes: Mapping[str, type[BaseMessage]], got: object) -> type[BaseMessage]:
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

    >>> messages_to_dict(HumanMessage("hi"))
    {'type': 'human', 'content': 'hi', 'id': None, 'additional_kwargs': {}, 'response_metadata': {}, 'name': None}
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
