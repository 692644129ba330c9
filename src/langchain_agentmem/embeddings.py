"""Offline embeddings: :class:`LocalEmbeddings`, a LangChain ``Embeddings`` over wordllama.

wordllama (MIT) is a *static* embedder: each token has a fixed vector (taken from a large
language model's embedding table) and a text is their pooled average, 256 dimensions.
Its weights and tokenizer ship inside its wheel, so it embeds with no key, no download and
no GPU, thousands of sentences in a fraction of a second. It is much weaker than a
contextual model (OpenAI's ``text-embedding-3-*`` and the like): use it for examples,
notebooks, tests and offline work, and any LangChain ``Embeddings`` in production.

Install it with the ``local`` extra: ``pip install "langchain-agentmem[local]"``.

Example:
    >>> emb = LocalEmbeddings()
    >>> len(emb.embed_query("hello"))
    256
    >>> a, b, c = emb.embed_documents(["a grey cat", "a small kitten", "tax return"])
    >>> sum(x * y for x, y in zip(a, b)) > sum(x * y for x, y in zip(a, c))
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

__all__ = ["LocalEmbeddings"]


class LocalEmbeddings(Embeddings):
    """wordllama embeddings, loaded from its own wheel (never from the network).

    Args:
        dims: 256 (default), or 128 or 64 (a prefix of the 256-d vectors: smaller and
            weaker). Only the 256-d weights ship in wordllama's wheel.
        config: wordllama's model configuration (default ``"l2_supercat"``).
        batch_size: texts embedded per batch.

    Vectors are L2-normalized (cosine and inner product rank alike). The model is loaded
    on the first call, not in the constructor.
    """

    def __init__(self, dims: int = 256, *, config: str = "l2_supercat", batch_size: int = 64):
        if dims not in (64, 128, 256):
            raise ValueError(f"dims must be 64, 128 or 256, got {dims!r}")
        self.dims = dims
        self.config = config
        self.batch_size = batch_size
        self._model: Any = None

    def __repr__(self) -> str:
        return f"LocalEmbeddings(dims={self.dims}, config={self.config!r})"

    def _load(self) -> Any:
        if self._model is None:
            try:
                import wordllama
                from wordllama import WordLlama
            except ImportError as exc:  # pragma: no cover (the extra is installed in tests)
                raise ImportError(
                    'LocalEmbeddings needs wordllama: pip install "langchain-agentmem[local]"'
                ) from exc
            self._model = WordLlama.load(
                config=self.config,
                cache_dir=Path(wordllama.__file__).parent,
                disable_download=True,
                trunc_dim=None if self.dims == 256 else self.dims,
                dim=256,
            )
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed ``texts`` (one vector each)."""
        if not texts:
            return []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        vectors = self._load().embed(list(texts), norm=True, batch_size=self.batch_size)
        out: list[list[float]] = vectors.astype(float).tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]
