"""Issue 14 at the store, on SQLite and PostgreSQL alike: NUL is bad input (never a 500), identifiers of 200
characters fit, identifiers are stored as keyed hashes, idempotency keys are scoped to principal and body, deletion
reaches rows written before pseudonyms and leaves no trace in the SQLite files."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import ConflictError, InvalidInputError
from core.types import FeedbackEvent, FeedbackKind
from feedback.store import SqlStore
from feedback.store.pseudonyms import Pseudonymizer, load_or_create_key

pytestmark = pytest.mark.integration


def _event(query_id: str, *, principal: str | None = "key:a", **fields: object) -> FeedbackEvent:
    data = fields.pop("data", {"value": "up"})
    return FeedbackEvent(uuid.uuid4().hex, query_id, FeedbackKind.THUMBS, data, principal=principal, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [{"user_id": "u\x00"}, {"tenant": "t\x00"}, {"rater_id": "r\x00"}, {"data": {"value": "up", "x\x00": "k"}}],
)
def test_when_event_holds_nul_then_invalid_input_on_every_backend(store: SqlStore, make_query, fields: dict) -> None:
    q = make_query()
    store.record_query(q)
    with pytest.raises(InvalidInputError):
        store.add_events([_event(q.id, **fields)], idempotency_keys=[None])
    assert store.list_events() == []


@pytest.mark.parametrize("field", ["question", "answer", "user_id"])
def test_when_query_record_holds_nul_then_invalid_input(store: SqlStore, make_query, field: str) -> None:
    q = make_query()
    setattr(q, field, "a\x00b")
    with pytest.raises(InvalidInputError, match=field):
        store.record_query(q)


def test_when_identifiers_are_200_characters_then_they_are_stored(store: SqlStore, make_query) -> None:
    q = make_query(user_id="u" * 200)
    q.tenant = "t" * 200
    store.record_query(q)
    event = _event(q.id, user_id="u" * 200, tenant="t" * 200, rater_id="r" * 200, principal="key:" + "p" * 196)
    store.add_events([event], idempotency_keys=["k" * 200])
    assert store.get_event(event.id).principal == "key:" + "p" * 196
    assert store.delete_user_data("u" * 200).events_deleted == 1


def test_when_identifiers_stored_then_only_pseudonyms_reach_the_tables(store: SqlStore, make_query) -> None:
    q = make_query(user_id="alice@example.com")
    store.record_query(q)
    store.add_events([_event(q.id, user_id="alice@example.com", rater_id="agent-7")], idempotency_keys=[None])
    store.set_opt_out("alice@example.com", opted_out=True)
    with store.engine.connect() as conn:
        dump = str([conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in ("fb_queries", "fb_events", "fb_users")])
    assert "alice" not in dump and "agent-7" not in dump
    stored = store.list_events()[0]
    assert stored.user_id == store.pseudonyms.of("user", "alice@example.com") and stored.rater_id.startswith("r_")
    assert store.get_consent("alice@example.com").opted_out
    report = store.delete_user_data("alice@example.com")
    assert (report.events_deleted, report.queries_deleted) == (1, 1)


def test_when_rows_predate_pseudonyms_then_deletion_still_finds_them(store: SqlStore, make_query) -> None:
    q = make_query(user_id=None)
    store.record_query(q)
    event = _event(q.id)
    store.add_events([event], idempotency_keys=[None])
    with store.engine.begin() as conn:  # a row as fb0001 stored it: the raw id
        conn.execute(sa.text("UPDATE fb_events SET user_id = 'legacy-bob' WHERE id = :i"), {"i": event.id})
    assert store.delete_user_data("legacy-bob").events_deleted == 1


def test_when_idempotency_key_reused_then_scoped_to_principal_and_body(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    first = store.add_events([_event(q.id, principal="key:a")], idempotency_keys=["k1"], fingerprints=["body-1"])
    again = store.add_events([_event(q.id, principal="key:a")], idempotency_keys=["k1"], fingerprints=["body-1"])
    assert again == first
    with pytest.raises(ConflictError, match="different request body"):
        store.add_events([_event(q.id, principal="key:a")], idempotency_keys=["k1"], fingerprints=["body-2"])
    other = store.add_events([_event(q.id, principal="key:b")], idempotency_keys=["k1"], fingerprints=["body-1"])
    assert other != first and len(store.list_events()) == 2


def test_when_sqlite_rows_deleted_then_text_is_gone_from_db_and_wal(tmp_path: Path, make_query) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    q = make_query(user_id="carol")
    store.record_query(q)
    marker = "Marmalade-portcullis correction text"
    event = FeedbackEvent(uuid.uuid4().hex, q.id, FeedbackKind.CORRECTION, {"text": marker}, user_id="carol")
    store.add_events([event], idempotency_keys=[None])
    assert any(marker.encode() in p.read_bytes() for p in tmp_path.iterdir())
    store.delete_user_data("carol")
    store.purge_freed_space()
    assert [p.name for p in tmp_path.iterdir() if marker.encode() in p.read_bytes()] == []
    store.close()


def test_when_key_file_is_missing_then_created_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pseudonym.key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key and (path.stat().st_mode & 0o777) == 0o600
    assert Pseudonymizer(key).of("user", "x") == Pseudonymizer(key).of("user", "x") != Pseudonymizer(b"k" * 32).of(
        "user", "x"
    )


def test_when_fb0002_downgraded_and_upgraded_then_columns_follow(store: SqlStore) -> None:
    from alembic import command
    from alembic.config import Config

    from feedback.store.engine import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))

    def columns() -> dict[str, object]:
        return {c["name"]: c["type"] for c in sa.inspect(store.engine).get_columns("fb_events")}

    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "fb0001")
    assert "principal" not in columns() and columns()["user_id"].length == 128  # type: ignore[attr-defined]
    store.migrate()
    assert "principal" in columns() and columns()["user_id"].length == 200  # type: ignore[attr-defined]


def test_when_in_process_callers_send_nul_then_the_same_rule_applies(store: SqlStore, scrubber, make_query) -> None:
    from core.settings import FeedbackSettings
    from feedback.auth import ApiKeyService
    from feedback.intake import FeedbackIntake
    from feedback.validation import FeedbackSubmission, check

    with pytest.raises(InvalidInputError, match="name"):
        ApiKeyService(store).create("agent", name="cli\x00key")
    bad = FeedbackSubmission("q1", "comment", {"text": "a\x00b"})
    assert [p.field for p in check(bad, max_text_chars=100)] == ["data.text"]
    long_id = FeedbackSubmission("q1", "used", {}, user_id="u" * 201)
    assert [p.field for p in check(long_id, max_text_chars=100)] == ["user_id"]
    q = make_query()
    store.record_query(q)
    intake = FeedbackIntake(store, scrubber, FeedbackSettings())
    with pytest.raises(InvalidInputError) as info:
        intake.submit(FeedbackSubmission(q.id, "comment", {"text": "a\x00"}))
    assert info.value.detail["field"] == "data.text" and store.list_events() == []
