"""Feedback fixtures: Presidio loaded once per session, the store on SQLite and on a throw-away PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pgschema import throwaway_pg_schema

from core.settings import PiiSettings
from core.types import Arm, Chunk, Metadata, QueryRecord


@pytest.fixture(scope="session")
def scrubber() -> Any:
    """One real PresidioScrubber (spaCy small model) for the whole session."""
    from feedback.pii import PresidioScrubber

    return PresidioScrubber(PiiSettings())


@pytest.fixture(scope="session")
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for this session (dropped afterwards), as a URL whose search_path selects it."""
    with throwaway_pg_schema(postgres_url, prefix="fbtest_") as url:
        yield url


def _clear(store: Any) -> None:
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        for table in (
            "fb_corrections",
            "fb_events",
            "fb_queries",
            "fb_users",
            "fb_api_keys",
            "fb_dataset_usage",
            "fb_model_usage",
        ):
            conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on a SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    """A migrated, empty :class:`SqlStore` on each backend."""
    from feedback.store import SqlStore

    s = SqlStore(store_url)
    _clear(s)
    try:
        yield s
    finally:
        _clear(s)
        s.close()


def _make_query(
    *,
    question: str = "How do I reset my password?",
    chunk_ids: Sequence[str] = ("c1", "c2", "c3"),
    user_id: str | None = "u1",
    corpus: str = "faq",
    answer: str = "Use the reset link [1].",
) -> QueryRecord:
    """A logged query record with fresh id."""
    return QueryRecord(
        id=uuid.uuid4().hex,
        question=question,
        answer=answer,
        chunk_ids=list(chunk_ids),
        doc_ids=[f"d-{c}" for c in chunk_ids],
        scores=[0.9 - 0.1 * i for i in range(len(chunk_ids))],
        corpus=corpus,
        index_version=f"{corpus}__v1",
        embedder_version="base",
        generator_version="extractive",
        arm=Arm.CURRENT,
        user_id=user_id,
    )


class FakePassageIndex:
    """In-memory ``PassageIndex`` port: corpus passages plus upserted corrections (fake at the port only)."""

    def __init__(self, passages: dict[str, str] | None = None) -> None:
        self.passages = {cid: Chunk(id=cid, doc_id=f"d-{cid}", text=t) for cid, t in (passages or {}).items()}
        self.corrections: dict[str, Chunk] = {}
        self.calls: list[tuple[str, str]] = []

    def get_passages(self, corpus: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        pool = {**self.passages, **self.corrections}
        return {cid: pool[cid] for cid in chunk_ids if cid in pool}

    def upsert_correction(self, corpus: str, *, correction_id: str, query_id: str, text: str, meta: Metadata) -> str:
        self.calls.append(("upsert", correction_id))
        chunk_id = "chunk-" + correction_id
        self.corrections[chunk_id] = Chunk(
            id=chunk_id,
            doc_id=correction_id,
            text=text,
            metadata={**meta, "source": "correction", "query_id": query_id},
        )
        return chunk_id

    def revoke_correction(self, corpus: str, correction_id: str) -> None:
        from core.errors import NotFoundError

        self.calls.append(("revoke", correction_id))
        if self.corrections.pop("chunk-" + correction_id, None) is None:
            raise NotFoundError(f"correction {correction_id} unknown")


@pytest.fixture(scope="session")
def make_query() -> Any:
    """Factory of logged query records (fresh ids): ``make_query(question=..., chunk_ids=..., user_id=...)``."""
    return _make_query


@pytest.fixture
def passage_index() -> FakePassageIndex:
    """A fake ``PassageIndex`` with three corpus passages (c1..c3) and one extra corpus passage (c9)."""
    return FakePassageIndex(
        {"c1": "Reset via the link.", "c2": "Billing runs monthly.", "c3": "Call support.", "c9": "x"}
    )


@pytest.fixture(scope="session")
def fake_passage_index_cls() -> type[FakePassageIndex]:
    """The fake ``PassageIndex`` class, for module-scoped fixtures."""
    return FakePassageIndex
