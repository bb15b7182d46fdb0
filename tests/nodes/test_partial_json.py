"""The incremental partial-JSON parser against LangChain's re-parse-everything algorithm."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rillet.nodes.partial_json import PartialJsonParser, parse_json_markdown, parse_partial_json
from rillet.runtime.wire.jsonpatch import apply_patch

# Reference §4.2: the countries example, 59 tokens
COUNTRY_TOKENS = [
    "{", '"', "countries", '"', ":", " ", "[", "{", '"', "name", '"', ":", " ", '"', "France", '"',
    ",", " ", '"', "population", '"', ":", " ", '"', "67", ".", "06", " ", "million", '"', "}", ",",
    " ", "{", '"', "name", '"', ":", " ", '"', "Spain", '"', ",", " ", '"', "population", '"', ":",
    " ", '"', "47", ".", "35", " ", "million", '"', "}", "]", "}",
]
FRANCE = {"name": "France", "population": "67.06 million"}
COUNTRY_VALUES: list[Any] = [
    {},
    {"countries": []},
    {"countries": [{}]},
    {"countries": [{"name": ""}]},
    {"countries": [{"name": "France"}]},
    {"countries": [{"name": "France", "population": ""}]},
    {"countries": [{"name": "France", "population": "67"}]},
    {"countries": [{"name": "France", "population": "67."}]},
    {"countries": [{"name": "France", "population": "67.06"}]},
    {"countries": [FRANCE]},
    {"countries": [FRANCE, {}]},
    {"countries": [FRANCE, {"name": ""}]},
    {"countries": [FRANCE, {"name": "Spain"}]},
    {"countries": [FRANCE, {"name": "Spain", "population": ""}]},
    {"countries": [FRANCE, {"name": "Spain", "population": "47"}]},
    {"countries": [FRANCE, {"name": "Spain", "population": "47."}]},
    {"countries": [FRANCE, {"name": "Spain", "population": "47.35"}]},
    {"countries": [FRANCE, {"name": "Spain", "population": "47.35 million"}]},
]
COUNTRY_PATCHES = [
    [{"op": "replace", "path": "", "value": {}}],
    [{"op": "add", "path": "/countries", "value": []}],
    [{"op": "add", "path": "/countries/0", "value": {}}],
    [{"op": "add", "path": "/countries/0/name", "value": ""}],
    [{"op": "replace", "path": "/countries/0/name", "value": "France"}],
    [{"op": "add", "path": "/countries/0/population", "value": ""}],
    [{"op": "replace", "path": "/countries/0/population", "value": "67"}],
    [{"op": "replace", "path": "/countries/0/population", "value": "67."}],
    [{"op": "replace", "path": "/countries/0/population", "value": "67.06"}],
    [{"op": "replace", "path": "/countries/0/population", "value": "67.06 million"}],
    [{"op": "add", "path": "/countries/1", "value": {}}],
    [{"op": "add", "path": "/countries/1/name", "value": ""}],
    [{"op": "replace", "path": "/countries/1/name", "value": "Spain"}],
    [{"op": "add", "path": "/countries/1/population", "value": ""}],
    [{"op": "replace", "path": "/countries/1/population", "value": "47"}],
    [{"op": "replace", "path": "/countries/1/population", "value": "47."}],
    [{"op": "replace", "path": "/countries/1/population", "value": "47.35"}],
    [{"op": "replace", "path": "/countries/1/population", "value": "47.35 million"}],
]


def stream(chunks: list[str]) -> list[Any]:
    """What a streaming node emits: a snapshot whenever feed() reports a change."""
    parser = PartialJsonParser()
    return [parser.snapshot() for chunk in chunks if parser.feed(chunk)]


def stream_patches(chunks: list[str]) -> list[list[dict[str, Any]]]:
    parser = PartialJsonParser()
    return [parser.last_patch() for chunk in chunks if parser.feed(chunk)]


def exact(value: Any) -> str:
    """A form in which 1, 1.0 and True differ, as do key orders (repr keeps both)."""
    return repr(value)


# -- the naive reference: LangChain's algorithm (§4.1), re-parsing everything after every chunk


def naive_parse(text: str) -> Any:
    """JsonOutputParser.parse_result(partial=True): None when nothing parses."""
    text = text.strip()
    try:
        return _naive_markdown(text)
    except json.JSONDecodeError:
        return None


def _naive_markdown(text: str) -> Any:
    try:
        return _naive_lenient(text.strip(" \n\r\t`"))
    except json.JSONDecodeError:
        fence = re.search(r"```(json)?(.*)", text, re.DOTALL)
        return _naive_lenient((text if fence is None else fence.group(2)).strip(" \n\r\t`"))


def _naive_lenient(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    chars: list[str] = []
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            elif char == "\n" and not escaped:
                char = "\\n"
            elif char == "\\":
                escaped = not escaped
            else:
                escaped = False
        elif char == '"':
            in_string, escaped = True, False
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]":
            if not closers or closers[-1] != char:
                return None
            closers.pop()
        chars.append(char)
    if in_string:
        if escaped:
            chars.pop()
        chars.append('"')
    tail = "".join(reversed(closers))
    while chars:  # one character at a time, the way the algorithm was first written
        try:
            return json.loads("".join(chars) + tail, strict=False)
        except json.JSONDecodeError:
            chars.pop()
    return json.loads(text, strict=False)


def naive_stream(chunks: list[str]) -> list[Any]:
    emitted: list[Any] = []
    previous, text = None, ""
    for chunk in chunks:
        text += chunk
        parsed = naive_parse(text)
        if parsed is not None and parsed != previous:
            emitted.append(parsed)
            previous = parsed
    return emitted


# -- recorded vectors


def test_countries_example_emits_the_18_recorded_values() -> None:
    """59 tokens give the 18 outputs of §4.2; closing quotes and brackets emit nothing."""
    assert stream(COUNTRY_TOKENS) == COUNTRY_VALUES


def test_countries_example_emits_the_recorded_patches() -> None:
    """diff=True: `replace ""` first, then one add/replace op per output, as recorded."""
    assert stream_patches(COUNTRY_TOKENS) == COUNTRY_PATCHES


def test_numbers_and_literals_char_by_char_give_the_10_recorded_outputs() -> None:
    """Partial numbers show as numbers; true/null only once complete."""
    assert stream(list('{"n": 12.5, "ok": true, "x": null, "arr": [1, 22]}')) == [
        {}, {"n": 1}, {"n": 12}, {"n": 12.5},
        {"n": 12.5, "ok": True},
        {"n": 12.5, "ok": True, "x": None},
        {"n": 12.5, "ok": True, "x": None, "arr": []},
        {"n": 12.5, "ok": True, "x": None, "arr": [1]},
        {"n": 12.5, "ok": True, "x": None, "arr": [1, 2]},
        {"n": 12.5, "ok": True, "x": None, "arr": [1, 22]},
    ]


# -- behaviours


def test_a_markdown_fence_streamed_char_by_char_gives_three_values() -> None:
    """```json fences are stripped; the value streams as if they were not there."""
    assert stream(list('```json\n{"a": "b"}\n```')) == [{}, {"a": ""}, {"a": "b"}]


def test_escaped_quotes_stream_as_their_characters() -> None:
    assert stream(list('{"a": "x\\"y"}')) == [
        {}, {"a": ""}, {"a": "x"}, {"a": 'x"'}, {"a": 'x"y'}]


def test_a_partial_unicode_escape_hides_its_member_until_complete() -> None:
    """LangChain backs up to before the member, so the key disappears for a while."""
    parser = PartialJsonParser()
    seen = [(parser.feed(chunk), parser.snapshot()) for chunk in ['{"a": "x', "\\u00", "e9"]]
    assert seen == [(True, {"a": "x"}), (True, {}), (True, {"a": "xé"})]
    assert parser.last_patch() == [{"op": "add", "path": "/a", "value": "xé"}]


def test_escaped_surrogate_pairs_join_into_one_character() -> None:
    assert stream(['["\\ud83d', '\\ude00"]']) == [["\ud83d"], ["😀"]]


def test_raw_newlines_inside_strings_are_accepted() -> None:
    assert stream(['{"a": "line1\nl', 'ine2"}']) == [{"a": "line1\nl"}, {"a": "line1\nline2"}]


def test_trailing_whitespace_of_the_text_is_hidden_even_inside_a_string() -> None:
    """'67.06 ' shows as '67.06' (a duplicate, so nothing is emitted) until more text comes."""
    parser = PartialJsonParser()
    assert [parser.feed(chunk) for chunk in ['{"p": "67.06', " ", "million", '"}']] == [
        True, False, True, False]
    assert parser.value() == {"p": "67.06 million"}


def test_a_dangling_backslash_is_dropped_but_keeps_the_space_before_it() -> None:
    """The text ends in a backslash, so the strip cannot reach the space."""
    assert stream(['{"a": "x ', "\\"]) == [{"a": "x"}, {"a": "x "}]


def test_top_level_arrays_and_scalars_stream() -> None:
    assert stream(list("[1, 2]")) == [[], [1], [1, 2]]
    assert stream(['"ab', 'c"']) == ["ab", "abc"]


def test_top_level_null_is_never_reported_but_is_a_value() -> None:
    """LangChain cannot tell a null parse from no parse, so it never emits it."""
    parser = PartialJsonParser()
    assert not parser.feed("null")
    assert parser.has_value() and parser.value() is None


@pytest.mark.parametrize("text", ["", "   \n", "Sure! ", 'Sure! {"a": 1}', "```js"])
def test_no_value_before_any_json(text: str) -> None:
    parser = PartialJsonParser()
    assert not parser.feed(text)
    assert not parser.has_value()
    with pytest.raises(LookupError, match="^no JSON value in the text so far: "):
        parser.value()


