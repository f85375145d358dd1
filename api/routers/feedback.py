"""Feedback endpoints: ``POST /v1/feedback``, ``POST /v1/feedback:batch``, ``GET /v1/feedback`` and corrections.

Agents (and admins) submit; readers list. Free text is scrubbed by the intake before anything is stored; a rejected
request stores nothing. Corrections are approved / revoked by admins (RAG fast path).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query

from api.deps import Admin, Agent, ContainerDep, MetricsDep, Reader, require_json
from api.schemas.feedback import (
    COMMON_FIELDS,
    CorrectionPublic,
    FeedbackAccepted,
    FeedbackBatchAccepted,
    FeedbackBatchCreate,
    FeedbackCreate,
    FeedbackPublic,
)
from core.errors import NotFoundError
from core.types import FeedbackEvent, FeedbackKind
from feedback.store import CorrectionRecord, CorrectionState
from feedback.validation import FeedbackSubmission
from flywheel.container import Container

router = APIRouter(tags=["feedback"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def await_recorded_queries(container: Container) -> None:
    """Feedback may name a query answered a moment ago whose record the background recorder is still writing:
    wait until every query answered so far is persisted (milliseconds; nothing to wait for when none is pending)."""
    if container.is_built("query_recorder"):
        container.query_recorder.flush()


def _submission(body: FeedbackCreate, *, idempotency_key: str | None = None) -> FeedbackSubmission:
    raw = body.model_dump(exclude_none=True)
    return FeedbackSubmission(
        query_id=body.query_id,
        kind=body.kind,
        data={k: v for k, v in raw.items() if k not in COMMON_FIELDS},
        user_id=body.user_id,
        tenant=body.tenant,
        rater_id=body.rater_id,
        idempotency_key=idempotency_key or body.idempotency_key,
    )


@router.post("/v1/feedback", status_code=201, response_model=FeedbackAccepted, dependencies=[Depends(require_json)])
def submit_feedback(
    body: FeedbackCreate,
    container: ContainerDep,
    metrics: MetricsDep,
    principal: Agent,
    idempotency_key: IdempotencyKey = None,
) -> FeedbackAccepted:
    """Store one feedback event (committed before the response); a repeated Idempotency-Key returns the first id."""
    await_recorded_queries(container)
    accepted = FeedbackAccepted(id=container.feedback_intake.submit(_submission(body, idempotency_key=idempotency_key)))
    metrics.feedback.labels(body.kind).inc()
    return accepted


@router.post(
    "/v1/feedback:batch", status_code=201, response_model=FeedbackBatchAccepted, dependencies=[Depends(require_json)]
)
def submit_feedback_batch(
    body: FeedbackBatchCreate,
    container: ContainerDep,
    metrics: MetricsDep,
    principal: Agent,
    idempotency_key: IdempotencyKey = None,
) -> FeedbackBatchAccepted:
    """Store a batch all-or-none; 422 lists every bad item by index. A header key scopes per-item keys ``{key}:{i}``."""
    submissions = [
        _submission(event, idempotency_key=f"{idempotency_key}:{i}" if idempotency_key else None)
        for i, event in enumerate(body.events)
    ]
    await_recorded_queries(container)
    result = container.feedback_intake.submit_batch(submissions)
    for event in body.events:
        metrics.feedback.labels(event.kind).inc()
    return FeedbackBatchAccepted(ids=result.ids, created=result.created)


@router.get("/v1/feedback", response_model=list[FeedbackPublic])
def list_feedback(
    container: ContainerDep,
    principal: Reader,
    query_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    kind: FeedbackKind | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FeedbackPublic]:
    """Stored (scrubbed) events, oldest first, filtered by query, kind and creation time."""
    events = container.feedback_store.list_events(query_id=query_id, kind=kind, since=since, limit=limit)
    return [_public(e) for e in events]


def _public(event: FeedbackEvent) -> FeedbackPublic:
    return FeedbackPublic(
        id=event.id,
        query_id=event.query_id,
        kind=event.kind.value,
        data=dict(event.data),
        user_id=event.user_id,
        tenant=event.tenant,
        rater_id=event.rater_id,
        created_at=event.created_at,
    )


CorrectionId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/v1/corrections", response_model=list[CorrectionPublic])
def list_corrections(
    container: ContainerDep, principal: Reader, state: CorrectionState | None = None
) -> list[CorrectionPublic]:
    """Corrections with their scrubbed text, the question they correct, who proposed them and their fast-path state,
    oldest first."""
    store = container.feedback_store
    questions: dict[str, str | None] = {}
    records = store.list_corrections(state=state)
    for record in records:
        if record.query_id not in questions:
            try:
                questions[record.query_id] = store.get_query(record.query_id).question
            except NotFoundError:  # the query was deleted (user data deletion): the correction stays listable
                questions[record.query_id] = None
    return [_correction(c, question=questions[c.query_id]) for c in records]


@router.post("/v1/corrections/{correction_id}/approve", response_model=CorrectionPublic)
def approve_correction(correction_id: CorrectionId, container: ContainerDep, principal: Admin) -> CorrectionPublic:
    """Approve a pending correction: it is upserted into the live collection (unless the fast path is off)."""
    return _correction(container.feedback_intake.approve_correction(correction_id))


@router.post("/v1/corrections/{correction_id}/revoke", response_model=CorrectionPublic)
def revoke_correction(correction_id: CorrectionId, container: ContainerDep, principal: Admin) -> CorrectionPublic:
    """Revoke a correction; its live passage (shared by agreeing corrections) is removed."""
    return _correction(container.feedback_intake.revoke_correction(correction_id))


def _correction(record: CorrectionRecord, *, question: str | None = None) -> CorrectionPublic:
    return CorrectionPublic(
        id=record.id,
        query_id=record.query_id,
        corpus=record.corpus,
        state=record.state.value,
        agreeing=list(record.agreeing),
        chunk_id=record.chunk_id,
        text=record.text,
        question=question,
        proposed_by=record.rater,
    )
