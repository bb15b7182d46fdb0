from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import trio

from rillet.nodes.documents import Document
from rillet.nodes.embeddings import BaseEmbeddings, Embeddings, HashingEmbeddings
from rillet.nodes.vectorstores import InMemoryVectorStore
from rillet.runtime.wire.codec import packb, unpackb


class FixedEmbeddings(BaseEmbeddings):
    """Vectors looked up by text, so a test controls every score exactly."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.vectors[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


# Document


def test_document_repr_is_langchains() -> None:
    """metadata always shows, id only when set, then page_content."""
    assert repr(Document("hi")) == "Document(metadata={}, page_content='hi')"
    assert (
        repr(Document(page_content="hi", metadata={"source": "a.txt"}, id="d1"))
        == "Document(id='d1', metadata={'source': 'a.txt'}, page_content='hi')"
    )
    assert str(Document("hi", metadata={"a": 1})) == "page_content='hi' metadata={'a': 1}"
    assert str(Document("hi")) == "page_content='hi'"


def test_document_copies_its_metadata_and_checks_its_types() -> None:
    """A caller mutating its dict later cannot change the document."""
    metadata = {"source": "a.txt"}
    doc = Document("hi", metadata=metadata)
    metadata["source"] = "b.txt"
    assert doc.metadata == {"source": "a.txt"}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        doc.page_content = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError, match="'page_content' must be <class 'str'>"):
        Document(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'id' must be <class 'str'>"):
        Document("hi", id=7)  # type: ignore[arg-type]


def test_documents_travel_on_the_wire() -> None:
    """Document is a registered wire type: it round-trips inside any value."""
    docs = [Document("a", metadata={"page": 1, "tags": ("x",)}, id="1"), Document("b")]
    assert unpackb(packb({"documents": docs})) == {"documents": docs}


# Embeddings


def test_hashing_embeddings_satisfy_the_protocol() -> None:
    """Anything with the four methods is an Embeddings, checked at runtime too."""
    assert isinstance(HashingEmbeddings(), Embeddings)
    assert isinstance(FixedEmbeddings({}), Embeddings)
    assert not isinstance(object(), Embeddings)


def test_hashing_embeddings_are_normalized_and_sized() -> None:
    """Each vector has ``dimensions`` floats and unit length; a text without words is zero."""
    emb = HashingEmbeddings(dimensions=64)
    vectors = emb.embed_documents(["cats like fish", "A much longer text, with punctuation!"])
    assert [len(v) for v in vectors] == [64, 64]
    assert all(math.isclose(math.hypot(*v), 1.0) for v in vectors)
    assert emb.embed_query("  ...  ") == [0.0] * 64


def test_hashing_embeddings_are_stable_across_processes() -> None:
    """BLAKE2b, not hash(): these numbers never change with PYTHONHASHSEED or the machine."""
    vector = HashingEmbeddings(dimensions=8).embed_query("Hello, world!")
    assert [round(x, 4) for x in vector] == [
        0.0,
        0.2774,
        0.2774,
        0.0,
        -0.8321,
        -0.2774,
        -0.2774,
        0.0,
    ]
    assert HashingEmbeddings(seed=1).embed_query("hello") != HashingEmbeddings().embed_query(
        "hello"
    )


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    """Shared words and word stems ("cat"/"cats") outweigh hash collisions."""
    for emb in (HashingEmbeddings(), HashingEmbeddings(dimensions=64, seed=3)):
        cats, cat, stocks = emb.embed_documents(
            ["cats like fish", "a cat likes fish", "stock market crashed"]
        )
        assert cosine(cats, cat) > 0.3
        assert cosine(cats, cat) > cosine(cats, stocks) + 0.2
        assert cosine(cats, cat) > cosine(cat, stocks) + 0.2


def test_case_and_punctuation_do_not_matter() -> None:
    """Words are casefolded and split on anything that is not a word character."""
    emb = HashingEmbeddings()
    assert emb.embed_query("Cats, like FISH!") == emb.embed_query("cats like fish")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dimensions": 0}, r"^dimensions must be an int >= 1, got 0$"),
        (
            {"ngram_range": (2, 1)},
            r"^ngram_range must be \(low, high\) with 1 <= low <= high, got \(2, 1\)$",
        ),
        ({"char_ngrams": -1}, r"^char_ngrams must be an int >= 0, got -1$"),
        ({"seed": -1}, r"^seed must be an int in \[0, 2\*\*64\), got -1$"),
    ],
)
def test_hashing_embeddings_validate_parameters(kwargs: dict[str, Any], message: str) -> None:
    """Out-of-range parameters fail at construction, naming the parameter."""
    with pytest.raises(ValueError, match=message):
        HashingEmbeddings(**kwargs)


async def test_async_embeddings_match_sync_and_checkpoint() -> None:
    """BaseEmbeddings' async methods give the sync results and honour cancellation."""
    emb = HashingEmbeddings()
    assert await emb.aembed_query("fish") == emb.embed_query("fish")
    assert await emb.aembed_documents(["a", "b"]) == emb.embed_documents(["a", "b"])
    with trio.CancelScope() as scope:
        scope.cancel()
        await emb.aembed_query("fish")
    assert scope.cancelled_caught