def test_prose_before_a_fence_is_skipped() -> None:
    assert stream(["Here you go:\n```", 'json\n{"a": ', "1}\n```\nAnything else?"]) == [
        {}, {"a": 1}]


def test_prose_after_the_json_is_ignored() -> None:
    assert stream(['{"a": 1}', " Hope this helps!"]) == [{"a": 1}]


def test_a_mismatched_closer_means_no_value_from_then_on() -> None:
    parser = PartialJsonParser()
    assert parser.feed('{"a": [1')
    assert not parser.feed("}")
    assert not parser.has_value()
    assert not parser.feed(', "b": 2]}')


def test_malformed_json_is_reparsed_like_langchain() -> None:
    """After an invalid escape LangChain backs up to before the member; so does the parser."""
    chunks = ['{"a": 1, "b": "C:', "\\Users", '", "c": 2']
    assert stream(chunks) == naive_stream(chunks) == [{"a": 1, "b": "C:"}, {"a": 1}]


def test_nan_is_parsed_like_json_loads_does() -> None:
    [value] = stream(["[NaN]"])
    assert value[0] != value[0]


def test_snapshots_stay_as_they_were_while_value_is_live() -> None:
    parser = PartialJsonParser()
    parser.feed('{"a": [1')
    live, snapshot = parser.value(), parser.snapshot()
    parser.feed(', 2], "b": "x"}')
    assert snapshot == {"a": [1]}
    assert live is parser.value() and live == {"a": [1, 2], "b": "x"}


