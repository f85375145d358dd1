"""API keys with roles: create (raw key shown once), verify, revoke, bootstrap of the first admin key.

Only the sha256 of a raw key is stored. Roles: ``agent`` (query, feedback), ``reader`` (lists, reports),
``admin`` (everything, incl. deletion, keys and jobs); ``admin`` satisfies every role check.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Protocol

from core.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from core.validation import reject_nul
from feedback.store.records import ApiKeyRecord, Role

logger = logging.getLogger(__name__)

KEY_PREFIX = "fwk_"
BOOTSTRAP_KEY_ID = "bootstrap-admin"


class KeyStore(Protocol):
    """The part of :class:`feedback.store.SqlStore` the key service needs."""

    def add_api_key(self, *, key_id: str, name: str, role: Role, key_hash: str) -> ApiKeyRecord:
        """Store a key record (hash only)."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The record with this hash, or ``None``."""
        ...

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key record."""
        ...

    def revoke_api_key(self, key_id: str) -> ApiKeyRecord:
        """Mark a key revoked."""
        ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a verified key."""

    key_id: str
    role: Role
    name: str

    def has_role(self, *roles: Role | str) -> bool:
        """Whether this principal may act as any of ``roles`` (admin may act as anyone)."""
        return self.role == Role.ADMIN or self.role in {Role(r) for r in roles}

    def require(self, *roles: Role | str) -> None:
        """Raise ``ForbiddenError`` unless :meth:`has_role`."""
        if not self.has_role(*roles):
            wanted = " or ".join(Role(r).value for r in roles)
            raise ForbiddenError(f"this action needs the {wanted} role; the key has role {self.role.value}")


def hash_key(raw_key: str) -> str:
    """sha256 hex of a raw key (what the store keeps)."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


class ApiKeyService:
    """Creates, verifies and revokes API keys in a :class:`KeyStore`."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def create(self, role: Role | str, *, name: str) -> tuple[ApiKeyRecord, str]:
        """Create a key; returns its record and the raw key (shown once, never stored)."""
        role = _role(role)
        if not name or len(name) > 128:
            raise InvalidInputError("key name must be 1-128 characters", field="name")
        reject_nul(name, field="name")
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self._store.add_api_key(key_id=uuid.uuid4().hex[:16], name=name, role=role, key_hash=hash_key(raw))
        logger.info("api key created key_id=%s role=%s", record.id, role.value)
        return record, raw

    def verify(self, raw_key: str | None) -> Principal:
        """The principal of an active key. ``UnauthorizedError`` for a missing, unknown or revoked key."""
        if not raw_key:
            raise UnauthorizedError("missing API key (send it as 'Authorization: Bearer <key>' or 'X-API-Key')")
        record = self._store.find_api_key(hash_key(raw_key))
        if record is None:
            raise UnauthorizedError("unknown API key")
        if not record.active:
            raise UnauthorizedError("this API key has been revoked")
        return Principal(key_id=record.id, role=record.role, name=record.name)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke a key (``NotFoundError`` if unknown, ``ConflictError`` if already revoked)."""
        record = self._store.revoke_api_key(key_id)
        logger.info("api key revoked key_id=%s", key_id)
        return record

    def list(self) -> list[ApiKeyRecord]:
        """Every key record (no raw keys)."""
        return self._store.list_api_keys()

    def bootstrap_admin(self, raw_key: str) -> ApiKeyRecord | None:
        """Ensure the configured bootstrap admin key exists (idempotent; a revoked one stays revoked).

        Returns the new record, or ``None`` when the key was already known.
        """
        if len(raw_key) < 8:
            raise InvalidInputError("auth.bootstrap_admin_key must be at least 8 characters", field="auth")
        if self._store.find_api_key(hash_key(raw_key)) is not None:
            return None
        key_id = BOOTSTRAP_KEY_ID if all(k.id != BOOTSTRAP_KEY_ID for k in self.list()) else uuid.uuid4().hex[:16]
        record = self._store.add_api_key(
            key_id=key_id, name="bootstrap admin", role=Role.ADMIN, key_hash=hash_key(raw_key)
        )
        logger.info("bootstrap admin key stored key_id=%s", record.id)
        return record


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInputError(f"unknown role {role!r}; expected one of: {allowed}", field="role") from exc
