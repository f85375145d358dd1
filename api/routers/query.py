"""``POST /v1/query`` (answer a question with citations) and ``GET /v1/queries/{query_id}`` (a recorded query).

The use cases are :meth:`flywheel.operations.Operations.query` and ``recorded_query``; the routes translate I/O. The
answer is written as JSON straight from the validated ``QueryResponse`` (one serialization, no second validation
pass of the returned object).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.deps import AgentOrReader, ContainerDep, MetricsDep, require_json
from api.limits import check_filters
from api.schemas.query import QueryRecordPublic, QueryRequest, QueryResponse
from flywheel.operations import Operations

router = APIRouter(tags=["query"])


@router.post("/v1/query", response_model=QueryResponse, dependencies=[Depends(require_json)])
def query(body: QueryRequest, container: ContainerDep, metrics: MetricsDep, principal: AgentOrReader) -> Response:
    """Answer ``question`` from the live index; the query is recorded (PII-scrubbed) under ``query_id``.

    ``filters``: at most ``limits.max_filter_keys`` keys and ``limits.max_filter_values`` values per key (422)."""
    check_filters(body.filters, container.settings.limits)
    answered = Operations(container).query(
        body.question, top_k=body.top_k, filters=body.filters, user_id=body.user_id, tenant=body.tenant
    )
    metrics.queries.labels(answered["arm"]).inc()
    return Response(QueryResponse.model_validate(answered).model_dump_json(), media_type="application/json")


@router.get("/v1/queries/{query_id}", response_model=QueryRecordPublic)
def get_query(
    query_id: Annotated[str, Path(min_length=1, max_length=64)], container: ContainerDep, principal: AgentOrReader
) -> QueryRecordPublic:
    """A recorded query by id; 404 problem+json when unknown (a query answered a moment ago is waited for)."""
    return QueryRecordPublic.model_validate(Operations(container).recorded_query(query_id))
