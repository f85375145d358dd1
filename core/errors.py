"""The project's one error tree.

Every error the project raises on purpose derives from :class:`FlywheelError`. Adapters translate third-party
exceptions at their boundary (``raise XError(...) from exc``). Only ``api`` maps these to HTTP (RFC 9457
problem+json) and only the CLI maps them to exit codes; nothing else decides status codes.

    FlywheelError
    ├── InvalidInputError (also ValueError)        -> 422 / CLI exit 2   bad request data, bad file, bad config value
    │   ├── NotEnoughDataError                      -> 422               too few rows to train / curate (n of m)
    │   └── PayloadTooLargeError                    -> 413               request body over the route's limit
    ├── NotFoundError (also LookupError)           -> 404 / exit 3      unknown query id, corpus, version, dataset
    ├── ConflictError                              -> 409 / exit 4      duplicate, job already running, stale state
    ├── UnauthorizedError                          -> 401 / exit 5      missing or unknown API key
    ├── ForbiddenError                             -> 403 / exit 5      key lacks the role
    ├── UpstreamUnavailableError                   -> 503 / exit 6      vector store / DB / LLM endpoint down
    │   └── StorageUnavailableError                 -> 503 + Retry-After disk (nearly) full or read-only: writes refused
    ├── RateLimitedError                           -> 429 / exit 1      too many writes / failed logins: Retry-After
    ├── GateFailedError                            -> 409 / exit 7      promotion refused by the regression gate
    ├── GuardrailViolationError                    -> 409 / exit 7      PII / provenance / policy check failed
    └── StorageError                               -> 500 / exit 1      unexpected persistence failure (generic text)

Each class carries ``slug``, the last segment of its problem+json ``type`` URI (``.../problems/not-found``): the API
writes it and the CLI's HTTP client reads it back into the same class, both from here. Subclasses without a slug of
their own share their parent's (``NotEnoughDataError`` is an ``invalid-input`` problem). Two problem types the API
answers for requests it could not parse at all have no class: :data:`MALFORMED_JSON_SLUG` and
:data:`UNSUPPORTED_MEDIA_TYPE_SLUG` (both are invalid input to a client).
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Problem type of a request body that is not valid JSON (422).
MALFORMED_JSON_SLUG = "malformed-json"
#: Problem type of a request body that is not ``application/json`` (415).
UNSUPPORTED_MEDIA_TYPE_SLUG = "unsupported-media-type"


class FlywheelError(Exception):
    """Root of every deliberate project error. ``detail`` carries structured fields for problem+json."""

    title = "Flywheel error"
    #: Problem type slug; ``internal`` (a 500) for errors no client can act on.
    slug: ClassVar[str] = "internal"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail


class InvalidInputError(FlywheelError, ValueError):
    """The caller's input is malformed or out of range. ``errors`` may list per-item problems."""

    title = "Invalid input"
    slug: ClassVar[str] = "invalid-input"


class NotEnoughDataError(InvalidInputError):
    """Too few rows for the requested work. ``have`` and ``need`` say how many there are and are required."""

    title = "Not enough data"

    def __init__(self, message: str, *, have: int, need: int, **detail: Any) -> None:
        super().__init__(message, have=have, need=need, **detail)
        self.have = have
        self.need = need


class NotFoundError(FlywheelError, LookupError):
    """A named thing (query, corpus, version, dataset, job) does not exist."""

    title = "Not found"
    slug: ClassVar[str] = "not-found"


class ConflictError(FlywheelError):
    """The request conflicts with current state (duplicate, job already running, revoked twice)."""

    title = "Conflict"
    slug: ClassVar[str] = "conflict"


class UnauthorizedError(FlywheelError):
    """No API key, or an unknown one."""

    title = "Unauthorized"
    slug: ClassVar[str] = "unauthorized"


class ForbiddenError(FlywheelError):
    """The API key is valid but its role does not allow the action."""

    title = "Forbidden"
    slug: ClassVar[str] = "forbidden"


class UpstreamUnavailableError(FlywheelError):
    """A dependency (vector store, database, LLM endpoint) cannot be reached. ``retry_after_s`` hints a retry."""

    title = "Upstream unavailable"
    slug: ClassVar[str] = "upstream-unavailable"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after_s = retry_after_s


class StorageUnavailableError(UpstreamUnavailableError):
    """Storage refuses writes: its filesystem is (nearly) full or read-only. Reads keep working.

    ``reason`` is ``"full"`` or ``"read-only"``; ``path`` is the store directory (technical text, not PII).
    """

    title = "Storage unavailable"

    def __init__(self, message: str, *, reason: str, retry_after_s: float | None = 60.0, **detail: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, reason=reason, **detail)
        self.reason = reason


class PayloadTooLargeError(InvalidInputError):
    """The request body exceeds the route's limit. ``limit_bytes`` names the limit."""

    title = "Payload too large"
    slug: ClassVar[str] = "payload-too-large"

    def __init__(self, message: str, *, limit_bytes: int, **detail: Any) -> None:
        super().__init__(message, limit_bytes=limit_bytes, **detail)
        self.limit_bytes = limit_bytes


class RateLimitedError(FlywheelError):
    """Too many requests from one principal (writes) or one address (failed logins); retry after ``retry_after_s``."""

    title = "Too many requests"
    slug: ClassVar[str] = "rate-limited"

    def __init__(self, message: str, *, retry_after_s: float, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after_s = retry_after_s


class GateFailedError(FlywheelError):
    """A promotion was refused by the regression gate. ``reasons`` lists why."""

    title = "Gate failed"
    slug: ClassVar[str] = "gate-failed"


class GuardrailViolationError(FlywheelError):
    """A guardrail (PII scan, memorisation probe, provenance, policy) blocked the action."""

    title = "Guardrail violation"
    slug: ClassVar[str] = "guardrail-violation"


class StorageError(FlywheelError):
    """An unexpected persistence failure; reported to clients with a generic message."""

    title = "Storage error"


__all__ = [
    "MALFORMED_JSON_SLUG",
    "UNSUPPORTED_MEDIA_TYPE_SLUG",
    "ConflictError",
    "FlywheelError",
    "ForbiddenError",
    "GateFailedError",
    "GuardrailViolationError",
    "InvalidInputError",
    "NotEnoughDataError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "StorageError",
    "StorageUnavailableError",
    "UnauthorizedError",
    "UpstreamUnavailableError",
]
