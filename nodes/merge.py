"""The merge rules behind ``AIMessageChunk + AIMessageChunk``, one function per field.

Every function takes one or more operands and merges them in a single pass, so adding a list
of chunks at once costs the same as reading them: streamed strings are gathered as pieces and
joined once at the end.

Rules (``left + right``; LangChain's where not stated otherwise):

``content``
    ``str + str`` concatenates. Otherwise a ``str`` stands for the one-element list ``[str]``
    (``""`` for ``[]``) and lists merge element by element: a dict with an integer ``index`` (or a
    ``"lc_…"`` string index) merges into the block with the same index, using the dict rules
    below; a string joins a string right before it; anything else is appended.
    Two deliberate differences from LangChain, both needed for ``+`` to be associative:
    ``["a"] + ["b"]`` gives ``["ab"]`` (as ``["a"] + "b"`` already does; LangChain keeps
    ``["a", "b"]``) and ``"" + [x]`` gives ``[x]`` (LangChain ``["", x]``).

``additional_kwargs``, ``response_metadata`` and content blocks (recursive dict merge)
    A new key is added; ``None`` on either side gives way to the other value; dicts merge
    recursively; lists merge by ``index`` as above, except that strings are appended, not
    joined. Strings follow the *kind of key*, never their values:

    * a streamed-text key (:data:`STREAMED_TEXT_KEYS`: ``text``, ``arguments``,
      ``partial_json``, …) concatenates, even equal pieces (``"ha" + "ha"`` is ``"haha"``);
    * an identity key (:data:`FIRST_VALUE_KEYS`: ``id``, ``name``, ``type``) keeps the first
      value: the chunk that opened a block or call names it, and a later delta's ``type``
      (``"input_json_delta"``) describes the delta, not the block;
    * every other string is a label (``model_name``, ``finish_reason``, ``system_fingerprint``,
      ``status``, …): the last value wins, so equal values stay as they are.

    This fixes LangChain's concatenation of repeated labels (``'gpt-4' + 'gpt-4'`` gave
    ``'gpt-4gpt-4'``, ``finish_reason`` ``'stopstop'``), and unlike "concatenate unless equal"
    it stays associative and never drops a streamed piece that happens to repeat.
    Numbers add up (``count``), except positions and times (:data:`LAST_VALUE_NUMBER_KEYS`:
    ``index``, ``created``, ``timestamp``, …) where the last wins; LangChain also keeps equal
    numbers, which is not associative (``(2 + 1) + 1 != 2 + (1 + 1)``). Booleans: the last
    wins (LangChain raises on a change). Values of different types raise ``TypeError``.

``tool_call_chunks``
    A chunk with an ``index`` merges into the latest entry with that index unless both carry
    different non-empty ids; ``args`` concatenate, ``name`` and ``id`` keep the first non-empty
    value (LangChain concatenates them too, doubling a name a provider repeats). Chunks with
    ``index=None`` or a conflicting id are appended.

``usage_metadata``
    Every nested number is summed; a ``None`` operand is ignored; ``None`` when all are.

``id``
    The first provider id (not starting ``lc_``) wins, else the first ``lc_run`` id, else the
    first other ``lc_`` id.

Associativity holds for what providers stream: lists without two blocks of the same index, and
tool-call chunks whose ids do not conflict within one index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rillet.nodes.messages import AIMessageChunk

__all__ = [
    "FIRST_VALUE_KEYS",
    "LAST_VALUE_NUMBER_KEYS",
    "STREAMED_TEXT_KEYS",
    "add_chunks",
    "merge_content",
    "merge_dicts",
    "merge_ids",
    "merge_tool_call_chunks",
    "merge_usage",
    "tool_calls_from_chunks",
]

STREAMED_TEXT_KEYS: Final = frozenset({
    "args",               # tool_call_chunk content blocks
    "arguments",          # OpenAI function_call / tool_calls deltas
    "content",
    "data",               # OpenAI audio output, base64 in pieces
    "partial_json",       # Anthropic input_json_delta
    "reasoning",
    "reasoning_content",  # DeepSeek and other OpenAI-compatible servers
    "refusal",
    "text",
    "thinking",           # Anthropic thinking blocks
    "transcript",         # OpenAI audio output
})
"""String values under these keys are streamed pieces: always concatenated."""

FIRST_VALUE_KEYS: Final = frozenset({"id", "name", "type"})
"""String values under these keys name a block or call: the first one stays."""

LAST_VALUE_NUMBER_KEYS: Final = frozenset(
    {"index", "created", "created_at", "timestamp", "expires_at"}
)
"""Numbers under these keys are positions or times, not counters: the last one wins."""


def add_chunks(first: AIMessageChunk, *others: AIMessageChunk) -> AIMessageChunk:
    """Add message chunks in one pass: ``first + [others...]``, of ``first``'s class.

    >>> from rillet.nodes.messages import AIMessageChunk
    >>> add_chunks(AIMessageChunk("a"), AIMessageChunk("b", chunk_position="last"))
    AIMessageChunk(content='ab', chunk_position='last')
    """
    chunks = (first, *others)
    return type(first)(
        content=merge_content(*(chunk.content for chunk in chunks)),
        id=merge_ids(*(chunk.id for chunk in chunks)),
        additional_kwargs=merge_dicts(
            *(chunk.additional_kwargs for chunk in chunks), field="additional_kwargs"),
        response_metadata=merge_dicts(
            *(chunk.response_metadata for chunk in chunks), field="response_metadata"),
        name=next((chunk.name for chunk in chunks if chunk.name is not None), None),
        usage_metadata=merge_usage(*(chunk.usage_metadata for chunk in chunks)),
        tool_call_chunks=merge_tool_call_chunks(*(chunk.tool_call_chunks for chunk in chunks)),
        chunk_position="last" if any(c.chunk_position == "last" for c in chunks) else None,
    )


class _Pieces(list[str]):
    """The pieces of one streamed string, joined once when the merge is finished."""


def merge_content(
    first: str | list[Any], *others: str | list[Any]
) -> str | list[Any]:
    """Merge message contents left to right.

    >>> merge_content("Hel", "lo"), merge_content(["a"], "b", [{"type": "x"}])
    ('Hello', ['ab', {'type': 'x'}])
    """
    if type(first) is str and all(type(other) is str for other in others):
        return "".join((first, *others))  # type: ignore[arg-type]
    merged: list[Any] = []
    for content in (first, *others):
        _merge_list_into(merged, [content] if isinstance(content, str) else content,
                         "content", join_text=True)
    return _finished(merged)  # type: ignore[no-any-return]


def merge_dicts(
    first: Mapping[str, object], *others: Mapping[str, object], field: str = "dict"
) -> dict[str, Any]:
    """Merge metadata dicts recursively (``additional_kwargs``, ``response_metadata``).

    ``field`` names the dict in error messages.

    >>> merge_dicts({"model_name": "gpt-4", "n": 1}, {"model_name": "gpt-4", "n": 2})
    {'model_name': 'gpt-4', 'n': 3}

    Raises:
        TypeError: a key holds values of different types, e.g. ``str`` and ``dict``.
    """
    if not any(others):  # the common streaming case: only the last chunk carries metadata
        return dict(first)
    merged: dict[str, Any] = {}
    for other in (first, *others):
        _merge_dict_into(merged, other, field)
    return _finished(merged)  # type: ignore[no-any-return]


def merge_tool_call_chunks(*groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge the ``tool_call_chunks`` of several chunks into one list, by ``index``.

    >>> merge_tool_call_chunks(
    ...     [{"name": "f", "args": '{"a"', "id": "c1", "index": 0}],
    ...     [{"name": None, "args": ": 1}", "id": None, "index": 0}])
    [{'name': 'f', 'args': '{"a": 1}', 'id': 'c1', 'index': 0, 'type': 'tool_call_chunk'}]
    """
    entries: list[dict[str, Any]] = []
    pieces: list[list[str] | None] = []  # args of each entry, joined at the end
    latest: dict[int, int] = {}          # index -> position of the latest entry with it
    for group in groups:
        for chunk in group:
            index, call_id, args = chunk.get("index"), chunk.get("id"), chunk.get("args")
            position = latest.get(index) if index is not None else None
            if position is not None and not _ids_conflict(entries[position]["id"], call_id):
                entry = entries[position]
                entry["name"] = _first_named(entry["name"], chunk.get("name"))
                entry["id"] = _first_named(entry["id"], call_id)
                if args is not None:
                    parts = pieces[position]
                    if parts is None:
                        pieces[position] = [args]
                    else:
                        parts.append(args)
                continue
            entries.append({"name": chunk.get("name"), "args": None, "id": call_id,
                            "index": index, "type": "tool_call_chunk"})
            pieces.append(None if args is None else [args])
            if index is not None:
                latest[index] = len(entries) - 1
    for entry, parts in zip(entries, pieces):
        entry["args"] = None if parts is None else "".join(parts)
    return entries


