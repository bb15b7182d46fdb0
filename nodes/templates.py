"""Prompt templates as plain logic: f-string templates, prompt values and message templates.

The Runnables (``PromptTemplate``, ``ChatPromptTemplate``) wrap these; nothing here streams.

Templates use Python's f-string syntax restricted to identifiers: ``"tell me about {topic}"``,
with ``{{`` and ``}}`` for literal braces. Other names (``{"a"}``, usually JSON that should
have doubled braces), format specs (``{x:>10}``), conversions (``{x!r}``),
attribute and index access (``{x.y}``, ``{x[0]}``) and positional fields (``{}``, ``{0}``) are
rejected when the template is read, not when it is formatted: a template is code that should
not reach into the objects it is given.

Errors::

    RilletError
    ├── MissingVariablesError (also ValueError)   formatting without some variables
    └── InvalidTemplateError (also ValueError)    a malformed template or message spec
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from rillet.nodes.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageCoercionError,
    SystemMessage,
    coerce_to_message,
    get_buffer_string,
)
from rillet.runtime.errors import NodeInputError, RilletError

__all__ = [
    "ChatPromptValue",
    "InvalidTemplateError",
    "MessageSpec",
    "MessageTemplate",
    "MessagesPlaceholder",
    "MissingVariablesError",
    "StringPromptValue",
    "format_template",
    "parse_message_spec",
    "template_variables",
]


class MissingVariablesError(RilletError, ValueError):
    """A prompt was formatted without some of its variables.

    >>> str(MissingVariablesError(prompt="ChatPromptTemplate", missing=["topic"], given=["topc"]))
    "prompt 'ChatPromptTemplate' is missing variables ['topic']; got keys ['topc']"
    """

    def __init__(self, *, prompt: str, missing: Sequence[str], given: Iterable[object]) -> None:
        self.prompt, self.missing = prompt, list(missing)
        self.given = sorted(given, key=str)
        super().__init__(
            f"prompt {prompt!r} is missing variables {self.missing}; got keys {self.given}")

    def __reduce__(self) -> Any:
        return (_rebuild, (MissingVariablesError,
                           dict(prompt=self.prompt, missing=self.missing, given=self.given)))


class InvalidTemplateError(RilletError, ValueError):
    """A template string or message spec cannot be used; the message says how to fix it.

    >>> str(InvalidTemplateError(template="{x!r}", reason="conversions are not supported"))
    "invalid template '{x!r}': conversions are not supported"
    """

    def __init__(self, *, template: object, reason: str) -> None:
        self.template, self.reason = template, reason
        super().__init__(f"invalid template {template!r:.80}: {reason}")

    def __reduce__(self) -> Any:
        return (_rebuild, (InvalidTemplateError, dict(template=self.template, reason=self.reason)))


def _rebuild(cls: type[Exception], kwargs: Mapping[str, object]) -> Exception:
    return cls(**kwargs)


# -- f-string templates ---------------------------------------------------------------------

_LITERAL_BRACES: Final = "if you meant literal braces, double them: {{ and }}"


@functools.lru_cache(maxsize=512)
def _parse(template: str) -> tuple[tuple[str, str | None], ...]:
    """``(literal text, variable or None)`` pairs; cached, prompts are formatted often."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:  # "Single '}' encountered", "unmatched '{'"
        raise InvalidTemplateError(
            template=template, reason=f"{error}; {_LITERAL_BRACES}") from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "")
        shown += (f":{spec}" if spec else "") + "}"
        if conversion:
            reason = f"{shown} has a conversion, which templates do not support"
        elif spec:
            reason = f"{shown} has a format spec, which templates do not support"
        elif not name or name.isdigit():
            reason = f"{shown} is positional; name the variable, e.g. {{topic}}"
        elif any(char in name for char in ".[]"):
            reason = f"{shown} uses attribute or index access; pass the value itself"
        elif not name.isidentifier():
            reason = f"{shown} is not a variable name (letters, digits and _)"
        else:
            pieces.append((literal, name))
            continue
        raise InvalidTemplateError(template=template, reason=f"{reason}; {_LITERAL_BRACES}")
    return tuple(pieces)


