"""The cycle's gate, guardrails and report: the regression gate's verdict on a comparison, the guardrails that can
veto it (residual PII in every training set, provenance of every row, the memorisation probe of a tuned generator
adapter), and the HTML report.

The memorisation probe rebuilds the canaries planted in the adapter's SFT rows from the seed its version recorded
(:func:`flywheel.training.plant_canaries`) and prompts the candidate generator with each prefix; a leak above
``training.max_leak_rate`` fails the guardrail, and so the cycle. Results carry leak rates and canary ids, never the
canary text.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.datasets import DatasetRepository
from core.ports import FeedbackStore, Generator, PiiScrubber, ProvenanceLedger
from core.settings import Settings
from core.types import DatasetKind, GateVerdict, ModelKind
from flywheel.cycle_state import CycleState, DatasetInfo

if TYPE_CHECKING:
    from core.types import ModelVersion
    from evals.guardrails import GuardrailResult
    from evals.runner import Comparison
    from flywheel.state import CycleRecord, StateStore

logger = logging.getLogger(__name__)

GENERATION_TREND = ("semantic_similarity", "rouge_l")


def verdict(settings: Settings, comparison: Comparison, guardrails: Sequence[GuardrailResult]) -> GateVerdict:
    """The regression gate's verdict, failed (with the reason) by any failed guardrail."""
    from evals.gate import RegressionGate

    result = RegressionGate(settings.eval, seed=settings.training.seed).check(comparison)
    failed = [r for r in guardrails if not r.passed]
    if failed:
        reasons = [*result.reasons, *(f"guardrail {r.name}: {r.reason}" for r in failed)]
        result = dataclasses.replace(result, passed=False, reasons=reasons)
    return result


def dataset_guardrails(
    *, repo: DatasetRepository, scrubber: PiiScrubber, ledger: object, datasets: Mapping[str, DatasetInfo]
) -> list[GuardrailResult]:
    """Residual-PII scan of the user-written text of the training sets the cycle trains on and the provenance check
    of their rows. Contrastive: the queries (positives and negatives are knowledge-base passages, whose names and
    places are content, not leaked user data); SFT: the queries and the target answers (curated corrections), never
    the planted canaries (they are added at training time, not stored)."""
    from evals.guardrails import check_provenance, scan_pii

    results: list[GuardrailResult] = []
    checks = ((DatasetKind.CONTRASTIVE, "training_set_pii", "provenance"),
              (DatasetKind.SFT, "sft_set_pii", "sft_provenance"))  # fmt: skip
    for kind, pii_name, provenance_name in checks:
        info = datasets.get(kind.value)
        if info is None:
            continue
        rows = repo.read(kind, info.version)
        texts = {f"row-{i}": _user_text(kind, row) for i, row in enumerate(rows)}
        results.append(scan_pii(texts, scrubber, name=pii_name))
        if isinstance(ledger, ProvenanceLedger):
            results.append(check_provenance(rows, ledger, name=provenance_name))
    return results


def _user_text(kind: DatasetKind, row: Any) -> list[str]:
    return [row.query] if kind is DatasetKind.CONTRASTIVE else [row.query, row.target]


def probe_adapter(generator: Generator, version: ModelVersion, *, max_leak_rate: float) -> GuardrailResult:
    """Memorisation probe of a tuned adapter: its planted canaries (rebuilt from the seed in its metrics) prompted
    to ``generator`` (the candidate arm's, carrying that adapter). An adapter without a canary record fails: it was
    not trained by :data:`flywheel.training.GENERATOR_ADAPTER` and cannot be vouched for."""
    from evals.guardrails import GuardrailResult, make_canaries, memorisation_probe

    seed, count = version.metrics.get("canary_seed"), version.metrics.get("canaries")
    if seed is None or not count:
        reason = f"generator adapter {version.version} records no planted canaries: it cannot be probed"
        return GuardrailResult("memorisation_probe", False, reason, {"generator_version": version.version})
    return memorisation_probe(generator, make_canaries(int(count), seed=int(seed)), max_leak_rate=max_leak_rate)


