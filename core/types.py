"""Domain types shared by every stage package.

Plain dataclasses, no behaviour beyond validation and (de)serialisation helpers, so that stage packages can meet
through them without importing each other. Ids are strings. Vectors are ``numpy.ndarray`` float32 of shape
``(n, dim)`` (L2-normalised by embedders, so dot product == cosine similarity).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSONValue = Any
Metadata = dict[str, JSONValue]


def utcnow() -> datetime:
    """Timezone-aware current UTC time (the only clock the project uses)."""
    return datetime.now(UTC)


def content_hash(text: str, metadata: Mapping[str, JSONValue] | None = None) -> str:
    """Stable sha256 hex digest of a text and (sorted) metadata; used for incremental reindex and dedup."""
    h = hashlib.sha256(text.encode("utf-8"))
    for key in sorted(metadata or {}):
        h.update(f"\x1f{key}\x1e{metadata[key]!r}".encode())  # type: ignore[index]
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------- knowledge base
@dataclass(frozen=True, slots=True)
class Document:
    """A source document of the knowledge base. ``id`` is stable across reindexes (path, JSONL id, FAQ id)."""

    id: str
    text: str
    metadata: Metadata = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Content hash of text + metadata: unchanged documents are not re-embedded."""
        return content_hash(self.text, self.metadata)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable passage. ``id`` is deterministic from ``doc_id`` and position (a UUID string, Qdrant-safe).

    ``metadata`` always holds ``doc_id`` and ``doc_hash``; ``source`` is ``"document"`` or ``"correction"``.
    ``context`` is the chunk's header (document title and lead, section): embedded and keyword-indexed with the text
    (:attr:`embedding_text`), never stored as or cited in the text.
    """

    id: str
    doc_id: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    context: str = ""

    @property
    def embedding_text(self) -> str:
        """What is embedded (and keyword-indexed) for this chunk: its context header, a blank line, its text."""
        return f"{self.context}\n\n{self.text}" if self.context else self.text


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse keyword vector: ``indices`` (hashed token ids, uint32) with their ``values`` (term weights)."""

    indices: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            from core.errors import InvalidInputError

            raise InvalidInputError("sparse vector indices and values differ in length", field="sparse")


@dataclass(frozen=True, slots=True)
class HybridParams:
    """How a hybrid search fuses its dense and sparse rankings.

    ``method`` ``"rrf"``: weighted reciprocal-rank fusion, ``1 / (k + dense_rank) + w / (k + sparse_rank)``;
    ``"score"``: weighted sum of the scores normalised over the candidates (dense min-max, sparse divided by the
    best), so a large keyword margin (a rare identifier) counts as large. ``sparse_weight`` (w) is the sparse side's
    weight relative to the dense side's 1.0 (0 = dense only); ``rrf_k`` the RRF constant; ``candidates`` how many hits
    each ranking contributes before fusion.
    """

    sparse_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 50
    method: str = "score"


@dataclass(frozen=True, slots=True)
class Point:
    """A chunk with its vector, as written to a vector store. ``payload`` holds text + metadata.

    ``sparse`` is the chunk's keyword vector; stores of a collection created with ``sparse=True`` index it (a point
    without one is found by dense search only).
    """

    id: str
    vector: Sequence[float]
    payload: Metadata
    sparse: SparseVector | None = None


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """A search hit: point id, similarity score (higher is better) and payload."""

    id: str
    score: float
    payload: Metadata


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage cited by an answer."""

    chunk_id: str
    doc_id: str
    text: str
    score: float
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """Match payload field ``key`` against one value or any of several (``values``). Conjunctive with siblings."""

    key: str
    values: tuple[JSONValue, ...]


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """A conjunction of field filters (``must``) and exclusions (``must_not``). Empty filter matches everything."""

    must: tuple[FieldFilter, ...] = ()
    must_not: tuple[FieldFilter, ...] = ()

    @classmethod
    def from_mapping(cls, filters: Mapping[str, JSONValue] | None) -> SearchFilter | None:
        """Build from the API form ``{"category": "billing", "lang": ["en", "sv"]}``; ``None``/empty -> ``None``.

        Raises ``InvalidInputError`` (via ValueError subclass) for non-scalar values or empty lists.
        """
        from core.errors import InvalidInputError

        if not filters:
            return None
        must: list[FieldFilter] = []
        for key, raw in filters.items():
            if not isinstance(key, str) or not key:
                raise InvalidInputError("filter keys must be non-empty strings", field="filters")
            values = tuple(raw) if isinstance(raw, list | tuple) else (raw,)
            if not values:
                raise InvalidInputError(f"filter {key!r} has an empty list of values", field=f"filters.{key}")
            for value in values:
                if not isinstance(value, str | int | bool) or isinstance(value, float):
                    raise InvalidInputError(
                        f"filter {key!r} values must be strings, integers or booleans", field=f"filters.{key}"
                    )
            must.append(FieldFilter(key=key, values=values))
        return cls(must=tuple(must))


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A physical collection version ``{corpus}__v{n}`` and its size."""

    name: str
    corpus: str
    version: int
    points: int
    dim: int
    created_at: datetime | None = None
    embedder_version: str | None = None


def collection_name(corpus: str, version: int) -> str:
    """Physical collection name for version ``version`` of ``corpus``."""
    return f"{corpus}__v{version}"


def parse_collection_name(name: str) -> tuple[str, int] | None:
    """Inverse of :func:`collection_name`; ``None`` for names not of that form."""
    corpus, sep, ver = name.rpartition("__v")
    if not sep or not corpus or not ver.isdigit():
        return None
    return corpus, int(ver)


