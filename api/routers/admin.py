"""Admin endpoints of the deployment: ``GET /v1/admin/deployment``, ``POST /v1/admin/promote``,
``POST /v1/admin/rollback``, ``GET /v1/admin/canary``, ``POST /v1/admin/canary/evaluate``,
``POST /v1/admin/cycles/{id}/override`` (mark a failed gate verdict passed, with a reason), ``POST /v1/admin/curate``
(curate the feedback into dataset versions now). The use cases live in :mod:`flywheel.operations`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.deps import Admin, ContainerDep, Reader, require_json
from api.schemas.loop import CurateRequest, DeploymentPublic, OverrideRequest, PromoteRequest, RollbackRequest
from flywheel.operations import Operations

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/deployment", response_model=DeploymentPublic)
def deployment(container: ContainerDep, principal: Reader) -> DeploymentPublic:
    """The active deployment (live collection, model versions, previous, canary)."""
    return DeploymentPublic(**Operations(container).deployment())


@router.post("/v1/admin/promote", response_model=DeploymentPublic, dependencies=[Depends(require_json)])
def promote(body: PromoteRequest, container: ContainerDep, principal: Admin) -> DeploymentPublic:
    """Promote a candidate (cycle id or collection; default the running canary). 409 for a gate-failed candidate
    unless ``force`` with a ``reason`` (recorded with the verdict, with the admin's key id)."""
    ops = Operations(container)
    record = ops.promote(body.candidate, force=body.force, reason=body.reason, actor=principal.key_id)
    return DeploymentPublic(**record)


@router.post("/v1/admin/rollback", response_model=DeploymentPublic, dependencies=[Depends(require_json)])
def rollback(container: ContainerDep, principal: Admin, body: RollbackRequest | None = None) -> DeploymentPublic:
    """End a running canary, else restore the previous alias target + model versions in one step."""
    return DeploymentPublic(**Operations(container).rollback(reason=(body or RollbackRequest()).reason))


@router.get("/v1/admin/canary")
def canary_status(container: ContainerDep, principal: Reader) -> dict[str, Any]:
    """The running canary and its online comparison (per-arm up-rate, used rate, correction rate, test)."""
    return container.deployer.canary_status()


@router.post("/v1/admin/canary/evaluate")
def canary_evaluate(container: ContainerDep, principal: Admin) -> dict[str, Any]:
    """Compare the arms now and act on it: promote, roll back, or continue."""
    return container.deployer.evaluate_canary().to_json()


@router.post("/v1/admin/cycles/{cycle_id}/override", dependencies=[Depends(require_json)])
def override_gate(cycle_id: str, body: OverrideRequest, container: ContainerDep, principal: Admin) -> dict[str, Any]:
    """Record an admin override of a failed gate verdict (the candidate may then be promoted without ``force``)."""
    return Operations(container).override_gate(cycle_id, admin=principal.key_id, reason=body.reason)


@router.post("/v1/admin/curate", dependencies=[Depends(require_json)])
def curate(container: ContainerDep, principal: Admin, body: CurateRequest | None = None) -> dict[str, Any]:
    """Curate the consented feedback into new dataset versions now (what ``flywheel curate`` does): the report's
    ``written`` versions, ``rows`` per dataset, ``dropped`` counts, and ``refused`` sets (residual PII)."""
    request = body or CurateRequest()
    return Operations(container).curate(corpus=request.corpus, holdout_share=request.holdout_share, seed=request.seed)
