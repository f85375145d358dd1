"""Hybrid retrieval through the real query path: IndexManager (keyword index) + QueryService, real MiniLM, qdrant-edge.

Identifier questions (an error code, a setting name, a file name) that dense MiniLM misses are found; a corpus
without a keyword index is still searched (dense); the per-version fusion weight is what the query path uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fakes import FakeQueryLog, FakeScrubber

from core.settings import RetrievalSettings
from core.types import Document, HybridParams
from indexing.chunking import Chunker
from indexing.manager import IndexManager
from indexing.sparse import Bm25SparseEncoder
from retrieval.generators.extractive import ExtractiveGenerator
from retrieval.service import QueryService

pytestmark = pytest.mark.integration

# A manual's pages: the error-code appendix (one page per class of codes), general pages about errors and config files.
PAGES = {
    "class-08": "Class 08 Connection Exception: 08000 connection_exception, 08003 connection_does_not_exist, "
    "08006 connection_failure, 08P01 protocol_violation.",
    "class-22": "Class 22 Data Exception: 22001 string_data_right_truncation, 22003 numeric_value_out_of_range, "
    "22012 division_by_zero, 22P02 invalid_text_representation.",
    "class-23": "Class 23 Integrity Constraint Violation: 23000 integrity_constraint_violation, 23502 "
    "not_null_violation, 23503 foreign_key_violation, 23505 unique_violation.",
    "class-42": "Class 42 Syntax Error or Access Rule Violation: 42000 syntax_error_or_access_rule_violation, 42501 "
    "insufficient_privilege, 42601 syntax_error, 42P01 undefined_table.",
    "class-53": "Class 53 Insufficient Resources: 53000 insufficient_resources, 53100 disk_full, 53200 out_of_memory, "
    "53300 too_many_connections.",
    "errors-intro": "When an error occurs the server reports it to the client and writes it to the server log.",
    "errors-report": "If you think an error is a bug, report it to the developers with the full error message.",
    "error-fields": "Error messages show a severity, a primary message and optionally a detail and a hint.",
    "error-trap": "In PL/pgSQL an error raised inside a block can be trapped with an EXCEPTION clause.",
    "error-verbosity": "The log_error_verbosity setting controls how much detail the log gets for each error.",
    "auth-files": "Client authentication is controlled by a configuration file stored in the data directory, "
    "pg_hba.conf.",
    "config": "Settings are read from the main configuration file, postgresql.conf, at start-up and on reload.",
    "ident": "User name maps are defined in the ident map file, pg_ident.conf, in the data directory.",
    "connections": "The server accepts a limited number of concurrent client connections; each one uses memory.",
    "logging": "Log messages can be sent to stderr, csvlog or syslog; the logging collector rotates the files.",
}
IDENTIFIER_QUESTIONS = {
    "error 23503": "class-23",
    "What does SQLSTATE 23505 mean?": "class-23",
    "what is error 42P01": "class-42",
    "SQLSTATE 53300": "class-53",
    "where is pg_hba.conf": "auth-files",
    "what goes in pg_ident.conf": "ident",
}


_CFG = RetrievalSettings()
DEFAULTS = HybridParams(sparse_weight=_CFG.fusion_weight, rrf_k=_CFG.rrf_k, candidates=_CFG.hybrid_candidates,
                        method=_CFG.fusion)  # fmt: skip


def _service(manager: IndexManager, embedder: Any, *, mode: str, sparse: Bm25SparseEncoder | None) -> QueryService:
    return QueryService(
        embedder=embedder, store=manager.store, generator=ExtractiveGenerator(), query_log=FakeQueryLog(),
        scrubber=FakeScrubber(), settings=RetrievalSettings(mode=mode), corpus="manual", sparse_encoder=sparse,
        fusion=manager,
    )  # fmt: skip


@pytest.fixture
def manager(edge_store: Any, embedder: Any) -> IndexManager:
    manager = IndexManager(edge_store, chunker=Chunker(chunk_size=256, chunk_overlap=0),
                           sparse_encoder=Bm25SparseEncoder(), hybrid=DEFAULTS)  # fmt: skip
    manager.reindex("manual", [Document(id=k, text=v) for k, v in PAGES.items()], embedder=embedder)
    return manager


def _top(service: QueryService, question: str, k: int = 1) -> list[str]:
    return [c.doc_id for c in service.retrieve(question, top_k=k)]


def test_when_identifier_question_then_hybrid_finds_what_dense_misses(manager: IndexManager, embedder: Any) -> None:
    dense = _service(manager, embedder, mode="dense", sparse=None)
    hybrid = _service(manager, embedder, mode="hybrid", sparse=manager.sparse_encoder)
    missed = [q for q, page in IDENTIFIER_QUESTIONS.items() if _top(dense, q) != [page]]
    assert "error 23503" in missed  # dense MiniLM alone ranks another class of codes first
    for question, page in IDENTIFIER_QUESTIONS.items():
        assert _top(hybrid, question) == [page], question
    answer = hybrid.answer("What does SQLSTATE 23505 mean?")
    assert answer.citations[0].doc_id == "class-23" and "23505 unique_violation" in answer.answer


def test_when_natural_question_then_hybrid_keeps_the_dense_answer(manager: IndexManager, embedder: Any) -> None:
    hybrid = _service(manager, embedder, mode="hybrid", sparse=manager.sparse_encoder)
    dense = _service(manager, embedder, mode="dense", sparse=None)
    for question in ("How many clients can connect to the server at the same time?", "Where do log messages go?"):
        assert _top(hybrid, question) == _top(dense, question)


def test_when_version_has_a_tuned_weight_then_the_query_path_uses_it(manager: IndexManager, embedder: Any) -> None:
    live = manager.live_collection("manual")
    hybrid = _service(manager, embedder, mode="hybrid", sparse=manager.sparse_encoder)
    assert hybrid.hybrid_params(live) == DEFAULTS
    manager.set_fusion_weight(live, 0.0)  # a cycle tuned the keyword signal off for this version
    assert hybrid.hybrid_params(live) == replace(DEFAULTS, sparse_weight=0.0)
    assert manager.catalog.get(live).fusion_weight == 0.0  # type: ignore[union-attr]
    dense = _service(manager, embedder, mode="dense", sparse=None)
    assert _top(hybrid, "What does SQLSTATE 23505 mean?", 3) == _top(dense, "What does SQLSTATE 23505 mean?", 3)


def test_when_collection_has_no_keyword_index_then_hybrid_mode_searches_dense(
    edge_store: Any, embedder: Any
) -> None:
    manager = IndexManager(edge_store, chunker=Chunker(chunk_size=256, chunk_overlap=0))  # built in dense mode
    manager.reindex("manual", [Document(id=k, text=v) for k, v in PAGES.items()], embedder=embedder)
    hybrid = _service(manager, embedder, mode="hybrid", sparse=Bm25SparseEncoder())
    assert hybrid.hybrid_params(manager.live_collection("manual")) is None
    assert len(_top(hybrid, "Where do log messages go?", 3)) == 3


def test_when_tuned_on_identifier_cases_then_a_keyword_weight_wins_and_is_recorded(
    manager: IndexManager, embedder: Any
) -> None:
    from retrieval.fusion import TuningCase, tune_fusion_weight

    hybrid = _service(manager, embedder, mode="hybrid", sparse=manager.sparse_encoder)
    cases = [TuningCase(q, frozenset({page})) for q, page in IDENTIFIER_QUESTIONS.items()]
    tuning = tune_fusion_weight(hybrid, cases, grid=(0.0, 1.0, 2.0))
    assert tuning.weight in (1.0, 2.0) and tuning.mrr[tuning.weight] > tuning.mrr[0.0]
    live = manager.live_collection("manual")
    manager.set_fusion_weight(live, tuning.weight)  # what a cycle does on its candidate version
    assert hybrid.hybrid_params(live).sparse_weight == tuning.weight  # type: ignore[union-attr]
