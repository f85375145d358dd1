"""Alembic environment of the feedback store (version table ``alembic_version_feedback``).

Run programmatically by :meth:`feedback.store.SqlStore.migrate`, which passes an open connection in
``config.attributes["connection"]``; the ``alembic.ini`` next to this file serves command-line use from the repo.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection

from feedback.store.models import Base

VERSION_TABLE = "alembic_version_feedback"

config = context.config
target_metadata = Base.metadata


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Other packages (the loop state, fw_*) share the database: only compare our own tables.
    return not (type_ == "table" and name is not None and not name.startswith("fb_"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=_include,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the caller's connection, or one made from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _run(conn)


def run_migrations_offline() -> None:
    """Emit SQL for ``sqlalchemy.url`` without connecting (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
