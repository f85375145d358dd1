"""The statistical regression gate: paired bootstrap CIs of (candidate − current), overall and per slice.

Contract: the candidate passes only if
1. the primary metric (``EvalSettings.primary_metric``, default ``mrr@10``) improves overall: the lower bound of the
   CI of the mean paired difference is > 0 (superiority), and
2. no guarded metric overall, and neither the primary nor a guarded metric in any slice with at least
   ``min_slice_cases`` paired cases, regresses beyond ``tolerance``: CI lower bound > −tolerance (non-inferiority).
Never a silently passing gate: fewer than ``min_slice_cases`` paired cases overall, a primary or guarded metric that
was skipped or is missing, or no common cases -> fail, with the reason. Slices below ``min_slice_cases`` are listed as
skipped rows. The bootstrap is seeded and vectorised (one resampling matrix per scope, shared by its metrics).
An admin may :func:`override` a verdict; the override is recorded on a new verdict, never by mutation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.errors import InvalidInputError
from core.settings import EvalSettings
from core.types import GateVerdict, MetricResult
from evals.runner import Comparison, EvalResult

logger = logging.getLogger(__name__)


def paired_bootstrap(
    current: np.ndarray, candidate: np.ndarray, *, samples: int, confidence: float, rng: np.random.Generator
) -> np.ndarray:
    """Mean paired difference and its percentile CI for each column.

    ``current`` / ``candidate``: ``(n_cases, n_metrics)`` aligned arrays. Returns ``(n_metrics, 3)``:
    ``[mean_diff, ci_low, ci_high]``. Each resample draws one row of case indices shared by all columns (paired
    across metrics too); resamples are drawn in blocks to bound memory.
    """
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(current, dtype=np.float64)
    n = diff.shape[0]
    block = max(1, 2_000_000 // max(1, n * diff.shape[1]))  # bound memory: ~16 MB of resampled values per block
    means = np.concatenate(
        [
            diff[rng.integers(0, n, size=(min(block, samples - start), n))].mean(axis=1)
            for start in range(0, samples, block)
        ]
    )  # (samples, n_metrics)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return np.stack([diff.mean(axis=0), low, high], axis=1)


class RegressionGate:
    """Decides whether a candidate may replace the current configuration.

    Args:
        settings: primary / guarded metrics, tolerance, min cases, bootstrap samples and confidence.
        seed: seed of the bootstrap resampling (same inputs + seed -> same verdict).
    """

    def __init__(self, settings: EvalSettings, *, seed: int = 0) -> None:
        self.settings = settings
        self.seed = seed

    @property
    def metrics(self) -> list[str]:
        """Primary metric first, then the guarded metrics (deduplicated)."""
        return list(dict.fromkeys([self.settings.primary_metric, *self.settings.guarded_metrics]))

    def check(self, comparison: Comparison) -> GateVerdict:
        """Verdict for a :class:`Comparison` (see the module docstring for the rules)."""
        return self.check_results(comparison.current, comparison.candidate)

    def check_results(self, current: EvalResult, candidate: EvalResult) -> GateVerdict:
        """Verdict for two :class:`EvalResult`s of the same eval set."""
        reasons: list[str] = []
        arrays = self._paired_arrays(current.metrics, candidate.metrics, reasons)
        if arrays is None:
            return self._verdict(False, reasons, [])
        case_ids, cur, cand = arrays
        s = self.settings
        if len(case_ids) < s.min_slice_cases:
            reasons.append(f"too few paired eval cases: {len(case_ids)} < min_slice_cases={s.min_slice_cases}")
            return self._verdict(False, reasons, [])
        rng = np.random.default_rng(self.seed)
        rows = self._scope_rows("overall", case_ids, cur, cand, rng, primary_superiority=True)
        position = {cid: i for i, cid in enumerate(case_ids)}
        for scope, ids in _slice_groups(current.case_slices, case_ids):
            if len(ids) < s.min_slice_cases:
                rows.append(_skipped_row(scope, len(ids), s.min_slice_cases))
                continue
            pos = [position[i] for i in ids]
            rows.extend(self._scope_rows(scope, ids, cur[pos], cand[pos], rng, primary_superiority=False))
        reasons.extend(r["reason"] for r in rows if r["status"] == "fail")
        passed = not reasons
        if passed:
            primary = rows[0]
            reasons.append(
                f"{primary['metric']} improved by {primary['diff']:+.4f} "
                f"(CI [{primary['ci_low']:+.4f}, {primary['ci_high']:+.4f}]) with no guarded regression"
            )
        return self._verdict(passed, reasons, rows)

    def _paired_arrays(
        self, current: Mapping[str, MetricResult], candidate: Mapping[str, MetricResult], reasons: list[str]
    ) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """Aligned ``(n_cases, n_metrics)`` arrays over the cases both sides scored for every gate metric."""
        for name in self.metrics:
            for side, results in (("current", current), ("candidate", candidate)):
                m = results.get(name)
                if m is None or m.value is None:
                    why = "not computed" if m is None else f"skipped: {m.skipped}"
                    reasons.append(f"gate metric {name} unavailable for {side} ({why})")
        if reasons:
            return None
        common = set.intersection(*(set(r[n].per_case) for r in (current, candidate) for n in self.metrics))
        if not common:
            reasons.append("no eval case was scored on every gate metric for both current and candidate")
            return None
        case_ids = sorted(common)
        cur = np.array([[current[n].per_case[c] for n in self.metrics] for c in case_ids])
        cand = np.array([[candidate[n].per_case[c] for n in self.metrics] for c in case_ids])
        return case_ids, cur, cand

    def _scope_rows(
        self,
        scope: str,
        ids: Sequence[str],
        cur: np.ndarray,
        cand: np.ndarray,
        rng: np.random.Generator,
        *,
        primary_superiority: bool,
    ) -> list[dict[str, Any]]:
        s = self.settings
        stats = paired_bootstrap(cur, cand, samples=s.bootstrap_samples, confidence=s.confidence, rng=rng)
        rows = []
        for j, name in enumerate(self.metrics):
            superiority = primary_superiority and j == 0
            threshold = 0.0 if superiority else -s.tolerance
            diff, low, high = (float(x) for x in stats[j])
            ok = low > threshold
            rule = "superiority" if superiority else "non-inferiority"
            reason = (
                f"{scope}: {name} {'did not improve' if superiority else 'regressed'}: "
                f"diff {diff:+.4f}, {int(s.confidence * 100)}% CI [{low:+.4f}, {high:+.4f}], "
                f"needs lower bound > {threshold:+.4f} ({rule}, n={len(ids)})"
            )
            rows.append(
                {
                    "scope": scope,
                    "metric": name,
                    "n": len(ids),
                    "current": float(cur[:, j].mean()),
                    "candidate": float(cand[:, j].mean()),
                    "diff": diff,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "rule": rule,
                    "threshold": threshold,
                    "status": "pass" if ok else "fail",
                    "reason": "" if ok else reason,
                }
            )
        return rows

    def _verdict(self, passed: bool, reasons: list[str], rows: list[dict[str, Any]]) -> GateVerdict:
        logger.info("gate verdict passed=%s reasons=%d rows=%d seed=%d", passed, len(reasons), len(rows), self.seed)
        return GateVerdict(passed=passed, reasons=reasons, rows=rows)


def _slice_groups(case_slices: Mapping[str, Mapping[str, str]], case_ids: Sequence[str]) -> list[tuple[str, list]]:
    """``("dim=value", [case ids])`` for every slice value among the paired cases, sorted."""
    groups: dict[str, list[str]] = {}
    for cid in case_ids:
        for dim, value in sorted(case_slices.get(cid, {}).items()):
            groups.setdefault(f"{dim}={value}", []).append(cid)
    return sorted(groups.items())


def _skipped_row(scope: str, n: int, need: int) -> dict[str, Any]:
    return {"scope": scope, "n": n, "status": "skipped", "reason": f"{scope}: {n} cases < min_slice_cases={need}"}


def override(verdict: GateVerdict, *, admin: str, reason: str) -> GateVerdict:
    """A copy of ``verdict`` marked passed by ``admin`` for ``reason`` (both required and recorded).

    Raises ``InvalidInputError`` when the admin id or the reason is empty.
    """
    if not admin.strip():
        raise InvalidInputError("an override needs the admin's id", field="admin")
    if not reason.strip():
        raise InvalidInputError("an override needs a stated reason", field="reason")
    logger.warning("gate overridden admin=%s was_passed=%s", admin, verdict.passed)
    return dataclasses.replace(
        verdict,
        passed=True,
        reasons=[*verdict.reasons, f"overridden by {admin}: {reason.strip()}"],
        overridden_by=admin,
        override_reason=reason.strip(),
    )


def verdict_to_dict(verdict: GateVerdict) -> dict[str, Any]:
    """JSON-ready dict of a verdict."""
    return dataclasses.asdict(verdict)


__all__ = ["RegressionGate", "override", "paired_bootstrap", "verdict_to_dict"]
