"""Engine construction, Alembic migration and the one error-translation boundary of the feedback store."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from core.errors import ConflictError, InvalidInputError, StorageError, UpstreamUnavailableError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss too, not only a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Engine for ``url``: SQLite files get WAL + foreign keys; PostgreSQL uses ``postgresql+psycopg://``.

    Raises ``InvalidInputError`` for a URL SQLAlchemy cannot parse or whose driver is not installed.
    """
    try:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed, echo=echo, connect_args={"check_same_thread": False})
            sa_event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise InvalidInputError(f"unusable database URL: {exc}", field="db.url") from exc


def run_migrations(engine: Engine) -> None:
    """Upgrade the schema to the newest Alembic revision (idempotent). Works from an installed package."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with translate_errors(), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    logger.info("feedback schema migrated backend=%s", engine.dialect.name)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Map SQLAlchemy errors to the project's tree: connection -> 503, constraint -> 409, other -> storage error."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise ConflictError("the change conflicts with stored data (duplicate or missing reference)") from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        raise UpstreamUnavailableError("the feedback database is unavailable", retry_after_s=1.0) from exc
    except sa_exc.SQLAlchemyError as exc:
        logger.exception("feedback store failure type=%s", type(exc).__name__)
        raise StorageError("unexpected feedback store failure") from exc
