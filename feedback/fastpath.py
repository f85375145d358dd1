"""The RAG fast path: accepted corrections become ``source=correction`` passages of the live collection.

Policy (``settings.feedback.fast_path``): ``immediate`` (every correction), ``quorum`` (``fast_path_quorum`` distinct
authenticated principals, see :func:`voters`, submitted the same normalised correction to the same normalised
question), ``approval`` (an admin approves), ``off`` (never; approval only records the decision). Agreeing
corrections share one live passage whose correction id is derived from their agreement key, so revoking any of them
removes that passage and revokes the whole group.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.errors import ConflictError, FlywheelError, NotFoundError
from core.ports import PassageIndex
from core.settings import FeedbackSettings
from feedback.store import CorrectionRecord, CorrectionState, SqlStore

logger = logging.getLogger(__name__)

_LIVE = (CorrectionState.PENDING, CorrectionState.APPROVED, CorrectionState.APPLIED)


def voters(group: Sequence[CorrectionRecord]) -> set[str]:
    """The distinct authenticated principals behind ``group``: the only thing a quorum counts.

    A client-supplied ``rater_id`` (or a fresh event id, or another idempotency key) is a label, never a vote, so one
    API key posting the same correction any number of times is one rater. A correction stored without a principal
    (written before principals were recorded) casts no vote.
    """
    return {c.principal for c in group if c.principal}


def live_correction_id(record: CorrectionRecord) -> str:
    """Correction id of the group's live passage (same for every agreeing correction)."""
    return "corr-" + record.agreement_key[:32]


class FastPath:
    """Applies the configured policy to new, approved and revoked corrections."""

    def __init__(self, store: SqlStore, settings: FeedbackSettings, passage_index: PassageIndex | None) -> None:
        self._store = store
        self._settings = settings
        self._index = passage_index

    @property
    def enabled(self) -> bool:
        """Whether corrections can reach the live index at all."""
        return self._index is not None and self._settings.fast_path != "off"

    def on_new(self, correction_ids: Sequence[str]) -> None:
        """Apply the policy to freshly stored corrections; index failures are logged, the events stay stored."""
        if not self.enabled or self._settings.fast_path == "approval":
            return
        for correction_id in correction_ids:
            try:
                self._consider(self._store.get_correction(correction_id))
            except FlywheelError as exc:
                logger.warning("fast path deferred correction_id=%s error=%s", correction_id, type(exc).__name__)

    def _consider(self, record: CorrectionRecord) -> None:
        group = [c for c in self._store.corrections_by_key(record.agreement_key) if c.state in _LIVE]
        raters = voters(group)
        applied = next((c for c in group if c.state == CorrectionState.APPLIED), None)
        if applied is not None:
            self._store.update_corrections([record.id], state=CorrectionState.APPLIED, chunk_id=applied.chunk_id)
            self._store.update_corrections([c.id for c in group], state=CorrectionState.APPLIED, agreeing=raters)
            return
        if self._settings.fast_path == "immediate" or len(raters) >= self._settings.fast_path_quorum:
            self._apply(record, group=[c.id for c in group], agreeing=sorted(raters))

    def _apply(self, record: CorrectionRecord, *, group: Sequence[str], agreeing: Sequence[str]) -> str:
        assert self._index is not None
        query = self._store.get_query(record.query_id)
        meta = {"question": query.question, "correction_ids": sorted(group), "agreeing": len(agreeing)}
        chunk_id = self._index.upsert_correction(
            record.corpus,
            correction_id=live_correction_id(record),
            query_id=record.query_id,
            text=record.text,
            meta=meta,
        )
        self._store.update_corrections(group, state=CorrectionState.APPLIED, chunk_id=chunk_id, agreeing=agreeing)
        logger.info("correction applied correction_id=%s chunk_id=%s group=%d", record.id, chunk_id, len(group))
        return chunk_id

    def approve(self, correction_id: str) -> CorrectionRecord:
        """Admin approval: apply now (or only record it when the fast path is off / has no index)."""
        record = self._store.get_correction(correction_id)
        if record.state != CorrectionState.PENDING:
            raise ConflictError(
                f"correction {correction_id!r} is {record.state.value}, not pending", state=record.state
            )
        if not self.enabled:
            self._store.update_corrections([record.id], state=CorrectionState.APPROVED)
        else:
            group = [c for c in self._store.corrections_by_key(record.agreement_key) if c.state in _LIVE]
            applied = next((c for c in group if c.state == CorrectionState.APPLIED), None)
            if applied is not None:
                self._store.update_corrections([record.id], state=CorrectionState.APPLIED, chunk_id=applied.chunk_id)
            else:
                self._apply(record, group=[record.id], agreeing=sorted(voters([record])))
        return self._store.get_correction(correction_id)

    def revoke(self, correction_id: str) -> CorrectionRecord:
        """Revoke a correction and every applied correction sharing its live passage; removes that passage."""
        record = self._store.get_correction(correction_id)
        if record.state == CorrectionState.REVOKED:
            raise ConflictError(f"correction {correction_id!r} is already revoked", state=record.state)
        group = [record.id]
        if record.state == CorrectionState.APPLIED:
            siblings = self._store.corrections_by_key(record.agreement_key)
            group += [c.id for c in siblings if c.state == CorrectionState.APPLIED and c.id != record.id]
            if self._index is not None:
                try:
                    self._index.revoke_correction(record.corpus, live_correction_id(record))
                except NotFoundError:  # already gone from the live collection (e.g. rebuilt): nothing to remove
                    logger.info("live correction already absent correction_id=%s", correction_id)
        self._store.update_corrections(group, state=CorrectionState.REVOKED)
        logger.info("correction revoked correction_id=%s group=%d", correction_id, len(group))
        return self._store.get_correction(correction_id)

    def forget(self, deleted: Sequence[CorrectionRecord]) -> None:
        """After a user's data was deleted: remove live passages no remaining applied correction supports."""
        for record in deleted:
            if record.state != CorrectionState.APPLIED or self._index is None:
                continue
            remaining = [c for c in self._store.corrections_by_key(record.agreement_key) if c.state == _LIVE[2]]
            if not remaining:
                try:
                    self._index.revoke_correction(record.corpus, live_correction_id(record))
                except FlywheelError as exc:
                    logger.warning(
                        "live correction not removed correction_id=%s error=%s", record.id, type(exc).__name__
                    )
