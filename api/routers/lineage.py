"""``GET /v1/lineage/{kind}/{id}``: what an event, user, dataset, model, collection, deployment or cycle came from
and what it fed (e.g. "which models saw this user's data", "what trained the live embedder")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ContainerDep, Reader
from flywheel.operations import Operations

router = APIRouter(tags=["lineage"])


@router.get("/v1/lineage/{kind}/{node_id}")
def get_lineage(
    kind: str,
    node_id: str,
    container: ContainerDep,
    principal: Reader,
    depth: Annotated[int, Query(ge=1, le=8)] = 8,
) -> dict[str, Any]:
    """Upstream and downstream nodes (kind, id, relation, depth). 404 when nothing is recorded for the node."""
    return Operations(container).lineage(kind, node_id, depth=depth)