def test_last_patch_is_empty_unless_the_last_feed_changed_the_value() -> None:
    parser = PartialJsonParser()
    parser.feed('{"a": 1')
    parser.feed(" ")
    assert parser.last_patch() == []


def test_patches_lead_from_the_last_reported_value_across_quiet_feeds() -> None:
    """1 -> 1.0 is no change to LangChain (1 == 1.0); the next patch starts from 1."""
    parser = PartialJsonParser()
    assert [parser.feed(chunk) for chunk in ['{"n": 1', ".0", "5"]] == [True, False, True]
    assert parser.last_patch() == [{"op": "replace", "path": "/n", "value": 1.05}]


def test_a_top_level_string_has_no_value_while_it_ends_in_a_partial_escape() -> None:
    parser = PartialJsonParser()
    assert parser.feed('"ab')
    assert not parser.feed("\\u0") and not parser.has_value()
    assert parser.feed("041")
    assert parser.last_patch() == [{"op": "replace", "path": "", "value": "abA"}]


def test_text_returns_everything_fed() -> None:
    parser = PartialJsonParser()
    for chunk in ["Sure", "! ", '{"a"']:
        parser.feed(chunk)
    assert parser.text() == 'Sure! {"a"'


# -- one-shot helpers


@pytest.mark.parametrize(("text", "value"), [
    ('{"q', {}),
    ('{"query": "ca', {"query": "ca"}),
    ('{"x": 1', {"x": 1}),
    ('{"x": "a ', {"x": "a "}),  # no stripping, unlike the output parser
    ('[1, {"a": tr', [1, {}]),
    ('  {"a": 1} trailing', {"a": 1}),
    ("null", None),
    ('{"a": 1, "b": "C:\\Users', {"a": 1}),  # an invalid escape: LangChain's own repair
])
def test_parse_partial_json(text: str, value: Any) -> None:
    assert parse_partial_json(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("", r"^no JSON value in ''$"),
    ("tr", r"^no JSON value in 'tr'$"),
    ("Sure {", r"^no JSON value in 'Sure \{'$"),
    ('{"a": ]', r"""^mismatched closing bracket in '\{"a": \]'$"""),
    ('{"a": "C:\\Users"}', r"^no JSON value in "),  # complete but invalid: nothing to cut back to
])
def test_parse_partial_json_raises_when_nothing_parses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_partial_json(text)


