"""Messages, chunk addition (reference §3.1) and conversions."""

from __future__ import annotations

import json
import pickle
from types import ModuleType
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rillet.nodes.merge
import rillet.nodes.messages
from rillet.nodes.merge import merge_content, merge_dicts
from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    MessageCoercionError,
    MessageFieldError,
    SystemMessage,
    ToolMessage,
    coerce_to_message,
    get_buffer_string,
    message_chunk_to_message,
    messages_from_dict,
    messages_to_dict,
)
from rillet.runtime.errors import WireFormatError
from rillet.runtime.exports import defined_in


def chunk(content: Any = "", **fields: Any) -> AIMessageChunk:
    return AIMessageChunk(content=content, **fields)


def tcc(name: str | None, args: str | None, id: str | None, index: int | None) -> dict[str, Any]:
    return {"name": name, "args": args, "id": id, "index": index, "type": "tool_call_chunk"}


def test_all_lists_exactly_the_public_names_sorted() -> None:
    """Each module's __all__ is sorted and names every public object it defines."""
    for module in (rillet.nodes.messages, rillet.nodes.merge):
        assert module.__all__ == sorted(module.__all__)
        public = {name for name, value in vars(module).items()
                  if not name.startswith("_") and not isinstance(value, ModuleType)
                  and defined_in(value) == module.__name__}
        assert public <= set(module.__all__)
    assert {"STREAMED_TEXT_KEYS", "FIRST_VALUE_KEYS", "LAST_VALUE_NUMBER_KEYS"} <= set(
        rillet.nodes.merge.__all__)
    assert "MessageLike" in rillet.nodes.messages.__all__


# -- construction and validation ------------------------------------------------------------

def test_type_strings_match_langchain() -> None:
    """Each class carries LangChain's type string, on the class and on instances."""
    assert [HumanMessage.type, AIMessage.type, SystemMessage.type, ToolMessage.type,
            AIMessageChunk.type] == ["human", "ai", "system", "tool", "AIMessageChunk"]
    assert HumanMessage("hi").type == "human"


def test_content_is_positional_and_the_other_fields_keyword_only() -> None:
    """``HumanMessage("hi")`` works; ``HumanMessage("hi", "id")`` does not."""
    assert HumanMessage("hi") == HumanMessage(content="hi")
    assert AIMessageChunk(content=" Hello").content == " Hello"
    with pytest.raises(TypeError):
        HumanMessage("hi", "m1")  # type: ignore[call-arg]


def test_defaults() -> None:
    """Optional fields default to None or empty containers; AI content defaults to ''."""
    message = AIMessage()
    assert (message.content, message.id, message.name, message.additional_kwargs,
            message.response_metadata, message.tool_calls, message.invalid_tool_calls,
            message.usage_metadata) == ("", None, None, {}, {}, [], [], None)
    assert ToolMessage("x", tool_call_id="c1").status == "success"
    assert chunk().chunk_position is None and chunk().tool_call_chunks == []


def test_bad_content_names_class_field_expected_and_got() -> None:
    """Content that is neither str nor a list of str/dict blocks is a TypeError saying so."""
    with pytest.raises(MessageFieldError, match=(
        r"^HumanMessage\.content expected str or list of str/dict blocks, got int: 5$"
    )) as caught:
        HumanMessage(5)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    assert (caught.value.message_class, caught.value.field, caught.value.got) == (
        "HumanMessage", "content", 5)
    with pytest.raises(MessageFieldError, match=r"^AIMessage\.content .*, got list: \['a', 3\]"):
        AIMessage(["a", 3])  # type: ignore[list-item]


@pytest.mark.parametrize(("cls", "fields", "expected"), [
    (HumanMessage, {"id": 3}, r"^HumanMessage\.id expected str or None, got int: 3$"),
    (SystemMessage, {"name": []}, r"^SystemMessage\.name expected str or None"),
    (AIMessage, {"additional_kwargs": [1]}, r"^AIMessage\.additional_kwargs expected dict"),
    (AIMessage, {"usage_metadata": 5}, r"^AIMessage\.usage_metadata expected dict or None"),
    (ToolMessage, {"tool_call_id": 1}, r"^ToolMessage\.tool_call_id expected str, got int"),
    (ToolMessage, {"tool_call_id": "c", "status": "ok"},
     r"^ToolMessage\.status expected 'success' or 'error', got str: 'ok'$"),
    (AIMessageChunk, {"chunk_position": "first"},
     r"^AIMessageChunk\.chunk_position expected None or 'last', got str: 'first'$"),
    (AIMessage, {"tool_calls": [{"name": "f", "args": "{}"}]},
     r"^AIMessage\.tool_calls expected list of tool_call dicts with keys \['args', 'id', 'name'\], "
     r"got dict: \{'name': 'f', 'args': '\{\}', 'id': None, 'type': 'tool_call'\}$"),
    (AIMessageChunk, {"tool_call_chunks": [{"name": "f", "arguments": "{"}]},
     r"^AIMessageChunk\.tool_call_chunks expected list of tool_call_chunk dicts"),
    (AIMessageChunk, {"tool_call_chunks": [{"index": True}]},
     r"^AIMessageChunk\.tool_call_chunks expected"),
    (AIMessage, {"invalid_tool_calls": "x"}, r"^AIMessage\.invalid_tool_calls expected list"),
])
def test_bad_fields_raise_message_field_error(
    cls: type[BaseMessage], fields: dict[str, Any], expected: str
) -> None:
    """Every checked field names the class, the field, what it expected and what it got."""
    with pytest.raises(MessageFieldError, match=expected):
        cls("hi", **fields)


