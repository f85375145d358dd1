"""``GET /metrics``: the Prometheus exposition of :mod:`api.metrics` (reader role)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import Reader

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request, principal: Reader) -> Response:
    """Request counts and latencies by route, queries by arm, feedback by kind, active jobs, what is live."""
    rendered: Response = request.app.state.metrics.render()
    return rendered
