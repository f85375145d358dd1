"""Row builders of curation: resolved labels and edits -> dataset rows, with noise filters and de-duplication."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from core.ports import Embedder, PassageIndex
from core.types import Chunk, ContrastivePair, EvalCase, FeedbackEvent, QueryRecord, RelevanceExample, SftExample
from feedback.quality import cluster, dedup, noise_reason
from feedback.signals import Resolved
from feedback.text import normalize_text, stable_hash

if TYPE_CHECKING:
    from feedback.curation import CurationConfig, CurationReport


def _merge(kept: Any, dropped: Any) -> None:
    kept.provenance = sorted(set(kept.provenance) | set(dropped.provenance))


class RowBuilder:
    """Builds the rows of each dataset kind for one corpus; counts drops into ``report.dropped``."""

    def __init__(
        self,
        corpus: str,
        passages: PassageIndex,
        embedder: Embedder,
        config: CurationConfig,
        report: CurationReport,
    ) -> None:
        self.corpus = corpus
        self._passages = passages
        self._embedder = embedder
        self._config = config
        self.report = report
        self._chunks: dict[str, Chunk] = {}

    def _drop(self, reason: str, n: int = 1) -> None:
        self.report.dropped[reason] = self.report.dropped.get(reason, 0) + n

    def _clean(self, text: str) -> bool:
        reason = noise_reason(text, min_chars=self._config.min_chars)
        if reason is not None:
            self._drop(f"noise_{reason}")
        return reason is None

    def _load(self, chunk_ids: Iterable[str]) -> dict[str, Chunk]:
        missing = sorted(set(chunk_ids) - set(self._chunks))
        if missing:
            self._chunks.update(self._passages.get_passages(self.corpus, missing))
        return self._chunks

    def _dedup(self, rows: list[Any], *, text: Any, group: Any) -> list[Any]:
        kept, exact, near = dedup(
            rows, text=text, group=group, embedder=self._embedder, threshold=self._config.near_duplicate, merge=_merge
        )
        self._drop("exact_duplicates", exact)
        self._drop("near_duplicates", near)
        return kept

    def _by_question(self, labels: Sequence[Resolved]) -> dict[str, list[Resolved]]:
        grouped: dict[str, list[Resolved]] = defaultdict(list)
        for label in labels:
            grouped[label.question].append(label)
        chunks = self._load(label.chunk_id for label in labels)
        known = {q: [r for r in rs if r.chunk_id in chunks] for q, rs in grouped.items()}
        self._drop("missing_passages", sum(len(grouped[q]) - len(known[q]) for q in grouped))
        return known

    def contrastive(self, labels: Sequence[Resolved], queries: dict[str, QueryRecord]) -> list[ContrastivePair]:
        """One pair per (question, positive passage) with the question's resolved negatives as hard negatives."""
        rows: list[ContrastivePair] = []
        for question, resolved in self._by_question(labels).items():
            text = queries[question].question
            positives = [r for r in resolved if r.label > 0]
            if not positives or not self._clean(text):
                continue
            negatives = [r for r in resolved if r.label < 0][: self._config.max_negatives]
            for pos in positives:
                rows.append(
                    ContrastivePair(
                        query=text,
                        positive=self._chunks[pos.chunk_id].text,
                        negatives=[self._chunks[n.chunk_id].text for n in negatives],
                        positive_chunk_id=pos.chunk_id,
                        negative_chunk_ids=[n.chunk_id for n in negatives],
                        weight=round(pos.confidence, 4),
                        provenance=sorted({*pos.event_ids, *(e for n in negatives for e in n.event_ids)}),
                    )
                )
        return self._dedup(rows, text=lambda r: r.query, group=lambda r: r.positive_chunk_id or "")

    def relevance(self, labels: Sequence[Resolved], queries: dict[str, QueryRecord]) -> list[RelevanceExample]:
        """One (question, passage, label) example per resolved judgement, for reranker training."""
        rows = [
            RelevanceExample(
                query=queries[q].question,
                passage=self._chunks[r.chunk_id].text,
                label=1.0 if r.label > 0 else 0.0,
                chunk_id=r.chunk_id,
                weight=round(r.confidence, 4),
                provenance=list(r.event_ids),
            )
            for q, resolved in self._by_question(labels).items()
            if self._clean(queries[q].question)
            for r in resolved
        ]
        return self._dedup(rows, text=lambda r: r.query, group=lambda r: f"{r.chunk_id}:{r.label}")

    def sft(
        self, edits: Sequence[tuple[FeedbackEvent, QueryRecord]], labels: Sequence[Resolved] = ()
    ) -> list[SftExample]:
        """(question, passages, corrected / edited answer) examples. The passages are the cited ones with the
        question's resolved relevant passages (``labels``) first — the evidence the agents pointed at: a correction is
        given exactly when retrieval ranked that evidence low or missed it, so the cited order alone would teach the
        generator to pass over passage [1] and to answer without evidence."""
        rows: list[SftExample] = []
        evidence: dict[str, list[str]] = defaultdict(list)
        for label in labels:
            if label.label > 0:
                evidence[label.question].append(label.chunk_id)
        chunks = self._load([*(c for _, q in edits for c in q.chunk_ids), *(c for e in evidence.values() for c in e)])
        for event, query in edits:
            target = str(event.data.get("text", ""))
            if not self._clean(query.question) or not self._clean(target):
                continue
            ids = list(dict.fromkeys([*evidence.get(normalize_text(query.question), []), *query.chunk_ids]))
            contexts = [chunks[c].text for c in ids if c in chunks]
            rows.append(SftExample(query=query.question, contexts=contexts, target=target, provenance=[event.id]))
        return self._dedup(rows, text=lambda r: r.target, group=lambda r: normalize_text(r.query))

    def eval_cases(
        self,
        labels: Sequence[Resolved],
        queries: dict[str, QueryRecord],
        edits: Sequence[tuple[FeedbackEvent, QueryRecord]],
    ) -> list[EvalCase]:
        """Held-out questions with at least one relevant passage (reference answer from a correction, if any)."""
        references = {normalize_text(q.question): str(e.data.get("text", "")) for e, q in edits}
        cases: list[EvalCase] = []
        for question, resolved in self._by_question(labels).items():
            positives = [r for r in resolved if r.label > 0]
            query = queries[question]
            if not positives or not self._clean(query.question):
                continue
            cases.append(
                EvalCase(
                    id="fb-" + stable_hash(question)[:16],
                    question=query.question,
                    relevant_doc_ids=sorted({self._chunks[r.chunk_id].doc_id for r in positives}),
                    reference_answer=references.get(question),
                    relevant_chunk_ids=sorted(r.chunk_id for r in positives),
                    slices={"tenant": query.tenant} if query.tenant else {},
                    provenance=sorted({e for r in positives for e in r.event_ids}),
                )
            )
        return cases

    def gaps(self, reports: Sequence[tuple[FeedbackEvent, QueryRecord]]) -> list[dict[str, Any]]:
        """Missing-knowledge reports grouped by question similarity, largest group first."""
        usable = [(e, str(e.data.get("question") or q.question)) for e, q in reports]
        usable = [(e, text) for e, text in usable if self._clean(text)]
        groups = cluster([t for _, t in usable], embedder=self._embedder, threshold=self._config.gap_similarity)
        rows = []
        for members in groups:
            events = [usable[i][0] for i in members]
            questions = list(dict.fromkeys(usable[i][1] for i in members))
            suggested = list(dict.fromkeys(str(e.data["text"]) for e in events if e.data.get("text")))
            rows.append(
                {
                    "id": "gap-" + stable_hash(questions[0])[:12],
                    "questions": questions[:10],
                    "suggested_texts": suggested[:5],
                    "count": len(events),
                    "provenance": sorted(e.id for e in events),
                }
            )
        return sorted(rows, key=lambda r: (-r["count"], r["id"]))