def test_tool_message_needs_a_tool_call_id() -> None:
    """A tool message without tool_call_id is a TypeError from the constructor."""
    with pytest.raises(TypeError, match="tool_call_id"):
        ToolMessage("x")  # type: ignore[call-arg]


def test_base_message_is_abstract() -> None:
    """BaseMessage itself cannot be built; the error lists the concrete classes."""
    with pytest.raises(TypeError, match="BaseMessage is abstract: use HumanMessage"):
        BaseMessage("x")


def test_fields_are_copied_on_the_way_in() -> None:
    """A caller mutating its dicts and lists later cannot change the message."""
    blocks: list[Any] = [{"type": "text", "text": "a"}]
    metadata = {"model_name": "m"}
    calls: list[dict[str, Any]] = [{"name": "f", "args": {"q": 1}, "id": "c1"}]
    message = AIMessage(blocks, response_metadata=metadata, tool_calls=calls)
    blocks[0]["text"] = "changed"
    blocks.append("more")
    metadata["model_name"] = "changed"
    calls[0]["args"]["q"] = 2
    assert message.content == [{"type": "text", "text": "a"}]
    assert message.response_metadata == {"model_name": "m"}
    assert message.tool_calls == [{"name": "f", "args": {"q": 1}, "id": "c1", "type": "tool_call"}]


