"""API keys (admin only): ``POST /v1/keys`` (raw key shown once), ``GET /v1/keys``, ``DELETE /v1/keys/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import Admin, ContainerDep, require_json
from api.schemas.feedback import KeyCreate, KeyCreated, KeyPublic
from flywheel.operations import Operations

router = APIRouter(tags=["keys"])


@router.post("/v1/keys", status_code=201, response_model=KeyCreated, dependencies=[Depends(require_json)])
def create_key(body: KeyCreate, container: ContainerDep, principal: Admin) -> KeyCreated:
    """Create a key with a role; the response carries the raw key, which is never shown again."""
    return KeyCreated(**Operations(container).create_key(body.role, name=body.name))


@router.get("/v1/keys", response_model=list[KeyPublic])
def list_keys(container: ContainerDep, principal: Admin) -> list[KeyPublic]:
    """Every key (hashes stay in the store; no raw keys)."""
    return [KeyPublic(**r) for r in Operations(container).list_keys()]


@router.delete("/v1/keys/{key_id}", response_model=KeyPublic)
def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=64)], container: ContainerDep, principal: Admin
) -> KeyPublic:
    """Revoke a key: later requests with it get 401. 404 unknown, 409 already revoked."""
    return KeyPublic(**Operations(container).revoke_key(key_id))
