"""f-string templates, prompt values and message templates."""

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any

import attrs
import pytest

import rillet.nodes.templates
from rillet.nodes.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from rillet.nodes.templates import (
    ChatPromptValue,
    InvalidTemplateError,
    MessagesPlaceholder,
    MessageTemplate,
    MissingVariablesError,
    StringPromptValue,
    format_template,
    parse_message_spec,
    template_variables,
)
from rillet.runtime.errors import NodeInputError, RilletError
from rillet.runtime.exports import defined_in


def test_all_lists_exactly_the_public_names_sorted() -> None:
    """__all__ is sorted and names every public object the module defines."""
    module = rillet.nodes.templates
    assert module.__all__ == sorted(module.__all__)
    public = {name for name, value in vars(module).items()
              if not name.startswith("_") and not isinstance(value, ModuleType)
              and defined_in(value) == module.__name__}
    assert public <= set(module.__all__)


# -- template_variables ---------------------------------------------------------------------

@pytest.mark.parametrize(("template", "expected"), [
    ("tell me a joke about {topic}", ["topic"]),
    ("{b} {a} {b}", ["b", "a"]),
    ("no variables", []),
    ("", []),
    ("{{literal}} and {{ {x} }}", ["x"]),
    ("{_private1}{Name}", ["_private1", "Name"]),
])
def test_template_variables_are_ordered_and_unique(template: str, expected: list[str]) -> None:
    """Variables come in order of first use, once each; doubled braces are literal."""
    assert template_variables(template) == expected


@pytest.mark.parametrize(("template", "reason"), [
    ("{x:>10}", "{x:>10} has a format spec, which templates do not support"),
    ("{x!r}", "{x!r} has a conversion, which templates do not support"),
    ("{x.upper}", "{x.upper} uses attribute or index access; pass the value itself"),
    ("{x[0]}", "{x[0]} uses attribute or index access; pass the value itself"),
    ("{}", "{} is positional; name the variable, e.g. {topic}"),
    ("{0}", "{0} is positional; name the variable, e.g. {topic}"),
    ('{"a"}', '{"a"} is not a variable name (letters, digits and _)'),
    ('{"a": 1}', '{"a": 1} has a format spec, which templates do not support'),
    ("oops }", "Single '}' encountered in format string"),
    ("{oops", "expected '}' before end of string"),
])
def test_unsupported_fields_are_rejected_with_the_reason(template: str, reason: str) -> None:
    """Each rejection says what is wrong and how to write literal braces."""
    with pytest.raises(InvalidTemplateError) as caught:
        template_variables(template)
    assert str(caught.value) == (
        f"invalid template {template!r}: {reason}; "
        "if you meant literal braces, double them: {{ and }}")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RilletError)
    assert caught.value.template == template


# -- format_template ------------------------------------------------------------------------

def test_format_template_fills_values_and_ignores_extra_keys() -> None:
    """Values are rendered with format(); braces doubled in the template come out single."""
    assert format_template("{a} + {a} = {b} {{ok}}", {"a": 1, "b": 2.5, "unused": None}) == (
        "1 + 1 = 2.5 {ok}")


def test_format_template_does_not_interpret_braces_in_values() -> None:
    """A value containing braces is inserted as it is, never formatted again."""
    assert format_template("say {x}", {"x": "{y}"}) == "say {y}"


def test_missing_variables_error_lists_missing_and_given() -> None:
    """The message names the prompt, what is missing (template order) and what was given."""
    with pytest.raises(MissingVariablesError) as caught:
        format_template("tell me about {topic}", {"topc": "cats"}, prompt="ChatPromptTemplate")
    assert str(caught.value) == (
        "prompt 'ChatPromptTemplate' is missing variables ['topic']; got keys ['topc']")
    assert (caught.value.prompt, caught.value.missing, caught.value.given) == (
        "ChatPromptTemplate", ["topic"], ["topc"])
    assert isinstance(caught.value, ValueError) and not isinstance(caught.value, KeyError)


def test_missing_variables_error_lists_several_in_order_and_sorts_given() -> None:
    """Several missing variables keep template order; given keys are sorted."""
    with pytest.raises(MissingVariablesError, match=(
        r"^prompt 'PromptTemplate' is missing variables \['b', 'a'\]; got keys \['c', 'x', 'y'\]$"
    )):
        format_template("{b}{c}{a}", {"y": 1, "c": 2, "x": 3})
    with pytest.raises(MissingVariablesError, match=r"got keys \[\]$"):
        format_template("{a}", {})


