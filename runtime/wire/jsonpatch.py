"""JSON Patch (RFC 6902): apply a patch with structural sharing, and diff two values.

``astream_log`` describes a run as a stream of patches against one growing state. LangChain
applies each to a deep copy of the whole state (quadratic over a run); :func:`apply_patch` copies
only the containers on the paths an op touches and shares everything else with the input:

>>> state = {"logs": {}, "streamed_output": []}
>>> new = apply_patch(state, [{"op": "add", "path": "/streamed_output/-", "value": "Why"}])
>>> new, state
({'logs': {}, 'streamed_output': ['Why']}, {'logs': {}, 'streamed_output': []})
>>> new["logs"] is state["logs"]
True

So values from :func:`apply_patch` and :func:`make_patch` share parts with their inputs: treat
them as read-only (or ``copy.deepcopy`` one before mutating it).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rillet.runtime.errors import JsonPatchError

__all__ = ["JsonPatchError", "apply_patch", "escape_pointer", "join_pointer", "make_patch"]

_OPS = ("add", "copy", "move", "remove", "replace", "test")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_TILDE = re.compile(r"~(?![01])")


def escape_pointer(key: str) -> str:
    """One reference token of a JSON pointer: ``~`` becomes ``~0``, ``/`` becomes ``~1``.

    >>> escape_pointer("a/b~c")
    'a~1b~0c'
    """
    return key.replace("~", "~0").replace("/", "~1")


def join_pointer(*parts: str | int) -> str:
    """The JSON pointer of a path of object keys and list indices (``""`` is the whole document).

    >>> join_pointer("logs", "my/step", 0)
    '/logs/my~1step/0'
    >>> join_pointer()
    ''
    """
    return "".join("/" + escape_pointer(str(part)) for part in parts)


def apply_patch(doc: Any, ops: Iterable[Mapping[str, Any]], *, in_place: bool = False) -> Any:
    """The document that ``ops`` (add, remove, replace, move, copy, test) turn ``doc`` into.

    Paths are JSON pointers; ``/-`` appends to a list; the path ``""`` is the whole document, so
    ``add``/``replace`` there returns the op's value. With ``in_place=False`` (the default) ``doc``
    is not changed: each container on a touched path is copied once per call (a shallow copy) and
    everything else is shared, so one call costs the sizes of the containers it touches, not the
    size of the document. ``in_place=True`` mutates ``doc``'s containers (copying the values it
    inserts, so later ops cannot change the caller's op values).

    >>> apply_patch({"a": [1], "b": 0}, [{"op": "add", "path": "/a/-", "value": 2},
    ...                                  {"op": "replace", "path": "/b", "value": 3}])
    {'a': [1, 2], 'b': 3}

    Raises:
        JsonPatchError: an op is malformed or does not fit the document (``replace`` of a missing
            member, an index out of range, ...); with ``in_place`` the ops before it stay applied.
    """
    # Copies made by this call, ours to mutate; kept alive here, so their ids stay unique
    owned: dict[int, Any] = {}
    for op in ops:
        doc = _apply_one(doc, op, in_place, owned)
    return doc


def make_patch(src: Any, dst: Any) -> list[dict[str, Any]]:
    """Ops that turn ``src`` into ``dst``: ``apply_patch(src, make_patch(src, dst)) == dst``.

    Objects are compared key by key (removed keys, then added keys, then changed ones, recursing
    into containers), lists index by index (changed items, then appended or trailing removed
    ones); any other difference, including ``1`` vs ``1.0`` vs ``True``, is a ``replace``. Values
    in the ops are ``dst``'s own objects, not copies. Subtrees that are the same object are
    skipped, so diffing two states that share structure costs only what differs.

    >>> make_patch({"a": 1, "b": [1]}, {"b": [1, 2], "c": None})  # doctest: +NORMALIZE_WHITESPACE
    [{'op': 'remove', 'path': '/a'}, {'op': 'add', 'path': '/c', 'value': None},
     {'op': 'add', 'path': '/b/1', 'value': 2}]
    >>> make_patch(None, {})
    [{'op': 'replace', 'path': '', 'value': {}}]
    """
    ops: list[dict[str, Any]] = []
    _diff("", src, dst, ops)
    return ops


def _diff(path: str, src: Any, dst: Any, ops: list[dict[str, Any]]) -> None:
    if src is dst:
        return
    if isinstance(src, dict) and isinstance(dst, dict):
        for key in src:
            if key not in dst:
                ops.append({"op": "remove", "path": f"{path}/{escape_pointer(key)}"})
        for key, value in dst.items():
            if key not in src:
                ops.append({"op": "add", "path": f"{path}/{escape_pointer(key)}", "value": value})
        for key, value in src.items():
            if key in dst:
                _diff(f"{path}/{escape_pointer(key)}", value, dst[key], ops)
    elif isinstance(src, list) and isinstance(dst, list):
        common = min(len(src), len(dst))
        for index in range(common):
            _diff(f"{path}/{index}", src[index], dst[index], ops)
        for index in range(common, len(dst)):
            ops.append({"op": "add", "path": f"{path}/{index}", "value": dst[index]})
        for _ in range(common, len(src)):  # jsonpatch's order: each remove shifts the next one
            ops.append({"op": "remove", "path": f"{path}/{common}"})
    elif (isinstance(src, (dict, list)) or isinstance(dst, (dict, list))
          or type(src) is not type(dst) or src != dst):
        ops.append({"op": "replace", "path": path, "value": dst})


def _apply_one(doc: Any, op: Mapping[str, Any], in_place: bool, owned: dict[int, Any]) -> Any:
    name, pointer = op.get("op"), op.get("path")
    if name not in _OPS:
        raise JsonPatchError(op=str(name), path=str(pointer),
                             reason=f"unknown op {name!r}; expected one of {', '.join(_OPS)}")
    parts = _split(name, pointer)
    path = str(pointer)  # _split checked it is a str
    if name in ("move", "copy"):
        source = op.get("from")
        from_parts = _split(name, source, member="from")
        value = _get(doc, from_parts, name, str(source))
        if name == "move":
            if from_parts == parts:
                return doc
            if parts[: len(from_parts)] == from_parts:
                raise JsonPatchError(op=name, path=path,
                                     reason=f"cannot move {source!r} into itself")
            doc = _remove(doc, from_parts, name, str(source), in_place, owned)
        elif in_place:
            value = copy.deepcopy(value)  # two places must not share a container we mutate later
        return _add(doc, parts, value, name, path, in_place, owned)
    if name == "remove":
        return _remove(doc, parts, name, path, in_place, owned)
    if "value" not in op:
        raise JsonPatchError(op=name, path=path, reason="the op has no 'value'")
    value = op["value"]
    if name == "test":
        if not _equal(_get(doc, parts, name, path), value):
            raise JsonPatchError(op=name, path=path, reason=f"the value is not {value!r:.80}")
        return doc
    if in_place:
        value = copy.deepcopy(value)
    if name == "add":
        return _add(doc, parts, value, name, path, in_place, owned)
    _get(doc, parts, name, path)  # replace: the target must exist
    return _add(doc, parts, value, name, path, in_place, owned, replace=True)


def _split(name: str, pointer: Any, member: str = "path") -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise JsonPatchError(op=name, path=str(pointer),
                             reason=f"{member!r} must be a str that is empty or starts with '/'")
    if _BAD_TILDE.search(pointer):
        raise JsonPatchError(op=name, path=pointer, reason="'~' must be followed by 0 or 1")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def _index(container: list[Any], part: str, name: str, path: str, where: str, *,
           end_ok: bool) -> int:
    if part == "-" and end_ok:
        return len(container)
    if not _INDEX.fullmatch(part):
        raise JsonPatchError(op=name, path=path,
                             reason=f"{part!r} is not an index of the list at {where!r}")
    index = int(part)
    if index > len(container) or (index == len(container) and not end_ok):
        raise JsonPatchError(op=name, path=path, reason=(
            f"index {index} is out of range for the list at {where!r} (length {len(container)})"))
    return index


def _child(node: Any, part: str, name: str, path: str, where: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            raise JsonPatchError(op=name, path=path,
                                 reason=f"no member {part!r} in the object at {where!r}")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, name, path, where, end_ok=False)]
    raise JsonPatchError(op=name, path=path,
                         reason=f"{where!r} is a {type(node).__name__}, not an object or a list")


def _get(doc: Any, parts: list[str], name: str, path: str) -> Any:
    node, where = doc, ""
    for part in parts:
        node = _child(node, part, name, path, where)
        where = f"{where}/{escape_pointer(part)}"
    return node


def _own(node: Any, owned: dict[int, Any]) -> Any:
    if id(node) in owned or not isinstance(node, (dict, list)):
        return node
    mine = node.copy() if type(node) in (dict, list) else copy.copy(node)  # keep dict subclasses
    owned[id(mine)] = mine
    return mine


def _parent(doc: Any, parts: list[str], name: str, path: str, in_place: bool,
            owned: dict[int, Any]) -> tuple[Any, Any, str]:
    """(new root, the container of ``parts[-1]``, its pointer), copying what we do not own."""
    root = doc if in_place else _own(doc, owned)
    node, where = root, ""
    for part in parts[:-1]:
        child = _child(node, part, name, path, where)
        if not in_place:
            mine = _own(child, owned)
            if mine is not child:
                node[part if isinstance(node, dict) else int(part)] = mine
            child = mine
        node, where = child, f"{where}/{escape_pointer(part)}"
    if not isinstance(node, (dict, list)):
        raise JsonPatchError(
            op=name, path=path,
            reason=f"{where!r} is a {type(node).__name__}, not an object or a list")
    return root, node, where


def _add(doc: Any, parts: list[str], value: Any, name: str, path: str, in_place: bool,
         owned: dict[int, Any], *, replace: bool = False) -> Any:
    if not parts:
        return value
    root, node, where = _parent(doc, parts, name, path, in_place, owned)
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif replace:
        node[_index(node, parts[-1], name, path, where, end_ok=False)] = value
    else:
        node.insert(_index(node, parts[-1], name, path, where, end_ok=True), value)
    return root


def _remove(doc: Any, parts: list[str], name: str, path: str, in_place: bool,
            owned: dict[int, Any]) -> Any:
    if not parts:
        raise JsonPatchError(op=name, path=path, reason="the whole document cannot be removed")
    _get(doc, parts, name, path)  # the target must exist
    root, node, _ = _parent(doc, parts, name, path, in_place, owned)
    if isinstance(node, dict):
        del node[parts[-1]]
    else:
        del node[int(parts[-1])]
    return root


def _equal(left: Any, right: Any) -> bool:
    """RFC 6902 equality for ``test``: numbers by value, but booleans are not numbers."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and left == right
