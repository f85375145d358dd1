"""``GET /v1/versions``: a corpus' collection versions (points, dimension, embedder, created) and the one its alias
points to — what ``flywheel versions`` shows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ContainerDep, Reader
from flywheel.operations import Operations

router = APIRouter(tags=["versions"])


@router.get("/v1/versions")
def list_versions(
    container: ContainerDep,
    principal: Reader,
    corpus: Annotated[str | None, Query(min_length=1, max_length=63, description="default indexing.corpus")] = None,
) -> dict[str, Any]:
    """``{corpus, alias, versions: [{name, corpus, version, points, dim, created_at, embedder_version}]}``; 404 when
    the corpus has no complete version yet, 422 for an invalid corpus name."""
    return Operations(container).versions(corpus)
