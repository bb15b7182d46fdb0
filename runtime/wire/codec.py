"""The value codec: a closed set of tagged types on msgpack, never pickle.

The runtime knows nothing about LLMs, so components register the types they put on the wire::

    @register_wire_type
    @attrs.frozen
    class Point:
        x: int
        y: int

    packb([Point(1, 2), ("a", b"b")])       # -> bytes
    unpackb(packb(Point(1, 2)))             # -> Point(x=1, y=2)

``encode_value`` turns a value into a msgpack-ready tree and ``decode_value`` reverses it
exactly. Plain values travel as themselves; everything msgpack cannot tell apart on its own
becomes a map tagged with ``"__rillet__"``:

=====================================  ==================================================
value                                  tree
=====================================  ==================================================
``None``, bool, float, str, bytes      the value itself
int within 64 bits                     the value itself
a larger int                           ``{"__rillet__": "int", "bytes": <two's complement>}``
list                                   list
tuple                                  ``{"__rillet__": "tuple", "items": [...]}``
dict with str keys                     the dict
any other dict (non-str keys, or a     ``{"__rillet__": "dict", "items": [[key, value], ...]}``
user key ``"__rillet__"``)
a registered type                      ``{"__rillet__": tag, field: value, ...}``
=====================================  ==================================================

Anything else raises ``WireFormatError`` naming its type and where it was found. Exceptions
never go on the wire: send ``error_info(exc)`` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs
import msgpack

from rillet.runtime.errors import WireFormatError

__all__ = [
    "ErrorInfo",
    "decode_value",
    "encode_value",
    "error_info",
    "packb",
    "register_wire_module",
    "register_wire_type",
    "unpackb",
]

_TAG = "__rillet__"

# Values that are their own tree. int is not here: only 64-bit ints fit msgpack (see _encode).
_PLAIN: frozenset[type] = frozenset({str, float, bool, type(None), bytes})
# What msgpack hands back as itself; every int it decodes is a plain int.
_DECODED_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes})
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

_C = TypeVar("_C", bound=type)


@attrs.frozen
class _Codec:
    """How one registered type becomes a tagged map and back."""

    cls: type
    tag: str
    # (attribute name, __init__ argument name) for attrs classes; None means use the hooks.
    fields: tuple[tuple[str, str], ...] | None
    to_dict: Callable[[Any], dict[str, Any]] | None
    from_dict: Callable[[dict[str, Any]], Any] | None


_BY_CLASS: dict[type, _Codec] = {}
_BY_TAG: dict[str, _Codec] = {}
_BUILTIN_TAGS = ("dict", "int", "tuple")
# Tags whose module registers them when imported: a client that imported nothing but the
# runtime still decodes a message the first time one arrives, and the runtime never imports
# the components up front (it knows nothing about LLMs).
_MODULE_OF_TAG: dict[str, str] = {}


def register_wire_module(module: str, *tags: str) -> None:
    """Declare that importing ``module`` registers ``tags``: decoding imports it on first sight.

    >>> register_wire_module("rillet.nodes.registry", "AIMessageChunk")  # the standard types
    """
    for tag in tags:
        _MODULE_OF_TAG.setdefault(tag, module)


register_wire_module("rillet.nodes.registry", "AIMessage", "AIMessageChunk", "HumanMessage",
                     "SystemMessage", "ToolMessage", "StringPromptValue", "ChatPromptValue")


def _codec_for(tag: str) -> _Codec | None:
    codec = _BY_TAG.get(tag)
    if codec is None:
        module = _MODULE_OF_TAG.pop(tag, None)  # popped: each module is tried once per tag
        if module is not None:
            try:
                importlib.import_module(module)
            except ImportError:
                return None  # not installed here: the tag stays unknown
            codec = _BY_TAG.get(tag)
    return codec


@overload
def register_wire_type(
    cls: _C,
    *,
    tag: str | None = None,
    to_dict: Callable[[Any], dict[str, Any]] | None = None,
    from_dict: Callable[[dict[str, Any]], Any] | None = None,
) -> _C: ...


@overload
def register_wire_type(
    cls: None = None,
    *,
    tag: str | None = None,
    to_dict: Callable[[Any], dict[str, Any]] | None = None,
    from_dict: Callable[[dict[str, Any]], Any] | None = None,
) -> Callable[[_C], _C]: ...


def register_wire_type(
    cls: _C | None = None,
    *,
    tag: str | None = None,
    to_dict: Callable[[Any], dict[str, Any]] | None = None,
    from_dict: Callable[[dict[str, Any]], Any] | None = None,
) -> _C | Callable[[_C], _C]:
    """Let values of ``cls`` go on the wire, tagged with ``tag`` (default: the class name).

    An attrs class needs no hooks: its ``__init__`` fields are encoded one by one (nested
    values recursively) and decoded by calling the class, so its validators and converters
    run again. Any other class passes ``to_dict`` (returning a dict with str keys, whose
    values are encoded recursively) and ``from_dict`` (receiving those values decoded).
    Only the exact class is registered, not its subclasses.

    Works as a decorator, bare or with keywords::

        @register_wire_type
        @attrs.frozen
        class Point:
            x: int
            y: int

        register_wire_type(Fraction, tag="fraction",
                           to_dict=lambda f: {"n": f.numerator, "d": f.denominator},
                           from_dict=lambda d: Fraction(d["n"], d["d"]))

    Raises:
        TypeError: ``cls`` is not a class, or is not an attrs class and lacks a hook.
        ValueError: the tag is reserved or taken by another class, or ``cls`` is already
            registered under another tag. Registering the same class under the same tag
            again is allowed (the latest hooks win).
    """
    if cls is None:

        def decorate(cls: _C) -> _C:
            return register_wire_type(cls, tag=tag, to_dict=to_dict, from_dict=from_dict)

        return decorate
    if not isinstance(cls, type):
        raise TypeError(f"register_wire_type expects a class, got {type(cls).__name__}")
    tag = cls.__name__ if tag is None else tag
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"a wire tag must be a non-empty str, got {tag!r}")
    if tag in _BUILTIN_TAGS:
        raise ValueError(f"wire tag {tag!r} is reserved; pass register_wire_type(..., tag=...)")
    taken = _BY_TAG.get(tag)
    if taken is not None and taken.cls is not cls:
        raise ValueError(
            f"wire tag {tag!r} is already used by {taken.cls.__module__}.{taken.cls.__qualname__}; "
            f"pass register_wire_type(..., tag=...) to choose another"
        )
    previous = _BY_CLASS.get(cls)
    if previous is not None and previous.tag != tag:
        raise ValueError(f"{cls.__qualname__} is already registered with wire tag {previous.tag!r}")

    fields: tuple[tuple[str, str], ...] | None = None
    if to_dict is None and from_dict is None:
        fields = _init_fields(cls)
    elif to_dict is None or from_dict is None:
        raise TypeError(
            f"register {cls.__qualname__} with both to_dict= and from_dict=, or neither"
        )

    codec = _Codec(cls=cls, tag=tag, fields=fields, to_dict=to_dict, from_dict=from_dict)
    _BY_CLASS[cls] = codec
    _BY_TAG[tag] = codec
    return cls


def _init_fields(cls: type) -> tuple[tuple[str, str], ...]:
    if not attrs.has(cls):
        raise TypeError(f"{cls.__qualname__} is not an attrs class; pass to_dict= and from_dict=")
    # Only __init__ arguments travel: the class recomputes the rest when decoding.
    return tuple((f.name, f.alias) for f in attrs.fields(cls) if f.init)


def encode_value(value: Any) -> Any:
    """Turn ``value`` into a msgpack-ready tree that ``decode_value`` turns back exactly.

    >>> encode_value({"a": (1, "x")})
    {'a': {'__rillet__': 'tuple', 'items': [1, 'x']}}

    Raises:
        WireFormatError: a value inside is of no wire type, e.g.
            ``cannot encode value of type 'Foo' at $.data.chunk; register it with
            register_wire_type``.
    """
    if type(value) in _PLAIN:
        return value
    try:
        return _encode(value)
    except _Unencodable as exc:
        raise exc.to_error() from None


def decode_value(tree: Any) -> Any:
    """Turn a tree made by ``encode_value`` back into the value.

    >>> decode_value({"a": {"__rillet__": "tuple", "items": [1, "x"]}})
    {'a': (1, 'x')}

    Raises:
        WireFormatError: the tree names an unknown tag (``unknown wire type 'Foo'; expected
            one of [...]``), a tagged map is malformed, or a registered class rejects its
            fields.
    """
    if type(tree) in _DECODED_PLAIN:
        return tree
    return _decode(tree)


def packb(value: Any) -> bytes:
    """Encode ``value`` and pack it with msgpack.

    >>> unpackb(packb({"k": (1, 2)}))
    {'k': (1, 2)}

    Raises:
        WireFormatError: as ``encode_value``.
    """
    data: bytes = msgpack.packb(encode_value(value))
    return data


def unpackb(data: bytes) -> Any:
    """Unpack one msgpack value from ``data`` and decode it.

    Raises:
        WireFormatError: ``data`` is not exactly one msgpack value (truncated, trailing
            bytes, invalid UTF-8, ...) or does not decode, as ``decode_value``.
    """
    try:
        tree = msgpack.unpackb(data, raw=False)
    except ValueError as exc:  # msgpack's FormatError, StackError and ExtraData are ValueErrors
        raise WireFormatError(f"not a msgpack value: {str(exc) or type(exc).__name__}") from exc
    return decode_value(tree)


@register_wire_type
@attrs.frozen(kw_only=True)
class ErrorInfo:
    """What crosses the wire in place of an exception: its type name and message.

    >>> error_info(KeyError("missing"))
    ErrorInfo(type='KeyError', message="'missing'")
    """

    type: str
    message: str


def error_info(exc: BaseException) -> ErrorInfo:
    """Describe ``exc`` as an ``ErrorInfo``; the exception itself never goes on the wire.

    >>> error_info(ValueError("bad chunk"))
    ErrorInfo(type='ValueError', message='bad chunk')
    """
    return ErrorInfo(type=type(exc).__name__, message=str(exc))


class _Unencodable(Exception):
    """Raised inside the encoder; each container on the way out adds its part of the path."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.path: list[str] = []  # innermost first

    def to_error(self) -> WireFormatError:
        where = "$" + "".join(reversed(self.path))
        name = type(self.value).__name__
        if isinstance(self.value, BaseException):
            hint = "exceptions never go on the wire; send error_info(exc) instead"
        else:
            hint = "register it with register_wire_type"
        return WireFormatError(f"cannot encode value of type {name!r} at {where}; {hint}")


