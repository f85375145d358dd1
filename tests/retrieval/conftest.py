"""Retrieval fixtures: a tiny support corpus written through the ``VectorStore`` port into an embedded store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.types import Point, collection_name

TINY_CORPUS: list[dict[str, Any]] = [
    {
        "doc_id": "refund",
        "category": "billing",
        "text": "Refunds are issued within 14 days. Send the receipt to the billing team. We never refund gift cards.",
    },
    {
        "doc_id": "password",
        "category": "account",
        "text": "To reset your password, open Settings and choose Security. A reset link is e-mailed to you.",
    },
    {
        "doc_id": "shipping",
        "category": "orders",
        "text": "Standard shipping takes three to five working days. Express delivery arrives the next day.",
    },
    {
        "doc_id": "warranty",
        "category": "orders",
        "text": "Every power tool carries a two-year warranty. Batteries are covered for one year only.",
    },
]


def write_corpus(
    store: Any, embedder: Any, *, corpus: str, version: int = 1, docs: Sequence[dict[str, Any]] = TINY_CORPUS
) -> str:
    """Create ``{corpus}__v{version}`` with one point per document and point the alias at it; returns the name."""
    name = collection_name(corpus, version)
    store.create_collection(name, dim=embedder.dim)
    vectors = embedder.embed_documents([d["text"] for d in docs])
    points = [
        Point(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{d['doc_id']}")), vector=v.tolist(), payload=dict(d))
        for d, v in zip(docs, vectors, strict=True)
    ]
    store.upsert(name, points)
    store.set_alias(corpus, name)
    return name


@pytest.fixture
def corpus_writer() -> Any:
    """The :func:`write_corpus` helper (test modules cannot import conftest modules by name)."""
    return write_corpus


@pytest.fixture
def edge_store(tmp_path: Path) -> Iterator[Any]:
    """An empty embedded (qdrant-edge) store in ``tmp_path``, closed afterwards."""
    from indexing.stores.edge import EdgeVectorStore

    store = EdgeVectorStore(tmp_path / "vectors")
    yield store
    store.close()
