"""``InMemoryVectorStore``: documents and their vectors in a dict, searched by cosine similarity.

Pure Python: a search embeds the query once and scores every stored vector (norms are
computed when a document is added), which suits the thousands of documents a test, a demo
or a small app holds.
"""

from __future__ import annotations

import heapq
import math
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

import attrs

from rillet.nodes.documents import Document
from rillet.nodes.embeddings import Embeddings

if TYPE_CHECKING:
    from rillet.nodes.retrievers import VectorStoreRetriever

__all__ = ["InMemoryVectorStore"]

_T = TypeVar("_T")
# A function of the document, or metadata that must match on every key.
_Filter = Callable[[Document], bool] | Mapping[str, Any]


@attrs.frozen
class _Vector:
    """A vector with its norm, computed once."""

    values: tuple[float, ...]
    norm: float

    @classmethod
    def from_floats(cls, values: Iterable[float]) -> _Vector:
        floats = tuple(map(float, values))
        return cls(values=floats, norm=math.hypot(*floats))

    def cosine(self, other: _Vector) -> float:
        if self.norm == 0.0 or other.norm == 0.0:
            return 0.0  # a zero vector (a text with no words) is similar to nothing
        dot: float = sum(map(operator.mul, self.values, other.values))
        return dot / (self.norm * other.norm)


@attrs.frozen
class _Entry:
    document: Document
    vector: _Vector