@pytest.mark.parametrize(("text", "value"), [
    ('```json\n{"a": "b"}\n```', {"a": "b"}),
    ('  \n```\n[1, 2]\n```  ', [1, 2]),
    ('Here it is:\n```json\n{"a": 1}\n```', {"a": 1}),
    ('{"a": "b', {"a": "b"}),
    ("   42 ", 42),
])
def test_parse_json_markdown(text: str, value: Any) -> None:
    assert parse_json_markdown(text) == value


@pytest.mark.parametrize("text", ['Sure! {"a": 1}', "", "```python\nprint(1)\n```", "[1}"])
def test_parse_json_markdown_raises_without_json(text: str) -> None:
    with pytest.raises(ValueError, match=r"^no JSON value in "):
        parse_json_markdown(text)


# -- properties: any JSON document, any chunking

_characters = st.characters() | st.sampled_from(
    ['"', "\\", "/", "\n", "\t", " ", "`", "\x00", "\xa0", "\u2028", "é", "😀", "\ud83d",
     "\ude00"])
_scalars = (st.none() | st.booleans() | st.integers(-(10**30), 10**30)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(_characters, max_size=8))
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(_characters, max_size=4), children, max_size=4),
    max_leaves=12,
)


_BEFORE = ["", " \n", "```json\n", "```\n", "Sure:\n```json\n"]
_AFTER = ["", " ", "\n```", "\n```\nAnything else?"]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """json.dumps of a random value, sometimes indented, sometimes fenced or after prose."""
    text = json.dumps(draw(_values), indent=draw(st.sampled_from([None, 0, 2, "\t"])),
                      ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from(_BEFORE)) + text + draw(st.sampled_from(_AFTER))


def unwrapped(text: str) -> Any:
    """The value of a text from documents(): its JSON without what was put around it."""
    before = max((b for b in _BEFORE if text.startswith(b)), key=len)
    after = max((a for a in _AFTER if text.endswith(a)), key=len)
    return json.loads(text[len(before): len(text) - len(after)])


@st.composite
def chunked(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> tuple[str, list[str]]:
    """A text and a random split of it into chunks."""
    text = draw(texts)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def is_prefix(partial: Any, final: Any) -> bool:
    """Whether ``partial`` is what a prefix of ``final``'s JSON text shows.

    Finished members are equal and the last one is a prefix; a string shows a prefix (its last
    character may be a high surrogate that became a pair); a number shows the value of a prefix
    of its text (12.5 shows as 1, 12, 12.5).
    """
    if isinstance(final, dict):
        if not isinstance(partial, dict) or list(partial) != list(final)[: len(partial)]:
            return False
        keys = list(partial)
        return all(partial[k] == final[k] for k in keys[:-1]) and (
            not keys or is_prefix(partial[keys[-1]], final[keys[-1]]))
    if isinstance(final, list):
        if not isinstance(partial, list) or len(partial) > len(final):
            return False
        return not partial or (partial[:-1] == final[: len(partial) - 1]
                               and is_prefix(partial[-1], final[len(partial) - 1]))
    if isinstance(final, str):
        if not isinstance(partial, str):
            return False
        joined = partial[-1:] and "\ud800" <= partial[-1] <= "\udbff" and \
            final.startswith(partial[:-1]) and final[len(partial) - 1] > "\uffff"
        return final.startswith(partial) or bool(joined)
    if isinstance(final, (int, float)) and not isinstance(final, bool):
        token = json.dumps(final)
        return any(_loads_or_none(token[:end]) == partial for end in range(1, len(token) + 1))
    return type(partial) is type(final) and partial == final


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked(documents()))
def test_outputs_equal_a_full_reparse_after_every_chunk(case: tuple[str, list[str]]) -> None:
    """The incremental parser emits exactly what re-parsing all the text each time emits."""
    text, chunks = case
    parser = PartialJsonParser()
    emitted = [parser.snapshot() for chunk in chunks if parser.feed(chunk)]
    assert [exact(v) for v in emitted] == [exact(v) for v in naive_stream(chunks)]
    assert exact(parser.value()) == exact(unwrapped(text))


