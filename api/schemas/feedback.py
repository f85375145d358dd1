"""Schemas of the feedback, consent, correction and key endpoints.

``FeedbackCreate`` is a discriminated union on ``kind``: each kind accepts exactly its own fields (``extra="forbid"``),
so a field of another kind is a 422. Text lengths are checked against ``settings.feedback.max_text_chars`` by the
intake (also a 422). ``FeedbackPublic`` returns the stored, scrubbed event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.validation import NulFreeModel

Id = Annotated[str, Field(min_length=1, max_length=64)]
OptionalName = Annotated[str | None, Field(default=None, min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, description="free text; scrubbed of PII before it is stored")]
ChunkIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(default_factory=list)]


class _Base(NulFreeModel):
    model_config = ConfigDict(extra="forbid")

    query_id: Id = Field(description="the query_id returned by POST /v1/query")
    user_id: OptionalName = Field(
        default=None, description="the end user's id (consent and deletion); stored only as a keyed hash"
    )
    tenant: OptionalName = Field(default=None, description="tenant / team; stored only as a keyed hash")
    rater_id: OptionalName = Field(
        default=None,
        description="a label for the agent giving the feedback; votes are counted per API key, never per rater_id",
    )
    idempotency_key: Annotated[str | None, Field(default=None, min_length=1, max_length=200)] = Field(
        default=None, description="batch items only; single events use the Idempotency-Key header"
    )


class ThumbsFeedback(_Base):
    """Thumbs up or down on the answer."""

    kind: Literal["thumbs"]
    value: Literal["up", "down"]


class StarsFeedback(_Base):
    """A 1-5 star rating of the answer."""

    kind: Literal["stars"]
    value: int = Field(ge=1, le=5)


class CommentFeedback(_Base):
    """A free-text comment."""

    kind: Literal["comment"]
    text: Text


class IssueFeedback(_Base):
    """An issue report (wrong, harmful, outdated ...)."""

    kind: Literal["issue"]
    text: Text


class SignalFeedback(_Base):
    """Implicit signals without fields: answer used, copied, abandoned, regenerated."""

    kind: Literal["used", "copied", "abandoned", "regenerated"]


class EditedFeedback(_Base):
    """The agent edited the answer before using it."""

    kind: Literal["edited"]
    text: Text


class DwellFeedback(_Base):
    """Seconds the agent spent on the answer."""

    kind: Literal["dwell"]
    seconds: float = Field(ge=0, le=86_400)


class CorrectionFeedback(_Base):
    """A corrected answer (may reach the live index through the RAG fast path)."""

    kind: Literal["correction"]
    text: Text


class RelevanceFeedback(_Base):
    """Passages (chunk ids of the query's citations or the corpus) marked relevant / irrelevant."""

    kind: Literal["relevance"]
    relevant: ChunkIds
    irrelevant: ChunkIds


class MissingKnowledgeFeedback(_Base):
    """The knowledge base could not answer; optionally the text that should exist."""

    kind: Literal["missing_knowledge"]
    text: Annotated[str | None, Field(default=None, min_length=1)] = None
    question: Annotated[str | None, Field(default=None, min_length=1)] = None


class PreferenceFeedback(_Base):
    """This query's answer is preferred over ``other_query_id``'s answer (same question)."""

    kind: Literal["preference"]
    other_query_id: Id
    strength: Literal["slight", "clear", "strong"]


FeedbackCreate = Annotated[
    ThumbsFeedback
    | StarsFeedback
    | CommentFeedback
    | IssueFeedback
    | SignalFeedback
    | EditedFeedback
    | DwellFeedback
    | CorrectionFeedback
    | RelevanceFeedback
    | MissingKnowledgeFeedback
    | PreferenceFeedback,
    Field(discriminator="kind"),
]

COMMON_FIELDS = frozenset({"query_id", "user_id", "tenant", "rater_id", "idempotency_key", "kind"})


class FeedbackBatchCreate(NulFreeModel):
    """Up to ``settings.feedback.max_batch`` events, stored all-or-none."""

    model_config = ConfigDict(extra="forbid")

    events: list[FeedbackCreate] = Field(min_length=1)


class FeedbackAccepted(BaseModel):
    """The stored event's id (the first event's id for a repeated Idempotency-Key)."""

    id: str


class FeedbackBatchAccepted(BaseModel):
    """Stored ids in submission order; ``created`` counts new events (the rest were idempotent repeats)."""

    ids: list[str]
    created: int


class FeedbackPublic(BaseModel):
    """A stored, scrubbed feedback event."""

    id: str
    query_id: str
    kind: str
    data: dict[str, Any]
    user_id: str | None
    tenant: str | None
    rater_id: str | None
    created_at: datetime


class ConsentPublic(BaseModel):
    """A user's consent state."""

    user_id: str
    opted_out: bool
    opted_out_at: datetime | None
    opted_in_at: datetime | None


class DeletionPublic(BaseModel):
    """What a deletion removed from every store, and which trained models still carry the user's data."""

    user_id: str = Field(description="the id as given in the path")
    events_deleted: int = Field(description="feedback events removed from the feedback store")
    queries_deleted: int = Field(description="query records removed from the query log")
    corrections_deleted: int = Field(description="correction records removed from the feedback store")
    correction_passages_deleted: dict[str, int] = Field(
        default_factory=dict, description="correction passages removed per collection version ({corpus}__v{n})"
    )
    dataset_rows_deleted: dict[str, int] = Field(
        default_factory=dict, description="rows removed per curated dataset version ({kind}/v{n})"
    )
    answers_redacted: int = Field(
        default=0, description="recorded answers of other queries that cited a removed passage, their text removed"
    )
    datasets: list[str] = Field(description="dataset versions that had held the user's data")
    models: list[str] = Field(description="trained model versions that still carry the data (retrain to remove it)")


class CorrectionPublic(BaseModel):
    """A correction with what an approver needs on one screen: its (scrubbed) text, the (scrubbed) question it
    corrects, who proposed it (the stored rater id) and its fast-path state."""

    id: str
    query_id: str
    corpus: str
    state: str
    agreeing: list[str]
    chunk_id: str | None
    text: str = ""
    question: str | None = Field(default=None, description="the corrected query's question; None if it was deleted")
    proposed_by: str | None = Field(default=None, description="rater id of the proposer (pseudonymous)")


class KeyCreate(NulFreeModel):
    """A new API key request."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["agent", "reader", "admin"]
    name: str = Field(min_length=1, max_length=128)


class KeyPublic(BaseModel):
    """An API key record (never the raw key)."""

    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    """A created key: ``key`` is the raw key, shown once and never stored."""

    key: str
