"""Admin endpoints of the deployment: ``GET /v1/admin/deployment``, ``POST /v1/admin/promote``,
``POST /v1/admin/rollback``, ``GET /v1/admin/canary``, ``POST /v1/admin/canary/evaluate``,
``POST /v1/admin/cycles/{id}/override`` (mark a failed gate verdict passed, with a reason)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends

from api.deps import Admin, ContainerDep, Reader, require_json
from api.schemas.loop import DeploymentPublic, OverrideRequest, PromoteRequest, RollbackRequest
from core.errors import ConflictError, InvalidInputError

router = APIRouter(tags=["admin"])


def _public(record: object) -> DeploymentPublic:
    return DeploymentPublic(**{k: v for k, v in dataclasses.asdict(record).items() if k != "updated_at"})  # type: ignore[call-overload]


@router.get("/v1/admin/deployment", response_model=DeploymentPublic)
def deployment(container: ContainerDep, principal: Reader) -> DeploymentPublic:
    """The active deployment (live collection, model versions, previous, canary)."""
    return _public(container.deployer.current())


@router.post("/v1/admin/promote", response_model=DeploymentPublic, dependencies=[Depends(require_json)])
def promote(body: PromoteRequest, container: ContainerDep, principal: Admin) -> DeploymentPublic:
    """Promote a candidate (cycle id or collection; default the running canary). 409 for a gate-failed candidate
    unless ``force`` with a ``reason`` (recorded with the verdict, with the admin's key id)."""
    from flywheel.deploy import Candidate
    from flywheel.loop import resolve_candidate

    if body.candidate:
        cand = resolve_candidate(container, body.candidate)
    else:
        canary = container.deployer.current().canary
        if not canary:
            raise InvalidInputError("no canary is running: name a candidate", field="candidate")
        cand = Candidate(canary["collection"], canary["models"], canary.get("cycle_id"), gate_passed=True)
    record = container.deployer.promote(cand, force=body.force, reason=body.reason, actor=principal.key_id)
    return _public(record)


@router.post("/v1/admin/rollback", response_model=DeploymentPublic, dependencies=[Depends(require_json)])
def rollback(container: ContainerDep, principal: Admin, body: RollbackRequest | None = None) -> DeploymentPublic:
    """End a running canary, else restore the previous alias target + model versions in one step."""
    return _public(container.deployer.rollback(reason=(body or RollbackRequest()).reason))


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
    from core.types import GateVerdict
    from evals.gate import override, verdict_to_dict

    cycle = container.state_store.get_cycle(cycle_id)
    if not cycle.gate_verdict:
        raise ConflictError(f"cycle {cycle_id} has no gate verdict to override ({cycle.status})", cycle_id=cycle_id)
    fields = {k: cycle.gate_verdict.get(k) for k in ("passed", "reasons", "rows", "overridden_by", "override_reason")}
    verdict = override(GateVerdict(**fields), admin=principal.key_id, reason=body.reason)
    container.state_store.update_cycle(cycle_id, gate_verdict=verdict_to_dict(verdict))
    return verdict_to_dict(verdict)
