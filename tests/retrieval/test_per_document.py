"""Citations limited per document: five citations are five pages, not three chunks of one long page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fakes import FakeQueryLog, FakeScrubber, HashingEmbedder

from core.settings import RetrievalSettings
from core.types import Citation, Point
from retrieval.generators.extractive import ExtractiveGenerator
from retrieval.service import QueryService, per_document

pytestmark = pytest.mark.unit


def _cite(doc: str, n: int) -> Citation:
    return Citation(chunk_id=f"{doc}#{n}", doc_id=doc, text="", score=1.0, metadata={})


def test_per_document_keeps_best_of_each_page_then_fills_from_the_rest() -> None:
    ranked = [_cite("manual", 0), _cite("manual", 1), _cite("push", 0), _cite("manual", 2), _cite("fetch", 0)]
    assert [c.chunk_id for c in per_document(ranked, limit=1, top_k=3)] == ["manual#0", "push#0", "fetch#0"]
    assert [c.chunk_id for c in per_document(ranked, limit=2, top_k=3)] == ["manual#0", "manual#1", "push#0"]
    assert [c.chunk_id for c in per_document(ranked, limit=0, top_k=3)] == ["manual#0", "manual#1", "push#0"]
    # fewer pages than top_k: the best remaining passages fill up, in ranking order
    assert [c.chunk_id for c in per_document(ranked, limit=1, top_k=4)] == ["manual#0", "manual#1", "push#0", "fetch#0"]


def _service(store: Any, embedder: HashingEmbedder, per_doc: int) -> QueryService:
    return QueryService(
        embedder=embedder, store=store, generator=ExtractiveGenerator(max_sentences=2), query_log=FakeQueryLog(),
        scrubber=FakeScrubber(), settings=RetrievalSettings(max_chunks_per_document=per_doc), corpus="kb",
    )  # fmt: skip


def test_when_one_page_matches_in_many_chunks_then_citations_are_other_pages(edge_store: Any) -> None:
    embedder = HashingEmbedder()
    passages = [("manual", f"rebase your branch onto upstream, step {i}") for i in range(8)]
    passages += [("git-rebase", "rebase reapplies commits on top of another base"), ("git-pull", "pull can rebase")]
    edge_store.create_collection("kb__v1", dim=embedder.dim)
    vectors = embedder.embed_documents([t for _, t in passages])
    edge_store.upsert("kb__v1", [
        Point(id=str(uuid.uuid4()), vector=v.tolist(), payload={"doc_id": d, "text": t})
        for (d, t), v in zip(passages, vectors, strict=True)
    ])  # fmt: skip
    edge_store.set_alias("kb", "kb__v1")
    unlimited = _service(edge_store, embedder, 0).retrieve("rebase your branch onto upstream", top_k=3)
    assert [c.doc_id for c in unlimited] == ["manual"] * 3
    limited = _service(edge_store, embedder, 1).retrieve("rebase your branch onto upstream", top_k=3)
    assert limited[0].doc_id == "manual"
    assert {c.doc_id for c in limited} == {"manual", "git-rebase", "git-pull"}