def test_messages_are_frozen_and_unhashable() -> None:
    """Fields cannot be reassigned; messages hold dicts, so they are not hashable."""
    message = HumanMessage("hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.content = "bye"  # type: ignore[misc]
    with pytest.raises(TypeError, match="unhashable"):
        hash(message)


def test_equality_compares_class_and_fields() -> None:
    """Equal fields and class are equal; an AIMessage never equals an AIMessageChunk."""
    assert AIMessage("a", id="1") == AIMessage("a", id="1")
    assert AIMessage("a") != AIMessage("a", id="1")
    assert AIMessage("a") != AIMessageChunk("a")  # type: ignore[comparison-overlap]
    assert not isinstance(AIMessageChunk("a"), AIMessage)


def test_entries_get_their_type_and_missing_keys_none() -> None:
    """Tool calls and chunks are normalised to LangChain's dict shapes."""
    message = AIMessage(tool_calls=[{"name": "f", "args": {}, "id": None}])
    assert message.tool_calls == [{"name": "f", "args": {}, "id": None, "type": "tool_call"}]
    piece = chunk(tool_call_chunks=[{"args": '{"a', "index": 0}])
    assert piece.tool_call_chunks == [tcc(None, '{"a', None, 0)]


# -- repr, text, pretty_repr ----------------------------------------------------------------

def test_repr_shows_only_non_default_fields() -> None:
    """Reprs are short: content always, the rest only when set; class fields come first."""
    assert repr(HumanMessage("hi")) == "HumanMessage(content='hi')"
    assert repr(AIMessageChunk(content=" Hello")) == "AIMessageChunk(content=' Hello')"
    assert repr(chunk(tool_call_chunks=[tcc("f", "{", "c1", 0)], id="x")) == (
        "AIMessageChunk(content='', tool_call_chunks=[{'name': 'f', 'args': '{', 'id': 'c1', "
        "'index': 0, 'type': 'tool_call_chunk'}], id='x')")
    assert repr(ToolMessage("42", tool_call_id="c1", status="error", name="calc")) == (
        "ToolMessage(content='42', tool_call_id='c1', status='error', name='calc')")
    assert repr(AIMessage("x", usage_metadata={"input_tokens": 1}, response_metadata={"a": 1})) == (
        "AIMessage(content='x', usage_metadata={'input_tokens': 1}, response_metadata={'a': 1})")


def test_text_joins_strings_and_text_blocks() -> None:
    """``.text`` is the str content, or the str items and text blocks of a list, joined."""
    assert HumanMessage("hi").text == "hi"
    content: list[Any] = ["a", {"type": "text", "text": "b"}, {"type": "image_url", "url": "u"},
                          {"type": "tool_use", "text": "no"}]
    assert AIMessage(content).text == "ab"


def test_pretty_repr_has_a_title_bar_and_the_name() -> None:
    """pretty_repr renders a centred 80-column title, the name if any, then the text."""
    assert AIMessage("hello", name="bot").pretty_repr() == (
        "=" * 34 + " Ai Message " + "=" * 34 + "\nName: bot\n\nhello")
    assert len(ToolMessage("1", tool_call_id="c").pretty_repr().splitlines()[0]) == 80


# -- addition: reference §3.1 ---------------------------------------------------------------

def test_content_str_plus_str_concatenates() -> None:
    """``"Hel" + "lo"`` → ``"Hello"``."""
    assert (chunk("Hel") + chunk("lo")).content == "Hello"


def test_content_str_plus_list_puts_the_string_first() -> None:
    """``"a" + [block b]`` → ``['a', block b]``."""
    block = {"type": "text", "text": "b"}
    assert (chunk("a") + chunk([block])).content == ["a", block]


def test_content_list_plus_str_appends_to_a_trailing_string_or_adds_one() -> None:
    """``["a"] + "b"`` → ``['ab']``; ``[block a] + "b"`` → ``[block a, 'b']``; ``""``: no-op."""
    block = {"type": "text", "text": "a"}
    assert (chunk(["a"]) + chunk("b")).content == ["ab"]
    assert (chunk([block]) + chunk("b")).content == [block, "b"]
    assert (chunk([block]) + chunk("")).content == [block]


def test_content_list_plus_list_merges_blocks_by_index() -> None:
    """Blocks with the same index merge (text concatenated); others are appended."""
    left = chunk([{"type": "text", "text": "Hel", "index": 0}])
    right = chunk([{"type": "text", "text": "lo", "index": 0},
                   {"type": "text", "text": "X", "index": 1}])
    assert (left + right).content == [{"type": "text", "text": "Hello", "index": 0},
                                      {"type": "text", "text": "X", "index": 1}]


def test_content_blocks_with_lc_string_index_merge_and_keep_their_first_type() -> None:
    """An ``lc_`` string index merges like an int; a delta's type does not rename the block."""
    left = chunk([{"type": "tool_use", "id": "t1", "name": "f", "input": {}, "index": "lc_tu_1"}])
    right = chunk([{"type": "input_json_delta", "partial_json": '{"a": 1}', "index": "lc_tu_1"}])
    assert (left + right).content == [{"type": "tool_use", "id": "t1", "name": "f", "input": {},
                                       "index": "lc_tu_1", "partial_json": '{"a": 1}'}]


def test_additional_kwargs_streamed_arguments_concatenate_after_none() -> None:
    """``function_call.arguments``: ``None`` + ``'{"a"'`` + ``': 1}'`` → ``'{"a": 1}'``."""
    pieces = [chunk(additional_kwargs={"function_call": {"name": "f", "arguments": None}}),
              chunk(additional_kwargs={"function_call": {"arguments": '{"a"'}}),
              chunk(additional_kwargs={"function_call": {"arguments": ": 1}"}})]
    assert (pieces[0] + pieces[1] + pieces[2]).additional_kwargs == {
        "function_call": {"name": "f", "arguments": '{"a": 1}'}}


def test_counters_add_and_positions_and_times_take_the_last() -> None:
    """``{count 1, index 0, created 100} + {count 2, index 1, created 200}`` → ``{3, 1, 200}``."""
    total = (chunk(response_metadata={"count": 1, "index": 0, "created": 100})
             + chunk(response_metadata={"count": 2, "index": 1, "created": 200}))
    assert total.response_metadata == {"count": 3, "index": 1, "created": 200}


def test_repeated_labels_are_not_concatenated() -> None:
    """LangChain's bug, fixed: model_name stays 'gpt-4'; finish_reason None + 'stop' is 'stop'."""
    labels = {"model_name": "gpt-4", "system_fingerprint": "fp_1", "model": "gpt-4",
              "finish_reason": None}
    pieces = [chunk("a", response_metadata=labels), chunk("b", response_metadata=labels),
              chunk("", response_metadata={**labels, "finish_reason": "stop",
                                           "stop_reason": "end_turn"}),
              chunk("", response_metadata={"finish_reason": "stop"})]
    merged = pieces[0] + pieces[1:]
    assert merged.response_metadata == {"model_name": "gpt-4", "system_fingerprint": "fp_1",
                                        "model": "gpt-4", "finish_reason": "stop",
                                        "stop_reason": "end_turn"}
    assert ((pieces[0] + pieces[1]) + (pieces[2] + pieces[3])).response_metadata == (
        merged.response_metadata)


def test_streamed_text_keys_concatenate_even_equal_pieces() -> None:
    """``"ha" + "ha"`` under a text key is ``"haha"``: streamed text may repeat."""
    merged = (chunk(additional_kwargs={"reasoning_content": "ha"})
              + chunk(additional_kwargs={"reasoning_content": "ha"}))
    assert merged.additional_kwargs == {"reasoning_content": "haha"}


def test_labels_take_the_last_value_and_identity_keys_the_first() -> None:
    """A changed label is replaced (status); ``id``/``name``/``type`` keep the first value."""
    merged = (chunk(response_metadata={"status": "in_progress", "id": "r1", "done": False})
              + chunk(response_metadata={"status": "completed", "id": "r2", "done": True}))
    assert merged.response_metadata == {"status": "completed", "id": "r1", "done": True}


def test_metadata_lists_merge_by_index_and_append_the_rest() -> None:
    """Lists in metadata: indexed dicts merge, everything else is appended."""
    merged = (chunk(additional_kwargs={"tool_calls": [{"index": 0, "function": {"arguments": "{"}}],
                                       "citations": ["a"]})
              + chunk(additional_kwargs={"tool_calls": [{"index": 0,
                                                         "function": {"arguments": "}"}}],
                                         "citations": ["a"]}))
    assert merged.additional_kwargs == {
        "tool_calls": [{"index": 0, "function": {"arguments": "{}"}}], "citations": ["a", "a"]}


def test_metadata_of_different_types_raises_type_error_naming_the_key() -> None:
    """A key holding a str on one side and a dict on the other cannot be merged."""
    with pytest.raises(TypeError, match=(
        r"^cannot merge response_metadata\['logprobs'\]: str 'x' and dict \{'a': 1\}$"
    )):
        chunk(response_metadata={"logprobs": "x"}) + chunk(response_metadata={"logprobs": {"a": 1}})


def test_addition_never_changes_its_operands() -> None:
    """Merging builds new containers; the chunks added stay as they were."""
    left = chunk([{"type": "text", "text": "a", "index": 0}],
                 response_metadata={"nested": {"text": "x", "n": 1}})
    right = chunk([{"type": "text", "text": "b", "index": 0}],
                  response_metadata={"nested": {"text": "y", "n": 2}})
    before = (messages_to_dict(left), messages_to_dict(right))
    left + right
    right + left
    assert (messages_to_dict(left), messages_to_dict(right)) == before


def test_tool_call_example_from_the_reference() -> None:
    """t1+t2+t3+t4: chunks merge by index; tool_calls parse the merged args."""
    t1 = chunk(tool_call_chunks=[tcc("search", '{"q', "call_1", 0)])
    t2 = chunk(tool_call_chunks=[tcc(None, 'uery": "ca', None, 0)])
    t3 = chunk(tool_call_chunks=[tcc("calc", '{"x": 1', "call_2", 1)])
    t4 = chunk(tool_call_chunks=[tcc(None, 'ts"}', None, 0)])
    merged = t1 + t2 + t3 + t4
    assert merged.tool_call_chunks == [tcc("search", '{"query": "cats"}', "call_1", 0),
                                       tcc("calc", '{"x": 1', "call_2", 1)]
    assert merged.tool_calls == [
        {"name": "search", "args": {"query": "cats"}, "id": "call_1", "type": "tool_call"},
        {"name": "calc", "args": {"x": 1}, "id": "call_2", "type": "tool_call"}]
    assert merged.invalid_tool_calls == []
    assert t1 + [t2, t3, t4] == merged == (t1 + t2) + (t3 + t4)


def test_tool_call_chunks_with_conflicting_ids_or_no_index_stay_apart() -> None:
    """Same index but ids 'x' and 'y': two entries; index None: always appended."""
    merged = (chunk(tool_call_chunks=[tcc("a", "{}", "x", 0)])
              + chunk(tool_call_chunks=[tcc("b", "{}", "y", 0)]))
    assert [entry["id"] for entry in merged.tool_call_chunks] == ["x", "y"]
    loose = (chunk(tool_call_chunks=[tcc("a", "{", "x", None)])
             + chunk(tool_call_chunks=[tcc(None, "}", None, None)]))
    assert len(loose.tool_call_chunks) == 2


def test_tool_call_chunk_name_and_id_are_not_doubled() -> None:
    """A provider repeating name and id on every fragment gets them once (LangChain doubles)."""
    merged = (chunk(tool_call_chunks=[tcc("search", '{"a"', "c1", 0)])
              + chunk(tool_call_chunks=[tcc("search", ": 1}", "c1", 0)]))
    assert merged.tool_call_chunks == [tcc("search", '{"a": 1}', "c1", 0)]


def test_continuation_merges_into_the_latest_entry_with_its_index() -> None:
    """After a second call reuses index 0, id-less fragments continue that second call."""
    merged = (chunk(tool_call_chunks=[tcc("a", "{", "x", 0)])
              + chunk(tool_call_chunks=[tcc("b", "[", "y", 0)])
              + chunk(tool_call_chunks=[tcc(None, "]", None, 0)]))
    assert [entry["args"] for entry in merged.tool_call_chunks] == ["{", "[]"]


def test_tool_calls_are_derived_by_partial_json_parsing() -> None:
    """'' → {}; partial objects parse; non-dict or unparseable args are invalid, error None."""
    merged = chunk(tool_call_chunks=[tcc("a", "", "1", 0), tcc("b", '{"query": "ca', "2", 1),
                                     tcc(None, '{"q', "3", 2), tcc("d", "[1,", "4", 3),
                                     tcc("e", "nonsense", "5", 4), tcc("f", None, "6", 5)])
    assert merged.tool_calls == [
        {"name": "a", "args": {}, "id": "1", "type": "tool_call"},
        {"name": "b", "args": {"query": "ca"}, "id": "2", "type": "tool_call"},
        {"name": "", "args": {}, "id": "3", "type": "tool_call"},
        {"name": "f", "args": {}, "id": "6", "type": "tool_call"}]
    assert merged.invalid_tool_calls == [
        {"name": "d", "args": "[1,", "id": "4", "error": None, "type": "invalid_tool_call"},
        {"name": "e", "args": "nonsense", "id": "5", "error": None, "type": "invalid_tool_call"}]


def test_adding_never_parses_and_reading_parses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming 200 fragments parses nothing; tool_calls is parsed on first read only."""
    import rillet.nodes.partial_json

    calls: list[str] = []
    real = rillet.nodes.partial_json.parse_partial_json

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(rillet.nodes.partial_json, "parse_partial_json", counting)
    pieces = [chunk(tool_call_chunks=[tcc("f", '{"a": "', "c1", 0)])]
    pieces += [chunk(tool_call_chunks=[tcc(None, "x", None, 0)]) for _ in range(200)]
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    total = total + chunk(tool_call_chunks=[tcc(None, '"}', None, 0)])
    assert calls == []
    assert total.tool_calls[0]["args"] == {"a": "x" * 200}
    assert total.tool_calls == total.tool_calls and total.invalid_tool_calls == []
    assert len(calls) == 1


def test_usage_metadata_sums_recursively_and_ignores_none() -> None:
    """``{in 5, out 0, total 5, details {cache_read 3}} + {in 0, out 7, total 7}`` → sums."""
    left = chunk(usage_metadata={"input_tokens": 5, "output_tokens": 0, "total_tokens": 5,
                                 "input_token_details": {"cache_read": 3}})
    right = chunk(usage_metadata={"input_tokens": 0, "output_tokens": 7, "total_tokens": 7})
    assert (left + chunk() + right).usage_metadata == {
        "input_tokens": 5, "output_tokens": 7, "total_tokens": 12,
        "input_token_details": {"cache_read": 3}}
    assert (chunk() + chunk()).usage_metadata is None


@pytest.mark.parametrize(("ids", "expected"), [
    (["lc_run--1", "chatcmpl-abc"], "chatcmpl-abc"),
    (["chatcmpl-abc", "chatcmpl-def"], "chatcmpl-abc"),
    (["lc_other", "lc_run--1"], "lc_run--1"),
    (["lc_other", None], "lc_other"),
    ([None, None], None),
])
def test_id_prefers_the_first_provider_id(ids: list[str | None], expected: str | None) -> None:
    """A provider id beats an ``lc_run`` id, which beats any other ``lc_`` id."""
    assert (chunk(id=ids[0]) + chunk(id=ids[1])).id == expected


def test_chunk_position_is_last_if_any_operand_is_last() -> None:
    """``"last"`` wins over ``None`` wherever it stands."""
    assert (chunk(chunk_position="last") + chunk()).chunk_position == "last"
    assert (chunk() + chunk()).chunk_position is None


def test_name_keeps_the_first_one_set() -> None:
    """The merged name is the first non-None name."""
    assert (chunk() + chunk(name="a") + chunk(name="b")).name == "a"


def test_adding_a_list_adds_all_at_once() -> None:
    """``a + [b, c]`` equals ``(a + b) + c``; ``a + []`` is ``a``."""
    a, b, c = chunk("a", id="lc_run--1"), chunk("b", id="p1"), chunk("c")
    assert a + [b, c] == (a + b) + c == chunk("abc", id="p1")
    assert a + [] is a


def test_adding_anything_else_is_a_type_error() -> None:
    """Strings, messages and lists with a non-chunk cannot be added to a chunk."""
    with pytest.raises(TypeError):
        chunk("a") + "b"  # type: ignore[operator]
    with pytest.raises(TypeError):
        "b" + chunk("a")  # type: ignore[operator]
    with pytest.raises(TypeError):
        chunk("a") + AIMessage("b")  # type: ignore[operator]
    with pytest.raises(TypeError, match=(
        r"^can only add AIMessageChunks to an AIMessageChunk; item 1 of the list is str: 'x'$"
    )):
        chunk("a") + [chunk("b"), "x"]  # type: ignore[list-item]


# -- associativity --------------------------------------------------------------------------

def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    return [text[i:j] for i, j in zip([0, *points], [*points, len(text)])]


def _combine(chunks: list[AIMessageChunk], data: st.DataObject) -> AIMessageChunk:
    """Add the chunks in order with a random bracketing, binary or n-ary at each level."""
    if len(chunks) == 1:
        return chunks[0]
    cuts = data.draw(st.lists(st.integers(1, len(chunks) - 1), min_size=1, max_size=3))
    points = sorted(set(cuts))
    groups = [chunks[i:j] for i, j in zip([0, *points], [*points, len(chunks)])]
    parts = [_combine(group, data) for group in groups]
    return parts[0] + parts[1] if len(parts) == 2 else parts[0] + parts[1:]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=30),
    as_blocks=st.booleans(),
    calls=st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=3), max_size=3),
    cuts=st.lists(st.integers(0, 1000), max_size=8),
    data=st.data(),
)
def test_any_bracketing_of_a_split_message_equals_the_whole(
    text: str, as_blocks: bool, calls: list[dict[str, Any]], cuts: list[int], data: st.DataObject
) -> None:
    """Split content and tool-call args into chunks: every bracketing adds up to the whole."""
    labels = {"model_name": "gpt-4", "system_fingerprint": "fp"}
    events: list[list[AIMessageChunk]] = [[
        chunk([{"type": "text", "text": piece, "index": 0}] if as_blocks else piece,
              response_metadata=labels, id="lc_run--r",
              usage_metadata={"input_tokens": 0, "output_tokens": 1})
        for piece in _split(text, cuts)
    ]]
    for index, args in enumerate(calls):
        raw = json.dumps(args)
        pieces = _split(raw, data.draw(st.lists(st.integers(0, 1000), max_size=5)))
        events.append([
            chunk(tool_call_chunks=[tcc(f"tool{index}" if i == 0 else None, piece,
                                        f"call_{index}" if i == 0 else None, index)],
                  id="chatcmpl-1" if i == 0 else None)
            for i, piece in enumerate(pieces)])
    # Interleave the streams at random, each in its own order, then mark the last chunk.
    stream: list[AIMessageChunk] = []
    while any(events):
        source = data.draw(st.sampled_from([e for e in events if e]))
        stream.append(source.pop(0))
    opened = [piece.tool_call_chunks[0]["index"] for piece in stream
              if piece.tool_call_chunks and piece.tool_call_chunks[0]["id"]]
    stream.append(chunk(response_metadata={"finish_reason": "stop"}, chunk_position="last"))

    whole = _combine(stream, data)

    parts = len(_split(text, cuts))
    assert whole.content == ([{"type": "text", "text": text, "index": 0}] if as_blocks else text)
    assert whole.response_metadata == {**labels, "finish_reason": "stop"}
    assert whole.usage_metadata == {"input_tokens": 0, "output_tokens": parts}
    assert whole.id == ("chatcmpl-1" if calls else "lc_run--r")
    assert whole.chunk_position == "last"
    # Entries appear in the order the calls were opened in the stream.
    assert whole.tool_call_chunks == [tcc(f"tool{i}", json.dumps(calls[i]), f"call_{i}", i)
                                      for i in opened]
    assert [call["args"] for call in whole.tool_calls] == [calls[i] for i in opened]
    assert whole == stream[0] + stream[1:]


blocks = st.fixed_dictionaries({"type": st.just("text"), "text": st.text("ab", max_size=2),
                                "index": st.integers(0, 2)})
contents = st.text("xy", max_size=2) | st.lists(st.text("xy", max_size=2) | blocks, max_size=3)


@settings(max_examples=300, deadline=None)
@given(a=contents, b=contents, c=contents)
def test_content_merge_is_associative(a: Any, b: Any, c: Any) -> None:
    """Any mix of strings, lists of strings and indexed blocks: (a+b)+c == a+(b+c)."""
    assert merge_content(merge_content(a, b), c) == merge_content(a, merge_content(b, c)) == (
        merge_content(a, b, c))


metadata = st.recursive(
    st.fixed_dictionaries({}, optional={
        "text": st.text("ab", max_size=2) | st.none(), "model_name": st.sampled_from(["m", "n"]),
        "id": st.sampled_from(["i", "j"]), "count": st.integers(0, 3), "index": st.integers(0, 2),
        "flag": st.booleans(), "items": st.lists(st.text("c", max_size=1), max_size=2),
    }),
    lambda inner: st.fixed_dictionaries({}, optional={"nested": inner, "blocks": st.lists(
        st.fixed_dictionaries({"index": st.integers(0, 2)},
                              optional={"text": st.text("d", max_size=1)}),
        unique_by=lambda block: block["index"], max_size=2)}),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(a=metadata, b=metadata, c=metadata)
def test_metadata_merge_is_associative(a: Any, b: Any, c: Any) -> None:
    """The dict rules (text concatenates, labels last/first, counters add) associate."""
    assert merge_dicts(merge_dicts(a, b), c) == merge_dicts(a, merge_dicts(b, c)) == (
        merge_dicts(a, b, c))


# -- to_message, from_message ---------------------------------------------------------------

def test_to_message_keeps_fields_and_parses_tool_calls() -> None:
    """A chunk becomes an AIMessage with its tool calls parsed; other messages pass through."""
    total = chunk("hi", id="p1", usage_metadata={"input_tokens": 1}, response_metadata={"m": "x"},
                  tool_call_chunks=[tcc("f", '{"a": 1}', "c1", 0), tcc("g", "[", "c2", 1)],
                  chunk_position="last")
    assert message_chunk_to_message(total) == total.to_message() == AIMessage(
        "hi", id="p1", usage_metadata={"input_tokens": 1}, response_metadata={"m": "x"},
        tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}],
        invalid_tool_calls=[{"name": "g", "args": "[", "id": "c2", "error": None}])
    human = HumanMessage("x")
    assert message_chunk_to_message(human) is human


def test_from_message_round_trips_through_to_message() -> None:
    """A whole message streamed as one chunk comes back as the same message."""
    message = AIMessage("hi", id="p1", tool_calls=[{"name": "f", "args": {"a": [1]}, "id": "c1"}],
                        usage_metadata={"input_tokens": 2})
    as_chunk = AIMessageChunk.from_message(message)
    assert as_chunk.tool_call_chunks == [tcc("f", '{"a": [1]}', "c1", 0)]
    assert as_chunk.to_message() == message


# -- conversions ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("hi", HumanMessage("hi")),
    (("human", "hi"), HumanMessage("hi")),
    (("user", "hi"), HumanMessage("hi")),
    (["ai", "hello"], AIMessage("hello")),
    (("assistant", "hello"), AIMessage("hello")),
    (("system", "be brief"), SystemMessage("be brief")),
    ({"role": "user", "content": "hi", "name": "ann"}, HumanMessage("hi", name="ann")),
    ({"role": "assistant", "content": None,
      "tool_calls": [{"name": "f", "args": {}, "id": "c1"}]},
     AIMessage(tool_calls=[{"name": "f", "args": {}, "id": "c1"}])),
    ({"role": "tool", "content": "42", "tool_call_id": "c1"}, ToolMessage("42", tool_call_id="c1")),
    ({"type": "system", "content": "x"}, SystemMessage("x")),
    ({"type": "AIMessageChunk", "content": "x"}, AIMessageChunk("x")),
])
def test_coerce_to_message_accepts_message_likes(value: Any, expected: BaseMessage) -> None:
    """Strings, (role, content) pairs and role/type dicts become messages."""
    assert coerce_to_message(value) == expected


def test_coerce_to_message_returns_messages_as_they_are() -> None:
    """A message is used verbatim."""
    message = AIMessage("x")
    assert coerce_to_message(message) is message


@pytest.mark.parametrize(("value", "expected"), [
    (5, r"^cannot make a message from int 5: expected a message, a str, a \(role, content\) "
        r"tuple or a dict with 'role' or 'type' and 'content'$"),
    (("robot", "hi"), r"^cannot make a message from tuple \('robot', 'hi'\): unknown role 'robot'; "
                      r"expected one of \['ai', 'assistant', 'human', 'system', 'tool', 'user'\]$"),
    (("tool", "42"), r"^cannot make a message from tuple \('tool', '42'\): role 'tool' needs a "
                     r"tool_call_id; pass ToolMessage\(content, tool_call_id=\.\.\.\) or a dict "
                     r"with 'tool_call_id'$"),
    ({"role": "tool", "content": "42"}, r"role 'tool' needs a tool_call_id"),
    ({"content": "hi"}, r"a message dict needs 'role' or 'type'$"),
    ({"role": "user", "content": "hi", "colour": "red"},
     r"HumanMessage has no fields \['colour'\]; it has \['additional_kwargs', 'content', 'id', "
     r"'name', 'response_metadata'\]$"),
    ({"role": "user", "content": 5}, r"HumanMessage\.content expected str or list"),
    (("human", "a", "b"), r"^cannot make a message from tuple"),
])
def test_coerce_to_message_errors_say_what_is_wrong(value: Any, expected: str) -> None:
    """Unusable values raise MessageCoercionError (a TypeError) with the reason."""
    with pytest.raises(MessageCoercionError, match=expected) as caught:
        coerce_to_message(value)
    assert isinstance(caught.value, TypeError) and caught.value.got == value


ALL_KINDS = [
    HumanMessage("hi", id="h1", name="ann"),
    SystemMessage(["a", {"type": "text", "text": "b"}]),
    ToolMessage("42", tool_call_id="c1", status="error"),
    AIMessage("x", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}],
              invalid_tool_calls=[{"name": "g", "args": "[", "id": "c2", "error": "bad"}],
              usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
              response_metadata={"model_name": "m"}, additional_kwargs={"k": [1]}),
    AIMessageChunk("x", tool_call_chunks=[tcc("f", '{"a', "c1", 0)], chunk_position="last",
                   id="lc_run--1"),
]


@pytest.mark.parametrize("message", ALL_KINDS, ids=lambda m: type(m).__name__)
def test_dicts_round_trip_through_json_and_msgpack(message: BaseMessage) -> None:
    """messages_to_dict gives plain data that survives JSON and msgpack and decodes back."""
    data = messages_to_dict(message)
    assert data["type"] == message.type
    assert messages_from_dict(json.loads(json.dumps(data))) == message
    assert messages_from_dict(msgpack.unpackb(msgpack.packb(data))) == message


def test_messages_to_dict_shape() -> None:
    """Type first, then every field; a chunk's derived tool_calls are left out."""
    assert messages_to_dict(HumanMessage("hi")) == {
        "type": "human", "content": "hi", "id": None, "additional_kwargs": {},
        "response_metadata": {}, "name": None}
    assert "tool_calls" not in messages_to_dict(chunk())


def test_messages_from_dict_accepts_langchain_shapes() -> None:
    """LangChain's {"type", "data"} form and a chunk's derived fields are accepted."""
    assert messages_from_dict({"type": "human", "data": {"content": "hi", "example": False}}) == (
        HumanMessage("hi"))
    assert messages_from_dict({"type": "AIMessageChunk", "content": "x", "tool_calls": [],
                               "invalid_tool_calls": []}) == chunk("x")


@pytest.mark.parametrize(("data", "expected"), [
    ({"type": "robot", "content": "x"}, r"^unknown message type 'robot'; expected one of "
                                        r"\['AIMessageChunk', 'ai', 'human', 'system', 'tool'\]$"),
    ({"content": "x"}, r"^unknown message type None"),
    ({"type": "human", "content": "x", "colour": 1},
     r"^message type 'human' has no fields \['colour'\]; expected some of \["),
    ({"type": "human", "content": 1}, r"^bad 'human' message: HumanMessage\.content expected"),
    ({"type": "tool", "content": "x"}, r"^bad 'tool' message: .*tool_call_id"),
])
def test_messages_from_dict_errors_are_wire_format_errors(data: Any, expected: str) -> None:
    """Anything that does not decode to a message is a WireFormatError saying why."""
    with pytest.raises(WireFormatError, match=expected):
        messages_from_dict(data)


def test_get_buffer_string_writes_a_transcript() -> None:
    """One ``Role: text`` line per message, with configurable human and AI prefixes."""
    messages = [SystemMessage("be brief"), HumanMessage("hi"), AIMessage("hello"),
                ToolMessage("42", tool_call_id="c"),
                AIMessageChunk(["a", {"type": "text", "text": "b"}])]
    assert get_buffer_string(messages) == (
        "System: be brief\nHuman: hi\nAI: hello\nTool: 42\nAI: ab")
    assert get_buffer_string(messages[1:3], human_prefix="Q", ai_prefix="A") == "Q: hi\nA: hello"


def test_errors_pickle_with_their_facts() -> None:
    """Both error types survive pickling (process pools, worker boundaries)."""
    field_error = MessageFieldError(message_class="X", field="f", expected="str", got=1)
    coercion_error = MessageCoercionError(got=5, reason="nope")
    assert str(pickle.loads(pickle.dumps(field_error))) == str(field_error)
    assert pickle.loads(pickle.dumps(coercion_error)).reason == "nope"
