"""The loop's tables (``fw_*``): jobs, cycles, deployments, lineage edges. Shared by the store and migrations."""

from __future__ import annotations

import enum

import sqlalchemy as sa

metadata = sa.MetaData()

VERSION_TABLE = "alembic_version_flywheel"


class JobStatus(enum.StrEnum):
    """Lifecycle of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)

jobs_table = sa.Table(
    "fw_jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("step", sa.String(64), nullable=True),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

cycles_table = sa.Table(
    "fw_cycles",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("job_id", sa.String(36), nullable=True, index=True),
    sa.Column("corpus", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("steps", sa.JSON, nullable=False, default=list),
    sa.Column("datasets", sa.JSON, nullable=False, default=dict),
    sa.Column("candidate_models", sa.JSON, nullable=False, default=dict),
    sa.Column("candidate_collection", sa.String(128), nullable=True),
    sa.Column("eval_results", sa.JSON, nullable=True),
    sa.Column("gate_verdict", sa.JSON, nullable=True),
    sa.Column("guardrails", sa.JSON, nullable=True),
    sa.Column("decision", sa.JSON, nullable=True),
    sa.Column("report_path", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

deployments_table = sa.Table(
    "fw_deployments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("corpus", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("live_collection", sa.String(128), nullable=True),
    sa.Column("models", sa.JSON, nullable=False, default=dict),
    sa.Column("previous", sa.JSON, nullable=True),
    sa.Column("canary", sa.JSON, nullable=True),
    sa.Column("cycle_id", sa.String(36), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

lineage_table = sa.Table(
    "fw_lineage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("from_kind", sa.String(32), nullable=False),
    sa.Column("from_id", sa.String(200), nullable=False),
    sa.Column("to_kind", sa.String(32), nullable=False),
    sa.Column("to_id", sa.String(200), nullable=False),
    sa.Column("relation", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("from_kind", "from_id", "to_kind", "to_id", name="uq_fw_lineage_edge"),
    sa.Index("ix_fw_lineage_from", "from_kind", "from_id"),
    sa.Index("ix_fw_lineage_to", "to_kind", "to_id"),
)