def _key_path(key: object) -> str:
    return f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"


def _encode(value: Any) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is dict:
        return _encode_dict(value)
    if cls is list:
        return _encode_list(value)
    if cls is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        # Two's complement bytes, not a decimal string: str(int) is capped at 4300 digits.
        return {
            _TAG: "int",
            "bytes": value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True),
        }
    if cls is tuple:
        return {_TAG: "tuple", "items": _encode_list(value)}
    codec = _BY_CLASS.get(cls)
    if codec is None:
        raise _Unencodable(value)
    if codec.fields is None:
        return _encode_with_hook(codec, value)
    out: dict[str, Any] = {_TAG: codec.tag}
    name = ""
    try:
        for name, alias in codec.fields:
            item = getattr(value, name)
            out[alias] = item if type(item) in _PLAIN else _encode(item)
    except _Unencodable as exc:
        exc.path.append(f".{name}")
        raise
    return out


def _encode_with_hook(codec: _Codec, value: Any) -> dict[str, Any]:
    assert codec.to_dict is not None  # registration guarantees hooks when there are no fields
    fields = codec.to_dict(value)
    if type(fields) is not dict or not all(type(key) is str for key in fields) or _TAG in fields:
        raise TypeError(
            f"to_dict for wire type {codec.tag!r} must return a dict with str keys "
            f"other than {_TAG!r}, got {fields!r:.80}"
        )
    out = _encode_dict(fields)
    return {_TAG: codec.tag, **out}


