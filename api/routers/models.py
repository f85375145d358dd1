"""``GET /v1/models`` and ``GET /v1/models/{kind}/{version}``: the model registry's versions (embedders, rerankers,
generator adapters) with status, parent, dataset, config and training metrics — what an operator checks before a
promote or after a cycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ContainerDep, Reader
from api.schemas.loop import ModelVersionPublic
from core.types import ModelKind, ModelStatus
from flywheel.operations import Operations

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=list[ModelVersionPublic])
def list_models(
    container: ContainerDep,
    principal: Reader,
    kind: ModelKind | None = None,
    status: ModelStatus | None = None,
) -> list[ModelVersionPublic]:
    """Registered versions, by kind then oldest first; ``kind`` and ``status`` filter (an unknown value is a 422)."""
    found = Operations(container).models(kind.value if kind else None, status.value if status else None)
    return [ModelVersionPublic(**m) for m in found]


@router.get("/v1/models/{kind}/{version}", response_model=ModelVersionPublic)
def get_model(
    kind: ModelKind,
    version: Annotated[str, Path(min_length=1, max_length=32)],
    container: ContainerDep,
    principal: Reader,
) -> ModelVersionPublic:
    """One version (404 when it does not exist)."""
    return ModelVersionPublic(**Operations(container).model(kind.value, version))
