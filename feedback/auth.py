"""API keys with roles: create (raw key shown once), verify, revoke, bootstrap of the first admin key.

Only the sha256 of a raw key is stored. Roles: ``agent`` (query, feedback), ``reader`` (lists, reports),
``admin`` (everything, incl. deletion, keys and jobs); ``admin`` satisfies every role check.

A verified key is remembered in memory (its hash -> principal) for ``cache_ttl_s`` seconds, so a busy caller does not
cost a database read per request; a revoke through this service forgets the key at once. A key revoked by another
process writing the same database stops working here within ``cache_ttl_s``. Unknown and revoked keys are never
cached (each attempt is looked up and counted by the API's failed-authentication limit).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from core.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from core.settings import MIN_BOOTSTRAP_KEY_CHARS
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


#: Verified keys remembered at most (the cache is emptied when it is full: callers' keys are few).
MAX_CACHED_KEYS = 1024


class ApiKeyService:
    """Creates, verifies and revokes API keys in a :class:`KeyStore`.

    Args:
        store: where key records live.
        cache_ttl_s: how long a verified key is trusted without a database read (0: always read).
    """

    def __init__(self, store: KeyStore, *, cache_ttl_s: float = 0.0) -> None:
        self._store = store
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}  # key hash -> (expires at, principal)
        self._cache_lock = threading.Lock()
        self._revocations = 0  # a verify that read the store before a revoke must not cache what it read

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
        key_hash = hash_key(raw_key)
        cached = self._cached(key_hash)
        if cached is not None:
            return cached
        revocations = self._revocations
        record = self._store.find_api_key(key_hash)
        if record is None:
            raise UnauthorizedError("unknown API key")
        if not record.active:
            raise UnauthorizedError("this API key has been revoked")
        principal = Principal(key_id=record.id, role=record.role, name=record.name)
        if self.cache_ttl_s > 0:
            with self._cache_lock:
                if len(self._cache) >= MAX_CACHED_KEYS:
                    self._cache.clear()
                if revocations == self._revocations:
                    self._cache[key_hash] = (time.monotonic() + self.cache_ttl_s, principal)
        return principal

    def cached(self, raw_key: str) -> Principal | None:
        """The principal of ``raw_key`` if it was verified less than ``cache_ttl_s`` ago, else ``None`` (no I/O:
        callers on an event loop use it before falling back to :meth:`verify` in a thread)."""
        return self._cached(hash_key(raw_key)) if raw_key else None

    def _cached(self, key_hash: str) -> Principal | None:
        hit = self._cache.get(key_hash)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke a key (``NotFoundError`` if unknown, ``ConflictError`` if already revoked); it stops verifying at
        once (forgotten by the cache)."""
        record = self._store.revoke_api_key(key_id)
        with self._cache_lock:
            self._revocations += 1
            self._cache = {h: hit for h, hit in self._cache.items() if hit[1].key_id != key_id}
        logger.info("api key revoked key_id=%s", key_id)
        return record

    def list(self) -> list[ApiKeyRecord]:
        """Every key record (no raw keys)."""
        return self._store.list_api_keys()

    def bootstrap_admin(self, raw_key: str) -> ApiKeyRecord | None:
        """Ensure the configured bootstrap admin key exists (idempotent; a revoked one stays revoked).

        Returns the new record, or ``None`` when the key was already known.
        """
        if len(raw_key) < MIN_BOOTSTRAP_KEY_CHARS:
            raise InvalidInputError(
                f"auth.bootstrap_admin_key must be at least {MIN_BOOTSTRAP_KEY_CHARS} characters", field="auth"
            )
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
