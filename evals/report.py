"""Per-cycle HTML report: one self-contained file with matplotlib PNGs embedded as base64.

Contract: :func:`render_report` writes ``path`` (parents created) and returns it. Sections: versions, gate verdict
with reasons, metric table (current vs candidate), metric trends across cycles, candidate − current per slice with
the gate's bootstrap CIs as error bars, feedback volume by kind, guardrail results. Every input is optional except
the cycle id: a missing input renders an explicit "not available" note, never a crash. Plots are drawn on
``matplotlib.figure.Figure`` with the Agg canvas directly (no pyplot, no global backend switch). All text is
HTML-escaped; the report holds metrics, ids and counts only.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.types import GateVerdict, utcnow
from evals.guardrails import GuardrailResult
from evals.runner import Comparison

logger = logging.getLogger(__name__)

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{margin-bottom:0}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;font-size:14px}th{background:#f3f3f3}.pass{color:#137333;font-weight:bold}
.fail{color:#b3261e;font-weight:bold}.skipped{color:#777}.note{color:#777;font-style:italic}img{max-width:100%}"""


def _figure(width: float = 8.0, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Any) -> str:
    """``<img>`` tag with the figure as a base64 PNG (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def trend_plot(history: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str | None:
    """Line plot of ``metrics`` across cycles; ``history`` rows are ``{"cycle": id, "metrics": {name: value}}``."""
    if not any(h.get("metrics", {}).get(name) is not None for h in history for name in metrics):
        return None
    fig = _figure()
    ax = fig.add_subplot()
    labels = [str(h.get("cycle", i)) for i, h in enumerate(history)]
    for name in metrics:
        ys = [h.get("metrics", {}).get(name) for h in history]
        if any(y is not None for y in ys):
            ax.plot(labels, [float("nan") if y is None else y for y in ys], marker="o", label=name)
    ax.set_xlabel("cycle")
    ax.set_ylabel("value (held-out)")
    ax.set_title("Metric trends across cycles")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def slice_plot(rows: Sequence[Mapping[str, Any]], metric: str, *, tolerance: float) -> str | None:
    """Horizontal error bars of candidate − current for ``metric`` per scope (overall + slices), CI from the gate."""
    use = [r for r in rows if r.get("metric") == metric and r.get("status") in ("pass", "fail")]
    if not use:
        return None
    fig = _figure(8.0, max(2.5, 0.45 * len(use) + 1.2))
    ax = fig.add_subplot()
    ys = list(range(len(use)))[::-1]
    diffs = [r["diff"] for r in use]
    err = [[r["diff"] - r["ci_low"] for r in use], [r["ci_high"] - r["diff"] for r in use]]
    colors = ["#137333" if r["status"] == "pass" else "#b3261e" for r in use]
    for y, d, lo, hi, c in zip(ys, diffs, err[0], err[1], colors, strict=True):
        ax.errorbar(d, y, xerr=[[lo], [hi]], fmt="o", color=c, capsize=4)
    ax.axvline(0.0, color="#444", lw=1)
    ax.axvline(-tolerance, color="#b3261e", lw=1, ls="--", label=f"−tolerance ({tolerance:g})")
    ax.set_yticks(ys, [f"{r['scope']} (n={r['n']})" for r in use], fontsize=8)
    ax.set_xlabel(f"candidate − current, {metric} (bootstrap CI)")
    ax.set_title(f"Candidate vs current per slice: {metric}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def slice_bars(comparison: Comparison, metric: str) -> str | None:
    """Grouped bars of current vs candidate ``metric`` per slice value."""
    cur, cand = comparison.current.slices, comparison.candidate.slices
    labels, a, b = [], [], []
    for dim in sorted(cur):
        for value, entry in sorted(cur[dim].items()):
            other = cand.get(dim, {}).get(value, {}).get("metrics", {})
            if metric in entry["metrics"] and metric in other:
                labels.append(f"{dim}={value}")
                a.append(entry["metrics"][metric])
                b.append(other[metric])
    if not labels:
        return None
    fig = _figure(max(6.0, 0.35 * len(labels) + 3), 4.2)
    ax = fig.add_subplot()
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], a, width=0.4, label="current")
    ax.bar([x + 0.2 for x in xs], b, width=0.4, label="candidate")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per slice")
    ax.legend(fontsize=8)
    return _png(fig)


def feedback_plot(counts: Mapping[str, int]) -> str | None:
    """Bar chart of feedback volume by kind."""
    items = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1])
    if not items:
        return None
    fig = _figure(7.0, 3.5)
    ax = fig.add_subplot()
    ax.bar([k for k, _ in items], [v for _, v in items], color="#5470c6")
    ax.set_ylabel("events")
    ax.set_title("Feedback by kind behind this cycle's datasets")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    return _png(fig)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, raw_cols: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if i in raw_cols else _e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _status(passed: bool | None, text: str | None = None) -> str:
    cls = "skipped" if passed is None else "pass" if passed else "fail"
    return f'<span class="{cls}">{_e(text or cls.upper())}</span>'


def _metrics_section(comparison: Comparison | None) -> str:
    if comparison is None:
        return '<p class="note">No evaluation results for this cycle.</p>'
    rows = []
    for name, cur in comparison.current.metrics.items():
        cand = comparison.candidate.metrics.get(name)
        diff = None if cand is None or cand.value is None or cur.value is None else cand.value - cur.value
        skipped = cur.skipped or (cand.skipped if cand else "not computed for the candidate")
        rows.append([name, _fmt(cur.value), _fmt(cand.value if cand else None), _fmt(diff), skipped or ""])
    return _table(["metric", "current", "candidate", "diff", "skipped (reason)"], rows)


def _gate_section(verdict: GateVerdict | None) -> str:
    if verdict is None:
        return '<p class="note">The gate has not run for this cycle.</p>'
    head = _status(verdict.passed, "PASSED" if verdict.passed else "BLOCKED")
    if verdict.overridden_by:
        head += f" — overridden by {_e(verdict.overridden_by)}: {_e(verdict.override_reason)}"
    reasons = "".join(f"<li>{_e(r)}</li>" for r in verdict.reasons)
    rows = [_gate_row(r) for r in verdict.rows]
    table = _table(["scope", "metric", "n", "diff", "CI low", "CI high", "rule", "status"], rows, raw_cols=(7,))
    return f"<p>{head}</p><ul>{reasons}</ul>{table}"


def _gate_row(r: Mapping[str, Any]) -> list[Any]:
    passed = None if r["status"] in ("skipped", "unchecked") else r["status"] == "pass"
    cells = [r.get("scope"), r.get("metric", ""), r.get("n"), _fmt(r.get("diff")), _fmt(r.get("ci_low"))]
    return [*cells, _fmt(r.get("ci_high")), r.get("rule", ""), _status(passed, r["status"].upper())]


def _guardrail_section(results: Sequence[GuardrailResult]) -> str:
    if not results:
        return '<p class="note">No guardrail results for this cycle.</p>'
    rows = [[r.name, _status(r.passed), r.reason, _details(r.details)] for r in results]
    return _table(["guardrail", "status", "reason", "details"], rows, raw_cols=(1,))


def _details(details: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items() if not isinstance(v, list | dict) or v)


def _versions_section(comparison: Comparison | None, extra: Mapping[str, Any] | None) -> str:
    rows: list[list[Any]] = []
    if comparison is not None:
        for side in (comparison.current, comparison.candidate):
            rows.extend([side.name, k, v] for k, v in sorted(side.versions.items()))
    rows.extend(["cycle", k, v] for k, v in sorted((extra or {}).items()))
    return _table(["arm", "component", "version"], rows) if rows else '<p class="note">No versions recorded.</p>'


def _generation_section(
    comparison: Comparison | None,
    rows: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    tolerance: float,
) -> str:
    """Answer metrics of both arms (with the number of answered cases), their trend, and per-slice CIs."""
    if comparison is None:
        return '<p class="note">No evaluation results for this cycle.</p>'
    table = []
    for name in metrics:
        cur, cand = comparison.current.metrics.get(name), comparison.candidate.metrics.get(name)
        values = [m.value if m else None for m in (cur, cand)]
        diff = None if None in values else values[1] - values[0]  # type: ignore[operator]
        answered = len(cand.per_case) if cand and cand.value is not None else 0
        why = (cur.skipped if cur else "not computed") or (cand.skipped if cand else "not computed") or ""
        table.append([name, _fmt(values[0]), _fmt(values[1]), _fmt(diff), answered, why])
    versions = [f"{side.name}: {side.versions.get('generator', '—')}" for side in (comparison.current,
                                                                                   comparison.candidate)]
    head = f'<p class="note">generators — {_e("; ".join(versions))}</p>'
    out = head + _table(["metric", "current", "candidate", "diff", "answered cases", "skipped (reason)"], table)
    out += _img(trend_plot(history, metrics), "No cycle history yet.")
    for name in metrics:
        out += _img(slice_plot(rows, name, tolerance=tolerance), f"No gate CI rows for {name}.")
    return out


def _img(tag: str | None, missing: str) -> str:
    return tag if tag else f'<p class="note">{_e(missing)}</p>'


def render_report(
    path: Path,
    *,
    cycle_id: str,
    comparison: Comparison | None = None,
    verdict: GateVerdict | None = None,
    guardrails: Sequence[GuardrailResult] = (),
    history: Sequence[Mapping[str, Any]] = (),
    feedback_counts: Mapping[str, int] | None = None,
    versions: Mapping[str, Any] | None = None,
    primary_metric: str = "mrr@10",
    trend_metrics: Sequence[str] = ("mrr@10", "ndcg@10", "recall@5", "recall@1"),
    tolerance: float = 0.02,
    generation_metrics: Sequence[str] = ("semantic_similarity", "rouge_l"),
    generation_tolerance: float = 0.03,
) -> Path:
    """Write the cycle's self-contained HTML report to ``path`` and return it.

    ``history``: earlier cycles (and this one) as ``{"cycle": id, "metrics": {name: value}}``, oldest first.
    ``feedback_counts``: feedback kind -> events this cycle. ``versions``: extra cycle-level versions.
    ``generation_metrics``: the answer metrics of the generation panels (table, trend, per-slice CIs).
    """
    rows = verdict.rows if verdict else []
    sections = [
        ("Versions", _versions_section(comparison, versions)),
        ("Gate verdict", _gate_section(verdict)),
        ("Metrics: current vs candidate", _metrics_section(comparison)),
        ("Metric trends", _img(trend_plot(history, trend_metrics), "No cycle history yet.")),
        ("Candidate vs current per slice", _img(slice_plot(rows, primary_metric, tolerance=tolerance),
                                                 "No gate CI rows to plot.")
         + (_img(slice_bars(comparison, primary_metric), "") if comparison else "")),
        ("Generation: each arm's answers vs the reference answers",
         _generation_section(comparison, rows, history, generation_metrics, tolerance=generation_tolerance)),
        ("Feedback volume by kind", _img(feedback_plot(feedback_counts or {}), "No feedback this cycle.")),
        ("Guardrails", _guardrail_section(guardrails)),
    ]  # fmt: skip
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections)
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cycle {_e(cycle_id)} report</title>'
        f"<style>{_CSS}</style></head><body><h1>rag-flywheel cycle {_e(cycle_id)}</h1>"
        f'<p class="note">generated {_e(utcnow().isoformat(timespec="seconds"))}</p>{body}</body></html>'
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    logger.info("report written cycle=%s bytes=%d", cycle_id, len(doc))
    return path


__all__ = ["feedback_plot", "render_report", "slice_bars", "slice_plot", "trend_plot"]
