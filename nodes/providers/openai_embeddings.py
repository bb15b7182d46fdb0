"""Embeddings from OpenAI's ``/embeddings`` endpoint, or a compatible server's.

One JSON request per batch of texts (``post_json``, retried as the model's
:class:`~rillet.nodes.providers.retry.RetryPolicy` allows); the client is built as for
:class:`~rillet.nodes.providers.openai.OpenAIChatModel`, so ``base_url``, ``api_key`` and
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` work the same way.

>>> OpenAIEmbeddings("nomic-embed-text", base_url="http://localhost:11434/v1")
OpenAIEmbeddings(model='nomic-embed-text', base_url='http://localhost:11434/v1')
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from rillet.nodes.providers.errors import ProviderError
from rillet.nodes.providers.http import ClientOwner, Timeouts
from rillet.nodes.providers.openai import openai_client
from rillet.nodes.providers.retry import RetryPolicy
from rillet.runtime.lowlevel import hosted, run_sync

__all__ = ["OpenAIEmbeddings"]

class OpenAIEmbeddings(ClientOwner):
    """Embeddings from ``/embeddings`` of OpenAI or a compatible server; an ``Embeddings``.

    Texts are sent ``batch_size`` at a time, one batch after another; the vectors come back
    in the order of the texts.

    Args:
        model: e.g. ``"text-embedding-3-small"`` (or ``"nomic-embed-text"`` on Ollama).
        base_url, api_key, timeout, max_retries, retry_policy, default_headers, transport:
            as for :class:`~rillet.nodes.providers.openai.OpenAIChatModel`.
        dimensions: ask for shorter vectors (``text-embedding-3-*`` only).
        batch_size: texts per request (OpenAI accepts up to 2048).

    Example::

        embeddings = OpenAIEmbeddings("text-embedding-3-small")
        vectors = await embeddings.aembed_documents(["a cat", "a dog"])
        query = embeddings.embed_query("pets")          # sync code
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 512,
        timeout: float | Timeouts = Timeouts(),
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.client = openai_client(base_url=base_url, api_key=api_key, timeout=timeout,
                                    max_retries=max_retries, retry_policy=retry_policy,
                                    default_headers=default_headers, transport=transport)
        self.model, self.dimensions, self.batch_size = model, dimensions, batch_size

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings(model={self.model!r}, base_url={self.client.base_url!r})"

    @hosted
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to be searched, one vector per text, in order.

        Raises:
            ProviderError: the server refused, failed, or answered with the wrong count.
        """
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._embed_batch(texts[start : start + self.batch_size]))
        return vectors

    @hosted
    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return (await self._embed_batch([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Blocking :meth:`aembed_documents`, for code outside trio."""
        return run_sync(self.aembed_documents, texts, method="OpenAIEmbeddings.embed_documents()")

    def embed_query(self, text: str) -> list[float]:
        """Blocking :meth:`aembed_query`, for code outside trio."""
        return run_sync(self.aembed_query, text, method="OpenAIEmbeddings.embed_query()")

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, object] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        answer = await self.client.post_json("/embeddings", body)
        items = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(items, list) or len(items) != len(texts):
            got = len(items) if isinstance(items, list) else "no"
            raise ProviderError(provider=self.client.provider, error_type="malformed_response",
                                provider_message=f"asked for {len(texts)} embeddings, got {got}")
        ordered = sorted(items, key=lambda item: item.get("index", 0))
        return [[float(x) for x in item["embedding"]] for item in ordered]
