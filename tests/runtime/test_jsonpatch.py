"""JSON Patch: applying with structural sharing, diffing, pointers and errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rillet.runtime.wire.jsonpatch import (
    JsonPatchError,
    apply_patch,
    escape_pointer,
    join_pointer,
    make_patch,
)

_keys = st.sampled_from(["a", "b", "", "a/b", "~", "~1", "0", "-"]) | st.text(max_size=3)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=15,
)


def exact(value: Any) -> str:
    """JSON equality: 1, 1.0 and True differ (== does not tell them apart); key order does not
    (a patch cannot say where in an object a member goes)."""
    return json.dumps(value, sort_keys=True)


@settings(max_examples=500)
@given(_values, _values)
def test_applying_the_diff_of_two_values_gives_the_second_and_leaves_the_first(
        src: Any, dst: Any) -> None:
    before = copy.deepcopy(src)
    assert exact(apply_patch(src, make_patch(src, dst))) == exact(dst)
    assert exact(src) == exact(before)


@settings(max_examples=200)
@given(_values, _values)
def test_in_place_gives_the_same_result(src: Any, dst: Any) -> None:
    assert exact(apply_patch(copy.deepcopy(src), make_patch(src, dst), in_place=True)) == exact(dst)


@given(_values)
def test_equal_values_need_no_ops(value: Any) -> None:
    assert make_patch(value, copy.deepcopy(value)) == []


def test_diff_is_granular_for_objects_and_lists() -> None:
    src = {"a": 1, "b": [1, 2, 3], "c": {"x": 1}}
    assert make_patch(src, {"b": [1, 5], "c": {"x": 1}, "d": 0}) == [
        {"op": "remove", "path": "/a"},
        {"op": "add", "path": "/d", "value": 0},
        {"op": "replace", "path": "/b/1", "value": 5},
        {"op": "remove", "path": "/b/2"},
    ]


def test_diff_tells_one_from_true_and_from_one_point_zero() -> None:
    assert make_patch([1, 1], [True, 1.0]) == [
        {"op": "replace", "path": "/0", "value": True},
        {"op": "replace", "path": "/1", "value": 1.0},
    ]


def test_diff_removes_trailing_items_like_jsonpatch() -> None:
    assert make_patch([1, 2, 3], [1]) == [
        {"op": "remove", "path": "/1"}, {"op": "remove", "path": "/1"}]


def test_untouched_parts_are_shared_and_touched_ones_copied() -> None:
    state: dict[str, Any] = {"logs": {"a": {"x": 1}, "b": {"y": 2}}, "out": [1]}
    new = apply_patch(state, [{"op": "add", "path": "/logs/a/z", "value": 3}])
    assert new == {"logs": {"a": {"x": 1, "z": 3}, "b": {"y": 2}}, "out": [1]}
    assert state == {"logs": {"a": {"x": 1}, "b": {"y": 2}}, "out": [1]}
    assert new["logs"]["b"] is state["logs"]["b"] and new["out"] is state["out"]
    assert new["logs"]["a"] is not state["logs"]["a"]


def test_each_container_is_copied_once_per_call() -> None:
    """Later ops in the same call change the copy made by an earlier one."""
    state: dict[str, Any] = {"out": []}
    new = apply_patch(state, [{"op": "add", "path": "/out/-", "value": i} for i in range(3)])
    assert new == {"out": [0, 1, 2]} and state == {"out": []}


def test_in_place_mutates_the_document_but_not_the_op_values() -> None:
    doc: dict[str, Any] = {}
    value: dict[str, Any] = {"x": []}
    result = apply_patch(doc, [{"op": "add", "path": "/a", "value": value},
                               {"op": "add", "path": "/a/x/-", "value": 1}], in_place=True)
    assert result is doc and doc == {"a": {"x": [1]}}
    assert value == {"x": []}


def test_the_empty_path_is_the_whole_document() -> None:
    assert apply_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert apply_patch(None, [{"op": "add", "path": "", "value": {}}]) == {}


def test_dash_appends_and_indices_insert() -> None:
    ops = [{"op": "add", "path": "/-", "value": 3}, {"op": "add", "path": "/0", "value": 0}]
    assert apply_patch([1, 2], ops) == [0, 1, 2, 3]


def test_move_copy_and_test_ops() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    assert apply_patch(doc, [
        {"op": "test", "path": "/c", "value": 1.0},
        {"op": "copy", "from": "/a/b", "path": "/d"},
        {"op": "move", "from": "/a/b/0", "path": "/a/first"},
        {"op": "move", "from": "/c", "path": "/c"},
    ]) == {"a": {"b": [2], "first": 1}, "c": 1, "d": [1, 2]}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}


def test_pointer_escaping() -> None:
    assert escape_pointer("a/b~c") == "a~1b~0c"
    assert join_pointer("logs", "a/b", "~1", 0) == "/logs/a~1b/~01/0"
    assert join_pointer() == ""
    doc = {"a/b": {"~1": 1}}
    assert apply_patch(doc, [{"op": "replace", "path": join_pointer("a/b", "~1"), "value": 2}]) == {
        "a/b": {"~1": 2}}


@pytest.mark.parametrize(("doc", "op", "message"), [
    ({}, {"op": "frob", "path": "/a"},
     "cannot frob '/a': unknown op 'frob'; expected one of add, copy, move, remove, replace, test"),
    ({}, {"op": "add", "path": "a", "value": 1},
     "cannot add 'a': 'path' must be a str that is empty or starts with '/'"),
    ({}, {"op": "add", "path": "/a~2", "value": 1},
     "cannot add '/a~2': '~' must be followed by 0 or 1"),
    ({}, {"op": "add", "path": "/a"}, "cannot add '/a': the op has no 'value'"),
    ({"a": {}}, {"op": "replace", "path": "/a/b", "value": 1},
     "cannot replace '/a/b': no member 'b' in the object at '/a'"),
    ({"a": [1]}, {"op": "remove", "path": "/a/1"},
     "cannot remove '/a/1': index 1 is out of range for the list at '/a' (length 1)"),
    ({"a": [1]}, {"op": "add", "path": "/a/01", "value": 1},
     "cannot add '/a/01': '01' is not an index of the list at '/a'"),
    ({"a": [1]}, {"op": "replace", "path": "/a/-", "value": 1},
     "cannot replace '/a/-': '-' is not an index of the list at '/a'"),
    ({"a": "text"}, {"op": "add", "path": "/a/b", "value": 1},
     "cannot add '/a/b': '/a' is a str, not an object or a list"),
    ({"a": 1}, {"op": "test", "path": "/a", "value": True},
     "cannot test '/a': the value is not True"),
    ({"a": {}}, {"op": "move", "from": "/a", "path": "/a/b"},
     "cannot move '/a/b': cannot move '/a' into itself"),
    ({}, {"op": "remove", "path": ""}, "cannot remove '': the whole document cannot be removed"),
])
def test_errors_name_the_op_the_path_and_the_reason(doc: Any, op: dict[str, Any],
                                                    message: str) -> None:
    with pytest.raises(JsonPatchError) as caught:
        apply_patch(doc, [op])
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert (caught.value.op, caught.value.path) == (op["op"], op["path"])


def test_a_failed_patch_leaves_the_document_unchanged() -> None:
    doc = {"a": [1]}
    with pytest.raises(JsonPatchError):
        apply_patch(doc, [{"op": "add", "path": "/a/-", "value": 2},
                          {"op": "remove", "path": "/missing"}])
    assert doc == {"a": [1]}