# ------------------------------------------------------------------------------------------------------ query path
class Arm(enum.StrEnum):
    """Which deployment arm served a query."""

    CURRENT = "current"
    CANDIDATE = "candidate"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer. ``text`` keeps citation markers ``[1]``..``[n]`` referring to ``citations`` order."""

    text: str
    citations: tuple[Citation, ...]
    generator_version: str = "extractive"


@dataclass(slots=True)
class QueryRecord:
    """One answered query, as logged (question already PII-scrubbed)."""

    id: str
    question: str
    answer: str
    chunk_ids: list[str]
    doc_ids: list[str]
    scores: list[float]
    corpus: str
    index_version: str
    embedder_version: str
    generator_version: str
    arm: Arm = Arm.CURRENT
    user_id: str | None = None
    tenant: str | None = None
    top_k: int = 5
    filters: Metadata = field(default_factory=dict)
    latency_ms: float = 0.0
    created_at: datetime = field(default_factory=utcnow)


# -------------------------------------------------------------------------------------------------------- feedback
class FeedbackKind(enum.StrEnum):
    """Every feedback signal agents give. Explicit, implicit, corrections, pairwise."""

    THUMBS = "thumbs"  # value: "up" | "down"
    STARS = "stars"  # value: 1..5
    COMMENT = "comment"  # text
    ISSUE = "issue"  # text (issue report)
    USED = "used"  # answer used
    COPIED = "copied"
    EDITED = "edited"  # text: the edited answer
    ABANDONED = "abandoned"
    REGENERATED = "regenerated"
    DWELL = "dwell"  # value: seconds
    CORRECTION = "correction"  # text: corrected answer
    RELEVANCE = "relevance"  # relevant: [chunk_id], irrelevant: [chunk_id]
    MISSING_KNOWLEDGE = "missing_knowledge"  # text: what should exist (optional); question from the query
    PREFERENCE = "preference"  # preferred/other query ids or answers + strength


@dataclass(slots=True)
class FeedbackEvent:
    """A stored, scrubbed feedback event. ``data`` holds the kind-specific fields (validated at intake)."""

    id: str
    query_id: str
    kind: FeedbackKind
    data: Metadata
    user_id: str | None = None
    tenant: str | None = None
    rater_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    principal: str | None = None  # the authenticated caller (API key id) set by the server; raters are counted by it


# ------------------------------------------------------------------------------------------------------- datasets
class DatasetKind(enum.StrEnum):
    """Kinds of curated dataset written by curation and read by customization / evals."""

    CONTRASTIVE = "contrastive"
    SFT = "sft"
    EVAL = "eval"
    RELEVANCE = "relevance"  # (query, passage, label) for the reranker
    GAPS = "gaps"  # missing-knowledge report groups


@dataclass(slots=True)
class ContrastivePair:
    """(query, positive passage, hard negatives) with the ids of the feedback events behind it."""

    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    positive_chunk_id: str | None = None
    negative_chunk_ids: list[str] = field(default_factory=list)
    weight: float = 1.0
    provenance: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RelevanceExample:
    """A (query, passage, label) judgement for reranker training; ``label`` 1.0 relevant, 0.0 irrelevant."""

    query: str
    passage: str
    label: float
    chunk_id: str | None = None
    weight: float = 1.0
    provenance: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SftExample:
    """(query, context passages, target answer) for LoRA SFT of the generator."""

    query: str
    contexts: list[str]
    target: str
    provenance: list[str] = field(default_factory=list)


@dataclass(slots=True)
class EvalCase:
    """A held-out evaluation case. ``relevant_doc_ids`` are document ids (chunk-level ids optional).

    ``slices`` maps slice dimension -> value (e.g. ``{"category": "billing", "tenant": "acme"}``).
    """

    id: str
    question: str
    relevant_doc_ids: list[str]
    reference_answer: str | None = None
    relevant_chunk_ids: list[str] = field(default_factory=list)
    slices: dict[str, str] = field(default_factory=dict)
    provenance: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DatasetManifest:
    """Manifest of one immutable dataset version on disk.

    ``provenance_hash`` is the sha256 of the sorted event ids behind all rows; ``user_ids`` are the pseudonymous
    users whose events it holds (deletion answers "which datasets saw this user").
    """

    kind: DatasetKind
    version: int
    rows: int
    provenance_hash: str
    event_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    stats: Metadata = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------------- models
class ModelKind(enum.StrEnum):
    """What a registered model version is."""

    EMBEDDER = "embedder"
    GENERATOR_ADAPTER = "generator_adapter"
    RERANKER = "reranker"


class ModelStatus(enum.StrEnum):
    """Lifecycle of a registered model version."""

    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(slots=True)
class ModelVersion:
    """A registered model version; ``path`` is its directory (immutable once written)."""

    kind: ModelKind
    version: str
    path: str
    status: ModelStatus = ModelStatus.CANDIDATE
    parent: str | None = None
    dataset_version: str | None = None
    provenance_hash: str | None = None
    config: Metadata = field(default_factory=dict)
    seed: int | None = None
    metrics: Metadata = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)


# ---------------------------------------------------------------------------------------------------- evaluation
@dataclass(slots=True)
class MetricResult:
    """A metric's value over a set of cases; ``per_case`` aligned with case ids for paired bootstrap.

    ``skipped`` carries the reason when the metric could not run (value then ``None``).
    """

    name: str
    value: float | None
    per_case: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None


@dataclass(slots=True)
class GateVerdict:
    """Outcome of the regression gate: ``passed`` plus the human-readable ``reasons`` and per-metric CI rows."""

    passed: bool
    reasons: list[str]
    rows: list[Metadata] = field(default_factory=list)
    overridden_by: str | None = None
    override_reason: str | None = None
