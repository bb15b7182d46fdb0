"""Registers the component types with the runtime, which knows nothing about LLMs.

- wire types: messages and prompt values travel in event logs, over HTTP (msgpack) and Redis
  as tagged maps (``rillet.runtime.wire.codec``), never pickled;
- n-ary addition: a buffered stream of message chunks is added in one ``+`` call
  (``rillet.runtime.chunks.sum_chunks``), which keeps building a long reply linear.

Imported by ``nodes/__init__.py``; registering twice is harmless.
"""

from __future__ import annotations

from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_from_dict,
    messages_to_dict,
)
from rillet.nodes.templates import ChatPromptValue, StringPromptValue
from rillet.runtime.lowlevel import register_nary_add, register_wire_type

__all__: list[str] = []

for _cls in (AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage):
    register_wire_type(_cls, to_dict=messages_to_dict, from_dict=messages_from_dict)
register_wire_type(StringPromptValue)
register_wire_type(ChatPromptValue)
register_nary_add(AIMessageChunk)
