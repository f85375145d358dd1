"""Plain records the feedback store returns (besides the core domain types)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Role(enum.StrEnum):
    """API key roles: ``agent`` (query, feedback), ``reader`` (lists, reports), ``admin`` (everything)."""

    AGENT = "agent"
    READER = "reader"
    ADMIN = "admin"


class CorrectionState(enum.StrEnum):
    """Lifecycle of a correction on the RAG fast path."""

    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key (never the raw key)."""

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key has not been revoked."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class UserConsent:
    """Consent state of a pseudonymous user."""

    user_id: str
    opted_out: bool
    opted_out_at: datetime | None = None
    opted_in_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """A correction: its event, the query it corrects, fast-path state, agreeing raters and live chunk id."""

    id: str
    event_id: str
    query_id: str
    corpus: str
    text: str
    agreement_key: str
    state: CorrectionState
    rater: str | None = None
    agreeing: list[str] = field(default_factory=list)
    chunk_id: str | None = None
    principal: str | None = None  # the authenticated caller that submitted it (the quorum counts these)


@dataclass(frozen=True, slots=True)
class DeletionReport:
    """What ``DELETE /v1/users/{id}/data`` removed and which dataset / model versions had used that user's data.

    ``user_id`` is the pseudonym the store knew the user by; ``datasets`` are refs ``{kind}/v{n}``; ``corrections``
    are the deleted correction records (their passages are removed from the index by the caller);
    ``deleted_event_ids`` lets the caller remove the user's rows from curated datasets.
    """

    user_id: str
    events_deleted: int
    queries_deleted: int
    datasets: list[str]
    models: list[str]
    corrections: list[CorrectionRecord] = field(default_factory=list)
    deleted_event_ids: list[str] = field(default_factory=list)
    deleted_query_ids: list[str] = field(default_factory=list)


def dataset_ref(kind: str, version: int) -> str:
    """Canonical dataset reference ``{kind}/v{version}`` used in usage records and deletion reports."""
    return f"{kind}/v{version}"


def parse_dataset_ref(ref: str) -> tuple[str, int]:
    """Inverse of :func:`dataset_ref`. Raises ``InvalidInputError`` for other forms."""
    from core.errors import InvalidInputError

    kind, sep, version = ref.rpartition("/v")
    if not sep or not kind or not version.isdigit():
        raise InvalidInputError(f"dataset reference {ref!r} is not of the form '<kind>/v<n>'", field="datasets")
    return kind, int(version)
