"""Curation: raw feedback events -> versioned datasets with provenance (contrastive, relevance, SFT, eval, gaps).

Pipeline: consented events of the corpus -> votes -> per-rater weights -> weighted resolution of conflicting signals
-> stable hold-out split by the normalised question (held-out questions only ever become eval cases) -> rows ->
noise filters -> exact + near-duplicate removal -> residual-PII scan (the scrubber's scan plus checksum-validated
cards / IBANs / SSNs / emails; offending rows are dropped and counted, a dataset with too many is refused) ->
``DatasetRepository.write`` (event ids + user ids in the manifest) -> dataset usage recorded in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from core.datasets import DatasetRepository
from core.errors import NotEnoughDataError
from core.ports import Embedder, PassageIndex, PiiScrubber
from core.types import DatasetKind, FeedbackEvent, FeedbackKind, QueryRecord
from feedback.curation_rows import RowBuilder
from feedback.pii_validators import validated_findings
from feedback.quality import is_held_out
from feedback.signals import rater_weights, resolve, votes_of
from feedback.store import SqlStore
from feedback.text import normalize_text

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CurationConfig:
    """Curation thresholds."""

    min_events: int = field(default=10, metadata={"help": "fewest consented events of the corpus needed to curate"})
    min_chars: int = field(default=8, metadata={"help": "texts shorter than this (after trimming) are noise"})
    near_duplicate: float = field(default=0.95, metadata={"help": "cosine similarity at or above which rows are twins"})
    gap_similarity: float = field(
        default=0.75, metadata={"help": "cosine similarity joining missing-knowledge reports"}
    )
    max_negatives: int = field(default=5, metadata={"help": "hard negatives kept per contrastive pair"})
    max_pii_share: float = field(
        default=0.05,
        metadata={
            "help": "share of a dataset's rows with residual PII above which the whole dataset is refused (scrubbing "
            "looks broken); at or below it the offending rows are dropped and the rest is written"
        },
    )


@dataclass(slots=True)
class CurationReport:
    """What one curation run did: datasets written (kind -> version), counts, drops and refusals."""

    corpus: str
    events: int
    queries: int
    written: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)
    rater_weights: dict[str, float] = field(default_factory=dict)
    users: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (CLI output, job results)."""
        return {
            "corpus": self.corpus,
            "events": self.events,
            "queries": self.queries,
            "written": dict(self.written),
            "rows": dict(self.rows),
            "dropped": dict(self.dropped),
            "refused": {k: list(v) for k, v in self.refused.items()},
            "raters": len(self.rater_weights),
            "users": self.users,
        }


