"""The query path: validate, embed, search via the corpus alias, optionally rerank, generate, record.

:class:`QueryService` implements the :class:`core.ports.Retriever` port (``retrieve``, used by evals) and answers
questions (``answer``). Queries always go through the alias ``{corpus}``; the physical collection it resolved to is
reported as ``index_version``. In hybrid mode (``retrieval.mode``) a collection with a keyword index is searched dense +
sparse, fused with the collection's own weight (``FusionProfile``); one without it is searched dense. The question is
embedded once. Citations are limited to ``retrieval.max_chunks_per_document`` per document (default 1: five citations
are five pages; :func:`per_document`). A correction's question point is reported as the correction passage itself (same
chunk id), once. Every answered query is recorded through the ``QueryLog`` port with its question and answer scrubbed by
the ``PiiScrubber`` port FIRST — by a background :class:`~retrieval.recording.QueryRecorder` when one is given, so the
response does not wait for scrubbing and the write: raw user text is never persisted and never logged.
Questions asked concurrently are embedded together (:class:`~retrieval.batching.QueryEncoder`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from core.ports import Embedder, FusionProfile, Generator, PiiScrubber, QueryLog, Reranker, SparseEncoder, VectorStore
from core.settings import RetrievalSettings
from core.types import Arm, Citation, HybridParams, JSONValue, QueryRecord, ScoredPoint, SearchFilter
from retrieval.batching import QueryEncoder
from retrieval.recording import QueryRecorder

logger = logging.getLogger(__name__)

#: Payload keys that are not passage metadata (written by the indexing chunker, or marking a question point).
_NON_METADATA_KEYS = frozenset({"text", "alias_of", "alias_doc"})
#: Extra hits fetched so that deduplicating question points still leaves ``top_k`` distinct passages.
_ALIAS_SLACK = 3
#: Hits fetched when citations are limited per document: enough that a few long pages cannot fill them all.
_PER_DOCUMENT_FETCH = 50


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
        """JSON-ready form (the API response shape plus corpus and latency); a citation carries its ``title``,
        ``section`` and ``link`` metadata when the passage has them."""
        return {
            "query_id": self.query_id,
            "answer": self.answer,
            "citations": [citation_dict(c) for c in self.citations],
            "corpus": self.corpus,
            "embedder_version": self.embedder_version,
            "index_version": self.index_version,
            "generator_version": self.generator_version,
            "arm": str(self.arm),
            "latency_ms": round(self.latency_ms, 2),
        }


#: Passage metadata a citation shows its reader (when present), as strings.
PUBLIC_CITATION_METADATA = ("title", "section", "link")


def citation_dict(citation: Citation) -> dict[str, Any]:
    """A citation as the API and the CLI show it: ids, text, score, and its public metadata that is set."""
    data: dict[str, Any] = {"chunk_id": citation.chunk_id, "doc_id": citation.doc_id, "text": citation.text,
                            "score": citation.score}  # fmt: skip
    for key in PUBLIC_CITATION_METADATA:
        if citation.metadata.get(key) is not None:
            data[key] = str(citation.metadata[key])
    return data


def citation_from_hit(hit: ScoredPoint) -> Citation:
    """Turn a store hit into a citation (payload ``text`` and ``doc_id``; the rest is metadata). A correction's
    question point (``alias_of``) becomes a citation of the correction passage it points to."""
    payload = dict(hit.payload)
    text = str(payload.get("text", ""))
    chunk_id = str(payload.get("alias_of", hit.id))
    doc_id = str(payload.get("alias_doc", payload.get("doc_id", hit.id)))
    metadata = {k: v for k, v in payload.items() if k not in _NON_METADATA_KEYS}
    if "alias_of" in payload:
        metadata["doc_id"] = doc_id
    return Citation(chunk_id=chunk_id, doc_id=doc_id, text=text, score=float(hit.score), metadata=metadata)


def per_document(citations: list[Citation], *, limit: int, top_k: int) -> list[Citation]:
    """The best ``top_k`` of ``citations`` (best first) with at most ``limit`` per document; when fewer documents
    than that remain, the next best passages of the documents already cited fill the rest. ``limit`` 0: no limit."""
    if limit <= 0:
        return citations[:top_k]
    counts: dict[str, int] = {}
    kept: list[Citation] = []
    rest: list[Citation] = []
    for citation in citations:
        n = counts.get(citation.doc_id, 0)
        (kept if n < limit else rest).append(citation)
        counts[citation.doc_id] = n + 1
    if len(kept) >= top_k:
        return kept[:top_k]
    chosen = {id(c) for c in kept + rest[: top_k - len(kept)]}
    return [c for c in citations if id(c) in chosen]


def distinct_citations(hits: list[ScoredPoint]) -> list[Citation]:
    """Citations of ``hits`` (best first), each passage once (a question point and its passage are one)."""
    seen: set[str] = set()
    citations = []
    for hit in hits:
        citation = citation_from_hit(hit)
        if citation.chunk_id not in seen:
            seen.add(citation.chunk_id)
            citations.append(citation)
    return citations


class QueryService:
    """One arm of the query path (an embedder + generator pair over the alias of one corpus).

    Args:
        embedder: embeds questions (must be the model the corpus' live collection was built with).
        store: the vector store holding ``{corpus}__v{n}`` collections and the alias ``{corpus}``.
        generator: turns the question and cited passages into an answer.
        query_log: where answered queries are recorded (scrubbed).
        scrubber: PII scrubber applied to question and answer before recording.
        reranker: optional; re-scores ``settings.rerank_candidates`` hits down to ``top_k``.
        settings: query limits (``max_question_chars``, ``max_top_k`` ...) and the retrieval ``mode``.
        corpus: the alias name queries go through.
        sparse_encoder: keyword encoder of hybrid mode (the one the collections were indexed with).
        fusion: per-collection fusion settings; without it (or the encoder) every search is dense.
        recorder: background scrub-and-persist writer; ``None`` records synchronously.
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
        sparse_encoder: SparseEncoder | None = None,
        fusion: FusionProfile | None = None,
        recorder: QueryRecorder | None = None,
    ) -> None:
        self.embedder = embedder
        self.encoder = QueryEncoder(embedder)  # concurrent questions share one forward pass
        self.store = store
        self.generator = generator
        self.query_log = query_log
        self.scrubber = scrubber
        self.reranker = reranker
        self.settings = settings
        self.corpus = corpus
        self.sparse_encoder = sparse_encoder
        self.fusion = fusion
        self.recorder = recorder

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

    def search(
        self, question: str, *, top_k: int, filter: SearchFilter | None = None, hybrid: HybridParams | None = None
    ) -> tuple[list[Citation], str]:
        """Best ``top_k`` citations and the collection searched (validated input; reranked when configured).

        ``hybrid`` overrides the collection's fusion (a tuning run trying weights); ignored in dense mode.
        """
        collection = self.live_collection()
        vector = self.encoder.encode(question)
        candidates = max(top_k, self.settings.rerank_candidates) if self.reranker is not None else top_k
        per_doc = self.settings.max_chunks_per_document
        fetch = candidates + _ALIAS_SLACK
        if per_doc:
            fetch = max(fetch, _PER_DOCUMENT_FETCH)
        params = self.hybrid_params(collection, override=hybrid)
        if params is not None and self.sparse_encoder is not None:
            sparse = self.sparse_encoder.encode_query(question)
            hits = self.store.hybrid_search(collection, vector, sparse, top_k=fetch, params=params, filter=filter)
        else:
            hits = self.store.search(collection, vector, top_k=fetch, filter=filter)
        citations = per_document(distinct_citations(hits), limit=per_doc, top_k=candidates)
        if self.reranker is not None and citations:
            citations = self.reranker.rerank(question, citations, top_k=top_k)
        return citations[:top_k], collection

    def hybrid_params(self, collection: str, *, override: HybridParams | None = None) -> HybridParams | None:
        """Fusion for ``collection``: ``None`` (dense) in dense mode or without a keyword index."""
        if self.settings.mode != "hybrid" or self.fusion is None or self.sparse_encoder is None:
            return None
        params = self.fusion.hybrid_params(collection)
        return params if params is None or override is None else override

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
        """Scrub question and answer, then persist the record (raw text never reaches the log or the store);
        with a recorder both happen on its writer thread, after the response."""
        record = QueryRecord(
            id=result.query_id,
            question=question,
            answer=result.answer,
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
        if self.recorder is not None:  # an extractive answer is indexed passage text: only the question is the user's
            self.recorder.submit(record, scrub_answer=result.generator_version != "extractive")
        else:
            self.query_log.record_query(
                replace(record, question=self.scrubber.scrub(question).text,
                        answer=self.scrubber.scrub(result.answer).text)
            )  # fmt: skip
        logger.info(
            "query answered query_id=%s arm=%s index=%s citations=%d latency_ms=%.1f",
            result.query_id,
            result.arm,
            result.index_version,
            len(result.citations),
            result.latency_ms,
        )
