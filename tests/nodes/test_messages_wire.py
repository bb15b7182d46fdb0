"""Messages encoded before ``rillet.nodes.messages`` became a package still decode.

Wire tags are class names (``register_wire_type``'s default), not module paths, so moving the
classes into submodules must not change a byte. These payloads were written by the single-module
``messages.py``; event logs and HTTP bodies hold exactly such trees.
"""

from __future__ import annotations

from typing import Any

import pytest

import rillet.nodes  # noqa: F401  # registers the wire types
from rillet.nodes.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from rillet.nodes.templates import ChatPromptValue
from rillet.runtime.wire.codec import unpackb
from rillet.runtime.wire.sse import JSON, MSGPACK, decode_body, dumps, to_tree

#: ``packb(VALUES)`` as the single-module messages.py wrote it.
MSGPACK_BEFORE_SPLIT = bytes.fromhex(
    "9687aa5f5f72696c6c65745f5fac48756d616e4d657373616765a474797065a568756d616ea7636f6e74656e"
    "74a26869a26964a26831b16164646974696f6e616c5f6b776172677380b1726573706f6e73655f6d65746164"
    "61746180a46e616d65a3616e6e87aa5f5f72696c6c65745f5fad53797374656d4d657373616765a474797065"
    "a673797374656da7636f6e74656e7492a362652082a474797065a474657874a474657874a56272696566a269"
    "64c0b16164646974696f6e616c5f6b776172677380b1726573706f6e73655f6d6574616461746180a46e616d"
    "65c089aa5f5f72696c6c65745f5fab546f6f6c4d657373616765a474797065a4746f6f6ca7636f6e74656e74"
    "a23432a26964c0b16164646974696f6e616c5f6b776172677380b1726573706f6e73655f6d65746164617461"
    "80a46e616d65c0ac746f6f6c5f63616c6c5f6964a26331a6737461747573a56572726f728aaa5f5f72696c6c"
    "65745f5fa941494d657373616765a474797065a26169a26964c0b16164646974696f6e616c5f6b7761726773"
    "80b1726573706f6e73655f6d6574616461746181aa6d6f64656c5f6e616d65a16da46e616d65c0a7636f6e74"
    "656e74a0aa746f6f6c5f63616c6c739184a46e616d65a166a46172677381a17101a26964a26331a474797065"
    "a9746f6f6c5f63616c6cb2696e76616c69645f746f6f6c5f63616c6c739185a46e616d65a167a461726773a3"
    "5b312ca26964a26332a56572726f72c0a474797065b1696e76616c69645f746f6f6c5f63616c6cae75736167"
    "655f6d6574616461746183ac696e7075745f746f6b656e7303ad6f75747075745f746f6b656e7302ac746f74"
    "616c5f746f6b656e73058aaa5f5f72696c6c65745f5fae41494d6573736167654368756e6ba474797065ae41"
    "494d6573736167654368756e6ba26964a27231b16164646974696f6e616c5f6b776172677380b1726573706f"
    "6e73655f6d6574616461746180a46e616d65c0a7636f6e74656e74a348656cae75736167655f6d6574616461"
    "7461c0b0746f6f6c5f63616c6c5f6368756e6b739185a46e616d65a166a461726773a67b2271223a20a26964"
    "a26331a5696e64657800a474797065af746f6f6c5f63616c6c5f6368756e6bae6368756e6b5f706f73697469"
    "6f6ea46c61737482aa5f5f72696c6c65745f5faf4368617450726f6d707456616c7565a86d65737361676573"
    "9287aa5f5f72696c6c65745f5fad53797374656d4d657373616765a474797065a673797374656da7636f6e74"
    "656e74a173a26964c0b16164646974696f6e616c5f6b776172677380b1726573706f6e73655f6d6574616461"
    "746180a46e616d65c087aa5f5f72696c6c65745f5fac48756d616e4d657373616765a474797065a568756d61"
    "6ea7636f6e74656e74a171a26964c0b16164646974696f6e616c5f6b776172677380b1726573706f6e73655f"
    "6d6574616461746180a46e616d65c0"
)
#: ``dumps(to_tree(VALUES), JSON)``: the JSON body of the HTTP API, as written then.
JSON_BEFORE_SPLIT = (
    '[{"__rillet__": "HumanMessage", "type": "human", "content": "hi", "id": "h1",'
    ' "additional_kwargs": {}, "response_metadata": {}, "name": "ann"},'
    ' {"__rillet__": "SystemMessage", "type": "system", "content": ["be ", {"type": "text",'
    ' "text": "brief"}], "id": null, "additional_kwargs": {}, "response_metadata": {},'
    ' "name": null}, {"__rillet__": "ToolMessage", "type": "tool", "content": "42", "id": null,'
    ' "additional_kwargs": {}, "response_metadata": {}, "name": null, "tool_call_id": "c1",'
    ' "status": "error"}, {"__rillet__": "AIMessage", "type": "ai", "id": null,'
    ' "additional_kwargs": {}, "response_metadata": {"model_name": "m"}, "name": null,'
    ' "content": "", "tool_calls": [{"name": "f", "args": {"q": 1}, "id": "c1",'
    ' "type": "tool_call"}], "invalid_tool_calls": [{"name": "g", "args": "[1,", "id": "c2",'
    ' "error": null, "type": "invalid_tool_call"}], "usage_metadata": {"input_tokens": 3,'
    ' "output_tokens": 2, "total_tokens": 5}}, {"__rillet__": "AIMessageChunk",'
    ' "type": "AIMessageChunk", "id": "r1", "additional_kwargs": {}, "response_metadata": {},'
    ' "name": null, "content": "Hel", "usage_metadata": null, "tool_call_chunks": [{"name": "f",'
    ' "args": "{\\"q\\": ", "id": "c1", "index": 0, "type": "tool_call_chunk"}],'
    ' "chunk_position": "last"}, {"__rillet__": "ChatPromptValue",'
    ' "messages": [{"__rillet__": "SystemMessage", "type": "system", "content": "s", "id": null,'
    ' "additional_kwargs": {}, "response_metadata": {}, "name": null},'
    ' {"__rillet__": "HumanMessage", "type": "human", "content": "q", "id": null,'
    ' "additional_kwargs": {}, "response_metadata": {}, "name": null}]}]'
).encode()


