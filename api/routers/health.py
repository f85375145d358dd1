"""``GET /healthz`` (the process answers) and ``GET /readyz`` (store reachable, index alias present, model loaded,
vector store and query log writable: a read-only or nearly full disk makes the service not ready)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter

from api.deps import ContainerDep
from core.errors import FlywheelError, UpstreamUnavailableError
from flywheel.container import Container
from indexing.stores.diskguard import DiskGuard

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: 200 as long as the process serves requests."""
    return {"status": "ok"}


def readiness_problems(container: Container) -> list[str]:
    """Reasons the service cannot answer queries yet (empty list: ready). Builds nothing that is not built."""
    problems: list[str] = []
    if not container.is_built("embedder"):
        problems.append("embedder not loaded")
    if not container.is_built("router"):
        problems.append("query path not built (scrubber or query log failed at start-up)")
    problems.extend(write_problems(container))
    if not container.is_built("vector_store"):
        return [*problems, "vector store not opened"]
    store = container.vector_store
    corpus = container.settings.indexing.corpus
    try:
        if not store.healthy():
            return [*problems, "vector store unreachable"]
        if store.get_alias(corpus) is None:
            problems.append(f"no index for corpus {corpus!r} (alias missing): run `flywheel index`")
    except FlywheelError as exc:
        problems.append(f"vector store error: {exc.message}")
    return problems


def write_problems(container: Container) -> list[str]:
    """Why the vector store or the query log (SQLite file) cannot take writes now (full or read-only disk)."""
    problems: list[str] = []
    if container.is_built("vector_store"):
        write_problem = getattr(container.vector_store, "write_problem", None)
        reason = write_problem() if callable(write_problem) else None
        if reason:
            problems.append(f"vector store not writable: {reason}")
    settings = container.settings
    if settings.database_url.startswith("sqlite:///"):
        database_dir = Path(settings.database_url.removeprefix("sqlite:///")).parent
        store = settings.store
        guard = DiskGuard(database_dir, min_free_bytes=store.min_free_bytes, min_free_share=store.min_free_share)
        reason = guard.problem()
        if reason:
            problems.append(f"query log not writable: {reason}")
    return problems


@router.get("/readyz")
def readyz(container: ContainerDep) -> dict[str, str]:
    """Readiness: 200 when queries can be answered, else 503 problem+json naming every reason."""
    problems = readiness_problems(container)
    if problems:
        logger.warning("not ready reasons=%d", len(problems))
        raise UpstreamUnavailableError("not ready: " + "; ".join(problems), retry_after_s=5, reasons=problems)
    return {"status": "ready", "corpus": container.settings.indexing.corpus}
