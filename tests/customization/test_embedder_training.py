"""Embedder fine-tuning: pseudo-query pairs, hard negatives with the false-negative guard, a tiny real training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
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
    seen: list[tuple[int, int]] = []
    metrics = train_embedder(
        faq_pairs, base_model_path=minilm_path, corpus_passages=faq_passages, output_dir=tmp_path, config=config,
        on_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert metrics["feedback_pairs"] == 16 and metrics["pseudo_pairs"] > 0
    assert metrics["steps"] == -(-metrics["rows"] // 8)
    assert seen == [(step, metrics["steps"]) for step in range(1, metrics["steps"] + 1)]
    model = load_sentence_transformer(tmp_path, device="cpu")
    assert model.encode(["roof"], normalize_embeddings=True).shape == (1, 384)
    assert not (tmp_path / ".trainer").exists()


@pytest.mark.integration
def test_when_the_progress_callback_raises_then_training_stops_and_saves_nothing(
    minilm_path: Path, faq_pairs: list[ContrastivePair], faq_passages: list[str], tmp_path: Path
) -> None:
    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        train_embedder(faq_pairs, base_model_path=minilm_path, corpus_passages=faq_passages, output_dir=tmp_path,
                       config=EmbedderTrainingConfig(**TINY), on_progress=cancel)  # fmt: skip
    assert not (tmp_path / "model.safetensors").exists()


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


class _WordTeacher:
    """A stand-in teacher: bag-of-words vectors over a tiny vocabulary (a sentence lands on the passage it shares
    most words with)."""

    vocab = ("roof", "tiles", "gutters", "permit", "municipality", "drawings", "leaves", "spring")

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        rows = np.array([[t.lower().count(w) + 0.01 for w in self.vocab] for t in texts], dtype="float32")
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


ROOF = "Roof tiles last thirty years. Check the roof tiles every spring. Gutters clog with leaves in autumn."
PERMIT = "A permit comes from the municipality. The municipality wants drawings of the permit work. Apply early."


@pytest.mark.unit
def test_distillation_rows_label_every_row_with_the_teachers_vectors_and_pseudo_queries_find_their_passage() -> None:
    from customization.distillation import distillation_rows

    rows = distillation_rows(
        _WordTeacher(), anchors=["how long do tiles last"], positives=[ROOF], negatives=[PERMIT],
        corpus=[ROOF, PERMIT, ROOF], per_passage=2, min_words=4, seed=3,
    )  # fmt: skip
    cols = rows.columns
    assert rows.stats == {"distill_queries": 4}  # 2 sentences from each distinct passage
    assert len(cols["anchor"]) == len(cols["positive"]) == len(cols["negative"]) == len(cols["label"]) == 5
    for anchor, positive, negative in zip(cols["anchor"][1:], cols["positive"][1:], cols["negative"][1:], strict=True):
        assert anchor in positive and positive != negative  # the teacher ranks a sentence's own passage first
    dims = len(_WordTeacher.vocab)
    assert all(len(label) == 3 * dims + 1 for label in cols["label"])
    assert [label[-1] for label in cols["label"]] == [1.0, 0.0, 0.0, 0.0, 0.0]  # feedback row vs teacher-only rows
    anchor_vector = _WordTeacher().encode(["how long do tiles last"])[0]
    assert np.allclose(cols["label"][0][:dims], anchor_vector)


@pytest.mark.unit
def test_distillation_loss_is_zero_when_the_student_already_scores_like_the_teacher() -> None:
    import torch

    from customization.distillation import distillation_loss

    vectors = torch.nn.functional.normalize(torch.randn(3, 2, 6, generator=torch.Generator().manual_seed(0)), dim=-1)

    class Echo(torch.nn.Module):  # a "student" whose embeddings are exactly the teacher's
        def forward(self, features: dict) -> dict:
            return {"sentence_embedding": features["v"]}

    features = [{"v": vectors[:, 0]}, {"v": vectors[:, 1]}]
    mask = torch.tensor([[1.0], [0.0], [1.0]])
    labels = torch.cat([vectors.reshape(3, -1), mask], dim=1)
    assert distillation_loss(Echo(), scale=20.0, ce_weight=0.0)(features, labels).item() == pytest.approx(0, abs=1e-5)
    with_ce = distillation_loss(Echo(), scale=20.0, ce_weight=1.0)(features, labels).item()
    scores = vectors[:, 0] @ vectors[:, 1].T * 20.0
    ce = torch.nn.functional.cross_entropy(scores, torch.arange(3), reduction="none")
    assert with_ce == pytest.approx(((ce[0] + ce[2]) / 2).item(), abs=1e-4)  # the teacher-only row is left out


@pytest.mark.unit
def test_when_the_teacher_is_neither_packaged_nor_a_model_dir_then_invalid_input(tmp_path: Path) -> None:
    from customization.distillation import resolve_teacher

    with pytest.raises(InvalidInputError, match="sentence-transformers model directory"):
        resolve_teacher(str(tmp_path), base_models_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="base-models directory"):
        resolve_teacher("mpnet", base_models_dir=None)
    with pytest.raises(InvalidInputError):
        EmbedderTrainingConfig(distill_ce_weight=-1.0)


@pytest.mark.integration
def test_distilled_training_fine_tunes_the_teacher_then_trains_the_student_on_its_labels(
    minilm_path: Path, faq_pairs: list[ContrastivePair], faq_passages: list[str], tmp_path: Path
) -> None:
    config = EmbedderTrainingConfig(**TINY, teacher=str(minilm_path), distill_queries_per_passage=1)
    shares: list[float] = []
    metrics = train_embedder(
        faq_pairs, base_model_path=minilm_path, corpus_passages=faq_passages, output_dir=tmp_path, config=config,
        on_progress=lambda done, total: shares.append(done / total),
    )  # fmt: skip
    # the teacher's fine-tune fills the first half of the progress, the student's run the second
    assert shares == sorted(shares) and shares[1] == 0.5 and shares[-1] == 1.0
    assert metrics["teacher"] == str(minilm_path) and metrics["teacher_steps"] == 2  # 16 pairs, batch 8
    assert metrics["distill_queries"] > 0
    assert metrics["rows"] == metrics["feedback_pairs"] + metrics["distill_queries"]
    assert metrics["steps"] == -(-metrics["rows"] // 8)
    assert not (tmp_path / ".teacher").exists() and not (tmp_path / ".trainer").exists()
    assert load_sentence_transformer(tmp_path, device="cpu").encode(["roof"]).shape == (1, 384)
