"""``GET /metrics``: the Prometheus exposition of :mod:`api.metrics` (reader role)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import MetricsDep, Reader

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics(service_metrics: MetricsDep, principal: Reader) -> Response:
    """Request counts and latencies by route, queries by arm, feedback by kind, active jobs, what is live."""
    return service_metrics.render()
