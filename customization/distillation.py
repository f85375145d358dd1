"""Distilling a bigger sentence-transformers model into the served embedder (opt-in: ``teacher`` in the config).

The served embedder stays MiniLM-L6 (fast on a CPU); a teacher (the packaged all-mpnet-base-v2, 110M parameters)
is first fine-tuned on the same feedback pairs, then labels what the student trains on:

- every feedback row keeps its query, positive and negative; the teacher's embeddings of those texts ride along as
  the row's label;
- ``distill_queries_per_passage`` sentences of every corpus passage become extra, unlabelled queries, each paired
  with the passage the teacher ranks first and, when rows carry negatives, the one it ranks second. The held-out
  questions are never among them: these are sentences of the corpus, which the service indexes anyway.

The loss (:class:`DistillationLoss`) is a listwise KL divergence between the teacher's and the student's softmax
over each query's candidates (every positive and negative of the batch, scaled by ``scale``), plus
``distill_ce_weight`` x the usual in-batch cross-entropy on the feedback rows only. The teacher's soft scores are
what lets noisy pseudo-queries help: a sentence that fits several passages is taught exactly that, where a hard
label would teach a wrong "only this one" (synthetic questions with hard labels lowered MRR@10, see
``benchmarks/synthetic_queries.py``).

FAQ 60/40 benchmark (``benchmarks/faq_lift.py``, split 42). Exploration at training seed 42: plain MNRL 0.795
MRR@10; distilled from the *untuned* teacher (0.777 on its own) 0.778; from the fine-tuned teacher (0.855 on its own)
on the feedback queries alone 0.790, plus a teacher-mined hard negative 0.784, with 1 sentence per passage 0.795 (KL
weight 1 next to the cross-entropy) / 0.798 (KL weight 3), with 2 sentences per passage and KL only 0.802 / 0.707
recall@1 (the defaults below). The benchmark with those defaults, mean of training seeds 42 / 1 / 2: 0.804 / 0.708
(+16.0% / +20.6% over the untuned 0.693 / 0.587; naive MNRL 0.780 / 0.670), and above naive at every seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError

PACKAGED_TEACHER = "mpnet"


def check_teacher(teacher: str | None) -> None:
    """``InvalidInputError`` unless ``teacher`` is off, the packaged one or a sentence-transformers directory."""
    if teacher is not None and teacher != PACKAGED_TEACHER and not (Path(teacher) / "config.json").is_file():
        raise InvalidInputError(
            f"teacher must be {PACKAGED_TEACHER!r} or a sentence-transformers model directory; got {teacher}",
            field="teacher",
        )


def resolve_teacher(teacher: str, *, base_models_dir: Path | None) -> Path:
    """The teacher's model directory: ``"mpnet"`` is the packaged all-mpnet-base-v2 (extracted once under
    ``base_models_dir``), anything else a sentence-transformers directory. ``InvalidInputError`` otherwise."""
    if teacher == PACKAGED_TEACHER:
        if base_models_dir is None:
            raise InvalidInputError("the packaged teacher needs a base-models directory to extract into")
        from customization.base_models import ensure_mpnet

        return ensure_mpnet(base_models_dir)
    check_teacher(teacher)
    return Path(teacher)


@dataclass(slots=True)
class DistillationRows:
    """Trainer columns (texts + a ``label`` column of teacher embeddings and a feedback-row mask) and counts."""

    columns: dict[str, list[Any]]
    stats: dict[str, int]


def distillation_rows(
    teacher: Any,
    *,
    anchors: Sequence[str],
    positives: Sequence[str],
    negatives: Sequence[str] | None,
    corpus: Sequence[str],
    per_passage: int,
    min_words: int,
    seed: int,
) -> DistillationRows:
    """The feedback rows plus teacher-labelled corpus sentences, every row labelled with the teacher's embeddings
    of its texts (``[anchor, positive, (negative)]`` concatenated, then 1.0 for a feedback row, 0.0 for a pseudo
    one)."""
    import numpy as np

    from customization.embedder_training import split_sentences

    passages = list(dict.fromkeys(corpus))
    rng = random.Random(seed)
    sentences: list[str] = []
    for passage in passages:
        usable = split_sentences(passage, min_words=min_words)
        sentences += rng.sample(usable, min(per_passage, len(usable)))

    def encode(texts: Sequence[str]) -> Any:
        return teacher.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    texts = list(dict.fromkeys([*anchors, *positives, *(negatives or []), *sentences, *passages]))
    vectors = dict(zip(texts, encode(texts), strict=True))
    columns: dict[str, list[Any]] = {"anchor": list(anchors), "positive": list(positives)}
    if negatives is not None:
        columns["negative"] = list(negatives)
    if sentences and passages:
        corpus_matrix = np.stack([vectors[p] for p in passages])
        ranked = np.argsort(-(np.stack([vectors[s] for s in sentences]) @ corpus_matrix.T), axis=1)
        columns["anchor"] += sentences
        columns["positive"] += [passages[r[0]] for r in ranked]
        if negatives is not None:
            columns["negative"] += [passages[r[1 if len(r) > 1 else 0]] for r in ranked]
    names = [n for n in ("anchor", "positive", "negative") if n in columns]
    n_feedback = len(anchors)
    columns["label"] = [
        np.concatenate([vectors[columns[n][i]] for n in names] + [np.array([1.0 if i < n_feedback else 0.0])])
        .astype("float32")
        .tolist()
        for i in range(len(columns["anchor"]))
    ]
    return DistillationRows(columns, {"distill_queries": len(columns["anchor"]) - n_feedback})


def distillation_loss(model: Any, *, scale: float, ce_weight: float) -> Any:
    """A :class:`DistillationLoss` (built lazily: torch is imported only when training)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DistillationLoss(nn.Module):
        """Listwise KL(teacher || student) over each query's in-batch candidates + ``ce_weight`` x the in-batch
        cross-entropy of the feedback rows (``labels``: see :func:`distillation_rows`)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, sentence_features: Sequence[dict[str, Any]], labels: Any) -> Any:
            columns = len(sentence_features)
            embeddings = [F.normalize(self.model(f)["sentence_embedding"], dim=-1) for f in sentence_features]
            queries, candidates = embeddings[0], torch.cat(embeddings[1:])
            student = queries @ candidates.T * scale
            feedback = labels[:, -1]
            teacher_vectors = labels[:, :-1].reshape(len(queries), columns, -1)
            teacher_candidates = torch.cat([teacher_vectors[:, k] for k in range(1, columns)])
            teacher = teacher_vectors[:, 0] @ teacher_candidates.T * scale
            loss = F.kl_div(
                F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1), log_target=True, reduction="batchmean"
            )
            if ce_weight:
                target = torch.arange(len(queries), device=student.device)
                ce = F.cross_entropy(student, target, reduction="none")
                loss = loss + ce_weight * (ce * feedback).sum() / feedback.sum().clamp(min=1.0)
            return loss

    return DistillationLoss()


__all__ = [
    "PACKAGED_TEACHER",
    "DistillationRows",
    "check_teacher",
    "distillation_loss",
    "distillation_rows",
    "resolve_teacher",
]