def test_a_key_error_from_a_value_is_not_reported_as_missing() -> None:
    """A value whose formatting raises KeyError propagates unchanged."""
    class Bad:
        def __format__(self, spec: str) -> str:
            raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        format_template("{x}", {"x": Bad()})


def test_errors_pickle_with_their_facts() -> None:
    """Both template errors survive pickling."""
    missing = MissingVariablesError(prompt="p", missing=["a"], given=["b"])
    invalid = InvalidTemplateError(template="{", reason="r")
    assert str(pickle.loads(pickle.dumps(missing))) == str(missing)
    assert pickle.loads(pickle.dumps(invalid)).reason == "r"


# -- prompt values --------------------------------------------------------------------------

def test_string_prompt_value() -> None:
    """Text out as a string or as one human message."""
    value = StringPromptValue("tell me a joke")
    assert value.to_string() == "tell me a joke"
    assert value.to_messages() == [HumanMessage("tell me a joke")]
    assert repr(value) == "StringPromptValue(text='tell me a joke')"
    with pytest.raises(TypeError):
        StringPromptValue(5)  # type: ignore[arg-type]


def test_chat_prompt_value_repr_and_conversions() -> None:
    """The repr lists the messages; to_string is a transcript; to_messages a new list."""
    value = ChatPromptValue(messages=[HumanMessage("Tell me a joke about cats")])
    assert repr(value) == (
        "ChatPromptValue(messages=[HumanMessage(content='Tell me a joke about cats')])")
    transcript = ChatPromptValue([SystemMessage("Be brief."), HumanMessage("hi"), AIMessage("yo")])
    assert transcript.to_string() == "System: Be brief.\nHuman: hi\nAI: yo"
    messages = transcript.to_messages()
    messages.clear()
    assert len(transcript.messages) == 3


def test_chat_prompt_value_copies_and_checks_its_messages() -> None:
    """Changing the list given later does not change the value; non-messages are rejected."""
    given: list[Any] = [HumanMessage("a")]
    value = ChatPromptValue(given)
    given.append(HumanMessage("b"))
    assert value.messages == [HumanMessage("a")]
    assert ChatPromptValue((HumanMessage("a"),)) == value
    with pytest.raises(TypeError, match=(
        r"^ChatPromptValue\.messages expected a list of messages; item 1 is str: 'hi'$"
    )):
        ChatPromptValue([HumanMessage("a"), "hi"])  # type: ignore[list-item]


def test_prompt_values_are_frozen() -> None:
    """Prompt values cannot be changed after they are built."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        StringPromptValue("a").text = "b"  # type: ignore[misc]


# -- MessagesPlaceholder and MessageTemplate ------------------------------------------------

def test_messages_placeholder_defaults_to_required() -> None:
    """``optional`` defaults to False; the repr shows both fields."""
    assert MessagesPlaceholder("history") == MessagesPlaceholder("history", optional=False)
    assert repr(MessagesPlaceholder("h", optional=True)) == (
        "MessagesPlaceholder(variable_name='h', optional=True)")


@pytest.mark.parametrize(("role", "cls"), [
    ("human", HumanMessage), ("user", HumanMessage), ("ai", AIMessage),
    ("assistant", AIMessage), ("system", SystemMessage),
])
def test_role_templates_make_messages_of_their_role(role: str, cls: type) -> None:
    """Each role gives its message class, with the template filled in."""
    template = parse_message_spec((role, "about {topic}"))
    assert template.input_variables == ["topic"]
    assert template.format({"topic": "cats"}) == [cls("about cats")]


def test_a_plain_string_is_a_human_template() -> None:
    """A str spec is a human message template."""
    template = parse_message_spec("hi {name}")
    assert (template.role, template.template) == ("human", "hi {name}")
    assert template.format({"name": "Ann"}) == [HumanMessage("hi Ann")]


def test_a_message_is_used_verbatim() -> None:
    """Braces in a fixed message are not variables and are never formatted."""
    message = SystemMessage("JSON looks like {\"a\": 1}")
    template = parse_message_spec(message)
    assert template.input_variables == [] and template.optional_variables == []
    assert template.format({}) == [message]


def test_a_placeholder_inserts_a_list_of_message_likes() -> None:
    """The variable's list is coerced to messages: messages, tuples, dicts and strings."""
    template = parse_message_spec(MessagesPlaceholder("history"))
    assert template.input_variables == ["history"] and template.optional_variables == []
    history = [AIMessage("earlier"), ("human", "hi"), {"role": "assistant", "content": "yo"}, "q"]
    assert template.format({"history": history}) == [
        AIMessage("earlier"), HumanMessage("hi"), AIMessage("yo"), HumanMessage("q")]


