"""``flywheel train``: datasets in, candidate versions out; bad input registers nothing and leaves the active alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.datasets import DatasetRepository
from core.settings import Settings
from core.types import ContrastivePair, DatasetKind, ModelKind, ModelStatus, RelevanceExample, SftExample
from flywheel.cli import app
from flywheel.container import Container

runner = CliRunner()


def _invoke(settings: Settings, *args: str):
    container = Container(settings)
    try:
        return runner.invoke(app, list(args), obj=container), container
    finally:
        container.close()


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["embedder", "generator", "reranker"])
def test_when_no_dataset_exists_then_not_found_exit_3(settings: Settings, kind: str) -> None:
    result, container = _invoke(settings, "train", kind)
    assert result.exit_code == 3, result.output
    assert "no" in result.output and "dataset" in result.output
    assert container.registry.list(ModelKind.EMBEDDER) == []


@pytest.mark.unit
def test_when_dataset_version_does_not_exist_then_not_found(settings: Settings) -> None:
    DatasetRepository(settings.datasets_dir).write(DatasetKind.RELEVANCE, [RelevanceExample("q", "p", 1.0)])
    result, _ = _invoke(settings, "train", "reranker", "--dataset-version", "7")
    assert result.exit_code == 3
    assert "v7 does not exist" in result.output


@pytest.mark.integration
def test_when_rows_are_too_few_then_exit_2_says_how_many_and_nothing_is_registered(settings: Settings) -> None:
    repo = DatasetRepository(settings.datasets_dir)
    repo.write(DatasetKind.SFT, [SftExample("q", ["c"], "a")] * 2, event_ids=["e1"], user_ids=["u1"])
    result, container = _invoke(settings, "train", "generator")
    assert result.exit_code == 2, result.output
    assert "at least 16" in result.output and "got 2" in result.output
    assert container.registry.list(ModelKind.GENERATOR_ADAPTER) == []
    pairs = [ContrastivePair(f"q{i}", f"p{i}") for i in range(3)]  # checked before the corpus is even read
    repo.write(DatasetKind.CONTRASTIVE, pairs)
    result, container = _invoke(settings, "train", "embedder")
    assert result.exit_code == 2 and "got 3" in result.output
    assert container.registry.list(ModelKind.EMBEDDER) == []
    repo.write(DatasetKind.CONTRASTIVE, [ContrastivePair(f"q{i}", f"p{i}") for i in range(40)])
    result, container = _invoke(settings, "train", "embedder", "--teacher", "/no/such/model")
    assert result.exit_code == 2 and "teacher must be 'mpnet' or a sentence-transformers" in result.output
    assert container.registry.list(ModelKind.EMBEDDER) == []


@pytest.mark.integration
def test_reranker_training_registers_a_candidate_with_lineage(
    settings: Settings, relevance_examples: list[RelevanceExample], tmp_path: Path
) -> None:
    manifest = DatasetRepository(settings.datasets_dir).write(
        DatasetKind.RELEVANCE, relevance_examples, event_ids=["e1", "e2"], user_ids=["alice"]
    )
    result, container = _invoke(settings, "train", "reranker", "--epochs", "1")
    assert result.exit_code == 0, result.output
    (version,) = container.registry.list(ModelKind.RERANKER)
    assert version.status == ModelStatus.CANDIDATE
    assert version.dataset_version == "relevance/v1" and version.provenance_hash == manifest.provenance_hash
    assert version.metrics["examples"] == 16
    assert container.registry.active(ModelKind.RERANKER) is None  # nothing live changed
    assert [m.version for m in container.registry.models_for_user("alice")] == ["v1"]

    from core.types import Citation
    from retrieval.reranker import CrossEncoderReranker

    reranker = CrossEncoderReranker(version.path, version=version.version, device="cpu")
    passages = [Citation(f"c{i}", f"d{i}", ex.passage, 0.0) for i, ex in enumerate(relevance_examples[:4])]
    ranked = reranker.rerank(relevance_examples[0].query, passages, top_k=3)
    assert len(ranked) == 3
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert all(0.0 <= c.score <= 1.0 for c in ranked)


@pytest.mark.unit
def test_when_kind_is_unknown_or_teacher_misapplied_then_exit_2(settings: Settings) -> None:
    result, _ = _invoke(settings, "train", "tokenizer")
    assert result.exit_code == 2 and "unknown model kind 'tokenizer'" in result.output
    DatasetRepository(settings.datasets_dir).write(DatasetKind.RELEVANCE, [RelevanceExample("q", "p", 1.0)])
    result, _ = _invoke(settings, "train", "reranker", "--teacher", "mpnet")
    assert result.exit_code == 2 and "--teacher applies to the embedder only" in result.output


@pytest.mark.unit
def test_every_trained_kind_is_one_entry() -> None:
    from flywheel.training import KINDS, kind_named

    assert set(KINDS) == {ModelKind.EMBEDDER, ModelKind.RERANKER, ModelKind.GENERATOR_ADAPTER}
    assert {KINDS[k].dataset for k in KINDS} == {DatasetKind.CONTRASTIVE, DatasetKind.RELEVANCE, DatasetKind.SFT}
    assert kind_named("generator") is KINDS[ModelKind.GENERATOR_ADAPTER]