def values() -> list[Any]:
    return [
        HumanMessage("hi", id="h1", name="ann"),
        SystemMessage(["be ", {"type": "text", "text": "brief"}]),
        ToolMessage("42", tool_call_id="c1", status="error"),
        AIMessage("", tool_calls=[{"name": "f", "args": {"q": 1}, "id": "c1"}],
                  invalid_tool_calls=[{"name": "g", "args": "[1,", "id": "c2", "error": None}],
                  usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
                  response_metadata={"model_name": "m"}),
        AIMessageChunk("Hel", id="r1", chunk_position="last",
                       tool_call_chunks=[{"name": "f", "args": '{"q": ', "id": "c1", "index": 0}]),
        ChatPromptValue([SystemMessage("s"), HumanMessage("q")]),
    ]


def _same(decoded: list[Any], expected: list[Any]) -> None:
    assert [type(value) for value in decoded] == [type(value) for value in expected]
    assert decoded == expected


def test_msgpack_written_before_the_split_decodes_to_the_same_messages() -> None:
    """Old msgpack bytes give equal values of the very classes the package exports."""
    _same(unpackb(MSGPACK_BEFORE_SPLIT), values())


def test_json_written_before_the_split_decodes_to_the_same_messages() -> None:
    """Old JSON bodies decode the same way."""
    _same(decode_body(JSON_BEFORE_SPLIT, JSON), values())


@pytest.mark.parametrize(("media", "recorded"), [(JSON, JSON_BEFORE_SPLIT),
                                                 (MSGPACK, MSGPACK_BEFORE_SPLIT)])
def test_encoding_is_byte_for_byte_what_it_was(media: str, recorded: bytes) -> None:
    """The split changes no tag and no field: today's bytes equal the recorded ones."""
    assert dumps(to_tree(values()), media) == recorded
