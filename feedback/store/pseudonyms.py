"""Pseudonymous identifiers: a keyed hash (HMAC-SHA256) of user, tenant and rater ids, and body fingerprints.

The store keeps only pseudonyms (``u_…``, ``t_…``, ``r_…``; 40 hex digits), so a database dump, a dataset or a log
line never carries a caller-supplied identifier. The same key always maps the same id to the same pseudonym, so
consent, deletion and rater weighting still work; without the key a pseudonym cannot be reversed or recomputed.
The key comes from ``settings.feedback.pseudonym_key`` or a secret file in the data dir (:func:`load_or_create_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

PREFIXES = {"user": "u_", "tenant": "t_", "rater": "r_", "idempotency": "k_"}
_DIGITS = 40


class Pseudonymizer:
    """Keyed hashes of identifiers (see module docstring). Thread-safe, stateless apart from the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key needs at least 16 bytes")
        self._key = key

    def _digest(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def of(self, kind: str, value: str | None) -> str | None:
        """Pseudonym of ``value`` in namespace ``kind`` (``user`` | ``tenant`` | ``rater``); ``None`` stays ``None``."""
        if value is None:
            return None
        return PREFIXES[kind] + self._digest(kind, value)[:_DIGITS]

    def idempotency_key(self, principal: str | None, key: str) -> str:
        """The stored form of an Idempotency-Key: scoped to the principal that sent it."""
        return PREFIXES["idempotency"] + self._digest("idempotency", principal or "", key)

    def fingerprint(self, body: Any) -> str:
        """Keyed hash of a JSON-able request body (detects an idempotency key reused with another body)."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return self._digest("body", canonical)


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path`` (hex), created with 32 random bytes (mode 0600) on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    try:
        os.write(fd, key.hex().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
