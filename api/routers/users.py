"""Consent and deletion: ``POST /v1/users/{id}/opt-out|opt-in`` and ``DELETE /v1/users/{id}/data`` (admins only).

Consent is the user's decision, recorded by an operator: an agent key cannot opt somebody else in or out (keys do
not act for a user). Deletion runs the flywheel use case, which reaches the feedback store, every collection version
of the index and the curated datasets, and reports which trained models still carry the data.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AfterValidator

from api.deps import Admin, ContainerDep
from api.schemas.feedback import ConsentPublic, DeletionPublic
from core.datasets import DatasetRepository
from core.validation import no_nul
from feedback.store import UserConsent
from flywheel.privacy import delete_user_data as delete_everywhere

router = APIRouter(tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(no_nul)]


def _consent(user_id: str, consent: UserConsent) -> ConsentPublic:
    return ConsentPublic(
        user_id=user_id,
        opted_out=consent.opted_out,
        opted_out_at=consent.opted_out_at,
        opted_in_at=consent.opted_in_at,
    )


@router.post("/v1/users/{user_id}/opt-out", response_model=ConsentPublic)
def opt_out(user_id: UserId, container: ContainerDep, principal: Admin) -> ConsentPublic:
    """The user's later events are stored but kept out of every training set."""
    return _consent(user_id, container.feedback_intake.opt_out(user_id))


@router.post("/v1/users/{user_id}/opt-in", response_model=ConsentPublic)
def opt_in(user_id: UserId, container: ContainerDep, principal: Admin) -> ConsentPublic:
    """The user's later events may enter training sets again."""
    return _consent(user_id, container.feedback_intake.opt_in(user_id))


@router.delete("/v1/users/{user_id}/data", response_model=DeletionPublic)
def delete_user_data(user_id: UserId, container: ContainerDep, principal: Admin) -> DeletionPublic:
    """Delete the user's events, queries, correction passages (every collection version) and dataset rows."""
    outcome = delete_everywhere(
        store=container.feedback_store,
        vector_store=container.vector_store,
        datasets=DatasetRepository(container.settings.datasets_dir),
        user_id=user_id,
    )
    report = outcome.report
    return DeletionPublic(
        user_id=user_id,
        events_deleted=report.events_deleted,
        queries_deleted=report.queries_deleted,
        corrections_deleted=len(report.corrections),
        correction_passages_deleted=outcome.passages_deleted,
        dataset_rows_deleted=outcome.dataset_rows_deleted,
        answers_redacted=outcome.answers_redacted,
        datasets=report.datasets,
        models=report.models,
    )
