"""Chat messages and streamed message chunks, shaped like LangChain's.

    BaseMessage                 content, id, additional_kwargs, response_metadata, name
    ├── HumanMessage            type "human"
    ├── SystemMessage           type "system"
    ├── ToolMessage             type "tool"; tool_call_id, status
    ├── AIMessage               type "ai"; tool_calls, invalid_tool_calls, usage_metadata
    └── AIMessageChunk          type "AIMessageChunk"; tool_call_chunks, chunk_position, and
                                tool_calls / invalid_tool_calls derived from the chunks

Messages are frozen attrs classes: ``content`` may be positional, every other field is keyword
only, and fields are checked and copied on the way in. ``AIMessageChunk`` is not a subclass of
``AIMessage`` (its tool calls are derived, not stored); use :func:`message_chunk_to_message`.

``chunk + chunk`` (or ``chunk + [chunks]``, one pass for any number) follows the rules in
:mod:`rillet.nodes.merge`: LangChain's, except that repeated labels such as ``model_name`` are not
concatenated. Tool-call arguments are parsed only when ``tool_calls`` is first read, so a model
can stream thousands of chunks without parsing anything.

>>> reply = AIMessageChunk(content="Hel") + AIMessageChunk(content="lo")
>>> get_buffer_string([HumanMessage("hi"), message_chunk_to_message(reply)])
'Human: hi\\nAI: Hello'

The modules: ``classes`` (``BaseMessage`` and the four whole messages), ``chunks``
(``AIMessageChunk``), ``convert`` (coercion, dicts, transcripts), ``errors``, and ``fields``
(the converters and validators behind every field). Import from this package: each class has
one home, so the names here are the very classes the modules define.
"""

from rillet.nodes.messages.chunks import AIMessageChunk, message_chunk_to_message
from rillet.nodes.messages.classes import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.messages.convert import (
    MessageLike,
    coerce_to_message,
    get_buffer_string,
    messages_from_dict,
    messages_to_dict,
)
from rillet.nodes.messages.errors import MessageCoercionError, MessageFieldError
from rillet.runtime.lowlevel import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "BaseMessage",
    "HumanMessage",
    "MessageCoercionError",
    "MessageFieldError",
    "MessageLike",
    "SystemMessage",
    "ToolMessage",
    "coerce_to_message",
    "get_buffer_string",
    "message_chunk_to_message",
    "messages_from_dict",
    "messages_to_dict",
]

_fixup_module_metadata(__name__, globals())