def merge_usage(*usages: Mapping[str, object] | None) -> dict[str, Any] | None:
    """Sum usage metadata recursively; ``None`` operands are ignored.

    >>> merge_usage({"input_tokens": 5, "output_tokens": 0}, None, {"output_tokens": 7})
    {'input_tokens': 5, 'output_tokens': 7}
    """
    present = [usage for usage in usages if usage is not None]
    if not present:
        return None
    total: dict[str, Any] = {}
    for usage in present:
        _sum_into(total, usage, "usage_metadata")
    return total


def merge_ids(*ids: str | None) -> str | None:
    """The id of a merged chunk: the first provider id, else a run id, else any ``lc_`` id.

    >>> merge_ids("lc_run--1", None, "chatcmpl-abc", "chatcmpl-def")
    'chatcmpl-abc'
    """
    run_id = other_id = None
    for id_ in ids:
        if not id_:
            continue
        if not id_.startswith("lc_"):
            return id_
        if id_.startswith("lc_run-"):
            run_id = run_id or id_
        else:
            other_id = other_id or id_
    return run_id or other_id


def _ids_conflict(left: str | None, right: str | None) -> bool:
    return bool(left) and bool(right) and left != right


def _first_named(left: str | None, right: str | None) -> str | None:
    # The first non-empty value; "" stays only when nothing better ever comes.
    return left if left or right is None else right


