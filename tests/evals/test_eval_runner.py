"""Runner + RAGAS with the real MiniLM embedder on the small FAQ: metrics, skips with reasons, slices, JSON."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from eval_fakes import DownGenerator, ReversedRetriever

from core.errors import InvalidInputError
from core.settings import EvalSettings, JudgeSettings
from core.types import EvalCase
from evals.gate import RegressionGate
from evals.ragas_metrics import JUDGE_METRICS, NON_LLM_METRICS, RagasSample, compute_ragas
from evals.runner import Comparison, Configuration, EvalResult, Evaluator

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ragas_metrics_on_five_cases_with_local_embeddings(embedder, caplog) -> None:  # type: ignore[no-untyped-def]
    samples = [
        RagasSample("a", "How do I pay?", ["d1", "d2"], ["d1"], ["You pay by card online.", "Opening hours."],
                    ["You pay by card online."], "You pay by card online.", "You pay by card online."),
        RagasSample("b", "Where is the office?", ["d3"], ["d1"], ["Our Madrid office."], ["Head office in Zaragoza."],
                    "It is in Madrid.", "The head office is in Zaragoza."),
        RagasSample("c", "Permit?", ["d5", "d4"], ["d4"], ["Unrelated text.", "A permit is needed for extensions."],
                    ["A permit is needed for extensions."], "A permit is needed.", "You need a permit for extensions."),
        RagasSample("d", "Cost?", ["d9"], ["d8"], [], [], None, None),
        RagasSample("e", "Unlabelled?", ["d9"], [], [], [], None, None),
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="ragas"):
        results = compute_ragas(samples, embedder=embedder, judge=None)
    assert "No reference context IDs" not in caplog.text  # a case without references is left out, not warned about
    assert set(results) == {*NON_LLM_METRICS, *JUDGE_METRICS}
    assert results["context_precision_id"].per_case == {"a": 0.5, "b": 0.0, "c": 0.5, "d": 0.0, "e": 0.0}
    assert results["context_recall_id"].per_case == {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0}
    assert (
        results["context_recall_nonllm"].per_case["a"] == 1.0 and "d" not in results["context_recall_nonllm"].per_case
    )
    sim = results["semantic_similarity"].per_case
    assert sim["a"] == pytest.approx(1.0, abs=1e-5) and sim["b"] < sim["c"] < 1.0
    assert results["rouge_l"].per_case["a"] == pytest.approx(1.0) and results["rouge_l"].per_case["b"] < 0.5
    for name in JUDGE_METRICS:
        assert results[name].value is None and "no judge endpoint configured" in (results[name].skipped or "")


def test_when_judge_down_then_llm_metrics_skipped_and_rest_computed(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = JudgeSettings(endpoint=f"http://127.0.0.1:{_closed_port()}/v1", model="judge", timeout_s=3)
    sample = RagasSample("a", "q?", ["d1"], ["d1"], ["text"], ["text"], "answer", "answer")
    results = compute_ragas([sample], embedder=embedder, judge=judge)
    assert results["faithfulness"].skipped and "unreachable" in results["faithfulness"].skipped
    assert results["answer_relevancy"].skipped and "unreachable" in results["answer_relevancy"].skipped
    assert results["rouge_l"].value == pytest.approx(1.0) and results["context_recall_id"].value == 1.0


def test_evaluate_configuration_end_to_end(embedder, faq_retriever, faq_cases, lead_generator) -> None:  # type: ignore[no-untyped-def]
    evaluator = Evaluator(embedder=embedder, slice_dimensions=["category", "tenant"])
    config = Configuration("current", faq_retriever, lead_generator, {"embedder": "base", "generator": "lead-v1"})
    result = evaluator.evaluate(config, faq_cases)
    for name in ("mrr@10", "recall@5", "ndcg@10", *NON_LLM_METRICS):
        assert result.metrics[name].value is not None, name
        assert len(result.metrics[name].per_case) == len(faq_cases), name
    assert result.metrics["faithfulness"].skipped
    assert set(result.slices["category"]) == {c.slices["category"] for c in faq_cases}
    assert sum(e["n"] for e in result.slices["category"].values()) == len(faq_cases)
    assert result.skipped_slices == [{"slice": "tenant", "reason": "no eval case carries slice dimension 'tenant'"}]
    assert len(result.answers) == len(faq_cases)
    payload = json.loads(json.dumps(result.to_dict()))
    assert "answers" not in payload and payload["versions"]["generator"] == "lead-v1"
    assert EvalResult.from_dict(payload).metrics["mrr@10"] == result.metrics["mrr@10"]


def test_when_generator_down_or_absent_then_answer_metrics_skipped(evaluator, faq_retriever, faq_cases) -> None:  # type: ignore[no-untyped-def]
    down = evaluator.evaluate(Configuration("down", faq_retriever, DownGenerator()), faq_cases[:5])
    assert "openai-down is unavailable" in (down.metrics["rouge_l"].skipped or "")
    assert down.metrics["mrr@10"].value is not None and down.metrics["context_recall_id"].value is not None
    absent = evaluator.evaluate(Configuration("none", faq_retriever), faq_cases[:5])
    assert absent.metrics["semantic_similarity"].skipped == "the configuration has no generator"


def test_when_eval_set_unlabelled_then_invalid_input(embedder, faq_retriever) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="no relevance labels"):
        Evaluator(embedder=embedder).evaluate(
            Configuration("c", faq_retriever), [EvalCase(id="x", question="q", relevant_doc_ids=[])]
        )


def test_compare_and_gate_on_faq(evaluator, faq_retriever, faq_cases, lead_generator) -> None:  # type: ignore[no-untyped-def]
    faq_cases = faq_cases[:24]  # 20 in one category, 4 in another (below min_slice_cases: skipped)
    good = Configuration("good", faq_retriever, lead_generator, {"embedder": "good"})
    bad = Configuration("bad", ReversedRetriever(faq_retriever), lead_generator, {"embedder": "bad"})
    gate = RegressionGate(EvalSettings(min_slice_cases=10, bootstrap_samples=500))
    good_result, bad_result = evaluator.evaluate(good, faq_cases), evaluator.evaluate(bad, faq_cases)
    improved = gate.check(Comparison(bad_result, good_result))
    regressed = gate.check(Comparison(good_result, bad_result))
    assert improved.passed, improved.reasons
    assert not regressed.passed and any("mrr@10 did not improve" in r for r in regressed.reasons)
    stored = Comparison.from_dict(json.loads(json.dumps(Comparison(good_result, bad_result).to_dict())))
    assert stored.candidate.versions == {"embedder": "bad"}
    assert gate.check(stored) == regressed
    assert [r["scope"] for r in regressed.rows if r["status"] == "skipped"] == ["category=attefallshus-friggebod"]


# ------------------------------------------------------------------------------ bounded generation, slow endpoints
class _SilentServer:
    """A TCP endpoint that accepts connections and never answers: a hung OpenAI-compatible server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def close(self) -> None:
        self.sock.close()


