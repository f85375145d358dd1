"""flywheel.render: the cycle / eval result as a current vs candidate table whose verdict words match the sign."""

from __future__ import annotations

import pytest

from flywheel.render import render_result, verdict_words

pytestmark = pytest.mark.unit


def _row(metric: str, diff: float, low: float, high: float, *, status: str, rule: str = "non-inferiority") -> dict:
    return {"scope": "overall", "metric": metric, "n": 40, "current": 0.5, "candidate": 0.5 + diff, "diff": diff,
            "ci_low": low, "ci_high": high, "rule": rule, "confidence": 0.95, "status": status}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (_row("mrr@10", 0.03, 0.01, 0.05, status="pass", rule="superiority"), "improved"),
        (_row("mrr@10", 0.03, -0.01, 0.07, status="fail", rule="superiority"), "gain not proven"),
        (_row("mrr@10", -0.01, -0.03, 0.01, status="fail", rule="superiority"), "did not improve"),
        (_row("ndcg@10", 0.0302, -0.04, 0.10, status="fail"), "unproven, CI wide"),
        (_row("ndcg@10", -0.05, -0.08, -0.02, status="fail"), "regressed"),
        (_row("rouge_l", 0.001, -0.01, 0.012, status="pass"), "held (in tolerance)"),
        ({"scope": "overall", "metric": "faithfulness", "status": "unchecked"}, "not checked"),
    ],
)
def test_when_row_then_words_match_the_sign(row: dict, words: str) -> None:
    assert verdict_words(row) == words


def test_cycle_result_renders_table_ci_verdict_guardrails_and_report() -> None:
    result = {
        "cycle_id": "c1", "status": "rejected", "decision": {"action": "rejected", "reason": "gate failed"},
        "summary": {"mrr@10": {"current": 0.68, "candidate": 0.71}, "recall@1": {"current": 0.5, "candidate": 0.55},
                    "semantic_similarity": {"current": 0.61, "candidate": 0.6}},
        "gate": {"passed": False, "reasons": ["overall: ndcg@10 could not be shown non-inferior (CI too wide): ..."],
                 "rows": [_row("mrr@10", 0.03, 0.01, 0.05, status="pass", rule="superiority"),
                          _row("ndcg@10", 0.0302, -0.04, 0.10, status="fail"),
                          _row("semantic_similarity", -0.01, -0.02, 0.0, status="pass")]},
        "guardrails": {"memorisation_probe": {"passed": False, "reason": "leak rate 50.0% (3/6 canaries completed)"}},
        "report": "/data/reports/cycle-c1.html",
    }  # fmt: skip
    text = render_result(result)
    lines = text.splitlines()
    assert lines[0] == "cycle c1: rejected (gate failed)"
    assert "95% paired bootstrap" in lines[1]
    mrr = next(line for line in lines if line.startswith("mrr@10"))
    assert "0.6800" in mrr and "0.7100" in mrr and "+0.0300" in mrr and "[+0.010, +0.050]" in mrr
    assert mrr.endswith("improved")
    ndcg = next(line for line in lines if line.startswith("ndcg@10"))
    assert "unproven, CI wide" in ndcg and "regressed" not in ndcg
    assert next(line for line in lines if line.startswith("recall@1")).endswith("not gated")
    assert next(line for line in lines if line.startswith("semantic_similarity")).endswith("held (in tolerance)")
    assert "gate: FAILED" in lines and "guardrail memorisation_probe: FAIL — leak rate 50.0%" in text
    assert lines[-1] == "report: /data/reports/cycle-c1.html"
    assert max(len(line) for line in lines if line.startswith(("metric", "mrr", "ndcg", "recall"))) <= 80
    assert "{" not in text  # no Python reprs
