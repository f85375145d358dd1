"""flywheel.state on SQLite and PostgreSQL: migrations, jobs, cycles, deployments, lineage edges."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.errors import NotFoundError
from flywheel.state import VERSION_TABLE, DeploymentRecord, JobStatus, LineageEdge, StateStore, new_id

pytestmark = pytest.mark.integration


def test_when_migrated_then_own_version_table_and_tables_exist(state: StateStore) -> None:
    names = set(sa.inspect(state.engine).get_table_names())
    assert {"fw_jobs", "fw_cycles", "fw_deployments", "fw_lineage", VERSION_TABLE} <= names
    assert "alembic_version" not in names  # the feedback store's version table is never created by us


def test_when_migrated_twice_then_idempotent(state: StateStore) -> None:
    again = StateStore(state.url)
    assert again.list_jobs() == []
    again.close()


def test_job_lifecycle_round_trips(state: StateStore) -> None:
    job = state.create_job("cycle", {"corpus": "faq"})
    state.update_job(job.id, status=JobStatus.RUNNING, step="train", progress=0.5, result={"k": [1, 2]})
    got = state.get_job(job.id)
    assert (got.status, got.step, got.progress, got.params, got.result) == (
        JobStatus.RUNNING,
        "train",
        0.5,
        {"corpus": "faq"},
        {"k": [1, 2]},
    )
    assert got.created_at is not None and got.created_at.tzinfo is not None
    assert [j.id for j in state.list_jobs(statuses=(JobStatus.RUNNING,))] == [job.id]
    assert state.list_jobs(kind="reindex") == []


def test_when_unknown_ids_then_not_found(state: StateStore) -> None:
    with pytest.raises(NotFoundError):
        state.get_job("nope")
    with pytest.raises(NotFoundError):
        state.update_job("nope", step="x")
    with pytest.raises(NotFoundError):
        state.get_cycle("nope")
    with pytest.raises(NotFoundError):
        state.get_deployment("nope")


def test_cycle_round_trips_json_columns(state: StateStore) -> None:
    cycle = state.create_cycle("faq", job_id="j1")
    steps = [{"name": "curate", "status": "succeeded", "seconds": 1.5}]
    state.update_cycle(cycle.id, steps=steps, gate_verdict={"passed": True, "reasons": []}, status="promoted")
    got = state.get_cycle(cycle.id)
    assert got.steps == steps and got.gate_verdict == {"passed": True, "reasons": []} and got.status == "promoted"
    assert [c.id for c in state.list_cycles(status="promoted")] == [cycle.id]


def test_record_deployment_supersedes_previous(state: StateStore) -> None:
    first = state.record_deployment(DeploymentRecord(new_id(), "faq", "active", "faq__v1", {"embedder": "base"}))
    second = state.record_deployment(
        DeploymentRecord(new_id(), "faq", "active", "faq__v2", {"embedder": "v1"}, previous={"collection": "faq__v1"})
    )
    current = state.current_deployment("faq")
    assert current is not None and current.id == second.id and current.previous == {"collection": "faq__v1"}
    assert state.get_deployment(first.id).status == "superseded"
    assert state.current_deployment("other") is None


def test_lineage_edges_deduplicate(state: StateStore) -> None:
    edge = LineageEdge("dataset", "contrastive:v1", "model", "embedder:v1", "trained")
    assert state.add_edges([edge, edge]) == 1
    assert state.add_edges([edge]) == 0
    assert state.edges_to("model", "embedder:v1") == [edge]
    assert state.edges_from("dataset", "contrastive:v1") == [edge]


def test_when_database_unreachable_then_every_call_is_upstream_unavailable() -> None:
    from core.errors import UpstreamUnavailableError

    down = StateStore("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2", migrate=False)
    for call in (down.list_jobs, lambda: down.get_job("x"), lambda: down.create_job("eval"), down.list_cycles):
        with pytest.raises(UpstreamUnavailableError) as info:
            call()
        assert info.value.retry_after_s == 1.0
    with pytest.raises(UpstreamUnavailableError):
        StateStore("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")  # migrating on start-up too
    down.close()


def test_when_sqlite_then_state_and_feedback_share_one_engine_setup(tmp_path) -> None:
    from feedback.store import SqlStore

    url = f"sqlite:///{tmp_path / 'flywheel.db'}"
    pragmas = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "secure_delete")
    seen = []
    for engine in (StateStore(url).engine, SqlStore(url).engine):
        with engine.connect() as conn:
            seen.append([conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas])
    assert seen[0] == seen[1] and seen[0][0] == "wal"
