from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rillet.runtime.errors import WireFormatError
from rillet.runtime.wire.codec import (
    ErrorInfo,
    decode_value,
    encode_value,
    error_info,
    packb,
    register_wire_type,
    unpackb,
)


@register_wire_type(tag="test_wire.Point")
@attrs.frozen
class Point:
    x: Any
    y: Any = None


@register_wire_type(tag="test_wire.Box")
@attrs.define
class Box:
    """Mutable, with a private field (init argument ``label``) and a computed one."""

    items: list[Any]
    _label: str = "box"
    size: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.size = len(self.items)


@attrs.frozen(kw_only=True)
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


register_wire_type(Positive, tag="test_wire.Positive")
register_wire_type(
    Fraction,
    tag="test_wire.Fraction",
    to_dict=lambda f: {"n": f.numerator, "d": f.denominator},
    from_dict=lambda d: Fraction(d["n"], d["d"]),
)


class Unregistered:
    pass


def strict(value: Any) -> Any:
    """A view of ``value`` that also compares types, so 1 != 1.0 != True and [] != ()."""
    if isinstance(value, dict):
        return ("dict", [(strict(k), strict(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [strict(v) for v in value])
    if attrs.has(type(value)):
        return (
            type(value).__name__,
            [strict(getattr(value, f.name)) for f in attrs.fields(type(value))],
        )
    return (type(value).__name__, value)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.integers(min_value=-(2**200), max_value=-(2**63))
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.fractions()
)
keys = (
    st.text()
    | st.integers()
    | st.just("__rillet__")
    | st.tuples(st.integers(), st.text())
    | st.binary()
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(keys, children, max_size=5)
        | st.dictionaries(st.sampled_from(["__rillet__", "items", "a"]), children, max_size=3)
        | st.builds(Point, children, children)
        | st.builds(Box, st.lists(children, max_size=3), st.text(max_size=5))
    )


values = st.recursive(scalars, containers, max_leaves=25)


@settings(database=None)
@given(values)
def test_decode_inverts_encode_exactly(value: Any) -> None:
    """Any nesting of plain values, tuples, odd dicts and registered types comes back as it was."""
    assert strict(decode_value(encode_value(value))) == strict(value)


@settings(database=None)
@given(values)
def test_packb_round_trips_and_trees_hold_only_msgpack_types(value: Any) -> None:
    """The tree packs with strict_types (no tuple or subclass sneaks through as a list)."""
    tree = encode_value(value)
    msgpack.packb(tree, strict_types=True)
    assert strict(unpackb(packb(value))) == strict(value)


def test_plain_values_are_their_own_tree() -> None:
    """Scalars, str-keyed dicts and lists travel without tags."""
    value = {"s": "x", "i": -5, "f": 1.5, "b": True, "n": None, "raw": b"\x00", "l": [1, "a"]}
    assert encode_value(value) == value
    assert encode_value("chunk") == "chunk"


def test_tuples_and_non_str_keys_are_tagged() -> None:
    """msgpack cannot tell a tuple from a list or keep int keys, so both get a tag."""
    assert encode_value((1, (2,))) == {
        "__rillet__": "tuple",
        "items": [1, {"__rillet__": "tuple", "items": [2]}],
    }
    assert encode_value({1: "a"}) == {"__rillet__": "dict", "items": [[1, "a"]]}
    assert unpackb(packb({(1, "x"): {2: 3}})) == {(1, "x"): {2: 3}}


def test_a_user_dict_that_looks_tagged_is_escaped() -> None:
    """A user key "__rillet__" never reads back as a tag, however tag-like the dict is."""
    sneaky = {"__rillet__": "tuple", "items": [1, 2]}
    assert encode_value(sneaky)["__rillet__"] == "dict"
    assert unpackb(packb([sneaky, {"__rillet__": "test_wire.Point", "x": 1}])) == [
        sneaky,
        {"__rillet__": "test_wire.Point", "x": 1},
    ]


@pytest.mark.parametrize(
    "n",
    [2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**5000, -(10**5000)],
    ids=["i64_max", "u64_max", "u64_max+1", "i64_min", "i64_min-1", "10**5000", "-10**5000"],
)
def test_ints_of_any_size_round_trip(n: int) -> None:
    """Ints past msgpack's 64 bits travel as bytes (not decimal: str(int) caps at 4300 digits)."""
    assert unpackb(packb(n)) == n
    assert unpackb(packb([n])) == [n]


def test_attrs_classes_travel_by_init_arguments() -> None:
    """A private field travels under its init name; a computed field is recomputed."""
    box = Box([Point(1, (2, 3)), None], "crate")
    tree = encode_value(box)
    assert tree == {
        "__rillet__": "test_wire.Box",
        "items": [
            {
                "__rillet__": "test_wire.Point",
                "x": 1,
                "y": {"__rillet__": "tuple", "items": [2, 3]},
            },
            None,
        ],
        "label": "crate",
    }
    decoded = decode_value(tree)
    assert decoded == box and decoded.size == 2


def test_hooks_encode_their_dicts_recursively() -> None:
    """to_dict may return nested registered values; from_dict gets them decoded."""

    @attrs.frozen
    class Span:
        start: Fraction
        end: Fraction

    register_wire_type(
        Span,
        tag="test_wire.Span",
        to_dict=lambda s: {"bounds": (s.start, s.end)},
        from_dict=lambda d: Span(*d["bounds"]),
    )
    span = Span(Fraction(1, 3), Fraction(2, 3))
    assert unpackb(packb({"span": span})) == {"span": span}


def test_registering_again_is_idempotent_and_conflicts_are_refused() -> None:
    """Same class and tag: fine. A taken tag, a second tag or a reserved tag: ValueError."""
    assert register_wire_type(Point, tag="test_wire.Point") is Point

    @attrs.frozen
    class Point2:
        x: int

    with pytest.raises(
        ValueError, match=r"^wire tag 'test_wire\.Point' is already used by .*Point; pass"
    ):
        register_wire_type(Point2, tag="test_wire.Point")
    with pytest.raises(ValueError, match=r"already registered with wire tag 'test_wire\.Point'"):
        register_wire_type(Point, tag="test_wire.Other")
    with pytest.raises(ValueError, match=r"^wire tag 'tuple' is reserved"):
        register_wire_type(Point2, tag="tuple")


def test_a_plain_class_needs_both_hooks() -> None:
    """Without attrs fields there is nothing to encode unless the caller says how."""
    with pytest.raises(
        TypeError, match=r"^Unregistered is not an attrs class; pass to_dict= and from_dict=$"
    ):
        register_wire_type(Unregistered)
    with pytest.raises(TypeError, match="both to_dict= and from_dict=, or neither"):
        register_wire_type(Unregistered, to_dict=lambda u: {})


def test_unencodable_values_are_named_with_their_path() -> None:
    """The error says what the value is and where it sits, from the root ``$``."""
    cases: list[tuple[Any, str]] = [
        (Unregistered(), "$"),
        ({"data": {"chunk": Unregistered()}}, "$.data.chunk"),
        ({"data": [1, 2, (3, Unregistered())]}, "$.data[2][1]"),
        ({"my key": {5: Unregistered()}}, "$['my key'][5]"),
        (Point(x=[Unregistered()]), "$.x[0]"),
        ({"__rillet__": Unregistered()}, "$['__rillet__']"),
    ]
    for value, path in cases:
        message = (
            f"cannot encode value of type 'Unregistered' at {path}; "
            "register it with register_wire_type"
        )
        with pytest.raises(WireFormatError, match=f"^{re.escape(message)}$"):
            encode_value(value)


def test_only_exact_types_encode() -> None:
    """A subclass could hold more than its base, so it is refused rather than truncated."""

    class Tag(str):
        pass

    @attrs.frozen
    class SubPoint(Point):
        z: int = 0

    with pytest.raises(WireFormatError, match=r"^cannot encode value of type 'Tag' at \$\[0\];"):
        encode_value([Tag("x")])
    with pytest.raises(WireFormatError, match=r"type 'SubPoint' at \$;"):
        encode_value(SubPoint(1))


def test_exceptions_point_to_error_info() -> None:
    """Exceptions never go on the wire; the error says what to send instead."""
    with pytest.raises(
        WireFormatError,
        match=r"^cannot encode value of type 'ValueError' at \$\.error; "
        r"exceptions never go on the wire; send error_info\(exc\) instead$",
    ):
        encode_value({"error": ValueError("boom")})
    info = error_info(KeyError("missing"))
    assert info == ErrorInfo(type="KeyError", message="'missing'")
    assert unpackb(packb({"error": info})) == {"error": info}


def test_unknown_tags_list_the_known_ones() -> None:
    """An unknown tag names itself and every tag this process knows."""
    with pytest.raises(
        WireFormatError, match=r"^unknown wire type 'Foo'; expected one of \[(.*)\]$"
    ) as info:
        decode_value([{"__rillet__": "Foo"}])
    known = info.value.args[0].split("expected one of ")[1]
    assert "'ErrorInfo'" in known and "'test_wire.Point'" in known and "'tuple'" in known


@pytest.mark.parametrize(
    "tree",
    [
        {"__rillet__": "tuple"},
        {"__rillet__": "tuple", "items": "ab"},
        {"__rillet__": "dict", "items": [[1]]},
        {"__rillet__": "dict", "items": [[[1], 2]]},
        {"__rillet__": "int", "bytes": "12"},
        {"__rillet__": 7},
    ],
)
def test_malformed_builtin_tags_raise_wire_errors(tree: Any) -> None:
    """Bad input from the wire becomes WireFormatError, not a stray TypeError."""
    with pytest.raises(WireFormatError):
        decode_value(tree)


def test_a_class_that_rejects_its_fields_raises_a_wire_error() -> None:
    """Decoding calls the class, so its validators guard the wire too."""
    with pytest.raises(
        WireFormatError, match=r"^cannot decode wire type 'test_wire\.Positive': 'n' must be > 0"
    ):
        decode_value({"__rillet__": "test_wire.Positive", "n": 0})
    with pytest.raises(WireFormatError, match=r"unexpected keyword argument 'z'"):
        decode_value({"__rillet__": "test_wire.Point", "x": 1, "z": 2})


def test_foreign_msgpack_is_refused() -> None:
    """Truncated bytes, trailing bytes and msgpack extension types are not rillet values."""
    data = packb({"a": [1, 2, 3]})
    for bad in (data[:-1], data + b"\x00", b"\xc1"):
        with pytest.raises(WireFormatError, match=r"^not a msgpack value: "):
            unpackb(bad)
    with pytest.raises(WireFormatError, match=r"^cannot decode a wire tree holding a ExtType"):
        unpackb(msgpack.packb(msgpack.ExtType(5, b"x")))


def test_to_dict_must_return_a_str_keyed_dict() -> None:
    """A broken hook is a programming error, reported as such."""

    class Odd:
        pass

    register_wire_type(
        Odd,
        tag="test_wire.Odd",
        to_dict=lambda o: {1: 2},  # type: ignore[dict-item]
        from_dict=lambda d: Odd(),
    )
    with pytest.raises(
        TypeError, match=r"^to_dict for wire type 'test_wire\.Odd' must return a dict"
    ):
        encode_value(Odd())
