"""Text rendering of a cycle's or an evaluation's result for the CLI: current vs candidate per metric with the gate's
confidence interval and a verdict in words that match the sign, the gate's reasons, the guardrails and the report.

Input is the JSON result of a ``cycle`` or ``eval`` job (the same dict whether the job ran in this process or in a
service, so local and remote CLI backends print the same thing). Fits 80 columns for the headline metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_REASONS = 8


def verdict_words(row: Mapping[str, Any]) -> str:
    """The gate's decision on one metric in words that match the sign of its difference."""
    status, diff = row.get("status"), float(row.get("diff") or 0.0)
    if status == "unchecked":
        return "not checked"
    if status == "pass":
        if row.get("rule") == "superiority":
            return "improved"
        return "improved" if float(row.get("ci_low") or 0.0) > 0 else "held (in tolerance)"
    if row.get("rule") == "superiority":
        return "did not improve" if diff <= 0 else "gain not proven"
    return "regressed" if diff < 0 else "unproven, CI wide"


def _num(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def _ci(row: Mapping[str, Any] | None) -> str:
    if not row or row.get("ci_low") is None:
        return "—"
    return f"[{float(row['ci_low']):+.3f}, {float(row['ci_high']):+.3f}]"


def metrics_table(summary: Mapping[str, Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines of the current vs candidate table: every summarised metric, with the overall gate row where the gate
    checked it (CI of candidate − current and the verdict), else "not gated". 80 columns wide."""
    gated = {r["metric"]: r for r in rows if r.get("scope") == "overall" and r.get("metric")}
    names = list(dict.fromkeys([*summary, *gated]))
    lines = [f"{'metric':<19} {'current':>7} {'cand.':>7} {'diff':>7} {'CI':<16} verdict"]
    for name in names:
        values = summary.get(name, {})
        row = gated.get(name)
        cur = values.get("current", row.get("current") if row else None)
        cand = values.get("candidate", row.get("candidate") if row else None)
        diff = None if cur is None or cand is None else float(cand) - float(cur)
        words = verdict_words(row) if row else "not gated"
        shown = "—" if diff is None else f"{diff:+.4f}"
        lines.append(f"{name:<19} {_num(cur):>7} {_num(cand):>7} {shown:>7} {_ci(row):<16} {words}")
    return lines


def render_result(result: Mapping[str, Any]) -> str:
    """The whole text block for a ``cycle`` or ``eval`` job result (see the module docstring)."""
    lines: list[str] = []
    if "cycle_id" in result:
        decision = result.get("decision") or {}
        why = f" ({decision['reason']})" if decision.get("reason") else ""
        lines.append(f"cycle {result['cycle_id']}: {result.get('status')}{why}")
    gate = result.get("gate") or {}
    rows = gate.get("rows") or []
    confidence = next((r.get("confidence") for r in rows if r.get("confidence")), 0.95)
    if result.get("summary") or rows:
        lines.append(f"current vs candidate (CI: {int(confidence * 100)}% paired bootstrap of candidate − current)")
        lines.extend(metrics_table(result.get("summary") or {}, rows))
    if gate:
        lines.append(f"gate: {'PASSED' if gate.get('passed') else 'FAILED'}")
        reasons = list(gate.get("reasons") or [])
        lines.extend(f"  - {r}" for r in reasons[:MAX_REASONS])
        if len(reasons) > MAX_REASONS:
            lines.append(f"  ... {len(reasons) - MAX_REASONS} more in the report")
    for name, guard in (result.get("guardrails") or {}).items():
        state = "pass" if guard.get("passed") else "FAIL"
        lines.append(f"guardrail {name}: {state}" + (f" — {guard['reason']}" if guard.get("reason") else ""))
    if "report" in result:
        lines.append(f"report: {result.get('report') or 'none (the cycle did not reach its report step)'}")
    return "\n".join(lines)


__all__ = ["metrics_table", "render_result", "verdict_words"]
