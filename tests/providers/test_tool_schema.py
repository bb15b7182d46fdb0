"""Tool schemas from functions and dicts: what a model is told about each tool."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import pytest

from rillet.nodes.providers.tool_formats import (
    convert_to_anthropic_tool,
    convert_to_openai_tool,
    to_function_schema,
)
from rillet.nodes.providers.tool_schema import ToolSchemaError, function_schema, parse_docstring


def search(query: str, limit: int = 10, tags: list[str] | None = None,
           mode: Literal["fast", "deep"] = "fast", *, filters: dict[str, int]) -> list[str]:
    """Search the archive for documents.

    Longer explanation that is not part of the summary.

    Args:
        query: what to look for,
            in plain words.
        limit (int): at most this many results.
        tags: only documents with all these tags.
        mode: how hard to try.
        filters: numeric field filters.

    Returns:
        Matching titles.
    """
    return []


def test_a_documented_function_becomes_a_complete_schema() -> None:
    """Name, first docstring paragraph, typed parameters, Args descriptions, defaults."""
    assert function_schema(search) == {
        "name": "search",
        "description": "Search the archive for documents.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what to look for, in plain words."},
                "limit": {"type": "integer", "default": 10,
                          "description": "at most this many results."},
                "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                   {"type": "null"}],
                         "default": None, "description": "only documents with all these tags."},
                "mode": {"type": "string", "enum": ["fast", "deep"], "default": "fast",
                         "description": "how hard to try."},
                "filters": {"type": "object", "additionalProperties": {"type": "integer"},
                            "description": "numeric field filters."},
            },
            "required": ["query", "filters"],
        },
    }


def test_optional_scalars_collapse_into_a_type_list() -> None:
    """Optional[str] and str | None both read as {"type": ["string", "null"]}."""
    def f(a: Optional[str], b: int | None = None, c: Union[int, str] = 1) -> None:
        """F."""
    props = function_schema(f)["parameters"]["properties"]
    assert props["a"] == {"type": ["string", "null"]}
    assert props["b"] == {"type": ["integer", "null"], "default": None}
    assert props["c"] == {"type": ["integer", "string"], "default": 1}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(TypedDict):
    """A postal address."""

    street: str
    zip: str


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


def test_enums_typeddicts_dataclasses_and_tuples_nest() -> None:
    """Structured parameter types become nested object and array schemas."""
    def f(  # type: ignore[no-untyped-def]  # `untyped` has no hint on purpose
        color: Color, address: Address, points: list[Point], pair: tuple[int, str],
        many: tuple[int, ...], unique: set[str], anything: Any, untyped,
        note: Annotated[str, "a free-form note"] = "",
    ) -> None:
        """F."""
    props = function_schema(f)["parameters"]["properties"]
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["address"] == {"type": "object", "description": "A postal address.",
                                "properties": {"street": {"type": "string"},
                                               "zip": {"type": "string"}},
                                "required": ["street", "zip"]}
    assert props["points"] == {"type": "array", "items": {
        "type": "object", "properties": {"x": {"type": "number"},
                                         "y": {"type": "number", "default": 0.0}},
        "required": ["x"]}}
    assert props["pair"] == {"type": "array", "prefixItems": [{"type": "integer"},
                                                              {"type": "string"}],
                             "minItems": 2, "maxItems": 2}
    assert props["many"] == {"type": "array", "items": {"type": "integer"}}
    assert props["unique"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert props["anything"] == {} and props["untyped"] == {}
    assert props["note"] == {"type": "string", "description": "a free-form note", "default": ""}


def test_methods_skip_self_and_var_arguments() -> None:
    """self, *args and **kwargs are not tool parameters."""
    class Box:
        def put(self, item: str, *args: Any, **kwargs: Any) -> None:
            """Put an item in the box."""
    schema = function_schema(Box().put)
    assert schema["name"] == "put"
    assert schema["parameters"] == {"type": "object", "properties": {"item": {"type": "string"}},
                                    "required": ["item"]}


def test_an_undescribable_type_names_the_parameter() -> None:
    """The error says which parameter of which function, and what to use instead."""
    def f(when: complex) -> None:
        """F."""
    with pytest.raises(ToolSchemaError, match=r"^parameter 'when' of f: cannot describe class "
                                              r"complex as JSON schema"):
        function_schema(f)


def test_a_function_without_docstring_has_an_empty_description() -> None:
    """No docstring, no parameters: still a valid schema."""
    def ping() -> None: ...
    assert function_schema(ping) == {"name": "ping", "description": "",
                                     "parameters": {"type": "object", "properties": {}}}


def test_rest_params_and_multiline_summaries_are_read() -> None:
    """A reST :param: list works too; the summary's lines are joined."""
    summary, args = parse_docstring("Fetch a page\nfrom the web.\n\n:param url: the address\n"
                                    "    to fetch.\n:param int timeout: seconds.\n")
    assert summary == "Fetch a page from the web."
    assert args == {"url": "the address to fetch.", "timeout": "seconds."}


def test_tool_dicts_in_every_format_convert_both_ways() -> None:
    """OpenAI, Anthropic and neutral dicts, and duck-typed objects, become each format."""
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    openai = {"type": "function", "function": {"name": "s", "description": "d",
                                               "parameters": params}}
    anthropic = {"name": "s", "description": "d", "input_schema": params}
    neutral = {"name": "s", "description": "d", "parameters": params}

    class ToolLike:
        name, description, parameters = "s", "d", params

    for tool in (openai, anthropic, neutral, ToolLike()):
        assert to_function_schema(tool) == neutral
        assert convert_to_openai_tool(tool) == openai
        assert convert_to_anthropic_tool(tool) == anthropic
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    assert convert_to_anthropic_tool(server_tool) == server_tool
    assert convert_to_openai_tool(search, strict=True)["function"]["strict"] is True


def test_a_rillet_tool_converts_to_its_own_schema() -> None:
    """A ``@tool`` is sent as the schema it validates calls against."""
    from rillet.nodes.tools import tool

    @tool
    def lookup(term: str, exact: bool = False) -> str:
        """Look a term up in the glossary."""
        return term

    assert convert_to_openai_tool(lookup) == {"type": "function", "function": {
        "name": "lookup", "description": "Look a term up in the glossary.",
        "parameters": {"type": "object", "properties": {
            "term": {"type": "string"}, "exact": {"type": "boolean", "default": False}},
            "required": ["term"]}}}
    assert convert_to_anthropic_tool(lookup)["input_schema"] == lookup.args_schema


def test_something_that_is_not_a_tool_is_refused_clearly() -> None:
    """A value that is neither dict, tool-like object nor callable says what would do."""
    with pytest.raises(ToolSchemaError, match="pass a function, a tool dict"):
        to_function_schema(42)
    with pytest.raises(ToolSchemaError, match="needs a 'name'"):
        to_function_schema({"description": "nameless"})
