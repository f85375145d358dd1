"""SQLAlchemy 2 ORM models of the feedback store (tables ``fb_*``; loop state owns ``fw_*``).

The Alembic migrations in ``feedback/migrations`` create exactly these tables; a test checks that the migrated schema
and these models agree. Timestamps are stored as naive UTC and read back timezone-aware (:class:`UtcDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_CHARS = 200  # identifiers (user, tenant, rater, principal): the API schemas' limit (migration fb0002)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, naive UTC in the column, aware UTC out (same on SQLite and PostgreSQL)."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Aware -> naive UTC for the column."""
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Naive UTC from the column -> aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the feedback tables."""

    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: sa.JSON(), list[Any]: sa.JSON()}


class QueryRow(Base):
    """An answered query (question and answer already scrubbed)."""

    __tablename__ = "fb_queries"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    question: Mapped[str] = mapped_column(sa.Text)
    answer: Mapped[str] = mapped_column(sa.Text)
    chunk_ids: Mapped[list[Any]]
    doc_ids: Mapped[list[Any]]
    scores: Mapped[list[Any]]
    corpus: Mapped[str] = mapped_column(sa.String(64))
    index_version: Mapped[str] = mapped_column(sa.String(128))
    embedder_version: Mapped[str] = mapped_column(sa.String(128))
    generator_version: Mapped[str] = mapped_column(sa.String(128))
    arm: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[str | None] = mapped_column(sa.String(ID_CHARS), index=True)
    tenant: Mapped[str | None] = mapped_column(sa.String(ID_CHARS))
    top_k: Mapped[int]
    filters: Mapped[dict[str, Any]]
    latency_ms: Mapped[float] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(index=True)


class EventRow(Base):
    """A scrubbed feedback event; ``excluded`` marks events of opted-out users (never used for training).

    Identifiers are pseudonyms (:mod:`feedback.store.pseudonyms`); ``principal`` is the authenticated caller (set by
    the server, never by the body); ``idempotency_key`` is scoped to it and ``body_hash`` fingerprints the body.
    """

    __tablename__ = "fb_events"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    query_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("fb_queries.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    data: Mapped[dict[str, Any]]
    user_id: Mapped[str | None] = mapped_column(sa.String(ID_CHARS), index=True)
    tenant: Mapped[str | None] = mapped_column(sa.String(ID_CHARS))
    rater_id: Mapped[str | None] = mapped_column(sa.String(ID_CHARS))
    principal: Mapped[str | None] = mapped_column(sa.String(ID_CHARS), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(256), unique=True)
    body_hash: Mapped[str | None] = mapped_column(sa.String(64))
    excluded: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(index=True)


class UserRow(Base):
    """Consent state of a pseudonymous user."""

    __tablename__ = "fb_users"

    id: Mapped[str] = mapped_column(sa.String(ID_CHARS), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]
    opted_in_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key: only the sha256 of the raw key is stored."""

    __tablename__ = "fb_api_keys"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    role: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class DatasetUsageRow(Base):
    """Dataset version ``{kind}/v{version}`` holds data of ``user_id``."""

    __tablename__ = "fb_dataset_usage"

    dataset_kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    dataset_version: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(ID_CHARS), primary_key=True, index=True)


class ModelUsageRow(Base):
    """Model version ``model_version`` was trained on dataset ``{kind}/v{version}``."""

    __tablename__ = "fb_model_usage"

    model_version: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    dataset_kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    dataset_version: Mapped[int] = mapped_column(primary_key=True)


class CorrectionRow(Base):
    """A correction on its way to the live index (RAG fast path)."""

    __tablename__ = "fb_corrections"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("fb_events.id"), unique=True)
    query_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    corpus: Mapped[str] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text)
    agreement_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    rater: Mapped[str | None] = mapped_column(sa.String(ID_CHARS))
    principal: Mapped[str | None] = mapped_column(sa.String(ID_CHARS))
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    agreeing: Mapped[list[Any]]
    chunk_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
