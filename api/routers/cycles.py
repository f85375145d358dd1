"""``GET /v1/cycles``, ``GET /v1/cycles/{id}``, ``GET /v1/cycles/{id}/report`` (the cycle's HTML report)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ContainerDep, Reader
from api.schemas.loop import CyclePublic, CycleSummary
from core.errors import NotFoundError

router = APIRouter(tags=["cycles"])


@router.get("/v1/cycles", response_model=list[CycleSummary])
def list_cycles(
    container: ContainerDep,
    principal: Reader,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[CycleSummary]:
    """Cycles, newest first."""
    cycles = container.state_store.list_cycles(status=status, limit=limit)
    fields = CycleSummary.model_fields
    return [CycleSummary(**{k: v for k, v in dataclasses.asdict(c).items() if k in fields}) for c in cycles]


@router.get("/v1/cycles/{cycle_id}", response_model=CyclePublic)
def get_cycle(cycle_id: str, container: ContainerDep, principal: Reader) -> CyclePublic:
    """One cycle with steps (and timings), datasets, candidate models, eval results, gate verdict, guardrails."""
    return CyclePublic(**dataclasses.asdict(container.state_store.get_cycle(cycle_id)))


@router.get("/v1/cycles/{cycle_id}/report", response_class=HTMLResponse)
def get_report(cycle_id: str, container: ContainerDep, principal: Reader) -> HTMLResponse:
    """The cycle's self-contained HTML report. 404 when the cycle never reached the report step."""
    cycle = container.state_store.get_cycle(cycle_id)
    path = Path(cycle.report_path) if cycle.report_path else None
    if path is None or not path.is_file():
        raise NotFoundError(f"cycle {cycle_id} has no report ({cycle.status})", cycle_id=cycle_id)
    return HTMLResponse(path.read_text(encoding="utf-8"))
