"""Feedback intake: validate every kind, check references, scrub free text, store atomically, run the fast path.

Contract: nothing of a rejected request is stored (a batch is all-or-none and reports every bad item by index);
free text is scrubbed before it is persisted or logged; a repeated idempotency key of the same principal returns the
first event's id (the same key with another body is a ``ConflictError``; another principal's key is another event);
events of opted-out users are stored but excluded from training. Consent changes and deletion live here too.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from core.ports import PassageIndex, PiiScrubber
from core.settings import FeedbackSettings
from core.types import FeedbackEvent, FeedbackKind, QueryRecord
from feedback.fastpath import FastPath
from feedback.store import CorrectionRecord, DeletionReport, SqlStore, UserConsent
from feedback.validation import TEXT_FIELDS, FeedbackSubmission, Problem, check, normalised_data

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """Stored event ids (in submission order) and how many were new (the rest were idempotent repeats)."""

    ids: list[str]
    created: int
    created_kinds: dict[str, int] = field(default_factory=dict)  # newly stored events by kind (replays not counted)


class FeedbackIntake:
    """The one way feedback enters the store (see module docstring)."""

    def __init__(
        self,
        store: SqlStore,
        scrubber: PiiScrubber,
        settings: FeedbackSettings,
        passage_index: PassageIndex | None = None,
    ) -> None:
        self._store = store
        self._scrubber = scrubber
        self._settings = settings
        self._passages = passage_index
        self.fast_path = FastPath(store, settings, passage_index)

    def submit(self, submission: FeedbackSubmission) -> str:
        """Store one event; returns its id. ``NotFoundError`` (unknown query), ``InvalidInputError`` (bad fields)."""
        return self.submit_one(submission).ids[0]

    def submit_one(self, submission: FeedbackSubmission) -> IntakeResult:
        """:meth:`submit`, returning whether the event was newly stored (``created`` 0 for an idempotent replay)."""
        problems = check(submission, max_text_chars=self._settings.max_text_chars)
        if problems:
            raise _invalid([(0, p) for p in problems], single=True)
        queries = self._queries([submission])
        if submission.query_id not in queries:
            raise NotFoundError(f"query {submission.query_id!r} does not exist", query_id=submission.query_id)
        problems = self._reference_problems(submission, queries)
        if problems:
            raise _invalid([(0, p) for p in problems], single=True)
        return self._store_all([submission], queries)

    def submit_batch(self, submissions: Sequence[FeedbackSubmission]) -> IntakeResult:
        """Store a batch atomically; ``InvalidInputError`` listing every bad item by index stores nothing."""
        queries = self.check_batch(list(enumerate(submissions)), total=len(submissions))
        return self._store_all(submissions, queries)

    def check_batch(
        self,
        items: Sequence[tuple[int, FeedbackSubmission]],
        *,
        total: int,
        known_bad: Sequence[tuple[int, Problem]] = (),
    ) -> dict[str, QueryRecord]:
        """Check a batch's (index, submission) items: fields, then the queries and passages they refer to.

        ``known_bad`` are problems found before (items the API's schema already refused), listed with the rest.
        Raises ``InvalidInputError`` listing every bad item by index; returns the referenced queries when none is bad.
        """
        if total == 0:
            raise InvalidInputError("a feedback batch needs at least one event", field="events")
        if total > self._settings.max_batch:
            raise InvalidInputError(
                f"a feedback batch holds at most {self._settings.max_batch} events, got {total}", field="events"
            )
        limit = self._settings.max_text_chars
        bad = [*known_bad, *((i, p) for i, s in items for p in check(s, max_text_chars=limit))]
        refused = {i for i, _ in bad}
        shaped = [(i, s) for i, s in items if i not in refused]
        queries = self._queries([s for _, s in shaped])
        for i, s in shaped:
            if s.query_id not in queries:
                bad.append((i, Problem("query_id", f"query {s.query_id!r} does not exist")))
            else:
                bad.extend((i, p) for p in self._reference_problems(s, queries))
        if bad:
            raise _invalid(sorted(bad, key=lambda item: item[0]), single=False, total=total)
        return queries

    def _queries(self, submissions: Sequence[FeedbackSubmission]) -> dict[str, QueryRecord]:
        wanted = {s.query_id for s in submissions}
        wanted |= {str(s.data.get("other_query_id")) for s in submissions if s.kind == FeedbackKind.PREFERENCE}
        return self._store.get_queries(sorted(wanted))

    def _reference_problems(self, s: FeedbackSubmission, queries: dict[str, QueryRecord]) -> list[Problem]:
        kind = FeedbackKind(s.kind)
        if kind == FeedbackKind.PREFERENCE:
            other = str(s.data["other_query_id"])
            if other == s.query_id:
                return [Problem("data.other_query_id", "must differ from query_id (the preferred answer)")]
            return [] if other in queries else [Problem("data.other_query_id", f"query {other!r} does not exist")]
        if kind != FeedbackKind.RELEVANCE:
            return []
        query = queries[s.query_id]
        ids = [*s.data.get("relevant", []), *s.data.get("irrelevant", [])]
        unknown = sorted(set(ids) - set(query.chunk_ids))
        if unknown and self._passages is not None:
            unknown = sorted(set(unknown) - set(self._passages.get_passages(query.corpus, unknown)))
        if not unknown:
            return []
        msg = f"chunk ids not retrieved for this query nor in corpus {query.corpus!r}: {', '.join(unknown)}"
        return [Problem("data.relevant", msg)]

    def _store_all(self, submissions: Sequence[FeedbackSubmission], queries: dict[str, QueryRecord]) -> IntakeResult:
        prints = [self._store.pseudonyms.fingerprint(_body(s)) for s in submissions]
        events = self._events(submissions)
        keys = [s.idempotency_key or None for s in submissions]
        ids = self._store.add_events(events, idempotency_keys=keys, fingerprints=prints)
        fresh = {e.id for e in events} & set(ids)
        corrections = [e.id for e in events if e.id in fresh and e.kind == FeedbackKind.CORRECTION]
        logger.info("feedback stored events=%d new=%d corrections=%d", len(ids), len(fresh), len(corrections))
        self.fast_path.on_new(corrections)
        kinds = Counter(str(e.kind) for e in events if e.id in fresh)
        return IntakeResult(ids=ids, created=len(fresh), created_kinds=dict(kinds))

    def _events(self, submissions: Sequence[FeedbackSubmission]) -> list[FeedbackEvent]:
        """Validated events with every free-text field scrubbed (one batched scrubber pass for the whole request)."""
        datas = [normalised_data(s) for s in submissions]
        slots = [(n, name) for n, data in enumerate(datas) for name in TEXT_FIELDS if isinstance(data.get(name), str)]
        texts = [datas[n][name] for n, name in slots]
        scrub_many = getattr(self._scrubber, "scrub_many", None)
        scrubbed = scrub_many(texts) if callable(scrub_many) else [self._scrubber.scrub(t) for t in texts]
        for (n, name), result in zip(slots, scrubbed, strict=True):
            datas[n][name] = result.text
        return [
            FeedbackEvent(
                id=uuid.uuid4().hex,
                query_id=s.query_id,
                kind=FeedbackKind(s.kind),
                data=data,
                user_id=s.user_id,
                tenant=s.tenant,
                rater_id=s.rater_id,
                principal=s.principal,
            )
            for s, data in zip(submissions, datas, strict=True)
        ]

    # ---------------------------------------------------------------------------------------- consent and corrections
    def opt_out(self, user_id: str) -> UserConsent:
        """Exclude the user's future events from every training set (they are still stored)."""
        return self._store.set_opt_out(user_id, opted_out=True)

    def opt_in(self, user_id: str) -> UserConsent:
        """Let the user's future events enter training sets again."""
        return self._store.set_opt_out(user_id, opted_out=False)

    def delete_user_data(self, user_id: str) -> DeletionReport:
        """Delete the user's events and queries and take unsupported live corrections out of the live collection.

        The feedback room's part only; the service's deletion (every collection version, compaction, datasets) is
        :func:`flywheel.privacy.delete_user_data`.
        """
        report = self._store.delete_user_data(user_id)
        self.fast_path.forget(report.corrections)
        logger.info("user data deleted events=%d queries=%d", report.events_deleted, report.queries_deleted)
        return report

    def approve_correction(self, correction_id: str) -> CorrectionRecord:
        """Admin approval of a pending correction (applies it unless the fast path is off)."""
        return self.fast_path.approve(correction_id)

    def revoke_correction(self, correction_id: str) -> CorrectionRecord:
        """Revoke a correction (and its live passage)."""
        return self.fast_path.revoke(correction_id)


def _body(s: FeedbackSubmission) -> dict[str, Any]:
    """What an idempotency key promises to repeat: every field of the submission except the key and principal."""
    fields = {"query_id": s.query_id, "kind": str(FeedbackKind(s.kind)), "data": s.data}
    return {**fields, "user_id": s.user_id, "tenant": s.tenant, "rater_id": s.rater_id}


def _invalid(bad: list[tuple[int, Problem]], *, single: bool, total: int = 1) -> InvalidInputError:
    errors = [{"index": i, "field": p.field, "message": p.message} for i, p in bad]
    if single:
        first = bad[0][1]
        extra = f" (and {len(bad) - 1} more problems)" if len(bad) > 1 else ""
        return InvalidInputError(f"{first.field} {first.message}{extra}", field=first.field, errors=errors)
    indexes = sorted({i for i, _ in bad})
    listed = ", ".join(str(i) for i in indexes)
    return InvalidInputError(
        f"{len(indexes)} of {total} events are invalid (indexes {listed}); nothing was stored", errors=errors
    )
