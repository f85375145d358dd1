"""Schemas of the loop endpoints: jobs, cycles, lineage, admin (promote / rollback / canary / gate override)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobCreate(BaseModel):
    """``POST /v1/jobs``: which job, with optional parameters."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reindex", "cycle", "curate", "eval"]
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "cycle: {mode?: promote|canary|shadow, embedder?: {training setting: value}}; reindex: {source?}; "
            "eval: {candidate: cycle id or collection}; curate: none. Checked at submit time (422 / 404)."
        ),
    )


class JobPublic(BaseModel):
    """A job's state."""

    id: str
    kind: str
    status: str
    step: str | None = None
    progress: float = 0.0
    error: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    cancel_requested: bool = False
    heartbeat_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CycleSummary(BaseModel):
    """A cycle in lists."""

    id: str
    status: str
    reason: str | None = None
    job_id: str | None = None
    candidate_collection: str | None = None
    decision: dict[str, Any] | None = None
    created_at: datetime | None = None


class CyclePublic(CycleSummary):
    """A cycle with its steps, datasets, models, eval results, verdict and guardrails."""

    corpus: str
    steps: list[dict[str, Any]] = Field(default_factory=list)
    datasets: dict[str, Any] = Field(default_factory=dict)
    candidate_models: dict[str, Any] = Field(default_factory=dict)
    eval_results: dict[str, Any] | None = None
    gate_verdict: dict[str, Any] | None = None
    guardrails: dict[str, Any] | None = None
    report_path: str | None = None
    updated_at: datetime | None = None


class PromoteRequest(BaseModel):
    """``POST /v1/admin/promote``: a cycle id or collection (default: the running canary); force needs a reason."""

    model_config = ConfigDict(extra="forbid")

    candidate: str | None = Field(default=None, min_length=1, max_length=200)
    force: bool = False
    reason: str | None = Field(default=None, max_length=2000)


class RollbackRequest(BaseModel):
    """``POST /v1/admin/rollback``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="manual rollback", min_length=1, max_length=2000)


class CurateRequest(BaseModel):
    """``POST /v1/admin/curate``: every field optional (defaults: the settings')."""

    model_config = ConfigDict(extra="forbid")

    corpus: str | None = Field(default=None, min_length=1, max_length=63, description="default indexing.corpus")
    holdout_share: float | None = Field(default=None, gt=0.0, lt=1.0, description="default eval.holdout_share")
    seed: int | None = Field(default=None, description="hold-out hash seed; default training.seed")


class OverrideRequest(BaseModel):
    """``POST /v1/admin/cycles/{id}/override``: mark a failed gate verdict passed, with the reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class DeploymentPublic(BaseModel):
    """The active deployment."""

    id: str
    corpus: str
    status: str
    live_collection: str | None
    models: dict[str, Any]
    previous: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    cycle_id: str | None = None
    note: str | None = None
    created_at: datetime | None = None


class ModelVersionPublic(BaseModel):
    """A registered model version: its lifecycle status, what it was trained from, its config and training metrics.

    The users behind its datasets are not listed here (``GET /v1/lineage/model/{kind}:{version}`` answers that, for
    readers with access to lineage)."""

    kind: str
    version: str
    status: str = Field(description="candidate | active | retired")
    parent: str | None = Field(default=None, description="the version training started from (None: the base model)")
    dataset_version: str | None = Field(default=None, description="e.g. contrastive/v3")
    provenance_hash: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
