"""Feedback store: queries, events, users, API keys, dataset/model usage, corrections.

Revision ID: fb0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fb0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=False)  # naive UTC (feedback.store.models.UtcDateTime)


def upgrade() -> None:
    """Create the ``fb_*`` tables."""
    op.create_table(
        "fb_queries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("chunk_ids", sa.JSON, nullable=False),
        sa.Column("doc_ids", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("corpus", sa.String(64), nullable=False),
        sa.Column("index_version", sa.String(128), nullable=False),
        sa.Column("embedder_version", sa.String(128), nullable=False),
        sa.Column("generator_version", sa.String(128), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("top_k", sa.Integer, nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_fb_queries_user_id", "fb_queries", ["user_id"])
    op.create_index("ix_fb_queries_created_at", "fb_queries", ["created_at"])
    op.create_table(
        "fb_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("query_id", sa.String(64), sa.ForeignKey("fb_queries.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("rater_id", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True, unique=True),
        sa.Column("excluded", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    for col in ("query_id", "kind", "user_id", "created_at"):
        op.create_index(f"ix_fb_events_{col}", "fb_events", [col])
    op.create_table(
        "fb_users",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("opted_out_at", TS, nullable=True),
        sa.Column("opted_in_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fb_api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "fb_dataset_usage",
        sa.Column("dataset_kind", sa.String(32), primary_key=True),
        sa.Column("dataset_version", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_fb_dataset_usage_user_id", "fb_dataset_usage", ["user_id"])
    op.create_table(
        "fb_model_usage",
        sa.Column("model_version", sa.String(128), primary_key=True),
        sa.Column("dataset_kind", sa.String(32), primary_key=True),
        sa.Column("dataset_version", sa.Integer, primary_key=True),
    )
    op.create_table(
        "fb_corrections",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(64), sa.ForeignKey("fb_events.id"), nullable=False, unique=True),
        sa.Column("query_id", sa.String(64), nullable=False),
        sa.Column("corpus", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("agreement_key", sa.String(64), nullable=False),
        sa.Column("rater", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("agreeing", sa.JSON, nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    for col in ("query_id", "agreement_key", "state"):
        op.create_index(f"ix_fb_corrections_{col}", "fb_corrections", [col])


def downgrade() -> None:
    """Drop the ``fb_*`` tables."""
    for table in ("fb_corrections", "fb_model_usage", "fb_dataset_usage", "fb_api_keys", "fb_users", "fb_events"):
        op.drop_table(table)
    op.drop_table("fb_queries")
