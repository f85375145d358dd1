"""Store mixins: consent, API keys, dataset/model usage + deletion, and corrections (see :class:`SqlStore`).

Each mixin expects ``self._session()`` (one committed transaction with translated errors) from the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from core.types import utcnow
from core.validation import reject_nul
from feedback.store.models import (
    ApiKeyRow,
    CorrectionRow,
    DatasetUsageRow,
    EventRow,
    ModelUsageRow,
    QueryRow,
    UserRow,
)
from feedback.store.pseudonyms import Pseudonymizer
from feedback.store.records import (
    ApiKeyRecord,
    CorrectionRecord,
    CorrectionState,
    DeletionReport,
    Role,
    UserConsent,
    dataset_ref,
    parse_dataset_ref,
)


class _HasSession(Protocol):
    pseudonyms: Pseudonymizer

    def _session(self) -> contextlib.AbstractContextManager[Session]: ...


def _user_keys(store: _HasSession, user_id: str) -> list[str]:
    """How the store may know a user: its pseudonym, and the raw id of rows written before pseudonyms (fb0001)."""
    reject_nul(user_id, field="user_id")
    return [store.pseudonyms.of("user", user_id) or "", user_id]


class ConsentMixin:
    """Opt-out / opt-in of pseudonymous users (callers pass the raw id; only its pseudonym is stored)."""

    def set_opt_out(self: _HasSession, user_id: str, *, opted_out: bool) -> UserConsent:
        """Record the user's choice (timestamped); later events of an opted-out user are excluded from training."""
        now = utcnow()
        pseudonym = _user_keys(self, user_id)[0]
        with self._session() as session:
            row = session.get(UserRow, pseudonym)
            if row is None:
                row = UserRow(id=pseudonym, opted_out=False, updated_at=now)
                session.add(row)
            row.opted_out = opted_out
            row.updated_at = now
            if opted_out:
                row.opted_out_at = now
            else:
                row.opted_in_at = now
            return _consent(row)

    def get_consent(self: _HasSession, user_id: str) -> UserConsent:
        """Consent state; a user never seen has not opted out."""
        pseudonym = _user_keys(self, user_id)[0]
        with self._session() as session:
            row = session.get(UserRow, pseudonym)
            return UserConsent(user_id=pseudonym, opted_out=False) if row is None else _consent(row)

    def opted_out_users(self: _HasSession) -> set[str]:
        """Pseudonyms of every user currently opted out."""
        with self._session() as session:
            return set(session.scalars(sa.select(UserRow.id).where(UserRow.opted_out.is_(True))))


def _consent(row: UserRow) -> UserConsent:
    return UserConsent(row.id, bool(row.opted_out), opted_out_at=row.opted_out_at, opted_in_at=row.opted_in_at)


class KeyMixin:
    """API key records (hashes only; raw keys never reach the store)."""

    def add_api_key(self: _HasSession, *, key_id: str, name: str, role: Role, key_hash: str) -> ApiKeyRecord:
        """Store a new key. ``ConflictError`` if the id or hash exists."""
        row = ApiKeyRow(id=key_id, name=name, role=Role(role).value, key_hash=key_hash, created_at=utcnow())
        with self._session() as session:
            session.add(row)
        return _key(row)

    def find_api_key(self: _HasSession, key_hash: str) -> ApiKeyRecord | None:
        """The key with this sha256 hash, revoked or not, or ``None``."""
        with self._session() as session:
            row = session.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash)).first()
            return None if row is None else _key(row)

    def list_api_keys(self: _HasSession) -> list[ApiKeyRecord]:
        """Every key, oldest first."""
        with self._session() as session:
            return [_key(r) for r in session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke_api_key(self: _HasSession, key_id: str) -> ApiKeyRecord:
        """Revoke a key. ``NotFoundError`` if unknown, ``ConflictError`` if already revoked."""
        with self._session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"API key {key_id!r} does not exist", key_id=key_id)
            if row.revoked_at is not None:
                raise ConflictError(f"API key {key_id!r} is already revoked", key_id=key_id)
            row.revoked_at = utcnow()
            return _key(row)


def _key(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, Role(row.role), row.created_at, row.revoked_at)


