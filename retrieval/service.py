"""The query path: validate, embed, search via the corpus alias, optionally rerank, generate, record.

:class:`QueryService` implements the :class:`core.ports.Retriever` port (``retrieve``, used by evals) and answers
questions (``answer``). Queries always go through the alias ``{corpus}``; the physical collection it resolved to is
reported as ``index_version``. Every answered query is recorded through the ``QueryLog`` port with its question and
answer scrubbed by the ``PiiScrubber`` port FIRST: raw user text is never persisted and never logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from core.ports import Embedder, Generator, PiiScrubber, QueryLog, Reranker, VectorStore
from core.settings import RetrievalSettings
from core.types import Arm, Citation, JSONValue, QueryRecord, ScoredPoint, SearchFilter

logger = logging.getLogger(__name__)

#: Payload keys that are not passage metadata (written by the indexing chunker).
_NON_METADATA_KEYS = frozenset({"text"})


@dataclass(frozen=True, slots=True)
class QueryResult:
    """An answered query as returned to the caller (the answer text keeps its ``[n]`` citation markers)."""

    query_id: str
    answer: str
    citations: tuple[Citation, ...]
    corpus: str
    embedder_version: str
    index_version: str
    generator_version: str
    arm: Arm = Arm.CURRENT
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the API response shape plus corpus and latency)."""
        return {
            "query_id": self.query_id,
            "answer": self.answer,
            "citations": [
                {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "text": c.text, "score": c.score} for c in self.citations
            ],
            "corpus": self.corpus,
            "embedder_version": self.embedder_version,
            "index_version": self.index_version,
            "generator_version": self.generator_version,
            "arm": str(self.arm),
            "latency_ms": round(self.latency_ms, 2),
        }


def citation_from_hit(hit: ScoredPoint) -> Citation:
    """Turn a store hit into a citation (payload ``text`` and ``doc_id``; the rest is metadata)."""
    payload = dict(hit.payload)
    text = str(payload.get("text", ""))
    doc_id = str(payload.get("doc_id", hit.id))
    metadata = {k: v for k, v in payload.items() if k not in _NON_METADATA_KEYS}
    return Citation(chunk_id=str(hit.id), doc_id=doc_id, text=text, score=float(hit.score), metadata=metadata)


