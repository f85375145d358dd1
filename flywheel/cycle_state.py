"""The typed state a cycle passes from step to step: curated datasets by kind, the training plan, the trained
versions, the candidate, the eval cases, the comparison, the verdict and the guardrail results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.types import EvalCase, GateVerdict, ModelKind

if TYPE_CHECKING:
    from core.types import ModelVersion
    from evals.guardrails import GuardrailResult
    from evals.runner import Comparison
    from flywheel.deploy import Candidate
    from flywheel.training import Prepared


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """One curated dataset version: its number, rows and distinct (pseudonymous) users."""

    version: int
    rows: int
    users: int

    def to_dict(self) -> dict[str, int]:
        """JSON form (as stored on the cycle row)."""
        return {"version": self.version, "rows": self.rows, "users": self.users}


@dataclass(slots=True)
class Curated:
    """What curation wrote: dataset versions by kind (``contrastive``, ``sft`` ...) and its report."""

    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def rows(self, kind: str) -> int:
        """Rows of the dataset of ``kind`` (0 when none was written)."""
        info = self.datasets.get(kind)
        return info.rows if info else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{kind: {version, rows, users}, "_report": {...}}``."""
        return {**{k: v.to_dict() for k, v in self.datasets.items()}, "_report": self.report}


@dataclass(slots=True)
class TrainingPlan:
    """What the train step will do, decided before any model loads: kinds ready to train, kinds left out (why)."""

    ready: dict[ModelKind, Prepared] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CycleState:
    """Everything one running cycle has produced so far."""

    curated: Curated = field(default_factory=Curated)
    plan: TrainingPlan = field(default_factory=TrainingPlan)
    eval_cases: list[EvalCase] = field(default_factory=list)
    trained: dict[ModelKind, ModelVersion] = field(default_factory=dict)
    candidate: Candidate | None = None
    comparison: Comparison | None = None
    verdict: GateVerdict | None = None
    guardrails: list[GuardrailResult] = field(default_factory=list)


__all__ = ["Curated", "CycleState", "DatasetInfo", "TrainingPlan"]