@settings(max_examples=300, deadline=None)
@given(chunked(documents()))
def test_every_output_is_a_prefix_of_the_final_value(case: tuple[str, list[str]]) -> None:
    text, chunks = case
    final = unwrapped(text)
    for value in stream(chunks):
        assert is_prefix(value, final), value


@settings(max_examples=300, deadline=None)
@given(chunked(documents()))
def test_patches_rebuild_every_output_and_snapshots_never_change(
        case: tuple[str, list[str]]) -> None:
    _, chunks = case
    parser = PartialJsonParser()
    current: Any = None
    emitted: list[tuple[Any, str]] = []
    for chunk in chunks:
        if parser.feed(chunk):
            current = apply_patch(current, parser.last_patch())
            snapshot = parser.snapshot()
            assert exact(current) == exact(snapshot)
            emitted.append((snapshot, exact(snapshot)))
    assert all(exact(snapshot) == seen for snapshot, seen in emitted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked(documents() | st.just('["a", "b') | st.just('{"k": "x\\u00e9y"}')), st.data())
def test_looking_only_now_and_then_shows_the_same_values(case: tuple[str, list[str]],
                                                         data: st.DataObject) -> None:
    """The parser joins strings lazily: skipping looks must not change what a look shows."""
    _, chunks = case
    parser, text = PartialJsonParser(), ""
    for chunk in chunks:
        parser.feed(chunk)
        text += chunk
        if data.draw(st.booleans()):
            expected = naive_parse(text)
            if parser.has_value():
                assert exact(parser.value()) == exact(expected)
            else:
                assert expected is None


def test_a_string_that_grew_unseen_then_hid_does_not_overwrite_its_neighbour() -> None:
    parser = PartialJsonParser()
    parser.feed('["a", "b')
    parser.feed("c\\u0")
    assert parser.value() == ["a"]


_garbage = st.sampled_from(["]", "}", "[", "{", '"', ",", ":", "x", " ", "\\", "`", "```", "\n",
                            "NaN", "tru", "-", ".", "\\u00", "\xa0"])


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A document with garbage inserted, cut short, or wrapped in odd prose."""
    text = draw(documents())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(_garbage) + text[at:]
    text = text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text
    before = draw(st.sampled_from(["", "1. ", "no ", "oops] ```json\n", "```JSON\n", "-"]))
    return before + text + draw(st.sampled_from(["", " [1", " (see above]", " {", "`"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked(damaged()))
def test_malformed_text_gives_the_same_outputs_as_a_full_reparse(
        case: tuple[str, list[str]]) -> None:
    _, chunks = case
    assert [exact(v) for v in stream(chunks)] == [exact(v) for v in naive_stream(chunks)]


# -- differential test against LangChain itself (skipped unless langchain-core is installed)


@pytest.fixture(scope="module")
def langchain_json_parser() -> Any:
    output_parsers = pytest.importorskip("langchain_core.output_parsers")
    return output_parsers.JsonOutputParser


@pytest.mark.compat
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=chunked(documents() | damaged()))
def test_same_stream_as_langchain(langchain_json_parser: Any, case: tuple[str, list[str]]) -> None:
    """Values are identical; diff=True patches lead to the same values."""
    _, chunks = case
    expected = list(langchain_json_parser().transform(iter(chunks)))
    assert [exact(v) for v in stream(chunks)] == [exact(v) for v in expected]
    current: Any = None
    for patch, value in zip(stream_patches(chunks), expected, strict=True):
        current = apply_patch(current, patch)
        assert exact(current) == exact(value)


@pytest.mark.compat
def test_same_patches_as_langchain_for_the_recorded_example(langchain_json_parser: Any) -> None:
    assert stream_patches(COUNTRY_TOKENS) == list(
        langchain_json_parser(diff=True).transform(iter(COUNTRY_TOKENS)))
