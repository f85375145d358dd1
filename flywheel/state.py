"""Loop state: jobs, cycles, deployments and lineage edges in the metadata database.

Uses the same SQLAlchemy URL as the feedback store (``settings.database_url``: SQLite file by default, PostgreSQL
when configured) and the same persistence base (:mod:`feedback.store.engine`: engine set-up and SQLite pragmas,
Alembic runner, database-error translation, so an outage is a 503, never a 500), but owns its tables (``fw_*``) and
its own Alembic environment (``flywheel/migrations``, version table ``alembic_version_flywheel``), so it never
touches the feedback schema. :class:`StateStore` runs the
migrations on construction and exposes small typed operations; every write commits before it returns.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import NotFoundError
from core.types import utcnow
from feedback.store.engine import make_engine, translate_errors
from feedback.store.engine import run_migrations as run_schema_migrations
from flywheel.state_tables import (
    ACTIVE_JOB_STATUSES,
    VERSION_TABLE,
    JobStatus,
    cycles_table,
    deployments_table,
    jobs_table,
    lineage_table,
    metadata,
)

logger = logging.getLogger(__name__)


__all__ = ["ACTIVE_JOB_STATUSES", "VERSION_TABLE", "JobStatus", "metadata"]


@dataclass(slots=True)
class JobRecord:
    """A job row. ``progress`` is 0..1; ``result`` is the handler's JSON result."""

    id: str
    kind: str
    status: JobStatus
    step: str | None = None
    progress: float = 0.0
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    cancel_requested: bool = False
    heartbeat_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class CycleRecord:
    """A cycle row; ``steps`` is a list of ``{name, status, started_at, seconds, detail}`` dicts."""

    id: str
    corpus: str
    status: str
    job_id: str | None = None
    reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)
    candidate_models: dict[str, Any] = field(default_factory=dict)
    candidate_collection: str | None = None
    eval_results: dict[str, Any] | None = None
    gate_verdict: dict[str, Any] | None = None
    guardrails: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    report_path: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class DeploymentRecord:
    """One deployment state of a corpus. ``models`` maps kind -> version (``embedder``, ``reranker``,
    ``generator``); ``previous`` holds the collection + models it replaced (rollback target); ``canary`` holds
    ``{collection, models, share, mode, started_at, cycle_id}`` while a candidate is on trial."""

    id: str
    corpus: str
    status: str
    live_collection: str | None
    models: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    cycle_id: str | None = None
    note: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """``from`` fed ``to`` (``relation`` e.g. ``trained``, ``curated``, ``built``, ``deployed``)."""

    from_kind: str
    from_id: str
    to_kind: str
    to_id: str
    relation: str


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def run_migrations(engine: Engine) -> None:
    """Upgrade the flywheel tables to head with this package's Alembic environment (own version table)."""
    run_schema_migrations(engine, script_location=MIGRATIONS_DIR, label="flywheel")


def new_id() -> str:
    """A fresh random id (uuid4 hex with dashes)."""
    return str(uuid.uuid4())


def _row_dict(row: Any) -> dict[str, Any]:
    return {key: _aware(value) for key, value in row._mapping.items()}


def _aware(value: Any) -> Any:
    # SQLite drops tzinfo; every stored timestamp is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value