def test_placeholder_tuple_is_an_optional_placeholder() -> None:
    """``("placeholder", "{history}")`` is optional: a missing variable gives no messages."""
    template = parse_message_spec(("placeholder", "{history}"))
    assert template.placeholder == MessagesPlaceholder("history", optional=True)
    assert template.input_variables == [] and template.optional_variables == ["history"]
    assert template.format({}) == []


def test_missing_required_placeholder_names_it() -> None:
    """A required placeholder without its variable is a MissingVariablesError."""
    with pytest.raises(MissingVariablesError, match=(
        r"^prompt 'Chat' is missing variables \['history'\]; got keys \['question'\]$"
    )):
        parse_message_spec(MessagesPlaceholder("history")).format({"question": "q"}, prompt="Chat")


def test_missing_template_variable_names_the_prompt() -> None:
    """Formatting a role template reports the prompt name it is given."""
    with pytest.raises(MissingVariablesError, match=(
        r"^prompt 'ChatPromptTemplate' is missing variables \['topic'\]; got keys \['topc'\]$"
    )):
        parse_message_spec(("human", "about {topic}")).format({"topc": "x"})


@pytest.mark.parametrize(("value", "got"), [
    ("not a list", r"str: 'not a list'"),
    ([HumanMessage("ok"), 5], r"int: 5"),
    ([("tool", "42")], r"tuple: \('tool', '42'\)"),
])
def test_placeholder_values_that_are_not_messages_are_node_input_errors(
    value: Any, got: str
) -> None:
    """The error names the prompt, the placeholder and the offending value."""
    with pytest.raises(NodeInputError, match=(
        rf"^node 'ChatPromptTemplate' expected a list of messages for placeholder 'history', "
        rf"got {got}$"
    )):
        parse_message_spec(MessagesPlaceholder("history")).format({"history": value})


def test_placeholder_accepts_tool_messages_given_as_messages() -> None:
    """Messages of every kind pass through a placeholder unchanged."""
    tool = ToolMessage("42", tool_call_id="c1")
    assert parse_message_spec(MessagesPlaceholder("h")).format({"h": (tool,)}) == [tool]


@pytest.mark.parametrize(("spec", "reason"), [
    (5, "expected a (role, template) tuple with role in ['ai', 'assistant', 'human', "
        "'placeholder', 'system', 'user'], a str, a message or a MessagesPlaceholder"),
    (("human", "a", "b"), "expected a (role, template) tuple"),
    (("robot", "hi"), "unknown role 'robot'; expected one of ['ai', 'assistant', 'human', "
                      "'placeholder', 'system', 'user']"),
    (("tool", "hi"), "unknown role 'tool'"),
    (("human", 5), "the template must be a str, got int"),
    (("placeholder", "history"), "a placeholder's template must be one variable in braces, "
                                 "e.g. '{history}'"),
    (("placeholder", "{a} {b}"), "a placeholder's template must be one variable in braces"),
    (("placeholder", "x {a}"), "a placeholder's template must be one variable in braces"),
])
def test_bad_message_specs_say_what_is_accepted(spec: Any, reason: str) -> None:
    """Unusable specs raise InvalidTemplateError (a ValueError) naming the spec and the fix."""
    with pytest.raises(InvalidTemplateError) as caught:
        parse_message_spec(spec)
    assert str(caught.value).startswith(f"invalid template {spec!r}: {reason}")


def test_malformed_role_templates_fail_when_parsed() -> None:
    """A bad template is reported when the spec is read, not at the first format."""
    with pytest.raises(InvalidTemplateError, match=r"\{x!r\} has a conversion"):
        parse_message_spec(("system", "{x!r}"))


def test_message_template_needs_exactly_one_kind() -> None:
    """role+template, message or placeholder: exactly one, role only with a template."""
    with pytest.raises(ValueError, match="exactly one of"):
        MessageTemplate()
    with pytest.raises(ValueError, match="exactly one of"):
        MessageTemplate(template="x")
    with pytest.raises(ValueError, match="exactly one of"):
        MessageTemplate(role="human", template="x", message=HumanMessage("y"))
    with pytest.raises(ValueError):
        MessageTemplate(role="tool", template="x")
