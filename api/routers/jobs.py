"""``POST /v1/jobs`` (reindex | cycle | curate | eval), ``GET /v1/jobs``, ``GET /v1/jobs/{id}``,
``POST /v1/jobs/{id}/cancel``. A second cycle (or reindex) while one runs is a 409 naming the running job.
The use cases live in :mod:`flywheel.operations`; the routes translate I/O."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Admin, ContainerDep, Reader, require_json
from api.schemas.loop import JobCreate, JobPublic
from flywheel.operations import Operations

router = APIRouter(tags=["jobs"])


@router.post("/v1/jobs", status_code=202, response_model=JobPublic, dependencies=[Depends(require_json)])
def create_job(body: JobCreate, container: ContainerDep, principal: Admin) -> JobPublic:
    """Queue a job; it runs in the background. Poll ``GET /v1/jobs/{id}``."""
    return JobPublic(**Operations(container).submit_job(body.kind, body.params))


@router.get("/v1/jobs", response_model=list[JobPublic])
def list_jobs(
    container: ContainerDep,
    principal: Reader,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JobPublic]:
    """Recent jobs, newest first."""
    return [JobPublic(**job) for job in Operations(container).jobs(kind=kind, limit=limit)]


@router.get("/v1/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, container: ContainerDep, principal: Reader) -> JobPublic:
    """A job's status, step, progress, error and result."""
    return JobPublic(**Operations(container).job(job_id))


@router.post("/v1/jobs/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel_job(job_id: str, container: ContainerDep, principal: Admin) -> JobPublic:
    """Request cancellation (a running job stops at its next step or progress report, within seconds even while
    embedding or training; 409 if it already finished)."""
    return JobPublic(**Operations(container).cancel_job(job_id))
