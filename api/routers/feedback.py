"""Feedback endpoints: ``POST /v1/feedback``, ``POST /v1/feedback:batch``, ``GET /v1/feedback`` and corrections.

Agents (and admins) submit; readers list. Free text is scrubbed by the intake before anything is stored; a rejected
request stores nothing. Corrections are approved / revoked by admins (RAG fast path).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.deps import Admin, Agent, ContainerDep, MetricsDep, Reader, principal_id, require_json
from api.metrics import ServiceMetrics
from api.schemas.feedback import (
    COMMON_FIELDS,
    CorrectionPublic,
    FeedbackAccepted,
    FeedbackBatchAccepted,
    FeedbackCreate,
    FeedbackPublic,
)
from core.errors import NotFoundError
from core.types import FeedbackEvent, FeedbackKind
from core.validation import no_nul
from feedback.store import CorrectionRecord, CorrectionState
from feedback.validation import FeedbackSubmission, Problem
from flywheel.operations import await_recorded_queries

router = APIRouter(tags=["feedback"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def _submission(body: FeedbackCreate, *, principal: str, idempotency_key: str | None = None) -> FeedbackSubmission:
    """The intake's submission; ``principal`` comes from the verified key (the body cannot set it)."""
    raw = body.model_dump(exclude_none=True)
    return FeedbackSubmission(
        query_id=body.query_id,
        kind=body.kind,
        data={k: v for k, v in raw.items() if k not in COMMON_FIELDS},
        user_id=body.user_id,
        tenant=body.tenant,
        rater_id=body.rater_id,
        idempotency_key=idempotency_key or body.idempotency_key,
        principal=principal,
    )


def _count_stored(metrics: ServiceMetrics, created_kinds: dict[str, int]) -> None:
    """Count newly stored events only (an idempotent replay stores nothing and is not counted)."""
    for kind, count in created_kinds.items():
        metrics.feedback.labels(kind).inc(count)


@router.post("/v1/feedback", status_code=201, response_model=FeedbackAccepted, dependencies=[Depends(require_json)])
def submit_feedback(
    body: FeedbackCreate,
    container: ContainerDep,
    metrics: MetricsDep,
    principal: Agent,
    idempotency_key: IdempotencyKey = None,
) -> FeedbackAccepted:
    """Store one feedback event (committed before the response).

    The Idempotency-Key is scoped to the calling API key: repeating it with the same body returns the first id, with
    another body it is a 409; another key's same Idempotency-Key is a separate event.
    """
    await_recorded_queries(container)
    submission = _submission(body, principal=principal_id(principal), idempotency_key=idempotency_key)
    result = container.feedback_intake.submit_one(submission)
    _count_stored(metrics, result.created_kinds)
    return FeedbackAccepted(id=result.ids[0])


_EVENT = TypeAdapter(FeedbackCreate)
_EVENT_SCHEMA = {  # the single event's schema; its variants are components already (POST /v1/feedback uses them)
    k: v for k, v in _EVENT.json_schema(ref_template="#/components/schemas/{model}").items() if k != "$defs"
}


class FeedbackBatchBody(BaseModel):
    """Up to ``settings.feedback.max_batch`` events (each as in ``POST /v1/feedback``), stored all-or-none.

    The events are validated one by one (:func:`_parse_events`) so that one 422 lists every bad item: schema errors
    and unknown queries or passages alike."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, json_schema_extra={"items": _EVENT_SCHEMA})


def _parse_events(raw: list[dict[str, Any]]) -> tuple[list[tuple[int, Any]], list[tuple[int, Problem]]]:
    """Each event through the schema: the valid ones with their index, and every schema problem by index."""
    parsed, bad = [], []
    for i, item in enumerate(raw):
        try:
            parsed.append((i, _EVENT.validate_python(item)))
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(part) for part in err.get("loc", ())]
                if loc and loc[0] == str(item.get("kind")):
                    loc = loc[1:]  # the discriminator's branch name is not a field
                bad.append((i, Problem(".".join(loc) or "kind", err.get("msg", "invalid"))))
    return parsed, bad


@router.post(
    "/v1/feedback:batch", status_code=201, response_model=FeedbackBatchAccepted, dependencies=[Depends(require_json)]
)
def submit_feedback_batch(
    body: FeedbackBatchBody,
    container: ContainerDep,
    metrics: MetricsDep,
    principal: Agent,
    idempotency_key: IdempotencyKey = None,
) -> FeedbackBatchAccepted:
    """Store a batch all-or-none; 422 lists every bad item by index. A header key scopes per-item keys ``{key}:{i}``."""
    caller = principal_id(principal)
    parsed, schema_bad = _parse_events(body.events)
    items = [
        (i, _submission(event, principal=caller, idempotency_key=f"{idempotency_key}:{i}" if idempotency_key else None))
        for i, event in parsed
    ]
    await_recorded_queries(container)
    intake = container.feedback_intake
    if schema_bad:  # raises, listing the schema problems with those the store finds in the other items
        intake.check_batch(items, total=len(body.events), known_bad=schema_bad)
    result = intake.submit_batch([s for _, s in items])
    _count_stored(metrics, result.created_kinds)
    return FeedbackBatchAccepted(ids=result.ids, created=result.created)


@router.get("/v1/feedback", response_model=list[FeedbackPublic])
def list_feedback(
    container: ContainerDep,
    principal: Reader,
    query_id: Annotated[str | None, Query(min_length=1, max_length=64), AfterValidator(no_nul)] = None,
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


CorrectionId = Annotated[str, Path(min_length=1, max_length=64), AfterValidator(no_nul)]


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
