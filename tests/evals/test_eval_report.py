"""The per-cycle HTML report: one self-contained file with embedded PNG plots, escaped text, explicit gaps."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from core.settings import EvalSettings
from core.types import MetricResult
from evals.gate import RegressionGate
from evals.guardrails import GuardrailResult
from evals.report import render_report
from evals.runner import Comparison, EvalResult

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _comparison(n: int = 60) -> Comparison:
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(n)]
    slices = {cid: {"category": "billing" if i % 2 else "permits"} for i, cid in enumerate(ids)}

    def result(name: str, shift: float) -> EvalResult:
        metrics = {}
        for m in ("mrr@10", "recall@5", "ndcg@10"):
            per_case = {cid: float(np.clip(rng.uniform(0.3, 0.8) + shift, 0, 1)) for cid in ids}
            metrics[m] = MetricResult(m, float(np.mean(list(per_case.values()))), per_case=per_case)
        metrics["faithfulness"] = MetricResult("faithfulness", None, skipped="no judge endpoint configured")
        from evals.runner import slice_metrics

        sliced, _ = slice_metrics(metrics, slices)
        return EvalResult(name, {"embedder": f"emb-{name}", "index": "faq__v3"}, ids, slices, metrics, sliced)

    return Comparison(result("current", 0.0), result("candidate", 0.1))


def test_report_renders_self_contained_html_with_plots(tmp_path: Path) -> None:
    comparison = _comparison()
    verdict = RegressionGate(EvalSettings(min_slice_cases=20, bootstrap_samples=300)).check(comparison)
    path = render_report(
        tmp_path / "reports" / "cycle-7.html",
        cycle_id="cycle-7",
        comparison=comparison,
        verdict=verdict,
        guardrails=[
            GuardrailResult("training_set_pii", True, "no residual PII in 120 rows", {"rows_scanned": 120}),
            GuardrailResult("blocklist", False, "2 of 60 answers hit the blocklist <script>", {"offending_count": 2}),
        ],
        history=[{"cycle": f"cycle-{i}", "metrics": {"mrr@10": 0.6 + 0.02 * i, "recall@5": 0.8}} for i in range(1, 8)],
        feedback_counts={"thumbs": 120, "relevance": 45, "correction": 9, "stars": 0},
        versions={"dataset": "contrastive/v4"},
    )
    html = path.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="plot" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', html)
    assert len(images) == 4  # trends, slice CIs, slice bars, feedback volume
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "PASSED" in html or "BLOCKED" in html
    assert "emb-candidate" in html and "contrastive/v4" in html and "no judge endpoint configured" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # text is escaped
    assert "http" not in html.replace("http-equiv", "")  # self-contained: no external resources


def test_report_with_nothing_but_cycle_id_says_what_is_missing(tmp_path: Path) -> None:
    html = render_report(tmp_path / "r.html", cycle_id="c1").read_text(encoding="utf-8")
    assert "The gate has not run" in html and "No evaluation results" in html and "No cycle history" in html
    assert "data:image/png" not in html


def test_generation_panels_show_both_arms_answers_trend_and_per_slice_cis(tmp_path: Path) -> None:
    comparison = _comparison()
    rng = np.random.default_rng(1)
    for side, shift in ((comparison.current, 0.0), (comparison.candidate, 0.01)):
        for m in ("semantic_similarity", "rouge_l"):
            per_case = {cid: float(np.clip(rng.uniform(0.4, 0.8) + shift, 0, 1)) for cid in side.case_ids[:40]}
            side.metrics[m] = MetricResult(m, float(np.mean(list(per_case.values()))), per_case=per_case)
        side.versions["generator"] = f"gen-{side.name}"
    verdict = RegressionGate(EvalSettings(min_slice_cases=10, bootstrap_samples=300)).check(comparison)
    history = [{"cycle": f"c{i}", "metrics": {"semantic_similarity": 0.6 + 0.01 * i, "rouge_l": 0.3}} for i in range(3)]
    html = render_report(tmp_path / "r.html", cycle_id="c", comparison=comparison, verdict=verdict,
                         history=history).read_text(encoding="utf-8")  # fmt: skip
    section = html.split("Generation: each arm")[1].split("<h2>")[0]
    assert "gen-current" in section and "gen-candidate" in section and "answered cases" in section
    assert re.search(r"<td>semantic_similarity</td><td>0\.\d{4}</td><td>0\.\d{4}</td><td>[+-]?0\.\d{4}</td><td>40</td>",
                     section)  # fmt: skip
    assert len(re.findall(r'<img alt="plot"', section)) == 3  # the trend + one per-slice CI plot per answer metric
