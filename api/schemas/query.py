"""Schemas of the query endpoints: ``QueryRequest`` in, ``QueryResponse`` out, ``QueryRecordPublic`` for look-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.validation import NulFreeModel

# No NUL characters in stored text (PostgreSQL text cannot hold them): 422 on every backend alike.
NoNul = r"^[^\x00]*$"
FilterValue = Annotated[str, StringConstraints(pattern=NoNul, max_length=500)] | int | bool
# Metadata keys: letters, digits, '_' and '-' (the store reads a key as a JSON path; anything else is refused, 422).
FilterKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
FilterSpec = dict[FilterKey, FilterValue | list[FilterValue]]


class QueryRequest(NulFreeModel):
    """A question from an agent. ``filters`` match payload metadata: ``{"category": "billing", "lang": ["en"]}``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, pattern=NoNul, description="the question; at most settings.retrieval.max_question_chars"
    )
    top_k: int = Field(default=5, ge=1, le=50, description="number of passages to retrieve and cite")
    filters: FilterSpec | None = Field(default=None, description="metadata field -> value or list of values")
    user_id: str | None = Field(
        default=None, max_length=200, pattern=NoNul, description="pseudonymous user id (sticky canary)"
    )
    tenant: str | None = Field(default=None, max_length=200, pattern=NoNul, description="tenant / team, for slicing")


class CitationPublic(BaseModel):
    """A cited passage; its position (1-based) is the ``[n]`` marker in the answer."""

    chunk_id: str
    doc_id: str
    text: str
    score: float
    title: str | None = Field(default=None, description="title of the cited document (page title / first heading)")
    section: str | None = Field(default=None, description="heading of the section the passage falls under")
    link: str | None = Field(
        default=None, description="source link: indexing.source_base_url + the document's path, else the path"
    )


class QueryResponse(BaseModel):
    """An answer with its citations and the versions that produced it (feedback refers to ``query_id``)."""

    query_id: str
    answer: str
    citations: list[CitationPublic]
    embedder_version: str
    index_version: str
    generator_version: str
    arm: str


class QueryRecordPublic(BaseModel):
    """A recorded query as stored (question and answer already PII-scrubbed)."""

    query_id: str
    question: str
    answer: str
    chunk_ids: list[str]
    doc_ids: list[str]
    scores: list[float]
    corpus: str
    index_version: str
    embedder_version: str
    generator_version: str
    arm: str
    user_id: str | None
    tenant: str | None
    top_k: int
    filters: dict[str, Any]
    latency_ms: float
    created_at: datetime
