"""One shared suite for the feedback store, run on SQLite (tmp file) and on the real PostgreSQL server."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.errors import ConflictError, InvalidInputError, NotFoundError, UpstreamUnavailableError
from core.ports import FeedbackStore, ProvenanceLedger, QueryLog
from core.types import FeedbackEvent, FeedbackKind, utcnow
from feedback.store import CorrectionState, Role, SqlStore

pytestmark = pytest.mark.integration


def _event(query_id: str, kind: FeedbackKind = FeedbackKind.THUMBS, **data: object) -> FeedbackEvent:
    return FeedbackEvent(id=uuid.uuid4().hex, query_id=query_id, kind=kind, data=data or {"value": "up"}, user_id="u1")


def test_when_store_built_then_it_implements_the_ports(store: SqlStore) -> None:
    assert isinstance(store, FeedbackStore)
    assert isinstance(store, QueryLog)
    assert store.healthy()


def test_when_migrate_runs_twice_then_schema_is_unchanged(store: SqlStore) -> None:
    store.migrate()
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"fb_queries", "fb_events", "fb_users", "fb_api_keys", "fb_corrections"} <= tables
    assert "alembic_version_feedback" in tables


def test_when_migrated_then_schema_matches_models(store: SqlStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from feedback.store.models import Base

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": lambda o, n, t, r, c: not (t == "table" and n and not n.startswith("fb_"))}
        )
        diff = [d for d in compare_metadata(ctx, Base.metadata)]
    assert diff == []


def test_when_query_recorded_then_it_round_trips(store: SqlStore, make_query) -> None:
    record = make_query()
    store.record_query(record)
    got = store.get_query(record.id)
    assert got.question == record.question and got.chunk_ids == record.chunk_ids
    assert got.created_at == record.created_at.replace(microsecond=got.created_at.microsecond)
    assert got.created_at.tzinfo is not None
    assert set(store.get_queries([record.id, "unknown"])) == {record.id}


def test_when_query_id_unknown_then_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_query("nope")


def test_when_query_recorded_twice_then_conflict(store: SqlStore, make_query) -> None:
    record = make_query()
    store.record_query(record)
    with pytest.raises(ConflictError):
        store.record_query(record)


def test_when_events_added_then_listed_oldest_first_with_filters(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    first = _event(q.id)
    second = _event(q.id, FeedbackKind.STARS, value=4)
    second.created_at = first.created_at + timedelta(seconds=1)
    assert store.add_events([first, second], idempotency_keys=[None, None]) == [first.id, second.id]
    assert [e.id for e in store.list_events(query_id=q.id)] == [first.id, second.id]
    assert [e.id for e in store.list_events(kind=FeedbackKind.STARS)] == [second.id]
    assert [e.id for e in store.list_events(since=second.created_at)] == [second.id]
    assert store.get_event(second.id).data == {"value": 4}


def test_when_idempotency_key_repeats_then_first_id_returned_and_stored_once(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    first = store.add_events([_event(q.id)], idempotency_keys=["key-1"])
    again = store.add_events([_event(q.id)], idempotency_keys=["key-1"])
    assert first == again
    assert len(store.list_events(query_id=q.id)) == 1


def test_when_one_event_of_a_batch_is_bad_then_none_is_stored(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    with pytest.raises(NotFoundError):
        store.add_events([_event(q.id), _event("missing")], idempotency_keys=[None, None])
    assert store.list_events() == []


def test_when_keys_and_events_differ_in_length_then_invalid(store: SqlStore) -> None:
    with pytest.raises(InvalidInputError):
        store.add_events([], idempotency_keys=[None])


def test_when_user_opted_out_then_events_are_excluded_from_training(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    store.add_events([_event(q.id)], idempotency_keys=[None])
    consent = store.set_opt_out("u1", opted_out=True)
    assert consent.opted_out and consent.opted_out_at is not None
    store.add_events([_event(q.id)], idempotency_keys=[None])
    assert len(store.list_events()) == 2
    assert store.list_events(include_excluded=False) != store.list_events()
    assert store.training_events() == []  # opted out now: earlier events are kept out too
    store.set_opt_out("u1", opted_out=False)
    assert len(store.training_events()) == 1  # the event given while opted out stays excluded
    assert store.get_consent("never-seen").opted_out is False


def test_when_provenance_checked_then_only_consented_present_events_are_usable(store: SqlStore, make_query) -> None:
    mine, other = make_query(user_id="u1"), make_query(user_id="u2")
    store.record_query(mine)
    store.record_query(other)
    a, b = (
        _event(mine.id),
        FeedbackEvent(id=uuid.uuid4().hex, query_id=other.id, kind=FeedbackKind.USED, data={}, user_id="u2"),
    )
    store.add_events([a, b], idempotency_keys=[None, None])
    assert isinstance(store, ProvenanceLedger)
    assert store.usable_event_ids([a.id, b.id, "never-stored"]) == {a.id, b.id}
    store.set_opt_out("u2", opted_out=True)
    assert store.usable_event_ids([a.id, b.id]) == {a.id}
    store.delete_user_data("u1")
    assert store.usable_event_ids([a.id, b.id]) == set()
    assert store.usable_event_ids([]) == set()


def test_when_user_deleted_then_events_and_queries_go_and_usage_is_reported(store: SqlStore, make_query) -> None:
    mine, other = make_query(user_id="u1"), make_query(user_id="u2")
    store.record_query(mine)
    store.record_query(other)
    ev = _event(mine.id, FeedbackKind.CORRECTION, text="fixed")
    keep = FeedbackEvent(id=uuid.uuid4().hex, query_id=other.id, kind=FeedbackKind.USED, data={}, user_id="u2")
    store.add_events([ev, keep], idempotency_keys=[None, None])
    store.record_dataset_usage("contrastive", 1, ["u1", "u2"])
    store.record_dataset_usage("sft", 2, ["u2"])
    store.record_model_datasets("emb-3", ["contrastive/v1"])
    store.record_model_datasets("lora-1", ["sft/v2"])
    report = store.delete_user_data("u1")
    assert (report.events_deleted, report.queries_deleted) == (1, 1)
    assert report.datasets == ["contrastive/v1"] and report.models == ["emb-3"]
    assert [c.id for c in report.corrections] == [ev.id]
    assert [e.id for e in store.list_events()] == [keep.id]
    with pytest.raises(NotFoundError):
        store.get_query(mine.id)


def test_when_model_dataset_ref_malformed_then_invalid(store: SqlStore) -> None:
    with pytest.raises(InvalidInputError, match="<kind>/v<n>"):
        store.record_model_datasets("m", ["contrastive-1"])


def test_when_api_keys_added_then_found_by_hash_and_revoked_once(store: SqlStore) -> None:
    rec = store.add_api_key(key_id="k1", name="bot", role=Role.AGENT, key_hash="a" * 64)
    assert store.find_api_key("a" * 64) == rec
    with pytest.raises(ConflictError):
        store.add_api_key(key_id="k2", name="dup", role=Role.AGENT, key_hash="a" * 64)
    assert store.revoke_api_key("k1").revoked_at is not None
    with pytest.raises(ConflictError, match="already revoked"):
        store.revoke_api_key("k1")
    with pytest.raises(NotFoundError):
        store.revoke_api_key("nope")


def test_when_correction_event_stored_then_pending_correction_exists(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    [cid] = store.add_events(
        [_event(q.id, FeedbackKind.CORRECTION, text="Use settings > reset")], idempotency_keys=[None]
    )
    rec = store.get_correction(cid)
    assert rec.state == CorrectionState.PENDING and rec.corpus == "faq"
    store.update_corrections([cid], state=CorrectionState.APPLIED, chunk_id="x", agreeing=["u1"])
    assert store.get_correction(cid).chunk_id == "x"
    assert [c.id for c in store.list_corrections(state=CorrectionState.APPLIED)] == [cid]


def test_when_writers_race_on_one_idempotency_key_then_one_event_is_stored(store: SqlStore, make_query) -> None:
    q = make_query()
    store.record_query(q)
    results: list[list[str]] = []

    def submit() -> None:
        results.append(store.add_events([_event(q.id)], idempotency_keys=["race"]))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({tuple(r) for r in results}) == 1 and len(results) == 4
    assert len(store.list_events()) == 1


@pytest.mark.unit
def test_when_database_unreachable_then_upstream_unavailable() -> None:
    with pytest.raises(UpstreamUnavailableError):
        SqlStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")


@pytest.mark.unit
def test_when_sqlite_store_opened_then_wal_mode_is_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    s.close()


@pytest.mark.unit
def test_when_timestamps_cross_backends_then_they_stay_utc(tmp_path, make_query) -> None:  # type: ignore[no-untyped-def]
    s = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    q = make_query()
    q.created_at = utcnow()
    s.record_query(q)
    assert s.get_query(q.id).created_at == q.created_at
    s.close()