def template_variables(template: str) -> list[str]:
    """The variables of an f-string template, in order of first use.

    >>> template_variables("{a} and {b}, {a} again; {{not a variable}}")
    ['a', 'b']

    Raises:
        InvalidTemplateError: unbalanced braces, format specs, conversions, attribute or index
            access, or positional fields.
    """
    return list(dict.fromkeys(name for _, name in _parse(template) if name is not None))


def format_template(
    template: str, values: Mapping[str, object], *, prompt: str = "PromptTemplate"
) -> str:
    """Fill in an f-string template; ``prompt`` names the prompt in errors.

    Values are rendered as ``format(value)`` would; extra keys are ignored.

    >>> format_template("tell me a joke about {topic}", {"topic": "cats"})
    'tell me a joke about cats'

    Raises:
        MissingVariablesError: some variables have no value.
        InvalidTemplateError: the template is malformed (see :func:`template_variables`).
    """
    pieces = _parse(template)
    try:
        return "".join(
            literal if name is None else f"{literal}{values[name]}" for literal, name in pieces)
    except KeyError:
        missing = [name for name in template_variables(template) if name not in values]
        if not missing:
            raise  # a KeyError from inside a value's __format__, not a missing variable
        raise MissingVariablesError(prompt=prompt, missing=missing, given=values) from None


# -- prompt values --------------------------------------------------------------------------

@attrs.frozen
class StringPromptValue:
    """A formatted string prompt.

    >>> StringPromptValue("tell me a joke").to_messages()
    [HumanMessage(content='tell me a joke')]
    """

    text: str = attrs.field(validator=attrs.validators.instance_of(str))

    def to_string(self) -> str:
        """The prompt as text."""
        return self.text

    def to_messages(self) -> list[BaseMessage]:
        """The prompt as one human message."""
        return [HumanMessage(self.text)]


def _messages(value: Iterable[BaseMessage]) -> list[BaseMessage]:
    messages = list(value)
    for position, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise TypeError(f"ChatPromptValue.messages expected a list of messages; item "
                            f"{position} is {type(message).__name__}: {message!r:.80}")
    return messages


@attrs.frozen(unsafe_hash=False)
class ChatPromptValue:
    """A formatted chat prompt: a list of messages.

    >>> ChatPromptValue([HumanMessage("Tell me a joke about cats")])
    ChatPromptValue(messages=[HumanMessage(content='Tell me a joke about cats')])
    >>> ChatPromptValue([SystemMessage("Be brief."), HumanMessage("hi")]).to_string()
    'System: Be brief.\\nHuman: hi'
    """

    # Copied, so a caller changing its list later cannot change the prompt.
    messages: list[BaseMessage] = attrs.field(converter=_messages)

    def to_string(self) -> str:
        """The messages as a ``Role: text`` transcript."""
        return get_buffer_string(self.messages)

    def to_messages(self) -> list[BaseMessage]:
        """A new list of the messages."""
        return list(self.messages)


# -- message templates ----------------------------------------------------------------------

@attrs.frozen
class MessagesPlaceholder:
    """Where a list of messages from the input goes, e.g. a conversation's history.

    An ``optional`` placeholder whose variable is missing gives no messages.

    >>> MessagesPlaceholder("history", optional=True)
    MessagesPlaceholder(variable_name='history', optional=True)
    """

    variable_name: str = attrs.field(validator=attrs.validators.instance_of(str))
    optional: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


_ROLE_CLASSES: Final[Mapping[str, type[BaseMessage]]] = {
    "ai": AIMessage, "assistant": AIMessage, "human": HumanMessage, "system": SystemMessage,
    "user": HumanMessage,
}
_SPEC_ROLES: Final = sorted([*_ROLE_CLASSES, "placeholder"])

MessageSpec: TypeAlias = BaseMessage | MessagesPlaceholder | str | tuple[str, str]
"""What :func:`parse_message_spec` accepts."""


