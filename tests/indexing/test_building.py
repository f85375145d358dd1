"""Build path costs: embedding longest-first, store writes in WRITE_BATCH points, no HNSW pass for small versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from core.types import Document, Point
from indexing.building import EMBED_BATCH, WRITE_BATCH, embed_into
from indexing.chunking import Chunker
from indexing.manager import IndexManager
from indexing.stores.edge import EdgeVectorStore

pytestmark = pytest.mark.unit


class CountingStore:
    """The real edge store, counting upsert calls and optimise passes (a wrapper at the VectorStore port)."""

    def __init__(self, inner: EdgeVectorStore) -> None:
        self.inner = inner
        self.upserts: list[int] = []
        self.optimized = 0

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        self.upserts.append(len(points))
        self.inner.upsert(name, points)

    def optimize(self, name: str) -> bool:
        self.optimized += 1
        return self.inner.optimize(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


class LengthRecordingEmbedder:
    """Fake embedder recording each batch's text lengths."""

    version, dim = "rec-v1", 8

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.batches.append([len(t) for t in texts])
        return np.tile(np.eye(self.dim, dtype=np.float32)[0], (len(texts), 1))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def _docs(n: int) -> list[Document]:
    return [Document(id=f"d{i}", text="word " * (1 + (i * 37) % 60)) for i in range(n)]


def test_when_many_chunks_then_embedded_longest_first_and_written_in_few_upserts(edge_store: EdgeVectorStore) -> None:
    store, embedder = CountingStore(edge_store), LengthRecordingEmbedder()
    store.create_collection("kb__v1", dim=embedder.dim)
    n = EMBED_BATCH * 2 + 10
    embedded, _ = embed_into(store, Chunker(512, 32), "kb__v1", _docs(n), embedder=embedder, progress=False)
    assert embedded == n == store.count("kb__v1")
    lengths = [length for batch in embedder.batches for length in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert store.upserts == [n]  # one write for < WRITE_BATCH points (was one per EMBED_BATCH)
    assert n < WRITE_BATCH


def test_when_build_is_cancelled_then_buffered_points_are_not_written(edge_store: EdgeVectorStore) -> None:
    store, embedder = CountingStore(edge_store), LengthRecordingEmbedder()
    store.create_collection("kb__v1", dim=embedder.dim)

    def cancel(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_into(store, Chunker(512, 32), "kb__v1", _docs(20), embedder=embedder, progress=False, on_progress=cancel)
    assert store.upserts == []


def test_when_version_is_small_then_no_hnsw_optimise_pass(edge_store: EdgeVectorStore) -> None:
    store = CountingStore(edge_store)
    manager = IndexManager(store, chunker=Chunker(512, 32))  # type: ignore[arg-type]
    report = manager.reindex("kb", _docs(30), embedder=LengthRecordingEmbedder())
    assert report.chunks == 30
    assert store.optimized == 0
