"""RAGAS metrics computed by ragas 0.4.3 itself, with local embeddings and an optional, explicit judge LLM.

Contract:
- Always computed (no LLM, nothing leaves the process): ID-based context precision and recall
  (``IDBasedContextPrecision`` / ``IDBasedContextRecall``: retrieved vs reference chunk ids when the case has chunk
  labels, else document ids), non-LLM context recall (``NonLLMContextRecall``, string similarity of retrieved vs
  reference passages), semantic similarity (``SemanticSimilarity`` over our own ``Embedder`` port, wrapped by
  :class:`PortEmbeddings`) and ROUGE-L (``RougeScore``).
- Faithfulness and answer relevancy only when a judge endpoint is configured (``JudgeSettings``): the OpenAI client is
  built here with that ``base_url`` and handed to ``ragas.llms.llm_factory`` — no metric ever builds a client of its
  own. No judge, a judge that does not answer, or a judge failing mid-run: those metrics are returned with
  ``skipped`` set to the reason; the rest are still computed.
- A metric whose inputs no case provides (e.g. no reference answers) is returned skipped with the reason.

Call ``core.runtime.ensure_offline()`` before importing this module's callers' heavy dependencies; it is called again
here before ragas is imported (idempotent) so that telemetry is off and tiktoken reads the bundled cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np

from core.ports import Embedder
from core.runtime import ensure_offline
from core.settings import JudgeSettings
from core.types import MetricResult

ensure_offline()

from ragas.embeddings.base import BaseRagasEmbedding  # noqa: E402

logger = logging.getLogger(__name__)

T = TypeVar("T")
NON_LLM_METRICS = (
    "context_precision_id",
    "context_recall_id",
    "context_recall_nonllm",
    "semantic_similarity",
    "rouge_l",
)
JUDGE_METRICS = ("faithfulness", "answer_relevancy")
RAGAS_METRIC_NAMES = (*NON_LLM_METRICS, *JUDGE_METRICS)


@dataclass(slots=True)
class RagasSample:
    """Inputs of one case; an empty answer / reference / reference_contexts disables the metrics using it."""

    case_id: str
    question: str
    retrieved_ids: list[str]
    reference_ids: list[str]
    retrieved_contexts: list[str] = field(default_factory=list)
    reference_contexts: list[str] = field(default_factory=list)
    answer: str | None = None
    reference: str | None = None


class PortEmbeddings(BaseRagasEmbedding):
    """A ragas embeddings object over our ``Embedder`` port (local model; never a cloud default).

    :meth:`prime` embeds many texts in one batch and caches them, so the per-text calls ragas makes are lookups.
    """

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(cache=None)
        self.embedder = embedder
        self._cache: dict[str, list[float]] = {}

    def prime(self, texts: Sequence[str]) -> None:
        """Batch-embed ``texts`` not yet cached."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            vectors = self.embedder.embed_documents(todo)
            self._cache.update({t: v.tolist() for t, v in zip(todo, vectors, strict=True)})

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        """Embedding of one text (cached)."""
        if text not in self._cache:
            self.prime([text])
        return self._cache[text]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        """Async form of :meth:`embed_text` (the model runs in-process)."""
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        """Embeddings of several texts in one batch."""
        self.prime(texts)
        return [self._cache[t] for t in texts]

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        """Async form of :meth:`embed_texts`."""
        return self.embed_texts(texts)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when the caller already runs an event loop (then in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _result(name: str, per_case: dict[str, float], *, missing_reason: str) -> MetricResult:
    """Build a MetricResult; NaN scores (ragas' "undefined") are dropped; nothing scored -> skipped."""
    kept = {cid: float(v) for cid, v in per_case.items() if v is not None and not math.isnan(float(v))}
    if not kept:
        return MetricResult(name=name, value=None, skipped=missing_reason)
    return MetricResult(name=name, value=float(np.mean(list(kept.values()))), per_case=kept)


async def _gather(jobs: dict[str, Awaitable[Any]]) -> dict[str, float]:
    values = await asyncio.gather(*jobs.values())
    return {cid: float(getattr(v, "value", v)) for cid, v in zip(jobs, values, strict=True)}


async def _id_and_string_metrics(samples: Sequence[RagasSample]) -> dict[str, MetricResult]:
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics._context_precision import IDBasedContextPrecision
    from ragas.metrics._context_recall import IDBasedContextRecall, NonLLMContextRecall

    precision, recall, nonllm = IDBasedContextPrecision(), IDBasedContextRecall(), NonLLMContextRecall()
    id_samples = {
        s.case_id: SingleTurnSample(
            retrieved_context_ids=cast("list[str | int]", s.retrieved_ids),
            reference_context_ids=cast("list[str | int]", s.reference_ids),
        )
        for s in samples
    }
    text_samples = {
        s.case_id: SingleTurnSample(retrieved_contexts=s.retrieved_contexts, reference_contexts=s.reference_contexts)
        for s in samples
        if s.retrieved_contexts and s.reference_contexts
    }
    p = await _gather({cid: precision.single_turn_ascore(x) for cid, x in id_samples.items()})
    # recall is undefined without reference ids (ragas would log a warning per case and return NaN): skip those
    r = await _gather({cid: recall.single_turn_ascore(x) for cid, x in id_samples.items() if x.reference_context_ids})
    n = await _gather({cid: nonllm.single_turn_ascore(x) for cid, x in text_samples.items()})
    return {
        "context_precision_id": _result("context_precision_id", p, missing_reason="no case retrieved any context"),
        "context_recall_id": _result("context_recall_id", r, missing_reason="no case has reference ids"),
        "context_recall_nonllm": _result(
            "context_recall_nonllm", n, missing_reason="no case has both retrieved and reference passage texts"
        ),
    }


async def _answer_metrics(samples: Sequence[RagasSample], embeddings: PortEmbeddings) -> dict[str, MetricResult]:
    from ragas.metrics.collections import RougeScore, SemanticSimilarity

    usable = [s for s in samples if s.answer and s.reference]
    embeddings.prime([t for s in usable for t in (s.answer or "", s.reference or "")])
    similarity = SemanticSimilarity(embeddings=embeddings)
    rouge = RougeScore(rouge_type="rougeL", mode="fmeasure")
    sim = await _gather(
        {s.case_id: similarity.ascore(reference=s.reference or "", response=s.answer or "") for s in usable}
    )
    rl = await _gather({s.case_id: rouge.ascore(reference=s.reference or "", response=s.answer or "") for s in usable})
    reason = "no case has both a generated answer and a reference answer"
    return {
        "semantic_similarity": _result("semantic_similarity", sim, missing_reason=reason),
        "rouge_l": _result("rouge_l", rl, missing_reason=reason),
    }


def compute_non_llm(
    samples: Sequence[RagasSample], *, embedder: Embedder, embeddings: PortEmbeddings | None = None
) -> dict[str, MetricResult]:
    """ID-based context precision/recall, non-LLM context recall, semantic similarity (local) and ROUGE-L.

    Pass a long-lived ``embeddings`` to reuse its cache across calls (e.g. the reference answers of a comparison).
    """
    wrapped = embeddings or PortEmbeddings(embedder)

    async def _all() -> dict[str, MetricResult]:
        out = await _id_and_string_metrics(samples)
        out.update(await _answer_metrics(samples, wrapped))
        return out

    results = run_coroutine(_all)
    logger.info("ragas non-llm metrics done cases=%d", len(samples))
    return results


def judge_unavailable_reason(judge: JudgeSettings | None) -> str | None:
    """Why the judge metrics cannot run with this configuration (``None`` when a judge is configured)."""
    if judge is None or not judge.endpoint:
        return "no judge endpoint configured (FLYWHEEL_JUDGE__ENDPOINT); LLM metrics need an OpenAI-compatible judge"
    if not judge.model:
        return "judge endpoint configured but judge.model is not set"
    return None


def _judge_client(judge: JudgeSettings) -> Any:
    """The one OpenAI client of this module: built explicitly with the judge's base_url, no retries."""
    from openai import AsyncOpenAI

    key = judge.api_key.get_secret_value() if judge.api_key else "no-key"
    return AsyncOpenAI(base_url=judge.endpoint, api_key=key, timeout=judge.timeout_s, max_retries=0)


def _skipped(reason: str) -> dict[str, MetricResult]:
    return {name: MetricResult(name=name, value=None, skipped=reason) for name in JUDGE_METRICS}


async def _judge_metric(name: str, jobs: dict[str, Awaitable[Any]]) -> MetricResult:
    """Gather one judge metric; any failed call skips the whole metric (a partial score would be biased)."""
    values = await asyncio.gather(*jobs.values(), return_exceptions=True)
    for cid, value in zip(jobs, values, strict=True):
        if isinstance(value, BaseException):
            logger.warning("judge metric failed metric=%s case=%s error=%s", name, cid, type(value).__name__)
            return MetricResult(name=name, value=None, skipped=f"judge failed on case {cid}: {type(value).__name__}")
    per_case = {cid: float(cast(Any, v).value) for cid, v in zip(jobs, values, strict=True)}
    return _result(name, per_case, missing_reason="the judge produced no score")


async def _judge_all(
    samples: Sequence[RagasSample], judge: JudgeSettings, embeddings: PortEmbeddings
) -> dict[str, MetricResult]:
    from openai import OpenAIError
    from ragas.llms import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, Faithfulness

    client = _judge_client(judge)
    try:
        await client.models.list()
    except OpenAIError as exc:  # connection refused, timeout, HTTP error: the judge is down -> skip, never crash
        logger.warning("judge unreachable error=%s", type(exc).__name__)
        await client.close()
        return _skipped(f"judge endpoint {judge.endpoint} is unreachable ({type(exc).__name__})")
    try:
        try:
            llm = llm_factory(str(judge.model), provider="openai", client=client)
        except ValueError as exc:
            return _skipped(f"judge LLM could not be built: {exc}")
        usable = [s for s in samples if s.answer and s.retrieved_contexts]
        if not usable:
            return _skipped("no case has a generated answer with retrieved contexts")
        faith, relevancy = Faithfulness(llm=llm), AnswerRelevancy(llm=llm, embeddings=embeddings)
        return {
            "faithfulness": await _judge_metric(
                "faithfulness",
                {
                    s.case_id: faith.ascore(
                        user_input=s.question, response=s.answer or "", retrieved_contexts=s.retrieved_contexts
                    )
                    for s in usable
                },
            ),
            "answer_relevancy": await _judge_metric(
                "answer_relevancy",
                {s.case_id: relevancy.ascore(user_input=s.question, response=s.answer or "") for s in usable},
            ),
        }
    finally:
        await client.close()


def compute_judge_metrics(
    samples: Sequence[RagasSample], *, judge: JudgeSettings | None, embeddings: PortEmbeddings
) -> dict[str, MetricResult]:
    """Faithfulness and answer relevancy through the configured judge, or both skipped with the reason."""
    reason = judge_unavailable_reason(judge)
    if reason is not None or judge is None:
        return _skipped(reason or "no judge")
    return run_coroutine(lambda: _judge_all(samples, judge, embeddings))


def compute_ragas(
    samples: Sequence[RagasSample],
    *,
    embedder: Embedder,
    judge: JudgeSettings | None = None,
    embeddings: PortEmbeddings | None = None,
) -> dict[str, MetricResult]:
    """Every RAGAS metric of this module; judge metrics skipped with the reason when no judge can be used."""
    wrapped = embeddings or PortEmbeddings(embedder)
    results = compute_non_llm(samples, embedder=embedder, embeddings=wrapped)
    results.update(compute_judge_metrics(samples, judge=judge, embeddings=wrapped))
    return results


__all__ = [
    "JUDGE_METRICS",
    "NON_LLM_METRICS",
    "RAGAS_METRIC_NAMES",
    "PortEmbeddings",
    "RagasSample",
    "compute_judge_metrics",
    "compute_non_llm",
    "compute_ragas",
    "judge_unavailable_reason",
    "run_coroutine",
]