class _CountingGenerator:
    """Lead-sentence answers, counting the questions it was asked (batched through ``generate_many``)."""

    version = "counting"

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.asked, self.batches = inner, [], 0

    def generate(self, question, passages):  # type: ignore[no-untyped-def]
        self.asked.append(question)
        return self.inner.generate(question, passages)

    def generate_many(self, questions, passages, *, batch_size=8):  # type: ignore[no-untyped-def]
        self.batches += 1
        return [self.generate(q, p) for q, p in zip(questions, passages, strict=True)]


def test_when_max_generation_cases_then_same_subset_answered_in_batches(
    embedder, faq_retriever, faq_cases, lead_generator  # type: ignore[no-untyped-def]
) -> None:
    gen = _CountingGenerator(lead_generator)
    evaluator = Evaluator(embedder=embedder, max_generation_cases=7, generation_batch=3)
    result = evaluator.evaluate(Configuration("c", faq_retriever, gen), faq_cases)
    expected = sorted(c.id for c in faq_cases if c.reference_answer)[:7]
    assert sorted(result.answers) == expected and gen.batches == 3
    assert sorted(result.metrics["rouge_l"].per_case) == expected
    assert len(result.metrics["mrr@10"].per_case) == len(faq_cases)  # retrieval still scored on every case


@pytest.mark.parametrize("endpoint", ["down", "hung"])
def test_when_openai_generator_down_or_hung_then_answer_metrics_skipped_quickly(
    embedder, faq_retriever, faq_cases, endpoint  # type: ignore[no-untyped-def]
) -> None:
    import time

    from retrieval.generators.openai_compat import OpenAICompatGenerator

    server = _SilentServer()
    url = server.url if endpoint == "hung" else f"http://127.0.0.1:{_closed_port()}/v1"
    gen = OpenAICompatGenerator(url, "m", timeout_s=0.5, retries=1, backoff_s=0.05)
    started = time.perf_counter()
    try:
        result = Evaluator(embedder=embedder).evaluate(Configuration("c", faq_retriever, gen), faq_cases[:10])
    finally:
        gen.close()
        server.close()
    assert time.perf_counter() - started < 20  # one failed request (with its retry) ends generation
    for name in ("semantic_similarity", "rouge_l"):
        assert "openai:m is unavailable" in (result.metrics[name].skipped or ""), result.metrics[name]
    assert result.metrics["mrr@10"].value is not None


def test_when_generator_slower_than_budget_then_skipped_with_reason(
    embedder, faq_retriever, faq_cases, lead_generator  # type: ignore[no-untyped-def]
) -> None:
    import time

    class Slow:
        version = "slow"

        def generate(self, question, passages):  # type: ignore[no-untyped-def]
            time.sleep(0.2)
            return lead_generator.generate(question, passages)

    started = time.perf_counter()
    result = Evaluator(embedder=embedder, generation_budget_s=0.5).evaluate(
        Configuration("c", faq_retriever, Slow()), faq_cases
    )
    assert time.perf_counter() - started < 15
    assert "ran past eval.generation_budget_s=0.5" in (result.metrics["rouge_l"].skipped or "")
