"""Consent and deletion: ``POST /v1/users/{id}/opt-out|opt-in`` and ``DELETE /v1/users/{id}/data``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Admin, Agent, ContainerDep
from api.schemas.feedback import ConsentPublic, DeletionPublic
from feedback.store import UserConsent

router = APIRouter(tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=128)]


def _consent(consent: UserConsent) -> ConsentPublic:
    return ConsentPublic(
        user_id=consent.user_id,
        opted_out=consent.opted_out,
        opted_out_at=consent.opted_out_at,
        opted_in_at=consent.opted_in_at,
    )


@router.post("/v1/users/{user_id}/opt-out", response_model=ConsentPublic)
def opt_out(user_id: UserId, container: ContainerDep, principal: Agent) -> ConsentPublic:
    """The user's later events are stored but kept out of every training set."""
    return _consent(container.feedback_intake.opt_out(user_id))


@router.post("/v1/users/{user_id}/opt-in", response_model=ConsentPublic)
def opt_in(user_id: UserId, container: ContainerDep, principal: Agent) -> ConsentPublic:
    """The user's later events may enter training sets again."""
    return _consent(container.feedback_intake.opt_in(user_id))


@router.delete("/v1/users/{user_id}/data", response_model=DeletionPublic)
def delete_user_data(user_id: UserId, container: ContainerDep, principal: Admin) -> DeletionPublic:
    """Delete the user's events and queries; lists the dataset and model versions that had used their data."""
    report = container.feedback_intake.delete_user_data(user_id)
    return DeletionPublic(
        user_id=report.user_id,
        events_deleted=report.events_deleted,
        queries_deleted=report.queries_deleted,
        datasets=report.datasets,
        models=report.models,
    )
