"""Ports: one ``typing.Protocol`` per swappable part.

Stage packages (indexing, retrieval, feedback, customization, evals) meet only through these protocols and the
domain types of :mod:`core.types`; adapters live in the stage packages and are wired in the composition root
(``flywheel.container``). Every port has a contract suite in ``tests/contracts/`` that each adapter must pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from core.types import (
    Answer,
    Chunk,
    Citation,
    FeedbackEvent,
    FeedbackKind,
    HybridParams,
    Metadata,
    Point,
    QueryRecord,
    ScoredPoint,
    SearchFilter,
    SparseVector,
)


class ProgressCallback(Protocol):
    """Told how far a long piece of work (embedding a corpus, a training run) has got.

    Called with ``(done, total)`` in the work's own units (chunks, optimizer steps) after each unit of progress. It
    may raise to stop the work: a job raises ``JobCancelled`` from it when cancellation was requested, and the work
    cleans up what it half-built as for any other error.
    """

    def __call__(self, done: int, total: int) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    """Text -> L2-normalised float32 vectors of shape ``(n, dim)``."""

    @property
    def version(self) -> str:
        """Registry version (or ``"base"``) of the loaded model; recorded with every query and collection."""
        ...

    @property
    def dim(self) -> int:
        """Embedding dimensionality."""
        ...

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed passages. Returns ``(len(texts), dim)`` float32."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (may use a query prompt). Returns ``(len(texts), dim)`` float32."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Versioned collections of points plus aliases. ``name`` arguments of read calls accept an alias too.

    Raises ``NotFoundError`` for an unknown collection/alias, ``ConflictError`` when creating an existing
    collection, ``UpstreamUnavailableError`` when the backend cannot be reached.
    """

    def create_collection(self, name: str, *, dim: int, sparse: bool = False) -> None:
        """Create an empty cosine-distance collection; ``sparse=True`` adds a keyword (sparse, IDF-weighted) index."""
        ...

    def has_sparse(self, name: str) -> bool:
        """Whether the collection (or the alias' target) has the keyword index (hybrid search works on it)."""
        ...

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its data (never one an alias points to: ``ConflictError``)."""
        ...

    def list_collections(self) -> list[str]:
        """Names of all physical collections, sorted."""
        ...

    def collection_exists(self, name: str) -> bool:
        """Whether a physical collection of that name exists (aliases are not collections)."""
        ...

    def count(self, name: str) -> int:
        """Number of points in a collection (or the alias' target)."""
        ...

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id. Durable when the call returns."""
        ...

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Remove points by id (missing ids are ignored)."""
        ...

    def search(
        self, name: str, vector: Sequence[float], *, top_k: int, filter: SearchFilter | None = None
    ) -> list[ScoredPoint]:
        """Top-``top_k`` points by cosine similarity, best first, optionally filtered on payload."""
        ...

    def hybrid_search(
        self,
        name: str,
        vector: Sequence[float],
        sparse: SparseVector,
        *,
        top_k: int,
        params: HybridParams,
        filter: SearchFilter | None = None,
    ) -> list[ScoredPoint]:
        """Top-``top_k`` points by fusing the dense (cosine) and sparse (BM25 with IDF) rankings (``params.method``).

        Scores are the fused scores. Raises ``InvalidInputError`` when the collection has no keyword index.
        """
        ...

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[Point]:
        """Points by id (missing ids skipped). ``vector`` (and ``sparse``) are empty unless ``with_vectors``."""
        ...

    def scroll(self, name: str, *, with_vectors: bool = False, batch_size: int = 256) -> Iterator[Point]:
        """Iterate over every point of a collection (order unspecified)."""
        ...

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` atomically (readers see the old or the new target, never neither)."""
        ...

    def get_alias(self, alias: str) -> str | None:
        """The collection ``alias`` points to, or ``None``."""
        ...

    def list_aliases(self) -> dict[str, str]:
        """All aliases -> their target collection."""
        ...

    def healthy(self) -> bool:
        """Cheap reachability check for ``/readyz``."""
        ...

    def close(self) -> None:
        """Release files / connections. Idempotent."""
        ...


@runtime_checkable
class SparseEncoder(Protocol):
    """Text -> sparse keyword vectors (hashed tokens with BM25 term weights); the same tokenizer for both sides."""

    @property
    def signature(self) -> str:
        """Tokenizer and weighting identity; collections record it, and vectors are reused only when it matches."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """One vector per passage (BM25 term-frequency saturation; the store applies IDF)."""
        ...

    def encode_query(self, text: str) -> SparseVector:
        """The query's vector (one unit weight per distinct token)."""
        ...


@runtime_checkable
class Generator(Protocol):
    """Question + cited passages -> answer text with citation markers ``[1]``..``[n]``."""

    @property
    def version(self) -> str:
        """``"extractive"``, a base model name, or a registered adapter version."""
        ...

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Answer ``question`` from ``passages`` only. Raises ``UpstreamUnavailableError`` if a backend is down."""
        ...


@runtime_checkable
class Reranker(Protocol):
    """Re-scores retrieved passages for a question."""

    @property
    def version(self) -> str:
        """Registered reranker version."""
        ...

    def rerank(self, question: str, passages: Sequence[Citation], *, top_k: int) -> list[Citation]:
        """Return the best ``top_k`` passages, best first, with the reranker's scores."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """The retrieval half of the query path (embed, search via alias, optional rerank); used by evals."""

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        """Best ``top_k`` passages for ``question``."""
        ...


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One detected PII span: entity type (Presidio name), character offsets, detector score."""

    entity_type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """Scrubbed text (entities replaced by ``<ENTITY_TYPE>``) and what was found."""

    text: str
    findings: tuple[PiiFinding, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        """Whether anything was replaced."""
        return bool(self.findings)


@runtime_checkable
class PiiScrubber(Protocol):
    """Detects and replaces PII. Must run before anything user-written is persisted or logged."""

    def scrub(self, text: str) -> ScrubResult:
        """Replace PII in ``text`` with ``<ENTITY_TYPE>`` placeholders."""
        ...

    def scan(self, text: str) -> list[PiiFinding]:
        """Find PII without replacing it (residual-PII scans of datasets and generated answers)."""
        ...

    def scrub_many(self, texts: Sequence[str]) -> list[ScrubResult]:
        """:meth:`scrub` of each text, order preserved (one batched pass where the engine has one)."""
        ...


@runtime_checkable
class QueryLog(Protocol):
    """Durable log of answered queries (question text already scrubbed)."""

    def record_query(self, record: QueryRecord) -> None:
        """Persist a query record; committed when the call returns."""
        ...

    def record_queries(self, records: Sequence[QueryRecord]) -> None:
        """Persist several records in one transaction (all or none); committed when the call returns."""
        ...

    def get_query(self, query_id: str) -> QueryRecord:
        """Fetch by id. Raises ``NotFoundError``."""
        ...


@runtime_checkable
class FeedbackStore(QueryLog, Protocol):
    """Feedback events and queries (SQLite or PostgreSQL)."""

    def add_events(self, events: Sequence[FeedbackEvent], *, idempotency_keys: Sequence[str | None]) -> list[str]:
        """Store events atomically (all or none); a repeated idempotency key returns the first event's id."""
        ...

    def list_events(
        self,
        *,
        query_id: str | None = None,
        kind: FeedbackKind | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[FeedbackEvent]:
        """Events, oldest first, filtered."""
        ...


@runtime_checkable
class PassageIndex(Protocol):
    """The live knowledge base seen from outside indexing: look up passages, upsert / revoke corrections."""

    def get_passages(self, corpus: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Live passages by chunk id (missing ids absent from the result)."""
        ...

    def upsert_correction(self, corpus: str, *, correction_id: str, query_id: str, text: str, meta: Metadata) -> str:
        """Embed and upsert a ``source=correction`` passage into the live collection; returns its chunk id."""
        ...

    def revoke_correction(self, corpus: str, correction_id: str) -> None:
        """Remove a correction passage from the live collection. Raises ``NotFoundError`` if unknown."""
        ...


@runtime_checkable
class FusionProfile(Protocol):
    """Per-corpus (per collection version) hybrid fusion settings, as recorded by indexing; read by the query path."""

    def hybrid_params(self, collection: str) -> HybridParams | None:
        """How to fuse searches of ``collection``; ``None`` when it has no keyword index (dense search only)."""
        ...


@runtime_checkable
class ProvenanceLedger(Protocol):
    """Answers whether feedback events may back a training row (the feedback store implements it; evals calls it)."""

    def usable_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """The subset of ``event_ids`` that exist, are not deleted, and whose user consented to training use."""
        ...


__all__ = [
    "Embedder",
    "FeedbackStore",
    "FusionProfile",
    "Generator",
    "PassageIndex",
    "PiiFinding",
    "PiiScrubber",
    "ProgressCallback",
    "ProvenanceLedger",
    "QueryLog",
    "Reranker",
    "Retriever",
    "ScrubResult",
    "SparseEncoder",
    "VectorStore",
]
