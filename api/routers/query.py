"""``POST /v1/query`` (answer a question with citations) and ``GET /v1/queries/{query_id}`` (a recorded query)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import AgentOrReader, ContainerDep, MetricsDep, require_json
from api.limits import check_filters
from api.routers.feedback import await_recorded_queries
from api.schemas.query import CitationPublic, QueryRecordPublic, QueryRequest, QueryResponse
from core.types import QueryRecord

router = APIRouter(tags=["query"])


@router.post("/v1/query", response_model=QueryResponse, dependencies=[Depends(require_json)])
def query(body: QueryRequest, container: ContainerDep, metrics: MetricsDep, principal: AgentOrReader) -> QueryResponse:
    """Answer ``question`` from the live index; the query is recorded (PII-scrubbed) under ``query_id``.

    ``filters``: at most ``limits.max_filter_keys`` keys and ``limits.max_filter_values`` values per key (422)."""
    check_filters(body.filters, container.settings.limits)
    result = container.router.answer(
        body.question, top_k=body.top_k, filters=body.filters, user_id=body.user_id, tenant=body.tenant
    )
    metrics.queries.labels(str(result.arm)).inc()
    return QueryResponse(
        query_id=result.query_id,
        answer=result.answer,
        citations=[
            CitationPublic(
                chunk_id=c.chunk_id,
                doc_id=c.doc_id,
                text=c.text,
                score=c.score,
                **{k: str(c.metadata[k]) for k in ("title", "section", "link") if c.metadata.get(k) is not None},
            )
            for c in result.citations
        ],
        embedder_version=result.embedder_version,
        index_version=result.index_version,
        generator_version=result.generator_version,
        arm=str(result.arm),
    )


@router.get("/v1/queries/{query_id}", response_model=QueryRecordPublic)
def get_query(
    query_id: Annotated[str, Path(min_length=1, max_length=64)], container: ContainerDep, principal: AgentOrReader
) -> QueryRecordPublic:
    """A recorded query by id; 404 problem+json when unknown (a query answered a moment ago is waited for)."""
    await_recorded_queries(container)
    return _public(container.query_log.get_query(query_id))


def _public(record: QueryRecord) -> QueryRecordPublic:
    return QueryRecordPublic(
        query_id=record.id,
        question=record.question,
        answer=record.answer,
        chunk_ids=list(record.chunk_ids),
        doc_ids=list(record.doc_ids),
        scores=list(record.scores),
        corpus=record.corpus,
        index_version=record.index_version,
        embedder_version=record.embedder_version,
        generator_version=record.generator_version,
        arm=str(record.arm),
        user_id=record.user_id,
        tenant=record.tenant,
        top_k=record.top_k,
        filters=dict(record.filters),
        latency_ms=record.latency_ms,
        created_at=record.created_at,
    )