def _merge_dict_into(merged: dict[str, Any], right: Mapping[str, object], where: str) -> None:
    for key, value in right.items():
        old = merged.get(key)
        if old is None:
            merged[key] = _own(value, f"{where}[{key!r}]")
        elif value is not None:
            merged[key] = _merge_values(key, old, value, where)


def _merge_values(key: str, old: Any, new: Any, where: str) -> Any:
    if type(old) is _Pieces:  # a streamed-text key already seen twice
        if isinstance(new, str):
            old.append(new)
            return old
    elif isinstance(old, str) and isinstance(new, str):
        if key in STREAMED_TEXT_KEYS:
            return _Pieces((old, new))
        return old if key in FIRST_VALUE_KEYS else new
    elif isinstance(old, dict) and isinstance(new, Mapping):
        _merge_dict_into(old, new, f"{where}[{key!r}]")
        return old
    elif isinstance(old, list) and isinstance(new, list):
        _merge_list_into(old, new, f"{where}[{key!r}]", join_text=False)
        return old
    elif isinstance(old, bool) and isinstance(new, bool):
        return new
    elif _is_number(old) and _is_number(new):
        return new if key in LAST_VALUE_NUMBER_KEYS else old + new
    elif old == new and type(old) is type(new):
        return old
    raise TypeError(
        f"cannot merge {where}[{key!r}]: {type(old).__name__} {_shown(old)!r:.60} "
        f"and {type(new).__name__} {new!r:.60}"
    )


def _merge_list_into(
    merged: list[Any], right: Sequence[object], where: str, *, join_text: bool
) -> None:
    for item in right:
        if isinstance(item, dict) and _is_block_index(index := item.get("index")):
            for block in merged:
                if isinstance(block, dict) and block.get("index") == index:
                    _merge_dict_into(block, item, where)
                    break
            else:
                merged.append(_own(item, where))
        elif join_text and isinstance(item, str):
            if not item:
                continue  # "" adds nothing, wherever it stands
            last = merged[-1] if merged else None
            if type(last) is _Pieces:
                last.append(item)
            elif isinstance(last, str):
                merged[-1] = _Pieces((last, item))
            else:
                merged.append(item)
        else:
            merged.append(_own(item, where))


def _own(value: object, where: str) -> Any:
    """A copy of ``value`` that merging may change in place (the operands never change)."""
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        _merge_dict_into(copied, value, where)
        return copied
    if isinstance(value, list):
        items: list[Any] = []
        _merge_list_into(items, value, where, join_text=False)
        return items
    return value


def _finished(value: object) -> Any:
    """Join the gathered pieces, in place."""
    if type(value) is _Pieces:
        return "".join(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                value[key] = _finished(item)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, (dict, list)):
                value[position] = _finished(item)
    return value


def _sum_into(total: dict[str, Any], usage: Mapping[str, object], where: str) -> None:
    for key, value in usage.items():
        if value is None:
            continue
        old = total.get(key)
        if isinstance(value, Mapping) and (old is None or isinstance(old, dict)):
            _sum_into(total.setdefault(key, {}), value, f"{where}[{key!r}]")
        elif _is_number(value) and (old is None or _is_number(old)):
            total[key] = value if old is None else old + value
        else:
            raise TypeError(
                f"cannot sum {where}[{key!r}]: {type(old).__name__} {old!r:.60} "
                f"and {type(value).__name__} {value!r:.60}"
            )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_block_index(index: object) -> bool:
    return (isinstance(index, int) and not isinstance(index, bool)) or (
        isinstance(index, str) and index.startswith("lc_")
    )


def _shown(value: object) -> Any:
    return "".join(value) if type(value) is _Pieces else value


def tool_calls_from_chunks(
    chunks: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(tool_calls, invalid_tool_calls)`` from merged chunks, parsing ``args`` leniently.

    ``args`` of ``""`` or ``None`` is ``{}``; args that do not parse to a dict make an invalid
    call with ``error=None``, as LangChain does.

    >>> tool_calls_from_chunks([{"name": "f", "args": '{"q": "ca', "id": "c1", "index": 0}])
    ([{'name': 'f', 'args': {'q': 'ca'}, 'id': 'c1', 'type': 'tool_call'}], [])
    """
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    chunks = list(chunks)
    if not chunks:
        return valid, invalid
    # Imported on first use: importing messages must not need the parser module.
    from rillet.nodes.partial_json import parse_partial_json

    for chunk in chunks:
        raw = chunk.get("args")
        try:
            args = parse_partial_json(raw) if raw else {}
        except ValueError:
            args = None
        if isinstance(args, dict):
            valid.append({"name": chunk.get("name") or "", "args": args, "id": chunk.get("id"),
                          "type": "tool_call"})
        else:
            invalid.append({"name": chunk.get("name"), "args": raw, "id": chunk.get("id"),
                            "error": None, "type": "invalid_tool_call"})
    return valid, invalid
