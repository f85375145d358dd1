"""IR metrics of a ``Retriever`` over held-out ``EvalCase``s, scored by sentence-transformers.

Contract: rankings are taken at document level (``Citation.doc_id``; later chunks of an already-ranked document are
dropped, so several chunks of one document count once) and scored against ``EvalCase.relevant_doc_ids`` by
``sentence_transformers``' ``InformationRetrievalEvaluator.compute_metrics`` — the library's own recall / precision /
nDCG / MRR / MAP, not a re-implementation. Each case is scored on its own so that every :class:`MetricResult` keeps
``per_case`` values (the paired bootstrap of the gate needs them); ``value`` is their mean, which equals the library's
aggregate over all cases.

A retriever that also offers ``retrieve_many(questions, *, top_k, filter)`` (batched query embedding) is used through
that path; the ``Retriever`` port itself is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import InvalidInputError
from core.ports import Retriever
from core.types import Citation, EvalCase, MetricResult, SearchFilter

logger = logging.getLogger(__name__)

RECALL_AT = (1, 5, 10)
PRECISION_AT = (1, 5)
NDCG_AT = (10,)
MRR_AT = (10,)
MAP_AT = (10,)
IR_METRIC_NAMES: tuple[str, ...] = (
    *(f"recall@{k}" for k in RECALL_AT),
    *(f"precision@{k}" for k in PRECISION_AT),
    *(f"ndcg@{k}" for k in NDCG_AT),
    *(f"mrr@{k}" for k in MRR_AT),
    *(f"map@{k}" for k in MAP_AT),
)
# sentence-transformers result key -> (our metric prefix, the k values we keep)
_ST_KEYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "recall@k": ("recall", RECALL_AT),
    "precision@k": ("precision", PRECISION_AT),
    "ndcg@k": ("ndcg", NDCG_AT),
    "mrr@k": ("mrr", MRR_AT),
    "map@k": ("map", MAP_AT),
}


@dataclass(slots=True)
class Retrieval:
    """What a retriever returned for one case: citations in rank order and the de-duplicated document ranking."""

    case_id: str
    citations: list[Citation]
    doc_ids: list[str] = field(default_factory=list)

    @property
    def chunk_ids(self) -> list[str]:
        """Chunk ids in rank order."""
        return [c.chunk_id for c in self.citations]

    @property
    def contexts(self) -> list[str]:
        """Passage texts in rank order."""
        return [c.text for c in self.citations]


def doc_ranking(citations: Sequence[Citation]) -> list[str]:
    """Document ids in rank order, keeping only the first (best) chunk of each document."""
    seen: set[str] = set()
    ranked: list[str] = []
    for citation in citations:
        if citation.doc_id not in seen:
            seen.add(citation.doc_id)
            ranked.append(citation.doc_id)
    return ranked


def validate_cases(cases: Sequence[EvalCase]) -> None:
    """Raise ``InvalidInputError`` for an empty eval set, duplicate ids, or cases without relevance labels."""
    if not cases:
        raise InvalidInputError(
            "the eval set is empty: at least one case with relevance labels is needed", field="eval"
        )
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("eval case ids must be unique", field="cases")
    unlabelled = [c.id for c in cases if not c.relevant_doc_ids]
    if unlabelled:
        raise InvalidInputError(
            f"{len(unlabelled)} of {len(cases)} eval cases have no relevance labels (relevant_doc_ids); "
            f"first: {unlabelled[:5]}",
            field="cases.relevant_doc_ids",
            case_ids=unlabelled[:50],
        )


def retrieve_cases(
    retriever: Retriever, cases: Sequence[EvalCase], *, top_k: int = 10, filter: SearchFilter | None = None
) -> dict[str, Retrieval]:
    """Run every case's question through ``retriever`` (batched when it has ``retrieve_many``).

    Returns case id -> :class:`Retrieval`. Raises ``InvalidInputError`` for an invalid eval set.
    """
    validate_cases(cases)
    questions = [c.question for c in cases]
    batch = getattr(retriever, "retrieve_many", None)
    if callable(batch):
        results = list(batch(questions, top_k=top_k, filter=filter))
    else:
        results = [retriever.retrieve(q, top_k=top_k, filter=filter) for q in questions]
    if len(results) != len(cases):
        raise InvalidInputError(f"retriever returned {len(results)} result lists for {len(cases)} questions")
    out = {c.id: Retrieval(c.id, list(r), doc_ranking(r)) for c, r in zip(cases, results, strict=True)}
    logger.info("retrieval done cases=%d top_k=%d batched=%s", len(cases), top_k, callable(batch))
    return out


def _case_metrics(case: EvalCase, ranked_doc_ids: Sequence[str]) -> dict[str, float]:
    """Score one case with sentence-transformers' evaluator (scores encode the rank order exactly)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    evaluator = InformationRetrievalEvaluator(
        queries={case.id: case.question},
        corpus={},
        relevant_docs={case.id: set(case.relevant_doc_ids)},
        mrr_at_k=list(MRR_AT),
        ndcg_at_k=list(NDCG_AT),
        accuracy_at_k=[1],
        precision_recall_at_k=sorted({*RECALL_AT, *PRECISION_AT}),
        map_at_k=list(MAP_AT),
        write_csv=False,
    )
    n = len(ranked_doc_ids)
    hits = [{"corpus_id": doc_id, "score": float(n - rank)} for rank, doc_id in enumerate(ranked_doc_ids)]
    raw: dict[str, Any] = evaluator.compute_metrics([hits])
    scores: dict[str, float] = {}
    for st_key, (prefix, ks) in _ST_KEYS.items():
        for k in ks:
            scores[f"{prefix}@{k}"] = float(raw[st_key][k])
    return scores


def ir_metrics(cases: Sequence[EvalCase], rankings: Mapping[str, Sequence[str]]) -> dict[str, MetricResult]:
    """IR metrics for precomputed document rankings (case id -> doc ids, best first).

    Returns metric name (``recall@5``, ``ndcg@10``, ``mrr@10`` ...) -> :class:`MetricResult` with ``per_case``.
    Raises ``InvalidInputError`` for an invalid eval set or a case without a ranking.
    """
    validate_cases(cases)
    missing = [c.id for c in cases if c.id not in rankings]
    if missing:
        raise InvalidInputError(f"no ranking for {len(missing)} eval cases; first: {missing[:5]}", field="rankings")
    per_case: dict[str, dict[str, float]] = {name: {} for name in IR_METRIC_NAMES}
    for case in cases:
        for name, value in _case_metrics(case, rankings[case.id]).items():
            per_case[name][case.id] = value
    return {
        name: MetricResult(name=name, value=float(np.mean(list(values.values()))), per_case=values)
        for name, values in per_case.items()
    }


def evaluate_ir(
    retriever: Retriever, cases: Sequence[EvalCase], *, top_k: int = 10, filter: SearchFilter | None = None
) -> dict[str, MetricResult]:
    """Retrieve every case and return its IR metrics (see :func:`ir_metrics`)."""
    retrievals = retrieve_cases(retriever, cases, top_k=top_k, filter=filter)
    return ir_metrics(cases, {cid: r.doc_ids for cid, r in retrievals.items()})


__all__ = [
    "IR_METRIC_NAMES",
    "Retrieval",
    "doc_ranking",
    "evaluate_ir",
    "ir_metrics",
    "retrieve_cases",
    "validate_cases",
]
