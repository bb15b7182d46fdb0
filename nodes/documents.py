"""``Document``: a piece of text with metadata, what retrievers return and vector stores hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rillet.runtime.lowlevel import register_wire_type

__all__ = ["Document"]


def _copy(metadata: Mapping[str, object]) -> dict[str, object]:
    return dict(metadata)


@register_wire_type
@attrs.frozen(repr=False)
class Document:
    """A piece of text and its metadata, optionally with the id a vector store gave it.

    ``metadata`` is copied, so a caller mutating its dict later cannot change the document.
    The repr is LangChain's (``id`` only when set)::

        >>> Document("Parrots talk.", metadata={"source": "birds.txt"})
        Document(metadata={'source': 'birds.txt'}, page_content='Parrots talk.')
        >>> Document(page_content="hi", id="d1")
        Document(id='d1', metadata={}, page_content='hi')
    """

    page_content: str = attrs.field(validator=attrs.validators.instance_of(str))
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_copy, kw_only=True)
    id: str | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
    )

    def __repr__(self) -> str:
        id_part = "" if self.id is None else f"id={self.id!r}, "
        return f"Document({id_part}metadata={self.metadata!r}, page_content={self.page_content!r})"

    def __str__(self) -> str:
        # LangChain's str(), which prompts built with f-strings and str.format() show.
        if self.metadata:
            return f"page_content='{self.page_content}' metadata={self.metadata}"
        return f"page_content='{self.page_content}'"
