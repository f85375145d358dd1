"""The statistical regression gate: paired bootstrap CIs of (candidate − current), overall and per slice.

Contract: the candidate passes only if
1. the primary metric (``EvalSettings.primary_metric``, default ``mrr@10``) improves overall: the lower bound of the
   CI of the mean paired difference is > 0 (superiority), and
2. no guarded metric overall, and neither the primary nor a guarded metric in any slice with at least
   ``min_slice_cases`` paired cases, regresses beyond ``tolerance``: CI lower bound > −tolerance (non-inferiority).
Guarded answer metrics (``guarded_generation_metrics``: semantic similarity, ROUGE-L by default) follow rule 2 with
``generation_tolerance``, paired over the cases that were answered; each group of metrics scored on the same cases is
bootstrapped on its own. Never a silently passing gate: fewer than ``min_slice_cases`` paired cases for a group, or a
gate metric that was skipped or is missing (a judge or generator endpoint down or slow) -> fail, with the reason,
unless ``allow_unchecked`` names that (non-primary) metric: then it is an ``unchecked`` row and the verdict says so.
Slices below ``min_slice_cases`` are listed as skipped rows. Failure reasons use words that match the sign of the
difference ("regressed" only for a negative one). The bootstrap is seeded and vectorised.
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
        """Primary metric first, then the guarded retrieval and answer metrics (deduplicated)."""
        s = self.settings
        return list(dict.fromkeys([s.primary_metric, *s.guarded_metrics, *s.guarded_generation_metrics]))

    def tolerance(self, metric: str) -> float:
        """Non-inferiority margin of ``metric``: ``generation_tolerance`` for guarded answer metrics."""
        s = self.settings
        generation = metric in s.guarded_generation_metrics and metric not in s.guarded_metrics
        return s.generation_tolerance if generation else s.tolerance

    def check(self, comparison: Comparison) -> GateVerdict:
        """Verdict for a :class:`Comparison` (see the module docstring for the rules)."""
        return self.check_results(comparison.current, comparison.candidate)

    def check_results(self, current: EvalResult, candidate: EvalResult) -> GateVerdict:
        """Verdict for two :class:`EvalResult`s of the same eval set.

        Metrics are paired over the cases both sides scored for them: the IR metrics over every case, the answer
        metrics over the cases that were answered (``eval.max_generation_cases``), each group bootstrapped apart.
        """
        reasons: list[str] = []
        rows: list[dict[str, Any]] = []
        checkable = self._checkable(current.metrics, candidate.metrics, reasons, rows)
        primary = self.settings.primary_metric
        if primary not in checkable:
            return self._verdict(False, reasons, rows)
        rng = np.random.default_rng(self.seed)
        for names, case_ids in _case_groups(checkable, current.metrics, candidate.metrics):
            self._check_group(names, case_ids, current, candidate, rng, reasons, rows)
        reasons.extend(r["reason"] for r in rows if r["status"] == "fail")
        passed = not reasons
        if passed:
            head = next(r for r in rows if r["status"] == "pass")  # the primary's overall row comes first
            unchecked = [r["metric"] for r in rows if r["status"] == "unchecked"]
            reasons.append(
                f"{head['metric']} improved by {head['diff']:+.4f} "
                f"(CI [{head['ci_low']:+.4f}, {head['ci_high']:+.4f}]) with no guarded regression"
                + (f"; not checked (eval.allow_unchecked): {', '.join(unchecked)}" if unchecked else "")
            )
        return self._verdict(passed, reasons, rows)

    def _checkable(
        self,
        current: Mapping[str, MetricResult],
        candidate: Mapping[str, MetricResult],
        reasons: list[str],
        rows: list[dict[str, Any]],
    ) -> list[str]:
        """Gate metrics computed on both sides; the others fail the gate, or become ``unchecked`` rows when
        ``eval.allow_unchecked`` names them (never the primary metric)."""
        out = []
        for name in self.metrics:
            why = [
                f"{side}: {'not computed' if m is None else m.skipped}"
                for side, m in (("current", current.get(name)), ("candidate", candidate.get(name)))
                if m is None or m.value is None
            ]
            if not why:
                out.append(name)
                continue
            text = f"gate metric {name} could not be checked ({'; '.join(why)})"
            if name in self.settings.allow_unchecked and name != self.settings.primary_metric:
                rows.append({"scope": "overall", "metric": name, "status": "unchecked", "reason": text})
            else:
                reasons.append(text)
        return out

    def _check_group(
        self,
        names: list[str],
        case_ids: list[str],
        current: EvalResult,
        candidate: EvalResult,
        rng: np.random.Generator,
        reasons: list[str],
        rows: list[dict[str, Any]],
    ) -> None:
        """Overall and per-slice rows of metrics scored on the same ``case_ids``."""
        s = self.settings
        if len(case_ids) < s.min_slice_cases:
            need, listed = s.min_slice_cases, ", ".join(names)
            text = f"too few paired eval cases for {listed}: {len(case_ids)} < min_slice_cases={need}"
            if s.primary_metric not in names and set(names) <= set(s.allow_unchecked):
                rows.extend({"scope": "overall", "metric": n, "status": "unchecked", "reason": text} for n in names)
            else:
                reasons.append(text)
            return
        cur = np.array([[current.metrics[n].per_case[c] for n in names] for c in case_ids])
        cand = np.array([[candidate.metrics[n].per_case[c] for n in names] for c in case_ids])
        primary = names[0] == s.primary_metric
        rows.extend(self._scope_rows("overall", names, case_ids, cur, cand, rng, primary_superiority=primary))
        position = {cid: i for i, cid in enumerate(case_ids)}
        for scope, ids in _slice_groups(current.case_slices, case_ids):
            if len(ids) < s.min_slice_cases:
                rows.append(_skipped_row(scope, len(ids), s.min_slice_cases) | {"metrics": names})
                continue
            pos = [position[i] for i in ids]
            rows.extend(self._scope_rows(scope, names, ids, cur[pos], cand[pos], rng, primary_superiority=False))

    def _scope_rows(
        self,
        scope: str,
        names: Sequence[str],
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
        for j, name in enumerate(names):
            superiority = primary_superiority and j == 0
            threshold = 0.0 if superiority else -self.tolerance(name)
            diff, low, high = (float(x) for x in stats[j])
            ok = low > threshold
            rule = "superiority" if superiority else "non-inferiority"
            reason = (
                f"{scope}: {name} {_failure_words(diff, superiority=superiority)}: "
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
                    "confidence": s.confidence,
                    "threshold": threshold,
                    "status": "pass" if ok else "fail",
                    "reason": "" if ok else reason,
                }
            )
        return rows

    def _verdict(self, passed: bool, reasons: list[str], rows: list[dict[str, Any]]) -> GateVerdict:
        logger.info("gate verdict passed=%s reasons=%d rows=%d seed=%d", passed, len(reasons), len(rows), self.seed)
        return GateVerdict(passed=passed, reasons=reasons, rows=rows)


def _failure_words(diff: float, *, superiority: bool) -> str:
    """Words for a failed rule that match the sign of the difference."""
    if superiority:
        return "did not improve" if diff <= 0 else "improved, but not significantly"
    return "regressed" if diff < 0 else "could not be shown non-inferior (CI too wide)"


def _case_groups(
    names: Sequence[str], current: Mapping[str, MetricResult], candidate: Mapping[str, MetricResult]
) -> list[tuple[list[str], list[str]]]:
    """Metrics grouped by the cases both sides scored (order of ``names`` kept: the primary's group first)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in names:
        ids = tuple(sorted(set(current[name].per_case) & set(candidate[name].per_case)))
        groups.setdefault(ids, []).append(name)
    return [(metrics, list(ids)) for ids, metrics in groups.items()]


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