class Curator:
    """Curates the feedback of one corpus into new dataset versions (see module docstring)."""

    def __init__(
        self,
        store: SqlStore,
        datasets: DatasetRepository,
        *,
        scrubber: PiiScrubber,
        embedder: Embedder,
        passages: PassageIndex,
        config: CurationConfig | None = None,
    ) -> None:
        self._store = store
        self._datasets = datasets
        self._scrubber = scrubber
        self._embedder = embedder
        self._passages = passages
        self.config = config or CurationConfig()

    def curate(self, corpus: str, *, holdout_share: float = 0.2, seed: int = 42) -> CurationReport:
        """Write new versions of every dataset kind that has rows. Raises ``NotEnoughDataError`` (have / need)."""
        pairs = [(e, q) for e, q in self._store.training_events() if q.corpus == corpus]
        if len(pairs) < self.config.min_events:
            raise NotEnoughDataError(
                f"corpus {corpus!r} has {len(pairs)} consented feedback events; curation needs at least "
                f"{self.config.min_events}",
                have=len(pairs),
                need=self.config.min_events,
            )
        queries = {q.id: q for _, q in pairs}
        report = CurationReport(corpus=corpus, events=len(pairs), queries=len(queries))
        builder = RowBuilder(corpus, self._passages, self._embedder, self.config, report)
        rows = self._build(builder, pairs, queries, holdout_share=holdout_share, seed=seed)
        users = {e.id: e.user_id for e, _ in pairs if e.user_id}
        users.update({f"q:{q.id}": q.user_id for q in queries.values() if q.user_id})
        for kind, kind_rows in rows.items():
            self._write(kind, kind_rows, users=users, report=report)
        logger.info("curation done corpus=%s events=%d written=%s", corpus, len(pairs), report.written)
        return report

    def _build(
        self,
        builder: RowBuilder,
        pairs: list[tuple[FeedbackEvent, QueryRecord]],
        queries: dict[str, QueryRecord],
        *,
        holdout_share: float,
        seed: int,
    ) -> dict[DatasetKind, list[Any]]:
        votes = [v for e, q in pairs for v in votes_of(e, q)]
        weights = rater_weights(votes)
        builder.report.rater_weights = weights
        resolved, ties = resolve(votes, weights)
        builder.report.dropped["conflict_ties"] = ties
        builder.report.dropped["conflicts_resolved"] = sum(r.contested for r in resolved)
        held = {q.id for q in queries.values() if is_held_out(q.question, share=holdout_share, seed=seed)}
        by_question: dict[str, QueryRecord] = {}
        for q in queries.values():
            by_question.setdefault(normalize_text(q.question), q)
        held_questions = {normalize_text(queries[qid].question) for qid in held}
        train_labels = [r for r in resolved if r.question not in held_questions]
        eval_labels = [r for r in resolved if r.question in held_questions]
        edits = _edits(pairs)
        return {
            DatasetKind.CONTRASTIVE: builder.contrastive(train_labels, by_question),
            DatasetKind.RELEVANCE: builder.relevance(train_labels, by_question),
            DatasetKind.SFT: builder.sft([(e, q) for e, q in edits if q.id not in held], train_labels),
            DatasetKind.EVAL: builder.eval_cases(eval_labels, by_question, edits),
            DatasetKind.GAPS: builder.gaps([(e, q) for e, q in pairs if e.kind == FeedbackKind.MISSING_KNOWLEDGE]),
        }

    def _write(self, kind: DatasetKind, rows: list[Any], *, users: dict[str, str], report: CurationReport) -> None:
        report.rows[kind.value] = len(rows)
        if not rows:
            return
        leaks = self._residual_pii(kind, rows)
        if leaks:
            bad = {int(leak.split(":", 1)[0]) for leak in leaks}
            if len(bad) > self.config.max_pii_share * len(rows):
                report.refused[kind.value] = leaks
                logger.warning("dataset refused kind=%s rows_with_pii=%d rows=%d", kind.value, len(bad), len(rows))
                return
            # A few detector hits (often small-model false positives) must not starve the cycle of a whole dataset.
            rows = [row for i, row in enumerate(rows) if i not in bad]
            report.dropped[f"{kind.value}_residual_pii"] = len(bad)
            report.rows[kind.value] = len(rows)
            logger.warning("rows dropped for residual PII kind=%s rows=%d", kind.value, len(bad))
            if not rows:
                return
        event_ids = sorted({eid for row in rows for eid in _provenance(row)})
        user_ids = sorted({u for eid in event_ids if (u := users.get(eid))})
        manifest = self._datasets.write(
            kind, rows, event_ids=event_ids, user_ids=user_ids, stats={"dropped": dict(report.dropped)}
        )
        self._store.record_dataset_usage(kind.value, manifest.version, user_ids)
        report.written[kind.value] = manifest.version
        report.users = max(report.users, len(user_ids))

    def _residual_pii(self, kind: DatasetKind, rows: list[Any]) -> list[str]:
        """Rows (``index:ENTITY``) whose user-derived text still holds PII (knowledge-base passages are not scanned).

        The scrubber's scan is joined by :func:`feedback.pii_validators.validated_findings` (cards, IBANs, SSNs,
        emails by pattern + checksum alone), so what the intake's scrubber missed is not missed twice the same way.
        """
        unique = sorted({text for row in rows for text in _user_texts(row)})
        scan_many = getattr(self._scrubber, "scan_many", None)
        findings = scan_many(unique) if callable(scan_many) else [self._scrubber.scan(t) for t in unique]
        entities = {
            text: sorted({f.entity_type for f in [*found, *validated_findings(text)]})
            for text, found in zip(unique, findings, strict=True)
        }
        return [f"{i}:{entity}" for i, row in enumerate(rows) for text in _user_texts(row) for entity in entities[text]]


def _edits(pairs: list[tuple[FeedbackEvent, QueryRecord]]) -> list[tuple[FeedbackEvent, QueryRecord]]:
    return [(e, q) for e, q in pairs if e.kind in (FeedbackKind.CORRECTION, FeedbackKind.EDITED)]


def _provenance(row: Any) -> list[str]:
    return list(row["provenance"] if isinstance(row, dict) else row.provenance)


def _user_texts(row: Any) -> list[str]:
    """Text fields that came from agents (scrubbed at intake) rather than from the knowledge base."""
    if isinstance(row, dict):
        return [*row.get("questions", []), *row.get("suggested_texts", [])]
    texts = [getattr(row, name) for name in ("query", "question", "target", "reference_answer") if hasattr(row, name)]
    return [t for t in texts if isinstance(t, str)]
