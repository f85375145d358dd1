"""QueryService on the real MiniLM embedder and an embedded qdrant-edge store holding a tiny corpus."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fakes import FakeQueryLog, FakeScrubber, ReversingReranker

from core.errors import InvalidInputError, NotFoundError
from core.ports import Retriever
from core.settings import RetrievalSettings
from core.types import Arm, SearchFilter
from retrieval.generators.extractive import ExtractiveGenerator
from retrieval.service import QueryService

pytestmark = pytest.mark.integration


@pytest.fixture
def service(edge_store: Any, embedder: Any, corpus_writer: Any) -> QueryService:
    corpus_writer(edge_store, embedder, corpus="kb")
    return QueryService(
        embedder=embedder,
        store=edge_store,
        generator=ExtractiveGenerator(max_sentences=2),
        query_log=FakeQueryLog(),
        scrubber=FakeScrubber(),
        settings=RetrievalSettings(max_question_chars=100),
        corpus="kb",
    )


def test_when_question_asked_then_best_passage_cited_with_versions(service: QueryService) -> None:
    result = service.answer("How many days until my refund arrives?", top_k=3)
    assert result.citations[0].doc_id == "refund"
    assert len(result.citations) == 3
    assert result.index_version == "kb__v1"
    assert result.embedder_version == "base"
    assert result.generator_version == "extractive"
    assert result.arm is Arm.CURRENT
    assert result.answer.startswith("Refunds are issued within 14 days.") and result.answer.endswith("[1]")


def test_when_answered_then_record_holds_ids_versions_and_scrubbed_text(
    service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = service.answer("I am jane.doe@example.com, how do I reset my password?", user_id="u1", tenant="acme")
    record = service.query_log.get_query(result.query_id)
    assert record.question == "I am <EMAIL_ADDRESS>, how do I reset my password?"
    assert record.chunk_ids == [c.chunk_id for c in result.citations]
    assert record.doc_ids[0] == "password"
    assert (record.index_version, record.embedder_version, record.corpus) == ("kb__v1", "base", "kb")
    assert (record.user_id, record.tenant, record.top_k, record.arm) == ("u1", "acme", 5, Arm.CURRENT)
    assert "jane.doe@example.com" not in caplog.text


def test_when_filter_given_then_only_matching_passages(service: QueryService) -> None:
    result = service.answer("How long does it take?", top_k=5, filters={"category": "orders"})
    assert {c.doc_id for c in result.citations} == {"shipping", "warranty"}


def test_when_alias_moves_then_index_version_follows(
    service: QueryService, edge_store: Any, embedder: Any, corpus_writer: Any
) -> None:
    docs = [{"doc_id": "new", "category": "x", "text": "Refunds now take 30 days to arrive."}]
    corpus_writer(edge_store, embedder, corpus="kb", version=2, docs=docs)
    result = service.answer("refund time", top_k=2)
    assert result.index_version == "kb__v2"
    assert [c.doc_id for c in result.citations] == ["new"]


def test_when_corpus_unindexed_then_not_found(service: QueryService) -> None:
    service.corpus = "missing"
    with pytest.raises(NotFoundError, match="unknown corpus 'missing'"):
        service.answer("anything at all?")


@pytest.mark.parametrize(
    ("question", "top_k", "filters", "field"),
    [
        ("", 5, None, "question"),
        ("   \n\t ", 5, None, "question"),
        ("x" * 101, 5, None, "question"),
        ("valid question", 0, None, "top_k"),
        ("valid question", 51, None, "top_k"),
        ("valid question", 5, {"category": []}, "filters.category"),
        ("valid question", 5, {"category": {"nested": 1}}, "filters.category"),
        ("valid question", 5, {"score": 0.5}, "filters.score"),
    ],
)
def test_when_input_bad_then_invalid_input_names_field(
    service: QueryService, question: str, top_k: int, filters: Any, field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        service.answer(question, top_k=top_k, filters=filters)
    assert info.value.detail["field"] == field
    assert service.query_log.records == {}


def test_retrieve_implements_retriever_port_and_records_nothing(service: QueryService) -> None:
    assert isinstance(service, Retriever)
    hits = service.retrieve("password reset", top_k=2, filter=SearchFilter.from_mapping({"category": "account"}))
    assert [h.doc_id for h in hits] == ["password"]
    assert service.query_log.records == {}


def test_when_reranker_set_then_candidates_reranked_to_top_k(service: QueryService) -> None:
    baseline = [c.doc_id for c in service.retrieve("refund", top_k=4)]
    reranker = ReversingReranker()
    service.reranker = reranker
    service.settings = RetrievalSettings(rerank_candidates=4)
    result = service.retrieve("refund", top_k=2)
    assert reranker.seen == [4]
    assert [c.doc_id for c in result] == baseline[::-1][:2]
    assert [c.score for c in result] == [1.0, 0.5]
