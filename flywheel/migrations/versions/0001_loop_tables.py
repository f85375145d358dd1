"""Loop tables: jobs, cycles, deployments, lineage.

Revision ID: fw0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fw0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four ``fw_*`` tables."""
    op.create_table(
        "fw_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fw_cycles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=True, index=True),
        sa.Column("corpus", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("candidate_models", sa.JSON, nullable=False),
        sa.Column("candidate_collection", sa.String(128), nullable=True),
        sa.Column("eval_results", sa.JSON, nullable=True),
        sa.Column("gate_verdict", sa.JSON, nullable=True),
        sa.Column("guardrails", sa.JSON, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.Column("report_path", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fw_deployments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("corpus", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("live_collection", sa.String(128), nullable=True),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("previous", sa.JSON, nullable=True),
        sa.Column("canary", sa.JSON, nullable=True),
        sa.Column("cycle_id", sa.String(36), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fw_lineage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("from_kind", sa.String(32), nullable=False),
        sa.Column("from_id", sa.String(200), nullable=False),
        sa.Column("to_kind", sa.String(32), nullable=False),
        sa.Column("to_id", sa.String(200), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("from_kind", "from_id", "to_kind", "to_id", name="uq_fw_lineage_edge"),
    )
    op.create_index("ix_fw_lineage_from", "fw_lineage", ["from_kind", "from_id"])
    op.create_index("ix_fw_lineage_to", "fw_lineage", ["to_kind", "to_id"])


def downgrade() -> None:
    """Drop the four ``fw_*`` tables."""
    for name in ("fw_lineage", "fw_deployments", "fw_cycles", "fw_jobs"):
        op.drop_table(name)
