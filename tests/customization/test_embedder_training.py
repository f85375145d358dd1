"""Embedder fine-tuning: pseudo-query pairs, hard negatives with the false-negative guard, a tiny real training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.errors import InvalidInputError, NotEnoughDataError
from core.types import ContrastivePair
from customization.embedder_training import (
    EmbedderTrainingConfig,
    build_rows,
    load_sentence_transformer,
    pseudo_query_pairs,
    train_embedder,
    usable_pairs,
)

TINY = {"epochs": 1, "batch_size": 8, "max_seq_length": 32, "show_progress": False, "device": "cpu"}


@pytest.mark.unit
def test_pseudo_query_pairs_remove_the_sentence_from_its_passage() -> None:
    passage = "Roofs last thirty years or more. Tiles need checking every spring season. Gutters clog with leaves."
    pairs = pseudo_query_pairs([passage, passage, "Too short."], per_passage=2, min_words=4, remove=True, seed=1)
    assert len(pairs) == 2  # duplicates collapse; single-sentence passages yield nothing
    for query, rest in pairs:
        assert query in passage and query not in rest and rest


@pytest.mark.unit
def test_when_pairs_are_too_few_or_too_light_then_not_enough_data(faq_pairs: list[ContrastivePair]) -> None:
    config = EmbedderTrainingConfig(min_pairs=16, min_pair_weight=0.5)
    light = [ContrastivePair(p.query, p.positive, weight=0.1) for p in faq_pairs[:4]]
    with pytest.raises(NotEnoughDataError) as info:
        usable_pairs(faq_pairs[:12] + light, config)
    assert (info.value.have, info.value.need) == (12, 16)
    assert "at least 16" in info.value.message and "got 12" in info.value.message


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad", [{"epochs": 0}, {"batch_size": 0}, {"relative_margin": 1.0}, {"learning_rate": 0.0}, {"min_pairs": 0}]
)
def test_when_config_is_out_of_range_then_invalid_input(bad: dict) -> None:
    with pytest.raises(InvalidInputError):
        EmbedderTrainingConfig(**bad)


@pytest.mark.unit
def test_from_overrides_lays_user_overrides_over_defaults_and_refuses_unknown_or_mistyped_keys() -> None:
    config = EmbedderTrainingConfig.from_overrides({"epochs": 5}, epochs=2, seed=7)
    assert (config.epochs, config.seed) == (5, 7)
    with pytest.raises(InvalidInputError, match=r"unknown embedder training setting\(s\) lr; valid: batch_size"):
        EmbedderTrainingConfig.from_overrides({"lr": 1e-4})
    for key, value, expected in [
        ("epochs", "three", "int"), ("epochs", 2.5, "int"), ("batch_size", True, "int"),
        ("learning_rate", "1e-4", "float"), ("symmetric", "yes", "bool"), ("device", 0, "str"),
    ]:  # fmt: skip
        with pytest.raises(InvalidInputError, match=f"setting {key} must be {expected}, got"):
            EmbedderTrainingConfig.from_overrides({key: value})
    loose = EmbedderTrainingConfig.from_overrides({"learning_rate": 1, "device": None, "symmetric": True})
    assert (loose.learning_rate, loose.device, loose.symmetric) == (1, None, True)  # JSON ints are fine as floats


@pytest.mark.integration
def test_rows_put_agent_negatives_first_and_mined_ones_pass_the_guard(
    minilm_path: Path, faq_pairs: list[ContrastivePair], faq_passages: list[str]
) -> None:
    config = EmbedderTrainingConfig(**TINY, pseudo_queries_per_passage=0, relative_margin=0.05, mine=True)
    model = load_sentence_transformer(minilm_path, device="cpu", max_seq_length=64)
    rows = build_rows(faq_pairs, model=model, corpus=faq_passages, config=config)
    assert rows.stats["agent_negatives"] == 4
    assert rows.negatives is not None
    assert rows.negatives[:4] == [p.negatives[0] for p in faq_pairs[:4]]
    assert rows.stats["mined_negatives"] + rows.stats["random_negatives"] == 12
    q = model.encode(rows.anchors[4:], normalize_embeddings=True)
    pos = model.encode(rows.positives[4:], normalize_embeddings=True)
    neg = model.encode(rows.negatives[4:], normalize_embeddings=True)
    for i in range(12):
        assert rows.negatives[4 + i] != rows.positives[4 + i]
        if rows.negatives[4 + i] in faq_passages:  # mined: strictly below the positive by the relative margin
            assert float(q[i] @ neg[i]) <= float(q[i] @ pos[i]) * (1 - 0.05) + 1e-4


@pytest.mark.integration
def test_without_mining_only_agent_negatives_are_used_and_none_means_no_negative_column(
    minilm_path: Path, faq_pairs: list[ContrastivePair], faq_passages: list[str]
) -> None:
    config = EmbedderTrainingConfig(**TINY, pseudo_queries_per_passage=0)
    model = load_sentence_transformer(minilm_path, device="cpu", max_seq_length=64)
    rows = build_rows(faq_pairs, model=model, corpus=faq_passages, config=config)
    assert rows.negatives is not None and rows.negatives[:4] == [p.negatives[0] for p in faq_pairs[:4]]
    assert rows.stats["mined_negatives"] == 0 and rows.stats["random_negatives"] == 12
    assert all(n not in (None, "") for n in rows.negatives)
    unmarked = [dataclasses.replace(p, negatives=[]) for p in faq_pairs]
    plain = build_rows(unmarked, model=model, corpus=faq_passages, config=config)
    assert plain.negatives is None and plain.anchors == [p.query for p in faq_pairs]


@pytest.mark.integration
def test_tiny_training_run_saves_a_loadable_model(
    minilm_path: Path, faq_pairs: list[ContrastivePair], faq_passages: list[str], tmp_path: Path
) -> None:
    config = EmbedderTrainingConfig(**TINY, pseudo_queries_per_passage=1)
    metrics = train_embedder(
        faq_pairs, base_model_path=minilm_path, corpus_passages=faq_passages, output_dir=tmp_path, config=config
    )
    assert metrics["feedback_pairs"] == 16 and metrics["pseudo_pairs"] > 0
    assert metrics["steps"] == -(-metrics["rows"] // 8)
    model = load_sentence_transformer(tmp_path, device="cpu")
    assert model.encode(["roof"], normalize_embeddings=True).shape == (1, 384)
    assert not (tmp_path / ".trainer").exists()


@pytest.mark.integration
def test_when_base_model_dir_is_not_a_model_then_invalid_input(
    faq_pairs: list[ContrastivePair], tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="sentence-transformers"):
        train_embedder(
            faq_pairs,
            base_model_path=tmp_path,
            corpus_passages=[],
            output_dir=tmp_path / "o",
            config=EmbedderTrainingConfig(**TINY),
        )
