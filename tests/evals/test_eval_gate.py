"""Regression gate: passes a clearly better candidate, blocks regressions (overall and per slice), never passes
silently on too few cases or missing metrics; admin override is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInputError
from core.settings import EvalSettings
from core.types import MetricResult
from evals.gate import RegressionGate, override, paired_bootstrap
from evals.runner import Comparison, EvalResult

pytestmark = pytest.mark.unit

SETTINGS = EvalSettings(min_slice_cases=20, bootstrap_samples=1000, tolerance=0.02, guarded_generation_metrics=[])
METRICS = ("mrr@10", "recall@5", "ndcg@10")


def _result(name: str, values: dict[str, np.ndarray], slices: list[dict[str, str]]) -> EvalResult:
    ids = [f"c{i}" for i in range(len(slices))]
    metrics = {
        m: MetricResult(m, float(v.mean()), per_case={cid: float(x) for cid, x in zip(ids, v, strict=True)})
        for m, v in values.items()
    }
    return EvalResult(name, {"embedder": name}, ids, dict(zip(ids, slices, strict=True)), metrics)


def _pair(current: dict[str, np.ndarray], candidate: dict[str, np.ndarray], n_a: int, n_b: int) -> Comparison:
    slices = [{"category": "a"}] * n_a + [{"category": "b"}] * n_b
    return Comparison(_result("current", current, slices), _result("candidate", candidate, slices))


def _base(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.uniform(0.3, 0.7, n) for m in METRICS}


def test_when_candidate_clearly_better_then_passes() -> None:
    cur = _base(120)
    cand = {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}
    verdict = RegressionGate(SETTINGS).check(_pair(cur, cand, 60, 60))
    assert verdict.passed, verdict.reasons
    overall = next(r for r in verdict.rows if r["scope"] == "overall" and r["metric"] == "mrr@10")
    assert overall["ci_low"] > 0 and overall["diff"] == pytest.approx(0.15, abs=0.01)
    assert {r["scope"] for r in verdict.rows} == {"overall", "category=a", "category=b"}


def test_when_primary_regresses_then_blocked() -> None:
    cur = _base(120)
    cand = {m: np.clip(v - 0.1, 0, 1) for m, v in cur.items()}
    verdict = RegressionGate(SETTINGS).check(_pair(cur, cand, 60, 60))
    assert not verdict.passed
    assert any("mrr@10 did not improve" in r for r in verdict.reasons)


def test_when_no_change_then_blocked_not_passed() -> None:
    cur = _base(100)
    verdict = RegressionGate(SETTINGS).check(_pair(cur, dict(cur), 50, 50))
    assert not verdict.passed
    assert any("did not improve" in r for r in verdict.reasons)


def test_when_guarded_slice_regresses_then_blocked_with_slice_reason() -> None:
    cur = _base(120)
    cand = {m: np.clip(v + 0.1, 0, 1) for m, v in cur.items()}
    cand["recall@5"] = cur["recall@5"].copy()
    cand["recall@5"][60:] -= 0.2  # slice b loses recall@5; overall primary still improves
    verdict = RegressionGate(SETTINGS).check(_pair(cur, cand, 60, 60))
    assert not verdict.passed
    failed = [r for r in verdict.rows if r["status"] == "fail"]
    assert {(r["scope"], r["metric"]) for r in failed} >= {("category=b", "recall@5")}
    assert any("category=b: recall@5 regressed" in r for r in verdict.reasons)


def test_when_small_slice_regresses_then_slice_skipped_not_judged() -> None:
    cur = _base(110)
    cand = {m: np.clip(v + 0.1, 0, 1) for m, v in cur.items()}
    cand["recall@5"][100:] = 0.0  # slice b has 10 < 20 cases
    verdict = RegressionGate(SETTINGS).check(_pair(cur, cand, 100, 10))
    skipped = [r for r in verdict.rows if r["status"] == "skipped"]
    assert [r["scope"] for r in skipped] == ["category=b"]
    assert "10 cases < min_slice_cases=20" in skipped[0]["reason"]


def test_when_too_few_cases_then_fails_with_reason() -> None:
    cur = _base(10)
    cand = {m: v + 0.3 for m, v in cur.items()}
    verdict = RegressionGate(SETTINGS).check(_pair(cur, cand, 10, 0))
    assert not verdict.passed
    assert verdict.reasons == ["too few paired eval cases for mrr@10, recall@5, ndcg@10: 10 < min_slice_cases=20"]


def test_when_primary_metric_skipped_then_fails_with_reason() -> None:
    cur = _base(50)
    comparison = _pair(cur, {m: v + 0.2 for m, v in cur.items()}, 50, 0)
    comparison.candidate.metrics["mrr@10"] = MetricResult("mrr@10", None, skipped="retriever down")
    verdict = RegressionGate(SETTINGS).check(comparison)
    assert not verdict.passed
    assert verdict.reasons == ["gate metric mrr@10 could not be checked (candidate: retriever down)"]


def test_when_same_inputs_and_seed_then_same_verdict() -> None:
    cur = _base(80)
    cand = {m: v + np.random.default_rng(3).normal(0.02, 0.1, 80) for m, v in cur.items()}
    a = RegressionGate(SETTINGS, seed=7).check(_pair(cur, cand, 40, 40))
    b = RegressionGate(SETTINGS, seed=7).check(_pair(cur, cand, 40, 40))
    assert a == b


def test_paired_bootstrap_ci_covers_true_shift() -> None:
    rng = np.random.default_rng(0)
    cur = rng.uniform(0, 1, (400, 2))
    cand = cur + np.array([0.05, -0.05]) + rng.normal(0, 0.05, (400, 2))
    stats = paired_bootstrap(cur, cand, samples=2000, confidence=0.95, rng=np.random.default_rng(1))
    assert stats[0, 1] < 0.05 < stats[0, 2] and stats[0, 1] > 0
    assert stats[1, 1] < -0.05 < stats[1, 2] and stats[1, 2] < 0


def test_when_override_then_new_verdict_records_admin_and_reason() -> None:
    cur = _base(30)
    blocked = RegressionGate(SETTINGS).check(_pair(cur, dict(cur), 30, 0))
    forced = override(blocked, admin="key-admin-1", reason="hotfix for outage INC-42")
    assert forced.passed and not blocked.passed
    assert (forced.overridden_by, forced.override_reason) == ("key-admin-1", "hotfix for outage INC-42")
    assert forced.reasons[-1].startswith("overridden by key-admin-1")
    with pytest.raises(InvalidInputError, match="reason"):
        override(blocked, admin="key-admin-1", reason="  ")


def test_when_comparison_round_trips_json_then_same_verdict() -> None:
    import json

    cur = _base(60)
    comparison = _pair(cur, {m: v + 0.1 for m, v in cur.items()}, 30, 30)
    again = Comparison.from_dict(json.loads(json.dumps(comparison.to_dict())))
    assert RegressionGate(SETTINGS).check(again) == RegressionGate(SETTINGS).check(comparison)


# ------------------------------------------------------------------------------------- answer (generation) metrics
GEN = EvalSettings(min_slice_cases=20, bootstrap_samples=1000, tolerance=0.02, generation_tolerance=0.03)


def _with_answers(comparison: Comparison, cur: np.ndarray, cand: np.ndarray, *, answered: int) -> Comparison:
    """Add semantic_similarity / rouge_l scored on the first ``answered`` cases (as with eval.max_generation_cases)."""
    for result, values in ((comparison.current, cur), (comparison.candidate, cand)):
        ids = result.case_ids[:answered]
        for name in ("semantic_similarity", "rouge_l"):
            per_case = {cid: float(x) for cid, x in zip(ids, values[:answered], strict=True)}
            result.metrics[name] = MetricResult(name, float(np.mean(list(per_case.values()))), per_case=per_case)
    return comparison


def test_when_answers_regress_then_generation_guard_fails_with_regressed() -> None:
    cur = _base(60)
    comparison = _pair(cur, {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}, 60, 0)
    answers = np.random.default_rng(1).uniform(0.5, 0.9, 60)
    verdict = RegressionGate(GEN).check(_with_answers(comparison, answers, answers - 0.1, answered=40))
    assert not verdict.passed
    assert any(r.startswith("overall: semantic_similarity regressed: diff -0.1000") for r in verdict.reasons)
    rows = {(r["scope"], r.get("metric")): r for r in verdict.rows}
    assert rows[("overall", "rouge_l")]["n"] == 40 and rows[("overall", "mrr@10")]["n"] == 60
    assert rows[("overall", "rouge_l")]["threshold"] == -0.03


def test_when_answers_hold_then_passes_with_generation_rows() -> None:
    cur = _base(60)
    comparison = _pair(cur, {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}, 60, 0)
    answers = np.random.default_rng(1).uniform(0.5, 0.9, 60)
    verdict = RegressionGate(GEN).check(_with_answers(comparison, answers, answers + 0.01, answered=30))
    assert verdict.passed, verdict.reasons
    assert {r.get("metric") for r in verdict.rows if r["scope"] == "overall"} >= {"semantic_similarity", "rouge_l"}


def test_when_positive_diff_fails_non_inferiority_then_words_match_the_sign() -> None:
    cur = _base(40)
    comparison = _pair(cur, {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}, 40, 0)
    rng = np.random.default_rng(2)
    answers = rng.uniform(0.0, 1.0, 40)
    noisy = np.clip(answers + rng.normal(0.01, 0.5, 40), 0, 1)  # small gain, huge spread: CI straddles -tolerance
    verdict = RegressionGate(GEN).check(_with_answers(comparison, answers, noisy, answered=40))
    row = next(r for r in verdict.rows if r.get("metric") == "semantic_similarity" and r["scope"] == "overall")
    assert row["status"] == "fail" and row["diff"] > 0
    assert "could not be shown non-inferior" in row["reason"] and "regressed" not in row["reason"]


def test_when_generation_metric_not_computed_then_gate_names_it_and_fails() -> None:
    cur = _base(40)
    comparison = _pair(cur, {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}, 40, 0)
    why = "generator openai:m is unavailable: LLM endpoint unavailable after 1 attempts"
    for result in (comparison.current, comparison.candidate):
        result.metrics["semantic_similarity"] = MetricResult("semantic_similarity", None, skipped=why)
        result.metrics["rouge_l"] = MetricResult("rouge_l", None, skipped=why)
    verdict = RegressionGate(GEN).check(comparison)
    assert not verdict.passed
    assert f"gate metric semantic_similarity could not be checked (current: {why}; candidate: {why})" in verdict.reasons
    allowed = GEN.model_copy(update={"allow_unchecked": ["semantic_similarity", "rouge_l"]})
    lenient = RegressionGate(allowed).check(comparison)
    assert lenient.passed, lenient.reasons
    assert [r["metric"] for r in lenient.rows if r["status"] == "unchecked"] == ["semantic_similarity", "rouge_l"]
    assert "not checked (eval.allow_unchecked): semantic_similarity, rouge_l" in lenient.reasons[0]


def test_when_primary_in_allow_unchecked_then_still_required() -> None:
    cur = _base(40)
    comparison = _pair(cur, {m: v + 0.2 for m, v in cur.items()}, 40, 0)
    comparison.current.metrics["mrr@10"] = MetricResult("mrr@10", None, skipped="down")
    settings = SETTINGS.model_copy(update={"allow_unchecked": ["mrr@10"]})
    assert not RegressionGate(settings).check(comparison).passed


def test_when_too_few_answered_cases_then_fails_unless_allowed_unchecked() -> None:
    cur = _base(60)
    comparison = _pair(cur, {m: np.clip(v + 0.15, 0, 1) for m, v in cur.items()}, 60, 0)
    answers = np.random.default_rng(1).uniform(0.5, 0.9, 60)
    comparison = _with_answers(comparison, answers, answers, answered=5)
    strict = RegressionGate(GEN).check(comparison)
    assert not strict.passed
    assert "too few paired eval cases for semantic_similarity, rouge_l: 5 < min_slice_cases=20" in strict.reasons
    allowed = GEN.model_copy(update={"allow_unchecked": ["semantic_similarity", "rouge_l"]})
    lenient = RegressionGate(allowed).check(comparison)
    assert lenient.passed, lenient.reasons
    assert {r["metric"] for r in lenient.rows if r["status"] == "unchecked"} == {"semantic_similarity", "rouge_l"}
