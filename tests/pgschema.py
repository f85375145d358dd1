"""A throw-away PostgreSQL schema for tests that need an empty database (the fixtures of several packages use it)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def throwaway_pg_schema(postgres_url: str, *, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL schema (dropped on exit), as a URL whose search_path selects it."""
    import sqlalchemy as sa

    schema = prefix + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
