"""API keys (admin only): ``POST /v1/keys`` (raw key shown once), ``GET /v1/keys``, ``DELETE /v1/keys/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import Admin, ContainerDep, require_json
from api.schemas.feedback import KeyCreate, KeyCreated, KeyPublic
from feedback.store import ApiKeyRecord

router = APIRouter(tags=["keys"])


def _public(record: ApiKeyRecord) -> KeyPublic:
    return KeyPublic(
        id=record.id,
        name=record.name,
        role=record.role.value,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


@router.post("/v1/keys", status_code=201, response_model=KeyCreated, dependencies=[Depends(require_json)])
def create_key(body: KeyCreate, container: ContainerDep, principal: Admin) -> KeyCreated:
    """Create a key with a role; the response carries the raw key, which is never shown again."""
    record, raw = container.api_keys.create(body.role, name=body.name)
    return KeyCreated(**_public(record).model_dump(), key=raw)


@router.get("/v1/keys", response_model=list[KeyPublic])
def list_keys(container: ContainerDep, principal: Admin) -> list[KeyPublic]:
    """Every key (hashes stay in the store; no raw keys)."""
    return [_public(r) for r in container.api_keys.list()]


@router.delete("/v1/keys/{key_id}", response_model=KeyPublic)
def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=64)], container: ContainerDep, principal: Admin
) -> KeyPublic:
    """Revoke a key: later requests with it get 401. 404 unknown, 409 already revoked."""
    return _public(container.api_keys.revoke(key_id))