# InMemoryVectorStore


def store_of(
    vectors: dict[str, list[float]], texts: Sequence[str] | None = None
) -> InMemoryVectorStore:
    texts = list(vectors) if texts is None else texts
    return InMemoryVectorStore.from_texts(texts, FixedEmbeddings(vectors), ids=list(texts))


def test_search_ranks_by_cosine_similarity() -> None:
    """Most similar first, scored by cosine similarity whatever the vectors' lengths."""
    store = store_of(
        {"x": [10.0, 0.0], "diag": [1.0, 1.0], "y": [0.0, 3.0], "-x": [-2.0, 0.0], "q": [1.0, 0.0]},
        texts=["y", "-x", "diag", "x"],
    )
    scored = store.similarity_search_with_score("q", k=4)
    assert [(doc.page_content, round(score, 4)) for doc, score in scored] == [
        ("x", 1.0),
        ("diag", round(1 / math.sqrt(2), 4)),
        ("y", 0.0),
        ("-x", -1.0),
    ]
    assert [doc.page_content for doc in store.similarity_search("q", k=2)] == ["x", "diag"]


def test_ties_come_back_in_insertion_order() -> None:
    """Equal scores keep the order documents were added in."""
    vectors = {t: [1.0, 0.0] for t in ["c", "a", "b"]} | {"q": [1.0, 0.0], "far": [0.0, 1.0]}
    store = store_of(vectors, texts=["far", "c", "a", "b"])
    assert [d.page_content for d in store.similarity_search("q", k=3)] == ["c", "a", "b"]


def test_hashing_store_finds_the_related_text() -> None:
    """End to end with the default embeddings: the cat text beats the stock text."""
    store = InMemoryVectorStore.from_texts(
        ["the stock market crashed", "cats like fish", "parrots can talk"],
        HashingEmbeddings(),
        metadatas=[{"topic": "money"}, {"topic": "pets"}, {"topic": "pets"}],
    )
    [best] = store.similarity_search("a cat likes fish", k=1)
    assert best.page_content == "cats like fish" and best.metadata == {"topic": "pets"}
    assert best.id is not None


def test_documents_keep_or_get_ids() -> None:
    """ids= wins, then the document's own id, then a fresh UUID; the stored copy carries it."""
    store = InMemoryVectorStore(HashingEmbeddings())
    ids = store.add_documents([Document("a", id="mine"), Document("b")])
    assert ids[0] == "mine" and len(ids[1]) == 36
    assert store.add_documents([Document("c", id="ignored")], ids=["given"]) == ["given"]
    assert [d.id for d in store.get_by_ids(["given", *ids])] == ["given", "mine", ids[1]]


def test_adding_an_existing_id_replaces_the_document() -> None:
    """An id is a key: adding it again updates the text and vector in place."""
    store = InMemoryVectorStore(HashingEmbeddings())
    store.add_texts(["cats like fish"], ids=["1"])
    store.add_texts(["stock market"], ids=["1"])
    assert store.get_by_ids(["1"]) == [Document("stock market", id="1")]
    assert store.similarity_search("stock market", k=5) == [Document("stock market", id="1")]


def test_delete_and_get_by_ids() -> None:
    """get_by_ids keeps the asked order and skips unknown ids; delete ignores unknown ids."""
    store = store_of({"a": [1.0], "b": [1.0], "c": [1.0], "q": [1.0]}, texts=["a", "b", "c"])
    assert [d.page_content for d in store.get_by_ids(["c", "zzz", "a"])] == ["c", "a"]
    store.delete(["b", "zzz"])
    assert [d.page_content for d in store.similarity_search("q")] == ["a", "c"]