def cycle_guardrails(
    state: CycleState, *, repo: DatasetRepository, scrubber: PiiScrubber, ledger: object, settings: Settings,
    candidate_generator: Generator | None,
) -> list[GuardrailResult]:  # fmt: skip
    """Every guardrail of a cycle: the dataset checks of what it trains on plus the probe of a tuned adapter."""
    trained_on = {
        kind: info for kind, info in state.curated.datasets.items()
        if any(p.kind.dataset.value == kind for p in state.plan.ready.values())
    }  # fmt: skip
    results = dataset_guardrails(repo=repo, scrubber=scrubber, ledger=ledger, datasets=trained_on)
    adapter = state.trained.get(ModelKind.GENERATOR_ADAPTER)
    if adapter is not None:
        if candidate_generator is None:
            from evals.guardrails import GuardrailResult

            results.append(GuardrailResult("memorisation_probe", False, "the candidate arm has no generator to probe"))
        else:
            results.append(probe_adapter(candidate_generator, adapter, max_leak_rate=settings.training.max_leak_rate))
    return results


# ------------------------------------------------------------------------------------------------------ report
def write_report(
    state: CycleState, cycle: CycleRecord, *, settings: Settings, states: StateStore, feedback: FeedbackStore,
    repo: DatasetRepository, since: datetime | None,
) -> Path:  # fmt: skip
    """Render the cycle's HTML report under ``settings.reports_dir``: retrieval and answer metrics, their trends,
    per-slice CIs, the feedback behind the cycle's datasets, the guardrails."""
    from evals.report import render_report

    history = []
    for past in reversed(states.list_cycles(limit=50)):
        cand = ((past.eval_results or {}).get("candidate") or {}).get("metrics") or {}
        values = {name: m.get("value") for name, m in cand.items() if isinstance(m, dict)}
        if values:
            history.append({"cycle": past.id[:8], "metrics": values})
    path = settings.reports_dir / f"cycle-{cycle.id}.html"
    return render_report(
        path, cycle_id=cycle.id, comparison=state.comparison, verdict=state.verdict, guardrails=state.guardrails,
        history=history, feedback_counts=feedback_counts(feedback, repo, state.curated.datasets, since=since),
        versions={"collection": cycle.candidate_collection, **(cycle.candidate_models or {})},
        primary_metric=settings.eval.primary_metric, tolerance=settings.eval.tolerance,
        generation_metrics=settings.eval.guarded_generation_metrics or GENERATION_TREND,
        generation_tolerance=settings.eval.generation_tolerance,
    )  # fmt: skip


def feedback_counts(
    feedback: FeedbackStore, repo: DatasetRepository, datasets: Mapping[str, DatasetInfo], *,
    since: datetime | None = None,
) -> dict[str, int]:  # fmt: skip
    """Feedback events by kind behind the cycle's curated datasets (what its provenance check counts); with no
    datasets, the events since ``since`` (all when ``None``)."""
    wanted: set[str] = set()
    for kind, info in datasets.items():
        wanted.update(repo.manifest(DatasetKind(kind), info.version).event_ids)
    events = feedback.list_events(since=None if wanted else since, limit=1_000_000)
    return dict(Counter(str(e.kind) for e in events if not wanted or e.id in wanted))


def previous_cycle_time(states: StateStore, cycle: CycleRecord) -> datetime | None:
    """When the cycle before ``cycle`` started (``None`` for the first)."""
    started = cycle.created_at
    if started is None:
        return None
    earlier = [p for p in states.list_cycles(limit=50) if p.created_at and p.created_at < started]
    return earlier[0].created_at if earlier else None


__all__ = [
    "cycle_guardrails",
    "dataset_guardrails",
    "feedback_counts",
    "previous_cycle_time",
    "probe_adapter",
    "verdict",
    "write_report",
]