@attrs.frozen(kw_only=True)
class MessageTemplate:
    """One entry of a chat prompt: a role with a template, a fixed message or a placeholder.

    Build one with :func:`parse_message_spec`, or give exactly one of ``template`` (with
    ``role``), ``message`` or ``placeholder``.

    >>> MessageTemplate(role="human", template="about {topic}").format({"topic": "cats"})
    [HumanMessage(content='about cats')]
    """

    role: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(_ROLE_CLASSES)))
    template: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str)))
    message: BaseMessage | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(BaseMessage)))
    placeholder: MessagesPlaceholder | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(MessagesPlaceholder)))

    def __attrs_post_init__(self) -> None:
        kinds = [self.template is not None, self.message is not None, self.placeholder is not None]
        if kinds.count(True) != 1 or (self.template is None) != (self.role is None):
            raise ValueError("MessageTemplate needs exactly one of: role and template, message, "
                             "or placeholder")
        if self.template is not None:
            _parse(self.template)  # a malformed template fails here, not at the first call

    @property
    def input_variables(self) -> list[str]:
        """The variables this entry requires (an optional placeholder requires none)."""
        if self.template is not None:
            return template_variables(self.template)
        if self.placeholder is not None and not self.placeholder.optional:
            return [self.placeholder.variable_name]
        return []

    @property
    def optional_variables(self) -> list[str]:
        """The variables this entry uses when given: an optional placeholder's."""
        if self.placeholder is not None and self.placeholder.optional:
            return [self.placeholder.variable_name]
        return []

    def format(
        self, values: Mapping[str, object], *, prompt: str = "ChatPromptTemplate"
    ) -> list[BaseMessage]:
        """The messages of this entry for ``values``; ``prompt`` names the prompt in errors.

        Raises:
            MissingVariablesError: a variable of the template or a required placeholder is
                missing.
            NodeInputError: a placeholder's value is not a list of message-like values.
        """
        if self.template is not None:
            assert self.role is not None  # checked in __attrs_post_init__
            text = format_template(self.template, values, prompt=prompt)
            return [_ROLE_CLASSES[self.role](text)]
        if self.message is not None:
            return [self.message]
        assert self.placeholder is not None
        name = self.placeholder.variable_name
        if name not in values:
            if self.placeholder.optional:
                return []
            raise MissingVariablesError(prompt=prompt, missing=[name], given=values)
        return _placeholder_messages(values[name], name, prompt)


def _placeholder_messages(value: object, name: str, prompt: str) -> list[BaseMessage]:
    expected = f"a list of messages for placeholder {name!r}"
    if not isinstance(value, (list, tuple)):
        raise NodeInputError(node=prompt, expected=expected, got=value)
    try:
        return [coerce_to_message(item) for item in value]
    except MessageCoercionError as error:
        raise NodeInputError(node=prompt, expected=expected, got=error.got) from error


def parse_message_spec(spec: MessageSpec) -> MessageTemplate:
    """Read one entry of ``ChatPromptTemplate.from_messages([...])``.

    Accepts ``(role, template)`` with role human/user, ai/assistant or system; a plain str
    (a human template); ``("placeholder", "{history}")`` (an optional placeholder); a message
    (used verbatim, never templated); or a :class:`MessagesPlaceholder`.

    >>> parse_message_spec(("system", "You are {persona}.")).input_variables
    ['persona']
    >>> parse_message_spec(("placeholder", "{history}")).placeholder
    MessagesPlaceholder(variable_name='history', optional=True)

    Raises:
        InvalidTemplateError: an unknown role, a malformed template, a placeholder template
            that is not a single ``{name}``, or a value of another type.
    """
    if isinstance(spec, BaseMessage):
        return MessageTemplate(message=spec)
    if isinstance(spec, MessagesPlaceholder):
        return MessageTemplate(placeholder=spec)
    if isinstance(spec, str):
        return MessageTemplate(role="human", template=spec)
    if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
        raise InvalidTemplateError(template=spec, reason=(
            f"expected a (role, template) tuple with role in {_SPEC_ROLES}, a str, a message "
            "or a MessagesPlaceholder"))
    role, template = spec
    if not isinstance(template, str):
        raise InvalidTemplateError(
            template=spec, reason=f"the template must be a str, got {type(template).__name__}")
    if role == "placeholder":
        variables = template_variables(template)
        if len(variables) != 1 or template.strip() != "{" + variables[0] + "}":
            raise InvalidTemplateError(template=spec, reason=(
                "a placeholder's template must be one variable in braces, e.g. '{history}'"))
        return MessageTemplate(placeholder=MessagesPlaceholder(variables[0], optional=True))
    if role not in _ROLE_CLASSES:
        raise InvalidTemplateError(
            template=spec, reason=f"unknown role {role!r}; expected one of {_SPEC_ROLES}")
    return MessageTemplate(role=role, template=template)
