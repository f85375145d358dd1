"""A cycle tunes its candidate version's keyword weight on the curated TRAINING pairs and records it on the version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeScrubber

from core.datasets import DatasetRepository
from core.settings import Settings
from core.types import ContrastivePair, DatasetKind, Document
from flywheel import steps
from flywheel.arms import build_arm
from flywheel.container import Container
from flywheel.deploy import Candidate
from indexing.chunking import chunk_id

pytestmark = pytest.mark.integration

# An error-code appendix (codes dense MiniLM does not tell apart) among general pages about errors and config files.
PAGES = {
    "class-08": "Class 08 Connection Exception: 08000 connection_exception, 08003 connection_does_not_exist.",
    "class-22": "Class 22 Data Exception: 22001 string_data_right_truncation, 22012 division_by_zero.",
    "class-23": "Class 23 Integrity Constraint Violation: 23502 not_null_violation, 23505 unique_violation.",
    "class-42": "Class 42 Syntax Error or Access Rule Violation: 42501 insufficient_privilege, 42P01 undefined_table.",
    "class-53": "Class 53 Insufficient Resources: 53100 disk_full, 53200 out_of_memory, 53300 too_many_connections.",
    "errors-intro": "When an error occurs the server reports it to the client and writes it to the server log.",
    "error-fields": "Error messages show a severity, a primary message and optionally a detail and a hint.",
    "error-verbosity": "The log_error_verbosity setting controls how much detail the log gets for each error.",
    "auth-files": "Client authentication is controlled by a configuration file in the data directory, pg_hba.conf.",
    "ident": "User name maps are defined in the ident map file, pg_ident.conf, in the data directory.",
}
IDENTIFIER_QUESTIONS = {
    "error 23505": "class-23",
    "what is error 42P01": "class-42",
    "SQLSTATE 53300": "class-53",
    "SQLSTATE 08003": "class-08",
    "error 22012": "class-22",
    "what goes in pg_ident.conf": "ident",
}


@pytest.fixture
def container(settings: Settings, embedder: Any) -> Iterator[Container]:
    c = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    c.index_manager.reindex(settings.indexing.corpus, [Document(id=k, text=v) for k, v in PAGES.items()],
                            embedder=embedder)  # fmt: skip
    yield c
    c.close()


def _pairs(questions: dict[str, str]) -> list[ContrastivePair]:
    return [ContrastivePair(query=q, positive=PAGES[doc], positive_chunk_id=chunk_id(doc, 0), provenance=[f"e{i}"])
            for i, (q, doc) in enumerate(questions.items())]  # fmt: skip


def _tune(c: Container, candidate: Candidate, repo: DatasetRepository, version: int | None) -> dict[str, Any]:
    """The cycle's build step's tuning call, with the container's services."""
    return steps.tune_fusion(
        build_arm(c, candidate.models, candidate.collection), collection=candidate.collection, store=c.vector_store,
        index_manager=c.index_manager, settings=c.settings.retrieval, repo=repo, contrastive_version=version,
    )  # fmt: skip


def test_when_cycle_builds_candidate_then_keyword_weight_is_tuned_on_training_pairs_and_recorded(
    container: Container,
) -> None:
    corpus = container.settings.indexing.corpus
    collection = container.vector_store.get_alias(corpus)
    repo = DatasetRepository(container.settings.datasets_dir)
    manifest = repo.write(DatasetKind.CONTRASTIVE, _pairs(IDENTIFIER_QUESTIONS), event_ids=["e0"])
    candidate = Candidate(collection=collection, models={}, cycle_id="c1")

    info = _tune(container, candidate, repo, manifest.version)

    assert info["tuning_cases"] == len(IDENTIFIER_QUESTIONS)
    assert set(info["fusion_mrr"]) == {"0.0", "0.25", "0.5", "1.0", "2.0"}
    # the chosen weight is a best one (ties keep the one nearest the default, so noise does not move it)
    assert info["fusion_mrr"][str(info["fusion_weight"])] == max(info["fusion_mrr"].values())
    assert container.index_manager.hybrid_params(collection).sparse_weight == info["fusion_weight"]


def test_when_tuning_is_off_or_nothing_curated_then_the_version_keeps_its_weight(container: Container) -> None:
    collection = container.vector_store.get_alias(container.settings.indexing.corpus)
    before = container.index_manager.hybrid_params(collection)
    repo = DatasetRepository(container.settings.datasets_dir)
    candidate = Candidate(collection=collection, models={}, cycle_id="c1")
    assert _tune(container, candidate, repo, None)["fusion_weight"] is None
    container.settings.retrieval.tune_fusion_weight = False
    manifest = repo.write(DatasetKind.CONTRASTIVE, _pairs(IDENTIFIER_QUESTIONS), event_ids=["e0"])
    assert _tune(container, candidate, repo, manifest.version)["tuning_cases"] == 0
    assert container.index_manager.hybrid_params(collection) == before
