"""Fixtures for indexing tests: a cheap deterministic embedder (a fake at the Embedder port), chunker, stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from indexing.chunking import Chunker
from indexing.stores.edge import EdgeVectorStore


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder: texts sharing words get similar unit vectors.

    Counts every text it embeds (``embedded``) so tests can assert what a reindex re-embedded. ``fail_after``
    makes ``embed_documents`` raise once that many texts were embedded (failure injection at the port).
    """

    def __init__(self, *, version: str = "hash-v1", dim: int = 32, fail_after: int | None = None) -> None:
        self._version = version
        self._dim = dim
        self.embedded = 0
        self.fail_after = fail_after

    @property
    def version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        for word in text.lower().split():
            digest = hashlib.sha256(word.strip(".,!?").encode()).digest()
            vec[digest[0] % self._dim] += 1.0 if digest[1] % 2 else -1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else np.eye(self._dim, dtype=np.float32)[0]

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise RuntimeError("injected embedder failure")
        self.embedded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])


@pytest.fixture(scope="session")
def chunker() -> Chunker:
    """Small chunks so multi-chunk documents are cheap to make."""
    return Chunker(chunk_size=48, chunk_overlap=8)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    """A fresh counting hashing embedder (version ``hash-v1``, 32 dims)."""
    return HashingEmbedder()


@pytest.fixture
def make_embedder() -> type[HashingEmbedder]:
    """The HashingEmbedder class, to build variants (another version / dimension / injected failure)."""
    return HashingEmbedder


@pytest.fixture
def edge_store(tmp_path: Path) -> Iterator[EdgeVectorStore]:
    store = EdgeVectorStore(tmp_path / "vectors")
    yield store
    store.close()
