"""The one persistence base of the project: engine set-up, Alembic runner and database-error translation.

Both the feedback store (``fb_*``) and the loop state (``flywheel.state``, ``fw_*``) build their engines with
:func:`make_engine`, migrate with :func:`run_migrations` (each with its own Alembic environment and version table) and
wrap every database call in :func:`translate_errors`. It lives here rather than in ``core`` because ``core`` stays free
of SQLAlchemy; ``flywheel`` may import ``feedback`` (never the reverse), so the loop reuses it as is.
"""

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
BUSY_TIMEOUT_MS = 15_000  # a writer waits this long for SQLite's lock before the call becomes a 503
RETRY_AFTER_S = 1.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss too, not only a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed in the file, not left in free pages
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Engine for ``url``: SQLite files get WAL, full sync, foreign keys, a busy timeout and cross-thread use;
    PostgreSQL (``postgresql+psycopg://``) gets pre-ping so a restarted server is reconnected.

    Raises ``InvalidInputError`` for a URL SQLAlchemy cannot parse or whose driver is not installed.
    """
    try:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
            engine = sa.create_engine(parsed, echo=echo, connect_args=connect_args)
            sa_event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise InvalidInputError(f"unusable database URL: {exc}", field="db.url") from exc


def run_migrations(engine: Engine, *, script_location: Path = MIGRATIONS_DIR, label: str = "feedback") -> None:
    """Upgrade the schema of one Alembic environment (``script_location``) to head (idempotent).

    The environment's ``env.py`` reads the open connection from ``config.attributes["connection"]``. Database
    failures are translated like every other call (an unreachable database is ``UpstreamUnavailableError``).
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    with translate_errors(), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    logger.info("schema migrated schema=%s backend=%s", label, engine.dialect.name)


def purge_freed_space(engine: Engine) -> None:
    """After a deletion: make deleted data leave the database files.

    SQLite: ``secure_delete`` (set on every connection) already zeroed the freed pages; a truncating checkpoint
    copies the WAL into the database and empties it, so no old page image keeps the deleted text. PostgreSQL keeps
    dead tuples until (auto)vacuum reclaims them; that is the server's job and nothing is done here.
    """
    if engine.dialect.name != "sqlite":
        return
    with translate_errors(), engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Map SQLAlchemy errors to the project's tree: connection -> 503, constraint -> 409, other -> storage error."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise ConflictError("the change conflicts with stored data (duplicate or missing reference)") from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        logger.warning("database unavailable type=%s", type(exc).__name__)
        raise UpstreamUnavailableError("the database is unavailable", retry_after_s=RETRY_AFTER_S) from exc
    except sa_exc.DataError as exc:
        # Values the schema accepted but the backend refuses: input, never a server error.
        raise InvalidInputError("a value does not fit the database column (too long or invalid)") from exc
    except sa_exc.SQLAlchemyError as exc:
        logger.exception("database failure type=%s", type(exc).__name__)
        raise StorageError("unexpected database failure") from exc
