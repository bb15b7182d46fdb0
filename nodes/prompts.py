"""Prompt templates: a dict of variables in, a prompt value out (a non-streaming node).

The input is a dict of variables, or a bare value when the template has exactly one variable
(``chain.invoke("parrot")`` for ``"tell me a joke about {topic}"``). A missing variable is a
:class:`~rillet.nodes.templates.MissingVariablesError` that lists what is missing and what was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rillet.graphs.base import Runnable
from rillet.nodes.messages import BaseMessage
from rillet.nodes.templates import (
    ChatPromptValue,
    MessageSpec,
    MessagesPlaceholder,
    MessageTemplate,
    MissingVariablesError,
    StringPromptValue,
    format_template,
    parse_message_spec,
    template_variables,
)
from rillet.runtime.errors import NodeInputError
from rillet.runtime.lowlevel import RunScope

__all__ = ["BasePromptTemplate", "ChatPromptTemplate", "MessagesPlaceholder", "PromptTemplate"]


class BasePromptTemplate(Runnable[Any, Any]):
    """Shared input handling: dict of variables, or a bare value for a one-variable template."""

    kind: ClassVar[str] = "prompt"
    runs_inline = True
    input_variables: list[str]
    optional_variables: list[str]

    def _values(self, value: object, node: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            missing = [v for v in self.input_variables if v not in value]
            if missing:
                raise MissingVariablesError(prompt=node, missing=missing, given=value)
            return value
        required = self.input_variables
        if len(required) == 1:
            return {required[0]: value}
        raise NodeInputError(
            node=node,
            expected=f"a dict with keys {required}" if required else "a dict",
            got=value,
        )

    def format_prompt(self, **values: object) -> Any:
        raise NotImplementedError

    def get_input_jsonschema(self) -> dict[str, object]:
        """An object with the template's variables; one variable also takes a bare value.

        >>> PromptTemplate.from_template("{a} and {b}").get_input_jsonschema()["required"]
        ['a', 'b']
        """
        variables = self.input_variables
        obj: dict[str, object] = {"type": "object", "required": list(variables),
                                  "properties": {v: {"title": v} for v in variables}}
        if len(variables) == 1:
            return {"anyOf": [obj, {"not": {"type": "object"}}]}
        return obj

    async def _ainvoke(self, input: object, ctx: RunScope) -> object:
        return self._format(self._values(input, ctx.name), ctx.name)

    def _format(self, values: Mapping[str, object], node: str) -> object:
        raise NotImplementedError


class PromptTemplate(BasePromptTemplate):
    """A string template: ``PromptTemplate.from_template("Tell me about {topic}")``.

    >>> PromptTemplate.from_template("Tell me about {topic}").invoke("cats").to_string()
    'Tell me about cats'
    """

    def __init__(self, template: str, *, name: str | None = None) -> None:
        self.template = template
        self.input_variables = template_variables(template)
        self.optional_variables = []
        self.name = name

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> PromptTemplate:
        return cls(template, **kwargs)

    def __repr__(self) -> str:
        return f"PromptTemplate(template={self.template!r})"

    def _format(self, values: Mapping[str, object], node: str) -> StringPromptValue:
        return StringPromptValue(text=format_template(self.template, values, prompt=node))

    def format(self, **values: object) -> str:
        return format_template(self.template, values, prompt=self.get_name())

    def format_prompt(self, **values: object) -> StringPromptValue:
        return self._format(values, self.get_name())


class ChatPromptTemplate(BasePromptTemplate):
    """A list of message templates: role tuples, messages, placeholders.

    >>> prompt = ChatPromptTemplate.from_messages(
    ...     [("system", "You are {style}."), MessagesPlaceholder("history", optional=True),
    ...      ("human", "{question}")])
    >>> [m.type for m in prompt.invoke({"style": "terse", "question": "hi?"}).to_messages()]
    ['system', 'human']
    """

    def __init__(self, messages: Sequence[MessageSpec], *, name: str | None = None) -> None:
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise TypeError(
                f"ChatPromptTemplate expects a list of message specs, got {type(messages).__name__}"
            )
        self.messages: list[MessageTemplate] = [parse_message_spec(m) for m in messages]
        variables: dict[str, None] = {}
        optional: dict[str, None] = {}
        for template in self.messages:
            for var in template.input_variables:
                variables.setdefault(var)
            for var in template.optional_variables:
                optional.setdefault(var)
        self.input_variables = [v for v in variables if v not in optional]
        self.optional_variables = list(optional)
        self.name = name

    @classmethod
    def from_messages(cls, messages: Sequence[MessageSpec], **kwargs: Any) -> ChatPromptTemplate:
        return cls(messages, **kwargs)

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> ChatPromptTemplate:
        """One human message from an f-string template."""
        return cls([("human", template)], **kwargs)

    def __repr__(self) -> str:
        return f"ChatPromptTemplate(input_variables={self.input_variables!r})"

    def _format(self, values: Mapping[str, object], node: str) -> ChatPromptValue:
        messages = []
        for template in self.messages:
            messages.extend(template.format(values, prompt=node))
        return ChatPromptValue(messages=messages)

    def format_messages(self, **values: object) -> list[BaseMessage]:
        return list(self.format_prompt(**values).to_messages())

    def format_prompt(self, **values: object) -> ChatPromptValue:
        return self._format(self._values(values, self.get_name()), self.get_name())