class InMemoryVectorStore:
    """Holds documents with their embeddings; finds the ones most similar to a query.

    >>> from rillet.nodes.embeddings import HashingEmbeddings
    >>> store = InMemoryVectorStore.from_texts(
    ...     ["cats like fish", "the stock market crashed"], HashingEmbeddings(), ids=["a", "b"])
    >>> store.similarity_search("a cat eating fish", k=1)
    [Document(id='a', metadata={}, page_content='cats like fish')]

    Adding a document under an id the store already holds replaces it. Not thread-safe.
    """

    def __init__(self, embedding: Embeddings) -> None:
        self.embedding = embedding
        # Insertion-ordered: equal scores come back in the order documents were added.
        self._entries: dict[str, _Entry] = {}

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        embedding: Embeddings,
        metadatas: Sequence[Mapping[str, object]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Self:
        """Make a store holding ``texts`` (see ``add_texts``).

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> InMemoryVectorStore.from_texts(["hi"], HashingEmbeddings(), ids=["h"]).get_by_ids(["h"])
        [Document(id='h', metadata={}, page_content='hi')]
        """
        store = cls(embedding)
        store.add_texts(texts, metadatas=metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], embedding: Embeddings, ids: Sequence[str] | None = None
    ) -> Self:
        """Make a store holding ``documents`` (see ``add_documents``).

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> docs = [Document("hi", id="h")]
        >>> InMemoryVectorStore.from_documents(docs, HashingEmbeddings()).get_by_ids(["h"])
        [Document(id='h', metadata={}, page_content='hi')]
        """
        store = cls(embedding)
        store.add_documents(documents, ids=ids)
        return store

    def add_texts(
        self,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, object]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add one document per text, with the matching metadata; return their ids.

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> InMemoryVectorStore(HashingEmbeddings()).add_texts(["hi"], [{"lang": "en"}], ids=["h"])
        ['h']

        Raises:
            ValueError: ``metadatas`` or ``ids`` is not as long as ``texts``.
        """
        texts = _sequence("texts", texts)
        if metadatas is None:
            metadatas = [{}] * len(texts)
        _check_length("metadatas", _sequence("metadatas", metadatas), len(texts))
        documents = [
            Document(text, metadata=dict(meta)) for text, meta in zip(texts, metadatas, strict=True)
        ]
        return self.add_documents(documents, ids=ids)

    def add_documents(
        self, documents: Sequence[Document], ids: Sequence[str] | None = None
    ) -> list[str]:
        """Embed and store ``documents``; return their ids.

        A document's id is taken from ``ids`` if given, else from ``document.id``, else a new
        UUID; the stored (and returned) document carries it.

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> InMemoryVectorStore(HashingEmbeddings()).add_documents([Document("hi", id="h")])
        ['h']

        Raises:
            TypeError: an item of ``documents`` is not a ``Document``.
            ValueError: ``ids`` is not as long as ``documents``, or the embedding returned a
                vector of another length than the ones already stored.
        """
        documents = _sequence("documents", documents)
        for doc in documents:
            if not isinstance(doc, Document):
                raise TypeError(
                    f"add_documents expects Document objects, got {type(doc).__name__}: "
                    f"{doc!r:.40}; use add_texts for plain strings"
                )
        if ids is None:
            ids = [doc.id if doc.id is not None else str(uuid.uuid4()) for doc in documents]
        _check_length("ids", _sequence("ids", ids), len(documents))
        vectors = self.embedding.embed_documents([doc.page_content for doc in documents])
        _check_length("the embedding's vectors", vectors, len(documents))
        entries = [
            _Entry(document=attrs.evolve(doc, id=doc_id), vector=_Vector.from_floats(vector))
            for doc, doc_id, vector in zip(documents, ids, vectors, strict=True)
        ]
        # Check every vector before storing any, so a bad batch leaves the store unchanged.
        dimensions = self._dimensions()
        for entry in entries:
            if dimensions is None:
                dimensions = len(entry.vector.values)
            _check_dimensions(entry.vector, dimensions, "document")
        for doc_id, entry in zip(ids, entries, strict=True):
            self._entries[doc_id] = entry
        return list(ids)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the documents with these ids; ids the store does not hold are ignored.

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> store = InMemoryVectorStore.from_texts(["hi"], HashingEmbeddings(), ids=["h"])
        >>> store.delete(["h", "nope"]); store.get_by_ids(["h"])
        []
        """
        for doc_id in _sequence("ids", ids):
            self._entries.pop(doc_id, None)

    def get_by_ids(self, ids: Sequence[str]) -> list[Document]:
        """Return the stored documents with these ids, in that order, skipping unknown ids.

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> store = InMemoryVectorStore.from_texts(["a", "b"], HashingEmbeddings(), ids=["1", "2"])
        >>> [doc.page_content for doc in store.get_by_ids(["2", "x", "1"])]
        ['b', 'a']
        """
        return [self._entries[i].document for i in _sequence("ids", ids) if i in self._entries]

    def similarity_search(
        self, query: str, k: int = 4, filter: _Filter | None = None
    ) -> list[Document]:
        """Return the ``k`` documents most similar to ``query``, most similar first.

        ``filter`` keeps only some documents: a function of the document, or a mapping that
        the document's metadata must match on every key.

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> store = InMemoryVectorStore.from_texts(
        ...     ["cats like fish", "dogs like fish"], HashingEmbeddings(),
        ...     metadatas=[{"pet": "cat"}, {"pet": "dog"}])
        >>> [d.page_content for d in store.similarity_search("fish", filter={"pet": "dog"})]
        ['dogs like fish']

        Raises:
            ValueError: ``k`` is not an int >= 1.
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: _Filter | None = None
    ) -> list[tuple[Document, float]]:
        """Like ``similarity_search``, with each document's cosine similarity (-1 to 1).

        >>> from rillet.nodes.embeddings import HashingEmbeddings
        >>> store = InMemoryVectorStore.from_texts(["fish"], HashingEmbeddings())
        >>> round(store.similarity_search_with_score("fish")[0][1], 6)
        1.0
        """
        _check_k(k)
        return self._search(self.embedding.embed_query(query), k, filter)

    def similarity_search_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: _Filter | None = None
    ) -> list[Document]:
        """Like ``similarity_search``, for a query that is already a vector.

        Raises:
            ValueError: ``k`` is not an int >= 1, or the vector has another length than the
                stored ones.
        """
        _check_k(k)
        return [doc for doc, _ in self._search(embedding, k, filter)]

    def as_retriever(
        self, *, k: int = 4, search_kwargs: dict[str, Any] | None = None, name: str | None = None
    ) -> VectorStoreRetriever:
        """A retriever node over this store: a query in, the ``k`` closest documents out.

        >>> from rillet.nodes import HashingEmbeddings
        >>> store = InMemoryVectorStore.from_texts(["harrison worked at kensho"],
        ...                                        HashingEmbeddings())
        >>> store.as_retriever(k=1).invoke("where did harrison work?")[0].page_content
        'harrison worked at kensho'
        """
        from rillet.nodes.retrievers import VectorStoreRetriever

        return VectorStoreRetriever(self, k=k, search_kwargs=search_kwargs, name=name)

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: _Filter | None = None
    ) -> list[Document]:
        """``similarity_search`` for trio code: the query is embedded with ``aembed_query``."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter)]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: _Filter | None = None
    ) -> list[tuple[Document, float]]:
        """``similarity_search_with_score`` for trio code."""
        _check_k(k)
        return self._search(await self.embedding.aembed_query(query), k, filter)

    def _search(
        self, query: Sequence[float], k: int, filter: _Filter | None
    ) -> list[tuple[Document, float]]:
        query_vector = _Vector.from_floats(query)
        dimensions = self._dimensions()
        if dimensions is not None:
            _check_dimensions(query_vector, dimensions, "query")
        keep = _compile_filter(filter)
        scored = (
            (entry.document, query_vector.cosine(entry.vector))
            for entry in self._entries.values()
            if keep(entry.document)
        )
        # nlargest is stable: among equal scores, the earlier-added document comes first.
        return heapq.nlargest(k, scored, key=operator.itemgetter(1))

    def _dimensions(self) -> int | None:
        first = next(iter(self._entries.values()), None)
        return None if first is None else len(first.vector.values)


def _check_dimensions(vector: _Vector, dimensions: int, what: str) -> None:
    if len(vector.values) != dimensions:
        raise ValueError(
            f"{what} vector has {len(vector.values)} dimensions but the store holds vectors of "
            f"{dimensions}; use one embedding for everything in a store"
        )


def _compile_filter(filter: _Filter | None) -> Callable[[Document], bool]:
    if filter is None:
        return lambda doc: True
    if isinstance(filter, Mapping):
        wanted = dict(filter)
        return lambda doc: all(
            key in doc.metadata and doc.metadata[key] == value for key, value in wanted.items()
        )
    if callable(filter):
        return filter
    raise TypeError(
        "filter must be a function of a Document or a mapping of metadata, "
        f"got {type(filter).__name__}"
    )


def _check_k(k: int) -> None:
    if type(k) is not int or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def _sequence(name: str, values: Sequence[_T]) -> Sequence[_T]:
    # A str is a Sequence too: add_texts("hello") would add five one-letter documents.
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list, not a single str: wrap it as [{values!r:.40}]")
    return values


def _check_length(name: str, values: Sequence[object], expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} items, expected {expected}")
