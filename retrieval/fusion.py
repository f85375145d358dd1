"""Tuning the keyword weight of hybrid retrieval for one corpus on curated data.

Contract: :func:`tune_fusion_weight` searches the cases' questions through a :class:`~retrieval.service.QueryService`
(the candidate arm: its embedder over its collection) once per weight in the grid, scores each weight by MRR@10 of
the cases' relevant documents, and returns the best (ties: the weight nearest the current default, so noise does not
move it). The caller records it on the candidate collection version (``IndexManager.set_fusion_weight``); the gate
then judges the candidate — with its weight — against the current arm on held-out cases, like any candidate.

Use TRAINING cases (curated from feedback), never the gate's held-out cases: tuning on them would leak.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.types import HybridParams
from retrieval.service import QueryService

logger = logging.getLogger(__name__)

#: Keyword weights tried by default (0 = dense only).
DEFAULT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class TuningCase:
    """A question and the document ids that answer it."""

    question: str
    relevant_doc_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class FusionTuning:
    """The chosen weight, its MRR@10 and every weight's MRR@10 (``None``: the collection has no keyword index)."""

    weight: float | None
    mrr: dict[float, float]


def _mrr(service: QueryService, cases: Sequence[TuningCase], params: HybridParams) -> float:
    total = 0.0
    for case in cases:
        citations, _ = service.search(case.question, top_k=10, hybrid=params)
        rank = next((i for i, c in enumerate(citations, start=1) if c.doc_id in case.relevant_doc_ids), None)
        total += 1.0 / rank if rank else 0.0
    return total / len(cases)


def tune_fusion_weight(
    service: QueryService, cases: Sequence[TuningCase], *, grid: Sequence[float] = DEFAULT_GRID
) -> FusionTuning:
    """Best keyword weight of ``grid`` for ``service``'s collection by MRR@10 on ``cases`` (see module docstring)."""
    base = service.hybrid_params(service.live_collection())
    if base is None or not cases:
        return FusionTuning(weight=None, mrr={})
    scores = {w: round(_mrr(service, cases, replace(base, sparse_weight=w)), 6) for w in grid}
    best = max(scores.values())
    weight = min((w for w, s in scores.items() if s == best), key=lambda w: abs(w - base.sparse_weight))
    logger.info("fusion weight tuned cases=%d weight=%s mrr=%.4f", len(cases), weight, best)
    return FusionTuning(weight=weight, mrr=scores)


__all__ = ["DEFAULT_GRID", "FusionTuning", "TuningCase", "tune_fusion_weight"]
