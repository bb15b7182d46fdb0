"""Embeddings: text to vectors. ``HashingEmbeddings`` is the dependency-free default.

Anything with ``embed_documents``/``embed_query`` and their async twins is an ``Embeddings``
(a structural protocol, like LangChain's interface); ``BaseEmbeddings`` supplies the async
twins for models that are cheap enough to run on the event loop.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Protocol, runtime_checkable

import attrs
import trio

from rillet.runtime.lowlevel import hosted

__all__ = ["BaseEmbeddings", "Embeddings", "HashingEmbeddings"]


@runtime_checkable
class Embeddings(Protocol):
    """Turns texts into vectors of floats; similar texts get nearby vectors.

    Example::

        def index(embedding: Embeddings, texts: list[str]) -> list[list[float]]:
            return embedding.embed_documents(texts)
    """

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to be searched, one vector per text."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` for trio code."""
        ...

    async def aembed_query(self, text: str) -> list[float]:
        """``embed_query`` for trio code."""
        ...


class BaseEmbeddings:
    """Gives the async methods of ``Embeddings`` to a class that defines the sync ones.

    They run the sync method on the event loop, after a checkpoint: right for embeddings
    that are cheap CPU work; a model behind the network should override them.

    Example::

        class Ones(BaseEmbeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return [[1.0] for _ in texts]

            def embed_query(self, text: str) -> list[float]:
                return [1.0]
    """

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to be searched; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define embed_documents")

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define embed_query")

    @hosted
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Checkpoint, then ``embed_documents(texts)``."""
        await trio.lowlevel.checkpoint()
        return self.embed_documents(texts)

    @hosted
    async def aembed_query(self, text: str) -> list[float]:
        """Checkpoint, then ``embed_query(text)``."""
        await trio.lowlevel.checkpoint()
        return self.embed_query(text)


_WORD = re.compile(r"\w+")


@attrs.frozen
class HashingEmbeddings(BaseEmbeddings):
    """Deterministic embeddings from the hashing trick: no model, no dependencies.

    Each text becomes features: its runs of ``ngram_range`` casefolded words (single words
    and pairs by default) and the ``char_ngrams``-character pieces of each word (so "cat" and
    "cats" share features). Each
    feature is hashed with BLAKE2b keyed by ``seed`` (stable across processes, unlike
    ``hash()``) to a bucket and a sign, and the vector is L2-normalized, so a dot product is
    the cosine similarity. Texts sharing words and word stems land close together; this is
    lexical matching, not meaning.

    >>> emb = HashingEmbeddings(dimensions=64)
    >>> len(emb.embed_query("cats like fish"))
    64

    Args:
        dimensions: length of each vector.
        ngram_range: the shortest and longest runs of words used as features.
        char_ngrams: length of the character n-grams taken from each word; 0 for none.
        seed: another seed gives another, equally good, set of vectors.

    Raises:
        ValueError: a parameter is out of range.
    """

    dimensions: int = attrs.field(default=256)
    ngram_range: tuple[int, int] = attrs.field(default=(1, 2), converter=tuple)
    char_ngrams: int = attrs.field(default=3)
    seed: int = attrs.field(default=0)

    @dimensions.validator
    def _check_dimensions(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 1:
            raise ValueError(f"dimensions must be an int >= 1, got {value!r}")

    @ngram_range.validator
    def _check_ngram_range(
        self, attribute: attrs.Attribute[tuple[int, int]], value: tuple[int, int]
    ) -> None:
        if (
            len(value) != 2
            or not all(type(n) is int for n in value)
            or not 1 <= value[0] <= value[1]
        ):
            raise ValueError(
                f"ngram_range must be (low, high) with 1 <= low <= high, got {value!r}"
            )

    @char_ngrams.validator
    def _check_char_ngrams(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 0:
            raise ValueError(f"char_ngrams must be an int >= 0, got {value!r}")

    @seed.validator
    def _check_seed(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or not 0 <= value < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {value!r}")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text.

        >>> [len(v) for v in HashingEmbeddings(dimensions=8).embed_documents(["a", "b"])]
        [8, 8]
        """
        key = self.seed.to_bytes(8, "little")
        return [self._embed(text, key) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query exactly like a document: the trick is symmetric.

        >>> emb = HashingEmbeddings()
        >>> emb.embed_query("hi") == emb.embed_documents(["hi"])[0]
        True
        """
        return self.embed_documents([text])[0]

    def _embed(self, text: str, key: bytes) -> list[float]:
        vector = [0.0] * self.dimensions
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8, key=key).digest()
            bits = int.from_bytes(digest, "little")
            # The sign comes from the top bit, which the bucket (the low bits) hardly depends
            # on: colliding features cancel out on average instead of piling up.
            vector[bits % self.dimensions] += 1.0 if bits >> 63 else -1.0
        norm = math.hypot(*vector)
        if norm == 0.0:
            return vector  # no words at all: the zero vector, similar to nothing
        return [x / norm for x in vector]

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.casefold())
        low, high = self.ngram_range
        # Prefixes keep the kinds of feature apart: the word "the" is not the trigram "the".
        features = [
            "w:" + " ".join(words[i : i + n])
            for n in range(low, high + 1)
            for i in range(len(words) - n + 1)
        ]
        if self.char_ngrams:
            size = self.char_ngrams
            for word in words:
                padded = f"<{word}>"  # marks the start and end, so "cat" != a cat inside "scatter"
                features.extend(
                    "c:" + padded[i : i + size] for i in range(max(len(padded) - size, 0) + 1)
                )
        return features