class StateStore:
    """Typed access to the loop tables. Construct once per process (the container does); thread-safe.

    Args:
        url: SQLAlchemy URL (``settings.database_url``).
        migrate: run this package's Alembic migrations first (default on).
    Raises:
        UpstreamUnavailableError: the database cannot be reached (here or on any later call).
        StorageError: any other database failure.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            run_migrations(self.engine)

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One committed transaction with translated errors."""
        with translate_errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A read connection with translated errors."""
        with translate_errors(), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        """Dispose the connection pool."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------------------------ jobs
    def create_job(
        self, kind: str, params: dict[str, Any] | None = None, *, status: JobStatus = JobStatus.QUEUED
    ) -> JobRecord:
        """Insert a new job and return it."""
        now = utcnow()
        job = JobRecord(
            id=new_id(), kind=kind, status=status, params=dict(params or {}), created_at=now, updated_at=now
        )
        values = {
            k: getattr(job, k) for k in ("id", "kind", "status", "progress", "params", "created_at", "updated_at")
        }
        with self._begin() as conn:
            conn.execute(jobs_table.insert().values(**values, cancel_requested=False))
        return job

    def get_job(self, job_id: str) -> JobRecord:
        """Job by id. Raises ``NotFoundError``."""
        with self._connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist", job_id=job_id)
        data = _row_dict(row)
        data["status"] = JobStatus(data["status"])
        return JobRecord(**data)

    def update_job(self, job_id: str, **values: Any) -> None:
        """Update job columns (``status``, ``step``, ``progress``, ``error``, ``result``, ``heartbeat_at`` ...)."""
        values["updated_at"] = utcnow()
        with self._begin() as conn:
            result = conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(**values))
        if result.rowcount == 0:
            raise NotFoundError(f"job {job_id} does not exist", job_id=job_id)

    def list_jobs(self, *, kind: str | None = None, statuses: tuple[str, ...] = (), limit: int = 50) -> list[JobRecord]:
        """Jobs, newest first, optionally filtered by kind and status."""
        query = sa.select(jobs_table).order_by(jobs_table.c.created_at.desc()).limit(limit)
        if kind:
            query = query.where(jobs_table.c.kind == kind)
        if statuses:
            query = query.where(jobs_table.c.status.in_([str(s) for s in statuses]))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            data = _row_dict(row)
            data["status"] = JobStatus(data["status"])
            out.append(JobRecord(**data))
        return out

    # ---------------------------------------------------------------------------------------------- cycles
    def create_cycle(self, corpus: str, *, job_id: str | None = None) -> CycleRecord:
        """Insert a new ``running`` cycle."""
        now = utcnow()
        cycle = CycleRecord(id=new_id(), corpus=corpus, status="running", job_id=job_id, created_at=now, updated_at=now)
        with self._begin() as conn:
            conn.execute(
                cycles_table.insert().values(
                    id=cycle.id, corpus=corpus, status=cycle.status, job_id=job_id, steps=[], datasets={},
                    candidate_models={}, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        return cycle

    def get_cycle(self, cycle_id: str) -> CycleRecord:
        """Cycle by id. Raises ``NotFoundError``."""
        with self._connect() as conn:
            row = conn.execute(sa.select(cycles_table).where(cycles_table.c.id == cycle_id)).first()
        if row is None:
            raise NotFoundError(f"cycle {cycle_id} does not exist", cycle_id=cycle_id)
        return CycleRecord(**_row_dict(row))

    def update_cycle(self, cycle_id: str, **values: Any) -> None:
        """Update cycle columns."""
        values["updated_at"] = utcnow()
        with self._begin() as conn:
            result = conn.execute(cycles_table.update().where(cycles_table.c.id == cycle_id).values(**values))
        if result.rowcount == 0:
            raise NotFoundError(f"cycle {cycle_id} does not exist", cycle_id=cycle_id)

    def list_cycles(self, *, status: str | None = None, limit: int = 50) -> list[CycleRecord]:
        """Cycles, newest first."""
        query = sa.select(cycles_table).order_by(cycles_table.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(cycles_table.c.status == status)
        with self._connect() as conn:
            return [CycleRecord(**_row_dict(row)) for row in conn.execute(query).all()]

    # ----------------------------------------------------------------------------------------- deployments
    def current_deployment(self, corpus: str) -> DeploymentRecord | None:
        """The newest ``active`` deployment of ``corpus`` (``None`` before the first one)."""
        query = (
            sa.select(deployments_table)
            .where(deployments_table.c.corpus == corpus, deployments_table.c.status == "active")
            .order_by(deployments_table.c.created_at.desc())
            .limit(1)
        )
        with self._connect() as conn:
            row = conn.execute(query).first()
        return DeploymentRecord(**_row_dict(row)) if row is not None else None

    def record_deployment(self, record: DeploymentRecord) -> DeploymentRecord:
        """Make ``record`` the active deployment of its corpus; earlier active ones become ``superseded``. Atomic."""
        now = utcnow()
        record.created_at = record.created_at or now
        record.updated_at = now
        record.status = "active"
        with self._begin() as conn:
            conn.execute(
                deployments_table.update()
                .where(deployments_table.c.corpus == record.corpus, deployments_table.c.status == "active")
                .values(status="superseded", updated_at=now)
            )
            conn.execute(deployments_table.insert().values(**_record_values(record)))
        return record

    def update_deployment(self, deployment_id: str, **values: Any) -> None:
        """Update deployment columns (e.g. ``canary``)."""
        values["updated_at"] = utcnow()
        with self._begin() as conn:
            conn.execute(deployments_table.update().where(deployments_table.c.id == deployment_id).values(**values))

    def list_deployments(self, corpus: str, *, limit: int = 50) -> list[DeploymentRecord]:
        """Deployments of ``corpus``, newest first."""
        query = (
            sa.select(deployments_table)
            .where(deployments_table.c.corpus == corpus)
            .order_by(deployments_table.c.created_at.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            return [DeploymentRecord(**_row_dict(row)) for row in conn.execute(query).all()]

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """Deployment by id. Raises ``NotFoundError``."""
        with self._connect() as conn:
            row = conn.execute(sa.select(deployments_table).where(deployments_table.c.id == deployment_id)).first()
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} does not exist", deployment_id=deployment_id)
        return DeploymentRecord(**_row_dict(row))

    # --------------------------------------------------------------------------------------------- lineage
    def add_edges(self, edges: list[LineageEdge]) -> int:
        """Insert lineage edges, ignoring ones that already exist; returns how many were new (one transaction)."""
        added = 0
        by_target: dict[tuple[str, str], list[LineageEdge]] = {}
        for edge in edges:
            by_target.setdefault((edge.to_kind, edge.to_id), []).append(edge)
        now = utcnow()
        with self._begin() as conn:
            for (to_kind, to_id), group in by_target.items():
                cond = sa.and_(lineage_table.c.to_kind == to_kind, lineage_table.c.to_id == to_id)
                cols = sa.select(lineage_table.c.from_kind, lineage_table.c.from_id).where(cond)
                existing = {(k, i) for k, i in conn.execute(cols).all()}
                fresh = {(e.from_kind, e.from_id): e for e in group if (e.from_kind, e.from_id) not in existing}
                if fresh:
                    rows = [{**_edge_values(e), "created_at": now} for e in fresh.values()]
                    conn.execute(lineage_table.insert(), rows)
                    added += len(rows)
        return added

    def edges_from(self, kind: str, node_id: str) -> list[LineageEdge]:
        """Edges leaving ``kind/node_id`` (what it fed)."""
        cond = sa.and_(lineage_table.c.from_kind == kind, lineage_table.c.from_id == node_id)
        return self._edges(cond)

    def edges_to(self, kind: str, node_id: str) -> list[LineageEdge]:
        """Edges entering ``kind/node_id`` (what it came from)."""
        cond = sa.and_(lineage_table.c.to_kind == kind, lineage_table.c.to_id == node_id)
        return self._edges(cond)

    def _edges(self, cond: Any) -> list[LineageEdge]:
        cols = [lineage_table.c[k] for k in ("from_kind", "from_id", "to_kind", "to_id", "relation")]
        with self._connect() as conn:
            rows = conn.execute(sa.select(*cols).where(cond).order_by(lineage_table.c.id)).all()
        return [LineageEdge(*row) for row in rows]


def _record_values(record: DeploymentRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in DeploymentRecord.__slots__}


def _edge_values(edge: LineageEdge) -> dict[str, Any]:
    return {name: getattr(edge, name) for name in LineageEdge.__slots__}
