"""Corrections that stick: an approved correction is the top citation for its question and close paraphrases.

Real MiniLM, the built-in FAQ's passages (a slice) indexed in hybrid mode through IndexManager, the correction
upserted through the ``PassageIndex`` port as the fast path does (its scrubbed question in the metadata), answered
through QueryService. Also measured here, on the same data: the alternative we did not choose — the question and
the correction embedded together as one passage — which must not beat the question point.
"""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeQueryLog, FakeScrubber

from core.settings import RetrievalSettings
from core.types import Document
from indexing.chunking import Chunker
from indexing.manager import IndexManager
from indexing.sparse import Bm25SparseEncoder
from retrieval.generators.extractive import ExtractiveGenerator
from retrieval.service import QueryService

pytestmark = pytest.mark.integration

QUESTION = "How long does the municipality take to decide on a building permit?"
CORRECTION = (
    "Since January 2025 Helsingborg decides on a complete bygglov application within four weeks; if it takes "
    "longer, the fee is reduced by one fifth for each week of delay."
)
PARAPHRASES = [
    "What is the processing time for a bygglov in Helsingborg?",
    "how many weeks until I get a decision on my building permit",
    "How long do I have to wait for the building permit decision?",
    "When will the city decide on my bygglov application?",
    "building permit handling time",
]


@pytest.fixture
def manager(edge_store: Any, embedder: Any, faq: list[dict[str, Any]]) -> IndexManager:
    manager = IndexManager(edge_store, chunker=Chunker(chunk_size=512, chunk_overlap=0), embedder=embedder,
                           sparse_encoder=Bm25SparseEncoder())  # fmt: skip
    docs = [Document(id=row["id"], text=row["a"]) for row in faq[:150]]
    manager.reindex("faq", docs, embedder=embedder)
    return manager


def _service(manager: IndexManager, embedder: Any) -> QueryService:
    return QueryService(
        embedder=embedder, store=manager.store, generator=ExtractiveGenerator(), query_log=FakeQueryLog(),
        scrubber=FakeScrubber(), settings=RetrievalSettings(mode="hybrid"), corpus="faq",
        sparse_encoder=manager.sparse_encoder, fusion=manager,
    )  # fmt: skip


def _top1_count(service: QueryService, chunk_id: str) -> int:
    return sum(service.retrieve(q, top_k=1)[0].chunk_id == chunk_id for q in [QUESTION, *PARAPHRASES])


def test_when_correction_approved_then_top_citation_for_its_question_and_paraphrases(
    manager: IndexManager, embedder: Any
) -> None:
    service = _service(manager, embedder)
    chunk = manager.upsert_correction("faq", correction_id="corr-1", query_id="q1", text=CORRECTION,
                                      meta={"question": QUESTION})  # fmt: skip
    assert service.retrieve(QUESTION, top_k=1)[0].chunk_id == chunk
    paraphrases_top1 = _top1_count(service, chunk) - 1
    assert paraphrases_top1 >= 4, paraphrases_top1
    citations = service.retrieve(QUESTION, top_k=5)
    assert [c.chunk_id for c in citations].count(chunk) == 1  # the question point and the passage are one citation
    assert citations[0].doc_id == "correction:corr-1" and citations[0].text == CORRECTION
    answer = service.answer(QUESTION)
    assert answer.answer.startswith(f"{CORRECTION} [1]")

    # The alternative: question and correction embedded together as one passage (no question point).
    manager.revoke_correction("faq", "corr-1")
    assert chunk not in [c.chunk_id for c in service.retrieve(QUESTION, top_k=10)]  # gone at once, both points
    pair = manager.upsert_correction("faq", correction_id="corr-2", query_id="q1", text=f"{QUESTION}\n{CORRECTION}",
                                     meta={})  # fmt: skip
    assert _top1_count(service, pair) <= paraphrases_top1 + 1