class QueryService:
    """One arm of the query path (an embedder + generator pair over the alias of one corpus).

    Args:
        embedder: embeds questions (must be the model the corpus' live collection was built with).
        store: the vector store holding ``{corpus}__v{n}`` collections and the alias ``{corpus}``.
        generator: turns the question and cited passages into an answer.
        query_log: where answered queries are recorded (scrubbed).
        scrubber: PII scrubber applied to question and answer before recording.
        reranker: optional; re-scores ``settings.rerank_candidates`` hits down to ``top_k``.
        settings: query limits (``max_question_chars``, ``max_top_k`` ...).
        corpus: the alias name queries go through.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        generator: Generator,
        query_log: QueryLog,
        scrubber: PiiScrubber,
        reranker: Reranker | None = None,
        settings: RetrievalSettings,
        corpus: str,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.generator = generator
        self.query_log = query_log
        self.scrubber = scrubber
        self.reranker = reranker
        self.settings = settings
        self.corpus = corpus

    # ------------------------------------------------------------------------------------------- validation
    def validate_question(self, question: str) -> str:
        """Return the stripped question. Raises ``InvalidInputError`` when empty or over ``max_question_chars``."""
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("question must not be empty or whitespace only", field="question")
        stripped = question.strip()
        limit = self.settings.max_question_chars
        if len(stripped) > limit:
            raise InvalidInputError(
                f"question is {len(stripped)} characters long; the limit is {limit}", field="question"
            )
        return stripped

    def validate_top_k(self, top_k: int | None) -> int:
        """``top_k`` or the default; raises ``InvalidInputError`` outside ``1..max_top_k``."""
        value = self.settings.default_top_k if top_k is None else top_k
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.settings.max_top_k:
            raise InvalidInputError(f"top_k must be an integer in 1..{self.settings.max_top_k}", field="top_k")
        return value

    # -------------------------------------------------------------------------------------------- retrieval
    def live_collection(self) -> str:
        """The collection the corpus alias points to now. Raises ``NotFoundError`` for an unindexed corpus."""
        collection = self.store.get_alias(self.corpus)
        if collection is None:
            raise NotFoundError(
                f"unknown corpus {self.corpus!r}: nothing is indexed under it (run `flywheel index`)",
                corpus=self.corpus,
            )
        return collection

    def search(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> tuple[list[Citation], str]:
        """Best ``top_k`` citations and the collection searched (validated input; reranked when configured)."""
        collection = self.live_collection()
        vector = self.embedder.embed_queries([question])[0]
        candidates = max(top_k, self.settings.rerank_candidates) if self.reranker is not None else top_k
        hits = self.store.search(collection, vector.tolist(), top_k=candidates, filter=filter)
        citations = [citation_from_hit(hit) for hit in hits]
        if self.reranker is not None and citations:
            citations = self.reranker.rerank(question, citations, top_k=top_k)
        return citations[:top_k], collection

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        """``Retriever`` port: the best ``top_k`` passages for ``question`` (nothing is recorded)."""
        citations, _ = self.search(self.validate_question(question), top_k=self.validate_top_k(top_k), filter=filter)
        return citations

    # ---------------------------------------------------------------------------------------------- answers
    def answer(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filters: Mapping[str, JSONValue] | None = None,
        user_id: str | None = None,
        tenant: str | None = None,
        arm: Arm = Arm.CURRENT,
        query_id: str | None = None,
    ) -> QueryResult:
        """Answer ``question`` with citations and record the (scrubbed) query.

        Raises:
            InvalidInputError: empty / oversized question, ``top_k`` out of range, malformed ``filters``.
            NotFoundError: the corpus has no live collection.
            UpstreamUnavailableError: the store or the generator backend is down.
        """
        started = time.perf_counter()
        text = self.validate_question(question)
        k = self.validate_top_k(top_k)
        search_filter = SearchFilter.from_mapping(filters)
        citations, collection = self.search(text, top_k=k, filter=search_filter)
        generated = self.generator.generate(text, citations)
        result = QueryResult(
            query_id=query_id or uuid.uuid4().hex,
            answer=generated.text,
            citations=tuple(generated.citations),
            corpus=self.corpus,
            embedder_version=self.embedder.version,
            index_version=collection,
            generator_version=generated.generator_version,
            arm=arm,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        self._record(result, question=text, top_k=k, filters=dict(filters or {}), user_id=user_id, tenant=tenant)
        return result

    def _record(
        self,
        result: QueryResult,
        *,
        question: str,
        top_k: int,
        filters: dict[str, JSONValue],
        user_id: str | None,
        tenant: str | None,
    ) -> None:
        """Scrub question and answer, then persist the record (raw text never reaches the log or the store)."""
        record = QueryRecord(
            id=result.query_id,
            question=self.scrubber.scrub(question).text,
            answer=self.scrubber.scrub(result.answer).text,
            chunk_ids=[c.chunk_id for c in result.citations],
            doc_ids=[c.doc_id for c in result.citations],
            scores=[c.score for c in result.citations],
            corpus=self.corpus,
            index_version=result.index_version,
            embedder_version=result.embedder_version,
            generator_version=result.generator_version,
            arm=result.arm,
            user_id=user_id,
            tenant=tenant,
            top_k=top_k,
            filters=filters,
            latency_ms=result.latency_ms,
        )
        self.query_log.record_query(record)
        logger.info(
            "query answered query_id=%s arm=%s index=%s citations=%d latency_ms=%.1f",
            result.query_id,
            result.arm,
            result.index_version,
            len(result.citations),
            result.latency_ms,
        )
