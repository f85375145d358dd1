"""Principals and identifier widths: events and corrections record the authenticated principal; idempotency
fingerprints; identifier columns hold the API schemas' 200 characters.

Revision ID: fb0002
Revises: fb0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fb0002"
down_revision = "fb0001"
branch_labels = None
depends_on = None

ID = 200  # the API schemas' limit for user_id / tenant / rater_id / principal
WIDENED = {
    "fb_queries": ("user_id", "tenant"),
    "fb_events": ("user_id", "tenant", "rater_id"),
    "fb_users": ("id",),
    "fb_dataset_usage": ("user_id",),
    "fb_corrections": ("rater",),
}


def upgrade() -> None:
    """Add ``principal`` (events, corrections) and ``body_hash`` (events); widen identifiers to 200 characters."""
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.String(ID), existing_type=sa.String(128))
    with op.batch_alter_table("fb_events") as batch:
        batch.add_column(sa.Column("principal", sa.String(ID), nullable=True))
        batch.add_column(sa.Column("body_hash", sa.String(64), nullable=True))
        batch.create_index("ix_fb_events_principal", ["principal"])
    with op.batch_alter_table("fb_corrections") as batch:
        batch.add_column(sa.Column("principal", sa.String(ID), nullable=True))


def downgrade() -> None:
    """Drop the new columns and narrow identifiers back to 128 characters."""
    with op.batch_alter_table("fb_corrections") as batch:
        batch.drop_column("principal")
    with op.batch_alter_table("fb_events") as batch:
        batch.drop_index("ix_fb_events_principal")
        batch.drop_column("body_hash")
        batch.drop_column("principal")
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.String(128), existing_type=sa.String(ID))