def _encode_list(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    try:
        return [item if type(item) in _PLAIN else _encode(item) for item in items]
    except _Unencodable:
        pass
    # Slow path, only on failure: the comprehension is faster than a loop that tracks the
    # index, so find the failing item again to name it in the error.
    for index, item in enumerate(items):
        try:
            _encode(item)
        except _Unencodable as exc:
            exc.path.append(f"[{index}]")
            raise
    raise AssertionError("unreachable: an item failed to encode once but not twice")


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    if _TAG in value:
        return _encode_pairs(value)  # escape a user key that looks like our tag
    out: dict[str, Any] = {}
    key: Any = None
    try:
        for key, item in value.items():
            if type(key) is not str:
                break
            out[key] = item if type(item) in _PLAIN else _encode(item)
        else:
            return out
    except _Unencodable as exc:
        exc.path.append(_key_path(key))
        raise
    return _encode_pairs(value)  # a key that is not a str: msgpack maps would lose its type


def _encode_pairs(value: dict[Any, Any]) -> dict[str, Any]:
    pairs = []
    key: Any = None
    try:
        for key, item in value.items():
            pairs.append([_encode(key), _encode(item)])
    except _Unencodable as exc:
        exc.path.append(f"[{key!r}]")
        raise
    return {_TAG: "dict", "items": pairs}


def _decode(tree: Any) -> Any:
    cls = type(tree)
    if cls in _DECODED_PLAIN:
        return tree
    if cls is dict:
        if _TAG in tree:
            return _decode_tagged(tree)
        return {k: v if type(v) in _DECODED_PLAIN else _decode(v) for k, v in tree.items()}
    if cls is list:
        return [v if type(v) in _DECODED_PLAIN else _decode(v) for v in tree]
    raise WireFormatError(f"cannot decode a wire tree holding a {cls.__name__}: {tree!r:.80}")


def _decode_tagged(tree: dict[str, Any]) -> Any:
    tag = tree[_TAG]
    codec = _codec_for(tag) if type(tag) is str else None
    try:
        if codec is not None:
            fields = {k: _decode(v) for k, v in tree.items() if k != _TAG}
            if codec.from_dict is not None:
                return codec.from_dict(fields)
            return codec.cls(**fields)
        if tag == "tuple":
            return tuple(_decode_items(tree))
        if tag == "dict":
            return dict(_decode_items(tree))  # pairs, already decoded; a list key is a TypeError
        if tag == "int" and type(tree.get("bytes")) is bytes:
            return int.from_bytes(tree["bytes"], "big", signed=True)
    except WireFormatError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        # The class's own checks (attrs validators, from_dict) rejected the fields, or a
        # tagged dict has an unhashable key.
        raise WireFormatError(f"cannot decode wire type {tag!r}: {exc}") from exc
    if tag in _BUILTIN_TAGS:
        raise WireFormatError(f"malformed wire value tagged {tag!r}: {tree!r:.80}")
    known = sorted([*_BY_TAG, *_BUILTIN_TAGS])
    raise WireFormatError(f"unknown wire type {tag!r}; expected one of {known}")


def _decode_items(tree: dict[str, Any]) -> list[Any]:
    items = tree.get("items")
    if type(items) is not list or len(tree) != 2:
        raise WireFormatError(f"malformed wire value tagged {tree[_TAG]!r}: {tree!r:.80}")
    if tree[_TAG] == "dict" and not all(type(p) is list and len(p) == 2 for p in items):
        raise WireFormatError(f"malformed wire value tagged 'dict': {tree!r:.80}")
    return [_decode(item) for item in items]
