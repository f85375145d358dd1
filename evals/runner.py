"""One call to evaluate a configuration (retriever + generator, with versions) on held-out cases, and compare two.

Contract: :meth:`Evaluator.evaluate` retrieves every case once (``top_k`` documents for the IR metrics; the first
``answer_top_k`` passages are the RAG contexts handed to the generator and scored by RAGAS), generates answers when
the configuration has a generator, and returns an :class:`EvalResult` with per-metric and per-slice values plus the
versions it measured. :meth:`Evaluator.compare` evaluates current and candidate on the same cases. Results
serialise to JSON (``to_dict`` / ``from_dict``) so the loop can store them per cycle and the gate and report can be
re-run from storage. Generated answers stay in memory (``EvalResult.answers``, for the guardrails) and are never
serialised.

Bad input: an empty eval set or cases without relevance labels -> ``InvalidInputError``; a slice dimension that no
case carries -> an explicit entry in ``skipped_slices``; a generator that is down -> answer metrics skipped with the
reason.

Generation is bounded: only the first ``max_generation_cases`` cases (in case-id order, so both arms of a comparison
answer the same cases) are answered, in batches when the generator has ``generate_many``, and generation stops with
the answer metrics skipped (reason given) once ``generation_budget_s`` is spent — a slow endpoint cannot hang a cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.errors import UpstreamUnavailableError
from core.ports import Embedder, Generator, Retriever
from core.settings import JudgeSettings
from core.types import EvalCase, MetricResult, utcnow
from evals.ir import Retrieval, ir_metrics, retrieve_cases, validate_cases
from evals.ragas_metrics import PortEmbeddings, RagasSample, compute_ragas

logger = logging.getLogger(__name__)

ANSWER_METRICS = ("semantic_similarity", "rouge_l", "faithfulness", "answer_relevancy")


@dataclass(slots=True)
class Configuration:
    """What is evaluated: a retriever, an optional generator, and the versions they stand for."""

    name: str
    retriever: Retriever
    generator: Generator | None = None
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EvalResult:
    """Metrics of one configuration on one eval set. ``slices``: dimension -> value -> {n, metrics}."""

    name: str
    versions: dict[str, str]
    case_ids: list[str]
    case_slices: dict[str, dict[str, str]]
    metrics: dict[str, MetricResult]
    slices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    skipped_slices: list[dict[str, str]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    answers: dict[str, str] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        """Mean value of ``metric`` (``None`` when skipped or unknown)."""
        result = self.metrics.get(metric)
        return None if result is None else result.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (generated answers excluded)."""
        out = {k: getattr(self, k) for k in self.__slots__ if k != "answers"}  # type: ignore[attr-defined]
        out["metrics"] = {name: asdict(m) for name, m in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        fields = dict(data)
        fields["metrics"] = {name: MetricResult(**m) for name, m in data["metrics"].items()}
        return cls(**fields)


@dataclass(slots=True)
class Comparison:
    """Current and candidate evaluated on the same cases."""

    current: EvalResult
    candidate: EvalResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"current": self.current.to_dict(), "candidate": self.candidate.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """Inverse of :meth:`to_dict`."""
        return cls(EvalResult.from_dict(data["current"]), EvalResult.from_dict(data["candidate"]))


def slice_metrics(
    metrics: Mapping[str, MetricResult],
    case_slices: Mapping[str, Mapping[str, str]],
    *,
    dimensions: Sequence[str] | None = None,
) -> tuple[dict[str, dict[str, dict[str, Any]]], list[dict[str, str]]]:
    """Per-slice means of every computed metric, and the requested dimensions that no case carries (skipped)."""
    present = sorted({dim for s in case_slices.values() for dim in s})
    dims = list(dimensions) if dimensions is not None else present
    out: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: list[dict[str, str]] = []
    for dim in dims:
        groups: dict[str, list[str]] = {}
        for cid, s in case_slices.items():
            if dim in s:
                groups.setdefault(s[dim], []).append(cid)
        if not groups:
            skipped.append({"slice": dim, "reason": f"no eval case carries slice dimension {dim!r}"})
            continue
        out[dim] = {value: _slice_entry(metrics, ids) for value, ids in sorted(groups.items())}
    return out, skipped


def _slice_entry(metrics: Mapping[str, MetricResult], ids: Sequence[str]) -> dict[str, Any]:
    values: dict[str, float] = {}
    for name, m in metrics.items():
        scored = [m.per_case[i] for i in ids if i in m.per_case]
        if scored:
            values[name] = float(np.mean(scored))
    return {"n": len(ids), "metrics": values}


class Evaluator:
    """Evaluates configurations on eval cases.

    Args:
        embedder: local embedder for RAGAS semantic similarity (and answer relevancy with a judge).
        judge: judge LLM settings; ``None`` or no endpoint -> LLM metrics skipped with the reason.
        top_k: documents retrieved per case for the IR metrics (recall@10 needs 10).
        answer_top_k: passages handed to the generator and scored as the RAG contexts.
        slice_dimensions: slice dimensions to report (default: every dimension the cases carry).
        reference_texts: doc id -> text, the reference passages for non-LLM context recall (default: the case's
            reference answer).
        max_generation_cases: answer at most this many cases (``None``: all); the rest are scored on retrieval only.
        generation_budget_s: wall-clock budget for generating one configuration's answers (``None``: unbounded).
        generation_batch: answers per batch for generators with ``generate_many``.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        judge: JudgeSettings | None = None,
        top_k: int = 10,
        answer_top_k: int = 5,
        slice_dimensions: Sequence[str] | None = None,
        reference_texts: Mapping[str, str] | None = None,
        max_generation_cases: int | None = None,
        generation_budget_s: float | None = None,
        generation_batch: int = 8,
    ) -> None:
        self.embedder = embedder
        self.judge = judge
        self.top_k = top_k
        self.answer_top_k = answer_top_k
        self.slice_dimensions = slice_dimensions
        self.reference_texts = reference_texts or {}
        self.max_generation_cases = max_generation_cases
        self.generation_budget_s = generation_budget_s
        self.generation_batch = max(1, generation_batch)
        self._embeddings = PortEmbeddings(embedder)  # cache shared by every evaluation of this evaluator

    def evaluate(self, config: Configuration, cases: Sequence[EvalCase]) -> EvalResult:
        """Retrieve, generate and score every case. Raises ``InvalidInputError`` for an unusable eval set."""
        validate_cases(cases)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        retrievals = retrieve_cases(config.retriever, cases, top_k=self.top_k)
        timings["retrieve"] = time.perf_counter() - start
        metrics = ir_metrics(cases, {cid: r.doc_ids for cid, r in retrievals.items()})
        timings["ir"] = time.perf_counter() - start - timings["retrieve"]
        answers, generator_skip = self._generate(config.generator, cases, retrievals)
        timings["generate"] = time.perf_counter() - start - timings["retrieve"] - timings["ir"]
        ragas_start = time.perf_counter()
        samples = [self._sample(c, retrievals[c.id], answers.get(c.id)) for c in cases]
        metrics.update(compute_ragas(samples, embedder=self.embedder, judge=self.judge, embeddings=self._embeddings))
        timings["ragas"] = time.perf_counter() - ragas_start
        if generator_skip is not None:
            for name in ANSWER_METRICS:
                metrics[name] = MetricResult(name=name, value=None, skipped=generator_skip)
        case_slices = {c.id: dict(c.slices) for c in cases}
        slices, skipped = slice_metrics(metrics, case_slices, dimensions=self.slice_dimensions)
        logger.info("evaluated config=%s cases=%d seconds=%.2f", config.name, len(cases), time.perf_counter() - start)
        return EvalResult(
            name=config.name,
            versions=dict(config.versions),
            case_ids=[c.id for c in cases],
            case_slices=case_slices,
            metrics=metrics,
            slices=slices,
            skipped_slices=skipped,
            timings_s={k: round(v, 3) for k, v in timings.items()},
            answers=answers,
        )

    def compare(self, current: Configuration, candidate: Configuration, cases: Sequence[EvalCase]) -> Comparison:
        """Evaluate both configurations on the same cases."""
        return Comparison(self.evaluate(current, cases), self.evaluate(candidate, cases))

    def generation_cases(self, cases: Sequence[EvalCase]) -> list[EvalCase]:
        """The cases answered by generators: those with a reference answer, in id order, at most
        ``max_generation_cases`` (the same subset for every configuration of a comparison)."""
        usable = sorted((c for c in cases if c.reference_answer), key=lambda c: c.id)
        return usable if self.max_generation_cases is None else usable[: self.max_generation_cases]

    def _generate(
        self, generator: Generator | None, cases: Sequence[EvalCase], retrievals: Mapping[str, Retrieval]
    ) -> tuple[dict[str, str], str | None]:
        """Answers per case id, or a skip reason when there is no generator, it is down or the budget ran out."""
        if generator is None:
            return {}, "the configuration has no generator"
        todo = self.generation_cases(cases)
        if not todo:
            return {}, "no eval case has a reference answer"
        answers: dict[str, str] = {}
        deadline = None if self.generation_budget_s is None else time.monotonic() + self.generation_budget_s
        many = getattr(generator, "generate_many", None)
        step = self.generation_batch if callable(many) else 1
        try:
            for start in range(0, len(todo), step):
                if deadline is not None and time.monotonic() > deadline:
                    logger.warning("generation budget spent version=%s answered=%d", generator.version, len(answers))
                    return {}, (
                        f"generator {generator.version} ran past eval.generation_budget_s={self.generation_budget_s:g}"
                        f" after {len(answers)} of {len(todo)} answers"
                    )
                batch = todo[start : start + step]
                contexts = [retrievals[c.id].citations[: self.answer_top_k] for c in batch]
                if callable(many):
                    texts = [a.text for a in many([c.question for c in batch], contexts, batch_size=step)]
                else:
                    texts = [generator.generate(batch[0].question, contexts[0]).text]
                answers.update(zip((c.id for c in batch), texts, strict=True))
        except UpstreamUnavailableError as exc:
            logger.warning("generator unavailable version=%s", generator.version)
            return {}, f"generator {generator.version} is unavailable: {exc.message}"
        return answers, None

    def _sample(self, case: EvalCase, retrieval: Retrieval, answer: str | None) -> RagasSample:
        top = retrieval.citations[: self.answer_top_k]
        if case.relevant_chunk_ids:
            retrieved_ids, reference_ids = [c.chunk_id for c in top], list(case.relevant_chunk_ids)
        else:
            retrieved_ids, reference_ids = list(dict.fromkeys(c.doc_id for c in top)), list(case.relevant_doc_ids)
        references = [self.reference_texts[d] for d in case.relevant_doc_ids if d in self.reference_texts]
        if not references and case.reference_answer:
            references = [case.reference_answer]
        return RagasSample(
            case_id=case.id,
            question=case.question,
            retrieved_ids=retrieved_ids,
            reference_ids=reference_ids,
            retrieved_contexts=[c.text for c in top],
            reference_contexts=references,
            answer=answer,
            reference=case.reference_answer,
        )


def compare(
    current: Configuration,
    candidate: Configuration,
    cases: Sequence[EvalCase],
    *,
    embedder: Embedder,
    judge: JudgeSettings | None = None,
    top_k: int = 10,
) -> Comparison:
    """Convenience: ``Evaluator(embedder=..., judge=..., top_k=...).compare(current, candidate, cases)``."""
    return Evaluator(embedder=embedder, judge=judge, top_k=top_k).compare(current, candidate, cases)


__all__ = ["Comparison", "Configuration", "EvalResult", "Evaluator", "compare", "slice_metrics"]