class UsageMixin:
    """Which dataset versions hold which users' data, which models used which datasets; deletion."""

    def record_dataset_usage(self: _HasSession, kind: str, version: int, user_ids: Iterable[str]) -> None:
        """Record that dataset ``{kind}/v{version}`` holds data of ``user_ids`` (idempotent)."""
        with self._session() as session:
            for user_id in sorted(set(user_ids)):
                if session.get(DatasetUsageRow, (kind, version, user_id)) is None:
                    session.add(DatasetUsageRow(dataset_kind=kind, dataset_version=version, user_id=user_id))

    def record_model_datasets(self: _HasSession, model_version: str, datasets: Iterable[str]) -> None:
        """Record that ``model_version`` was trained on ``datasets`` (refs ``{kind}/v{n}``; idempotent)."""
        refs = sorted({parse_dataset_ref(ref) for ref in datasets})
        with self._session() as session:
            for kind, version in refs:
                if session.get(ModelUsageRow, (model_version, kind, version)) is None:
                    session.add(ModelUsageRow(model_version=model_version, dataset_kind=kind, dataset_version=version))

    def delete_user_data(self: _HasSession, user_id: str) -> DeletionReport:
        """Delete the user's events and queries (and events on those queries) in one transaction.

        Returns the dataset and model versions that had used the user's data, the corrections removed (callers
        remove their passages from the index) and the deleted ids. Usage records are kept (under the pseudonym):
        they answer "which datasets and models saw this user".
        """
        keys = _user_keys(self, user_id)
        with self._session() as session:
            query_ids = list(session.scalars(sa.select(QueryRow.id).where(QueryRow.user_id.in_(keys))))
            doomed = sa.or_(EventRow.user_id.in_(keys), EventRow.query_id.in_(query_ids))
            event_ids = list(session.scalars(sa.select(EventRow.id).where(doomed)))
            corrections = _delete_corrections(session, event_ids)
            session.execute(sa.delete(EventRow).where(EventRow.id.in_(event_ids)))
            session.execute(sa.delete(QueryRow).where(QueryRow.id.in_(query_ids)))
            datasets, models = _usage_of(session, keys)
        return DeletionReport(
            keys[0], len(event_ids), len(query_ids), datasets, models, corrections, event_ids, query_ids
        )

    def redact_answers_citing(self: _HasSession, chunk_ids: Sequence[str]) -> int:
        """Replace the recorded answer of every query that cited one of ``chunk_ids`` (it may quote them) with
        :data:`REDACTED_ANSWER`; returns how many answers changed. Citations are kept (ids, no text)."""
        if not chunk_ids:
            return 0
        with self._session() as session:
            cited = sa.or_(*[sa.cast(QueryRow.chunk_ids, sa.Text).like(f"%{cid}%") for cid in chunk_ids])
            result = session.execute(
                sa.update(QueryRow).where(cited, QueryRow.answer != REDACTED_ANSWER).values(answer=REDACTED_ANSWER)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


#: What a recorded answer that quoted deleted user data reads after the deletion.
REDACTED_ANSWER = "<answer removed: it quoted data of a deleted user>"


def _delete_corrections(session: Session, event_ids: Sequence[str]) -> list[CorrectionRecord]:
    rows = list(session.scalars(sa.select(CorrectionRow).where(CorrectionRow.event_id.in_(event_ids))))
    records = [_correction(r) for r in rows]
    for row in rows:
        session.delete(row)
    session.flush()
    return records


def _usage_of(session: Session, user_keys: Sequence[str]) -> tuple[list[str], list[str]]:
    pairs = set(
        session.execute(
            sa.select(DatasetUsageRow.dataset_kind, DatasetUsageRow.dataset_version).where(
                DatasetUsageRow.user_id.in_(list(user_keys))
            )
        ).tuples()
    )
    models: set[str] = set()
    for kind, version in pairs:
        stmt = sa.select(ModelUsageRow.model_version).where(
            ModelUsageRow.dataset_kind == kind, ModelUsageRow.dataset_version == version
        )
        models.update(session.scalars(stmt))
    return sorted(dataset_ref(k, v) for k, v in pairs), sorted(models)


class CorrectionMixin:
    """Corrections on the RAG fast path (created with their event by ``add_events``)."""

    def get_correction(self: _HasSession, correction_id: str) -> CorrectionRecord:
        """A correction by id (= its event id). Raises ``NotFoundError``."""
        with self._session() as session:
            row = session.get(CorrectionRow, correction_id)
            if row is None:
                raise NotFoundError(f"correction {correction_id!r} does not exist", correction_id=correction_id)
            return _correction(row)

    def corrections_by_key(self: _HasSession, agreement_key: str) -> list[CorrectionRecord]:
        """Every correction with the same normalised (question, text), oldest first."""
        stmt = (
            sa.select(CorrectionRow)
            .where(CorrectionRow.agreement_key == agreement_key)
            .order_by(CorrectionRow.created_at, CorrectionRow.id)
        )
        with self._session() as session:
            return [_correction(r) for r in session.scalars(stmt)]

    def list_corrections(self: _HasSession, *, state: CorrectionState | None = None) -> list[CorrectionRecord]:
        """Corrections, oldest first, optionally in one state."""
        stmt = sa.select(CorrectionRow).order_by(CorrectionRow.created_at, CorrectionRow.id)
        if state is not None:
            stmt = stmt.where(CorrectionRow.state == CorrectionState(state).value)
        with self._session() as session:
            return [_correction(r) for r in session.scalars(stmt)]

    def update_corrections(
        self: _HasSession,
        ids: Sequence[str],
        *,
        state: CorrectionState,
        chunk_id: str | None = None,
        agreeing: Iterable[str] | None = None,
    ) -> None:
        """Move corrections to ``state`` (recording the live chunk id and agreeing raters when given)."""
        now = utcnow()
        with self._session() as session:
            for row in session.scalars(sa.select(CorrectionRow).where(CorrectionRow.id.in_(list(ids)))):
                row.state = CorrectionState(state).value
                row.updated_at = now
                if chunk_id is not None:
                    row.chunk_id = chunk_id
                if agreeing is not None:
                    row.agreeing = sorted(set(agreeing))


def _correction(row: CorrectionRow) -> CorrectionRecord:
    return CorrectionRecord(
        id=row.id,
        event_id=row.event_id,
        query_id=row.query_id,
        corpus=row.corpus,
        text=row.text,
        agreement_key=row.agreement_key,
        state=CorrectionState(row.state),
        rater=row.rater,
        agreeing=list(row.agreeing or []),
        chunk_id=row.chunk_id,
        principal=row.principal,
    )