def test_filters_take_a_function_or_metadata() -> None:
    """A mapping must match the metadata on every key; a function sees the whole document."""
    store = InMemoryVectorStore.from_texts(
        ["cats like fish", "dogs like fish", "fish like water"],
        HashingEmbeddings(),
        metadatas=[{"pet": "cat", "legs": 4}, {"pet": "dog", "legs": 4}, {}],
    )
    by_meta = store.similarity_search("fish", k=5, filter={"legs": 4, "pet": "dog"})
    assert [d.page_content for d in by_meta] == ["dogs like fish"]
    by_function = store.similarity_search("fish", k=5, filter=lambda d: "pet" not in d.metadata)
    assert [d.page_content for d in by_function] == ["fish like water"]
    with pytest.raises(
        TypeError,
        match=r"^filter must be a function of a Document or a mapping of metadata, got str$",
    ):
        store.similarity_search("fish", filter="pet")  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_k_must_be_a_positive_int(k: Any) -> None:
    """A bad k is refused before the query is embedded."""
    store = InMemoryVectorStore(HashingEmbeddings())
    with pytest.raises(ValueError, match=rf"^k must be an int >= 1, got {k!r}$"):
        store.similarity_search("fish", k=k)


def test_an_empty_store_finds_nothing() -> None:
    """No documents, no results, no error."""
    assert InMemoryVectorStore(HashingEmbeddings()).similarity_search("anything") == []


def test_mismatched_lengths_are_refused() -> None:
    """metadatas, ids and the embedding's output must match the texts one to one."""
    store = InMemoryVectorStore(HashingEmbeddings())
    with pytest.raises(ValueError, match=r"^metadatas has 1 items, expected 2$"):
        store.add_texts(["a", "b"], metadatas=[{}])
    with pytest.raises(ValueError, match=r"^ids has 3 items, expected 2$"):
        store.add_texts(["a", "b"], ids=["1", "2", "3"])
    with pytest.raises(TypeError, match=r"^texts must be a list, not a single str"):
        store.add_texts("hello")
    with pytest.raises(TypeError, match=r"^add_documents expects Document objects, got str"):
        store.add_documents(["hello"])  # type: ignore[list-item]


def test_vectors_of_another_length_are_refused_and_leave_the_store_unchanged() -> None:
    """Mixing embeddings would make scores meaningless, so the store refuses the whole batch."""
    embedding = FixedEmbeddings(
        {"a": [1.0, 0.0], "b": [1.0, 0.0], "c": [1.0, 0.0, 0.0], "q3": [1.0, 0.0, 0.0]}
    )
    store = InMemoryVectorStore.from_texts(["a"], embedding, ids=["a"])
    with pytest.raises(
        ValueError, match=r"^document vector has 3 dimensions but the store holds vectors of 2; "
    ):
        store.add_texts(["b", "c"], ids=["b", "c"])
    assert store.get_by_ids(["b", "c"]) == []
    with pytest.raises(
        ValueError, match=r"^query vector has 3 dimensions but the store holds vectors of 2; "
    ):
        store.similarity_search("q3")
    with pytest.raises(ValueError, match=r"^document vector has 3 dimensions .* of 2; "):
        InMemoryVectorStore.from_texts(["a", "c"], embedding)


def test_from_documents_and_search_by_vector() -> None:
    """from_documents keeps the documents' ids; a ready vector skips the embedding."""
    embedding = FixedEmbeddings({"a": [1.0, 0.0], "b": [0.0, 1.0]})
    store = InMemoryVectorStore.from_documents(
        [Document("a", id="1"), Document("b", id="2")], embedding
    )
    assert store.similarity_search_by_vector([0.1, 0.9], k=1) == [Document("b", id="2")]
    assert embedding.calls == [["a", "b"]]


async def test_async_search_matches_sync_search() -> None:
    """asimilarity_search embeds with aembed_query and ranks the same way."""
    store = InMemoryVectorStore.from_texts(["cats like fish", "stock market"], HashingEmbeddings())
    assert await store.asimilarity_search("cat", k=1) == store.similarity_search("cat", k=1)
    assert await store.asimilarity_search_with_score("cat") == store.similarity_search_with_score(
        "cat"
    )
