"""Alembic environment of the flywheel tables (own version table; the feedback schema is never touched)."""

from __future__ import annotations

from alembic import context

from flywheel.state_tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always invoked programmatically by flywheel.state.run_migrations
    raise RuntimeError("flywheel migrations run through flywheel.state.run_migrations(engine)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
