"""Fixtures of the loop tests: a state store on SQLite (tmp) and, marked ``postgres``, on a fresh PostgreSQL DB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.state import StateStore


@pytest.fixture
def sqlite_state(tmp_path: Path) -> Iterator[StateStore]:
    """A migrated state store in a temp SQLite file."""
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


@pytest.fixture
def postgres_state(postgres_url: str) -> Iterator[StateStore]:
    """A migrated state store in a throw-away PostgreSQL database (created and dropped around the test)."""
    import sqlalchemy as sa

    name = f"fw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, _, _db = postgres_url.rpartition("/")
    store = StateStore(f"{base}/{name}")
    try:
        yield store
    finally:
        store.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest) -> StateStore:
    """The state store on each backend."""
    return request.getfixturevalue(f"{request.param}_state")
