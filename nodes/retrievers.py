"""Retrievers: a non-streaming node from a query string to a list of documents.

In a streaming chain a retriever buffers its input, runs once and emits exactly one chunk (the
whole list); streaming resumes after it, so ``{"context": retriever, "question": ...} | prompt
| model | parser`` still streams the answer token by token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rillet.graphs.base import Runnable
from rillet.runtime.errors import NodeInputError
from rillet.runtime.lowlevel import RunScope

if TYPE_CHECKING:
    from rillet.nodes.documents import Document
    from rillet.nodes.vectorstores import InMemoryVectorStore

__all__ = ["VectorStoreRetriever"]


class VectorStoreRetriever(Runnable[str, "list[Document]"]):
    """The ``k`` documents of a vector store most similar to the query.

    >>> from rillet.nodes import HashingEmbeddings, InMemoryVectorStore
    >>> store = InMemoryVectorStore.from_texts(["cats purr", "dogs bark"], HashingEmbeddings())
    >>> [d.page_content for d in store.as_retriever(k=1).invoke("a cat purrs")]
    ['cats purr']
    """

    kind: ClassVar[str] = "retriever"

    def __init__(
        self,
        vectorstore: InMemoryVectorStore,
        *,
        k: int = 4,
        search_kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        kwargs = dict(search_kwargs or {})
        k = kwargs.pop("k", k)
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        self.vectorstore, self.k, self.search_kwargs = vectorstore, k, kwargs
        self.name = name

    def __repr__(self) -> str:
        return f"VectorStoreRetriever(k={self.k})"

    def _event_input(self, value: object) -> object:
        return {"query": value}

    async def _ainvoke(self, input: object, ctx: RunScope) -> list[Document]:
        if not isinstance(input, str):
            raise NodeInputError(node=ctx.name, expected="a query str", got=input)
        return await self.vectorstore.asimilarity_search(input, k=self.k, **self.search_kwargs)
