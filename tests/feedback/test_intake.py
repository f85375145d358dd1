"""FeedbackIntake: every kind, bad input (nothing stored), idempotency, scrubbing, consent, deletion, fast path."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.settings import FeedbackSettings
from core.types import FeedbackKind
from feedback.intake import FeedbackIntake
from feedback.store import CorrectionState, SqlStore
from feedback.validation import FeedbackSubmission

pytestmark = pytest.mark.integration


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    s = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    yield s
    s.close()


def _intake(store: SqlStore, scrubber: Any, index: Any, **settings: Any) -> FeedbackIntake:
    return FeedbackIntake(store, scrubber, FeedbackSettings(**settings), passage_index=index)


@pytest.fixture
def query(sqlite_store: SqlStore, make_query: Any) -> Any:
    q = make_query()
    sqlite_store.record_query(q)
    return q


VALID = [
    (FeedbackKind.THUMBS, {"value": "up"}),
    (FeedbackKind.STARS, {"value": 5}),
    (FeedbackKind.COMMENT, {"text": "Helpful"}),
    (FeedbackKind.ISSUE, {"text": "Outdated link"}),
    (FeedbackKind.USED, {}),
    (FeedbackKind.COPIED, {}),
    (FeedbackKind.EDITED, {"text": "Use the reset link in settings."}),
    (FeedbackKind.ABANDONED, {}),
    (FeedbackKind.REGENERATED, {}),
    (FeedbackKind.DWELL, {"seconds": 12}),
    (FeedbackKind.CORRECTION, {"text": "Open Settings and click Reset."}),
    (FeedbackKind.RELEVANCE, {"relevant": ["c1"], "irrelevant": ["c9"]}),
    (FeedbackKind.MISSING_KNOWLEDGE, {"text": "A page about SSO"}),
    (FeedbackKind.MISSING_KNOWLEDGE, {}),
]


@pytest.mark.parametrize(("kind", "data"), VALID, ids=[f"{k.value}-{i}" for i, (k, _) in enumerate(VALID)])
def test_when_kind_valid_then_event_stored(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any, kind: FeedbackKind, data: dict
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="off")
    event_id = intake.submit(FeedbackSubmission(query_id=query.id, kind=kind, data=data, user_id="u1"))
    stored = sqlite_store.get_event(event_id)
    assert stored.kind == kind and stored.query_id == query.id


def test_when_preference_then_other_query_must_exist(sqlite_store: SqlStore, scrubber: Any, make_query: Any) -> None:
    a, b = make_query(), make_query()
    sqlite_store.record_query(a)
    sqlite_store.record_query(b)
    intake = _intake(sqlite_store, scrubber, None)
    ok = FeedbackSubmission(a.id, FeedbackKind.PREFERENCE, {"other_query_id": b.id, "strength": "clear"})
    assert sqlite_store.get_event(intake.submit(ok)).data["strength"] == "clear"
    with pytest.raises(InvalidInputError, match="does not exist"):
        intake.submit(FeedbackSubmission(a.id, FeedbackKind.PREFERENCE, {"other_query_id": "zz", "strength": "clear"}))
    with pytest.raises(InvalidInputError, match="must differ"):
        intake.submit(FeedbackSubmission(a.id, FeedbackKind.PREFERENCE, {"other_query_id": a.id, "strength": "slight"}))


BAD = [
    ("stars above 5", FeedbackKind.STARS, {"value": 6}, "1 to 5"),
    ("stars below 1", FeedbackKind.STARS, {"value": 0}, "1 to 5"),
    ("stars as bool", FeedbackKind.STARS, {"value": True}, "1 to 5"),
    ("thumbs sideways", FeedbackKind.THUMBS, {"value": "sideways"}, "'up' or 'down'"),
    ("field of another kind", FeedbackKind.THUMBS, {"value": "up", "text": "x"}, "not a field of kind thumbs"),
    ("used with a value", FeedbackKind.USED, {"value": 1}, "not a field of kind used"),
    ("correction without text", FeedbackKind.CORRECTION, {}, "required"),
    ("blank comment", FeedbackKind.COMMENT, {"text": "   "}, "must not be empty"),
    ("oversized text", FeedbackKind.COMMENT, {"text": "x" * 101}, "limit is 100"),
    ("negative dwell", FeedbackKind.DWELL, {"seconds": -1}, "seconds"),
    ("empty relevance", FeedbackKind.RELEVANCE, {}, "at least one"),
    ("relevant and irrelevant", FeedbackKind.RELEVANCE, {"relevant": ["c1"], "irrelevant": ["c1"]}, "both"),
    ("chunk outside query and corpus", FeedbackKind.RELEVANCE, {"relevant": ["nope"]}, "nope"),
    ("preference strength", FeedbackKind.PREFERENCE, {"other_query_id": "x", "strength": "huge"}, "strength"),
    ("unknown kind", "telepathy", {}, "unknown feedback kind"),
]


@pytest.mark.parametrize(("name", "kind", "data", "message"), BAD, ids=[b[0] for b in BAD])
def test_when_input_bad_then_invalid_and_nothing_stored(
    sqlite_store: SqlStore,
    scrubber: Any,
    passage_index: Any,
    query: Any,
    name: str,
    kind: Any,
    data: dict,
    message: str,
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, max_text_chars=100)
    with pytest.raises(InvalidInputError) as info:
        intake.submit(FeedbackSubmission(query.id, kind, data))
    assert message in str(info.value) + str(info.value.detail)
    assert sqlite_store.list_events() == []


def test_when_query_unknown_then_not_found(sqlite_store: SqlStore, scrubber: Any) -> None:
    with pytest.raises(NotFoundError, match="'missing' does not exist"):
        _intake(sqlite_store, scrubber, None).submit(FeedbackSubmission("missing", "used"))


def test_when_batch_has_bad_items_then_every_index_reported_and_none_stored(
    sqlite_store: SqlStore, scrubber: Any, query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, None)
    batch = [
        FeedbackSubmission(query.id, "used"),
        FeedbackSubmission(query.id, "stars", {"value": 9}),
        FeedbackSubmission("missing", "used"),
        FeedbackSubmission(query.id, "thumbs", {"value": "up"}),
    ]
    with pytest.raises(InvalidInputError, match=r"2 of 4 events are invalid \(indexes 1, 2\)") as info:
        intake.submit_batch(batch)
    assert [e["index"] for e in info.value.detail["errors"]] == [1, 2]
    assert sqlite_store.list_events() == []
    with pytest.raises(InvalidInputError, match="at most 2"):
        _intake(sqlite_store, scrubber, None, max_batch=2).submit_batch(batch[:3])
    result = intake.submit_batch([batch[0], batch[3]])
    assert result.created == 2 and len(sqlite_store.list_events()) == 2


def test_when_idempotency_key_repeats_then_stored_once(sqlite_store: SqlStore, scrubber: Any, query: Any) -> None:
    intake = _intake(sqlite_store, scrubber, None)
    sub = FeedbackSubmission(query.id, "thumbs", {"value": "down"}, idempotency_key="retry-1")
    assert intake.submit(sub) == intake.submit(sub)
    assert len(sqlite_store.list_events()) == 1


TICKETS = [
    ("Maria Garcia here, email maria.garcia@example.com", ["Maria Garcia", "maria.garcia@example.com"]),
    ("Card 4111 1111 1111 1111 was charged, call 415-555-2671", ["4111 1111 1111 1111", "415-555-2671"]),
    (
        "Customer John Smith (john@acme.io) wants a refund to DE89 3704 0044 0532 0130 00",
        ["John Smith", "john@acme.io", "DE89 3704 0044 0532 0130 00"],
    ),
]


def test_when_tickets_hold_pii_then_no_raw_pii_in_stored_rows_or_logs(
    sqlite_store: SqlStore, scrubber: Any, query: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    intake = _intake(sqlite_store, scrubber, None)
    for i, (text, _) in enumerate(TICKETS):
        kind = ("comment", "correction", "edited")[i % 3]
        intake.submit(FeedbackSubmission(query.id, kind, {"text": text}, user_id="u1"))
    intake.submit(FeedbackSubmission(query.id, "missing_knowledge", {"question": TICKETS[0][0]}))
    with sqlite_store.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("fb_events", "fb_corrections")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
    raw = [value for _, values in TICKETS for value in values]
    assert [v for v in raw if v in dump] == []
    assert [v for v in raw if v in caplog.text] == []
    assert "<EMAIL_ADDRESS>" in dump and "<CREDIT_CARD>" in dump


def test_when_user_opted_out_then_events_stored_but_excluded(sqlite_store: SqlStore, scrubber: Any, query: Any) -> None:
    intake = _intake(sqlite_store, scrubber, None)
    assert intake.opt_out("u1").opted_out
    intake.submit(FeedbackSubmission(query.id, "used", user_id="u1"))
    assert len(sqlite_store.list_events()) == 1 and sqlite_store.training_events() == []
    assert intake.opt_in("u1").opted_out is False


def _correct(
    intake: FeedbackIntake,
    query: Any,
    principal: str,
    text: str = "Use the reset link on the login page.",
    *,
    rater: str | None = None,
) -> str:
    submission = FeedbackSubmission(query.id, "correction", {"text": text}, rater_id=rater, principal=principal)
    return intake.submit(submission)


def test_when_fast_path_immediate_then_correction_upserted_and_revocable(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="immediate")
    cid = _correct(intake, query, "a1")
    rec = sqlite_store.get_correction(cid)
    assert rec.state == CorrectionState.APPLIED and rec.chunk_id in passage_index.corrections
    assert passage_index.corrections[rec.chunk_id].metadata["source"] == "correction"
    assert intake.revoke_correction(cid).state == CorrectionState.REVOKED
    assert passage_index.corrections == {}
    with pytest.raises(ConflictError, match="already revoked"):
        intake.revoke_correction(cid)


def test_when_fast_path_quorum_then_applied_after_n_distinct_agents(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any, make_query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="quorum", fast_path_quorum=2)
    first = _correct(intake, query, "a1")
    _correct(intake, query, "a1")  # the same agent twice is not a quorum
    for label in ("r-1", "r-2", "r-3"):  # nor is one principal claiming other rater ids
        _correct(intake, query, "a1", rater=label)
    assert sqlite_store.get_correction(first).state == CorrectionState.PENDING
    same_question = make_query(question="how do I reset my password")
    sqlite_store.record_query(same_question)
    second = _correct(intake, same_question, "a2", text="use the reset link on  the login page")
    assert sqlite_store.get_correction(first).state == CorrectionState.APPLIED
    assert sqlite_store.get_correction(second).agreeing == ["a1", "a2"]
    assert len(passage_index.corrections) == 1


def test_when_fast_path_approval_then_applied_only_after_admin_approves(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="approval")
    cid = _correct(intake, query, "a1")
    assert passage_index.corrections == {}
    assert intake.approve_correction(cid).state == CorrectionState.APPLIED
    with pytest.raises(ConflictError, match="not pending"):
        intake.approve_correction(cid)
    with pytest.raises(NotFoundError):
        intake.approve_correction("unknown")


def test_when_fast_path_off_then_approval_only_records(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="off")
    cid = _correct(intake, query, "a1")
    assert intake.approve_correction(cid).state == CorrectionState.APPROVED and passage_index.calls == []


def test_when_user_deleted_then_their_live_correction_is_removed(
    sqlite_store: SqlStore, scrubber: Any, passage_index: Any, query: Any
) -> None:
    intake = _intake(sqlite_store, scrubber, passage_index, fast_path="immediate")
    intake.submit(
        FeedbackSubmission(query.id, "correction", {"text": "The reset link is on the login page."}, user_id="u1")
    )
    assert len(passage_index.corrections) == 1
    report = intake.delete_user_data("u1")
    assert report.events_deleted == 1 and report.queries_deleted == 1
    assert passage_index.corrections == {}
