"""``SqlStore``: the feedback store on SQLAlchemy 2 (SQLite WAL by default, PostgreSQL by URL).

Implements :class:`core.ports.FeedbackStore` (and so :class:`core.ports.QueryLog`) plus consent, deletion, API keys,
dataset/model usage and corrections (mixins in :mod:`feedback.store.admin`). Every write runs in one transaction that
is committed before the method returns; SQLAlchemy errors are translated in :func:`translate_errors`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.types import Arm, FeedbackEvent, FeedbackKind, QueryRecord, utcnow
from core.validation import reject_nul
from feedback.store.admin import ConsentMixin, CorrectionMixin, KeyMixin, UsageMixin
from feedback.store.engine import make_engine, purge_freed_space, run_migrations, translate_errors
from feedback.store.models import CorrectionRow, EventRow, QueryRow, UserRow
from feedback.store.pseudonyms import Pseudonymizer
from feedback.store.records import CorrectionState
from feedback.text import stable_hash

logger = logging.getLogger(__name__)


class SqlStore(ConsentMixin, KeyMixin, UsageMixin, CorrectionMixin):
    """Feedback + query-log store over any SQLAlchemy URL (see module docstring).

    ``migrate=True`` (default) upgrades the schema at construction; pass ``False`` and call :meth:`migrate` to control
    when it happens. ``pseudonym_key`` keys the hashes that replace user, tenant and rater ids (and scope idempotency
    keys); services pass a persistent one (settings or the data dir's secret). Without it the store draws a random
    key, so its pseudonyms are stable only for this object's lifetime (tests, throw-away stores).
    Strings holding NUL are ``InvalidInputError`` on every backend (PostgreSQL would refuse them).
    """

    def __init__(
        self, url: str, *, echo: bool = False, migrate: bool = True, pseudonym_key: bytes | None = None
    ) -> None:
        self.url = url
        self.pseudonyms = Pseudonymizer(pseudonym_key or secrets.token_bytes(32))
        self.engine = make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision (idempotent)."""
        run_migrations(self.engine)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction, committed on exit (before the caller returns), errors translated."""
        with translate_errors(), self._sessions.begin() as session:
            yield session

    def healthy(self) -> bool:
        """Whether the database answers ``SELECT 1``."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa_exc.SQLAlchemyError:
            return False

    def purge_freed_space(self) -> None:
        """Make deleted rows leave the database files (see :func:`feedback.store.engine.purge_freed_space`)."""
        purge_freed_space(self.engine)

    def close(self) -> None:
        """Dispose of the connection pool. Idempotent."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------------------------- query log
    def record_query(self, record: QueryRecord) -> None:
        """Persist a (scrubbed) query record with pseudonymous user and tenant; committed on return.

        ``ConflictError`` for a duplicate id, ``InvalidInputError`` for a NUL in any string.
        """
        self.record_queries([record])

    def record_queries(self, records: Sequence[QueryRecord]) -> None:
        """Persist several (scrubbed) query records in one transaction, all or none; committed on return.

        One commit (one fsync under ``synchronous=FULL``) for the batch instead of one per record. Raises as
        :meth:`record_query` does, for the first bad record; then nothing of the batch is stored.
        """
        for record in records:
            fields = {"id": record.id, "question": record.question, "answer": record.answer, "user_id": record.user_id}
            reject_nul({**fields, "tenant": record.tenant, "filters": dict(record.filters)}, field="query")
        if not records:
            return
        with self._session() as session:
            session.add_all([_query_row(record, self.pseudonyms) for record in records])
        logger.debug("queries recorded count=%d first_id=%s", len(records), records[0].id)

    def get_query(self, query_id: str) -> QueryRecord:
        """Fetch a query record. Raises ``NotFoundError``."""
        with self._session() as session:
            row = session.get(QueryRow, query_id)
            if row is None:
                raise NotFoundError(f"query {query_id!r} does not exist", query_id=query_id)
            return _query_record(row)

    def list_queries(self, *, since: datetime | None = None, limit: int = 10_000) -> list[QueryRecord]:
        """Query records, oldest first."""
        with self._session() as session:
            stmt = sa.select(QueryRow).order_by(QueryRow.created_at, QueryRow.id).limit(limit)
            if since is not None:
                stmt = stmt.where(QueryRow.created_at >= since)
            return [_query_record(r) for r in session.scalars(stmt)]

    def get_queries(self, query_ids: Sequence[str]) -> dict[str, QueryRecord]:
        """Query records by id in one round trip (unknown ids absent)."""
        if not query_ids:
            return {}
        with self._session() as session:
            return {q.id: _query_record(q) for q in _load_queries(session, set(query_ids)).values()}

    def existing_query_ids(self, query_ids: Sequence[str]) -> set[str]:
        """The subset of ``query_ids`` that exist."""
        if not query_ids:
            return set()
        with self._session() as session:
            return set(session.scalars(sa.select(QueryRow.id).where(QueryRow.id.in_(set(query_ids)))))

    # ---------------------------------------------------------------------------------------------------- events
    def add_events(
        self,
        events: Sequence[FeedbackEvent],
        *,
        idempotency_keys: Sequence[str | None],
        fingerprints: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Store events atomically (all or none); a repeated idempotency key returns the first event's id.

        Idempotency keys are scoped to the event's ``principal``: another principal's same key is a new event. With
        ``fingerprints`` (a keyed hash of each request body) a key repeated with another body is ``ConflictError``.
        User, tenant and rater ids are stored as pseudonyms. Events of opted-out users are stored with
        ``excluded=True``. Correction events also create a ``pending`` correction row in the same transaction.
        Raises ``NotFoundError`` for an unknown query id, ``InvalidInputError`` for a NUL in any string.
        """
        prints = list(fingerprints) if fingerprints is not None else [None] * len(events)
        if not len(events) == len(idempotency_keys) == len(prints):
            raise InvalidInputError("events, idempotency_keys and fingerprints must have the same length")
        for i, e in enumerate(events):
            fields = {"query_id": e.query_id, "user_id": e.user_id, "tenant": e.tenant, "rater_id": e.rater_id}
            reject_nul({**fields, "principal": e.principal, "data": dict(e.data)}, field=f"events[{i}]")
        pairs = zip(events, idempotency_keys, strict=True)
        scoped = [self.pseudonyms.idempotency_key(e.principal, k) if k else None for e, k in pairs]
        try:
            return self._add_events_once(events, scoped, prints)
        except ConflictError as exc:
            if exc.detail.get("reason") == "idempotency":
                raise
            # A concurrent writer stored the same idempotency key first: its ids are the answer.
            return self._add_events_once(events, scoped, prints)

    def _add_events_once(
        self, events: Sequence[FeedbackEvent], keys: Sequence[str | None], prints: Sequence[str | None]
    ) -> list[str]:
        wanted = {k for k in keys if k}
        pseudo = self.pseudonyms
        with self._session() as session:
            known = _known_keys(session, wanted)
            queries = _load_queries(session, {e.query_id for e in events})
            opted_out = _opted_out(session, {pseudo.of("user", e.user_id) or "" for e in events if e.user_id})
            ids: list[str] = []
            for event, key, fingerprint in zip(events, keys, prints, strict=True):
                if key and key in known:
                    ids.append(_repeat(known[key], fingerprint))
                    continue
                query = queries.get(event.query_id)
                if query is None:
                    raise NotFoundError(f"query {event.query_id!r} does not exist", query_id=event.query_id)
                row = _event_row(event, key, pseudo, body_hash=fingerprint)
                row.excluded = row.user_id in opted_out
                session.add(row)
                if event.kind == FeedbackKind.CORRECTION:
                    session.flush()
                    session.add(_correction_row(row, query))
                if key:
                    known[key] = (event.id, fingerprint)
                ids.append(event.id)
        return ids

    def get_event(self, event_id: str) -> FeedbackEvent:
        """One event by id. Raises ``NotFoundError``."""
        with self._session() as session:
            row = session.get(EventRow, event_id)
            if row is None:
                raise NotFoundError(f"feedback event {event_id!r} does not exist", event_id=event_id)
            return _event(row)

    def list_events(
        self,
        *,
        query_id: str | None = None,
        kind: FeedbackKind | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        include_excluded: bool = True,
    ) -> list[FeedbackEvent]:
        """Events, oldest first, filtered; ``include_excluded=False`` drops opted-out users' events."""
        stmt = sa.select(EventRow).order_by(EventRow.created_at, EventRow.id).limit(limit)
        if query_id is not None:
            stmt = stmt.where(EventRow.query_id == query_id)
        if kind is not None:
            stmt = stmt.where(EventRow.kind == FeedbackKind(kind).value)
        if since is not None:
            stmt = stmt.where(EventRow.created_at >= since)
        if not include_excluded:
            stmt = stmt.where(EventRow.excluded.is_(False))
        with self._session() as session:
            return [_event(r) for r in session.scalars(stmt)]

    def usable_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """``core.ports.ProvenanceLedger``: the ids that exist, are not excluded, and whose user has not opted out.

        Deleted users' events are gone from the table, so they are absent from the result as well.
        """
        wanted = set(event_ids)
        if not wanted:
            return set()
        stmt = (
            sa.select(EventRow.id)
            .outerjoin(UserRow, UserRow.id == EventRow.user_id)
            .where(
                EventRow.id.in_(wanted),
                EventRow.excluded.is_(False),
                sa.or_(UserRow.opted_out.is_(None), UserRow.opted_out.is_(False)),
            )
        )
        with self._session() as session:
            return set(session.scalars(stmt))

    def training_events(self) -> list[tuple[FeedbackEvent, QueryRecord]]:
        """Every event usable for training (not excluded, user not opted out) with its query, oldest first."""
        stmt = (
            sa.select(EventRow, QueryRow)
            .join(QueryRow, QueryRow.id == EventRow.query_id)
            .outerjoin(UserRow, UserRow.id == EventRow.user_id)
            .where(EventRow.excluded.is_(False), sa.or_(UserRow.opted_out.is_(None), UserRow.opted_out.is_(False)))
            .order_by(EventRow.created_at, EventRow.id)
        )
        with self._session() as session:
            return [(_event(e), _query_record(q)) for e, q in session.execute(stmt)]


def _known_keys(session: Session, keys: set[str]) -> dict[str, tuple[str, str | None]]:
    if not keys:
        return {}
    columns = (EventRow.idempotency_key, EventRow.id, EventRow.body_hash)
    stmt = sa.select(*columns).where(EventRow.idempotency_key.in_(keys))
    return {k: (i, h) for k, i, h in session.execute(stmt) if k}


def _repeat(first: tuple[str, str | None], fingerprint: str | None) -> str:
    """The first event's id for a repeated key; ``ConflictError`` when the body differs from the first one."""
    event_id, stored = first
    if fingerprint is not None and stored is not None and fingerprint != stored:
        raise ConflictError(
            "this Idempotency-Key was already used with a different request body; use a new key for a new event",
            reason="idempotency",
        )
    return event_id


def _load_queries(session: Session, ids: set[str]) -> dict[str, QueryRow]:
    return {q.id: q for q in session.scalars(sa.select(QueryRow).where(QueryRow.id.in_(ids)))}


def _opted_out(session: Session, user_ids: set[str]) -> set[str]:
    if not user_ids:
        return set()
    stmt = sa.select(UserRow.id).where(UserRow.id.in_(user_ids), UserRow.opted_out.is_(True))
    return set(session.scalars(stmt))


def _query_row(r: QueryRecord, pseudo: Pseudonymizer) -> QueryRow:
    return QueryRow(
        id=r.id,
        question=r.question,
        answer=r.answer,
        chunk_ids=list(r.chunk_ids),
        doc_ids=list(r.doc_ids),
        scores=[float(s) for s in r.scores],
        corpus=r.corpus,
        index_version=r.index_version,
        embedder_version=r.embedder_version,
        generator_version=r.generator_version,
        arm=Arm(r.arm).value,
        user_id=pseudo.of("user", r.user_id),
        tenant=pseudo.of("tenant", r.tenant),
        top_k=r.top_k,
        filters=dict(r.filters),
        latency_ms=float(r.latency_ms),
        created_at=r.created_at,
    )


def _query_record(row: QueryRow) -> QueryRecord:
    return QueryRecord(
        id=row.id,
        question=row.question,
        answer=row.answer,
        chunk_ids=list(row.chunk_ids),
        doc_ids=list(row.doc_ids),
        scores=list(row.scores),
        corpus=row.corpus,
        index_version=row.index_version,
        embedder_version=row.embedder_version,
        generator_version=row.generator_version,
        arm=Arm(row.arm),
        user_id=row.user_id,
        tenant=row.tenant,
        top_k=row.top_k,
        filters=dict(row.filters),
        latency_ms=row.latency_ms,
        created_at=row.created_at,
    )


def _event_row(e: FeedbackEvent, key: str | None, pseudo: Pseudonymizer, *, body_hash: str | None) -> EventRow:
    return EventRow(
        id=e.id,
        query_id=e.query_id,
        kind=FeedbackKind(e.kind).value,
        data=dict(e.data),
        user_id=pseudo.of("user", e.user_id),
        tenant=pseudo.of("tenant", e.tenant),
        rater_id=pseudo.of("rater", e.rater_id),
        principal=e.principal,
        idempotency_key=key,
        body_hash=body_hash,
        excluded=False,
        created_at=e.created_at,
    )


def _event(row: EventRow) -> FeedbackEvent:
    return FeedbackEvent(
        id=row.id,
        query_id=row.query_id,
        kind=FeedbackKind(row.kind),
        data=dict(row.data),
        user_id=row.user_id,
        tenant=row.tenant,
        rater_id=row.rater_id,
        created_at=row.created_at,
        principal=row.principal,
    )


def _correction_row(e: EventRow, query: QueryRow) -> CorrectionRow:
    now = utcnow()
    text = str(e.data.get("text", ""))
    return CorrectionRow(
        id=e.id,
        event_id=e.id,
        query_id=e.query_id,
        corpus=query.corpus,
        text=text,
        agreement_key=stable_hash(query.corpus, query.question, text),
        rater=e.rater_id or e.user_id,
        principal=e.principal,
        state=CorrectionState.PENDING.value,
        agreeing=[],
        chunk_id=None,
        created_at=now,
        updated_at=now,
    )
