"""Versioned collections, atomic alias swaps, incremental reindex, rollback, and the ``PassageIndex`` port.

Contract:

- A corpus ``c`` is served through the alias ``c``; each (re)index writes a new physical collection ``c__v{n}``,
  records it in the :class:`~indexing.catalog.Catalog` (last, so only complete versions have an entry), then moves the
  alias. Readers therefore see the old or the new version, never a half-built one.
- Incremental: a document whose ``Document.hash`` is unchanged, indexed by the same embedder version and the same
  chunking, has its points (ids, payloads, vectors) copied from the live version instead of being re-embedded.
  Changed documents are re-chunked and re-embedded, deleted ones are not carried over.
- Any failure after the new collection was created and before the alias moved drops the half-built collection and
  leaves the alias where it was (a crash leaves it without a catalog entry; :meth:`IndexManager.prune` removes it).
- After a swap, the newest ``keep_versions`` non-live complete versions are kept for rollback; older ones are dropped.
- Corrections (the RAG fast path) are upserted into the live collection as ``source="correction"`` passages of the
  document ``correction:{correction_id}`` (see :func:`correction_document`). A reindex keeps exactly the documents it
  is given, so callers pass the approved corrections back in (built with :func:`correction_document`; unchanged ones
  are reused, not re-embedded). A correction upserted while a reindex runs is not in the new version unless passed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import replace

from core.errors import ConflictError, FlywheelError, InvalidInputError, NotFoundError, StorageError
from core.ports import Embedder, ProgressCallback, SparseEncoder, VectorStore
from core.types import (
    Chunk,
    CollectionInfo,
    Document,
    HybridParams,
    Metadata,
    Point,
    collection_name,
    parse_collection_name,
)
from indexing.building import (
    OPTIMIZE_MIN_POINTS,
    BuildPlan,
    ReindexReport,
    SupportsOptimize,
    copy_unchanged,
    correction_document,
    embed_into,
)
from indexing.catalog import Catalog, CatalogEntry, FusionProfiles
from indexing.chunking import Chunker, chunk_id
from indexing.corrections import question_point_id, question_points

logger = logging.getLogger(__name__)

_CORPUS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class IndexManager:
    """Builds, swaps, prunes and rolls back collection versions of corpora; implements ``PassageIndex``.

    Args:
        store: the ``VectorStore``.
        chunker: the llama-index chunker (its signature is part of a version's identity).
        keep_versions: previous complete versions kept for rollback after each swap (>= 1).
        embedder: embedder for corrections (``upsert_correction``); also settable with :meth:`set_embedder`.
        max_drop_share: a build that would drop more than this share of the live version's documents is refused
            (``InvalidInputError``) unless the caller passes ``allow_shrink=True``; ``None``: no limit.
        sparse_encoder: when given, new versions get a keyword index (hybrid mode) built with it.
        hybrid: fusion defaults for versions that record no tuned ``fusion_weight`` of their own.
    """

    def __init__(
        self,
        store: VectorStore,
        *,
        chunker: Chunker,
        keep_versions: int = 3,
        embedder: Embedder | None = None,
        max_drop_share: float | None = None,
        sparse_encoder: SparseEncoder | None = None,
        hybrid: HybridParams | None = None,
    ) -> None:
        if keep_versions < 1:
            raise InvalidInputError("keep_versions must be >= 1", field="keep_versions")
        self.store = store
        self.chunker = chunker
        self.keep_versions = keep_versions
        self.catalog = Catalog(store)
        self._embedder = embedder
        self.max_drop_share = max_drop_share
        self.sparse_encoder = sparse_encoder
        self.fusion = FusionProfiles(self.catalog, defaults=hybrid or HybridParams())
        self._lock = threading.RLock()

    def set_embedder(self, embedder: Embedder) -> None:
        """Use ``embedder`` for corrections from now on (e.g. after promoting a new embedder)."""
        self._embedder = embedder

    # ------------------------------------------------------------------------------------------------ queries
    @staticmethod
    def _check_corpus(corpus: str) -> str:
        if not isinstance(corpus, str) or not _CORPUS_RE.match(corpus) or "__" in corpus:
            raise InvalidInputError(
                f"invalid corpus name {corpus!r}: lowercase letters, digits, '-' and '_' (no '__'), at most 63",
                field="corpus",
            )
        return corpus

    def live_collection(self, corpus: str) -> str:
        """The collection the alias ``corpus`` points to. Raises ``NotFoundError`` for an unknown corpus."""
        target = self.store.get_alias(self._check_corpus(corpus))
        if target is None:
            raise NotFoundError(f"unknown corpus {corpus!r}: nothing is indexed under it", corpus=corpus)
        return target

    def live_info(self, corpus: str) -> CollectionInfo:
        """:class:`CollectionInfo` of the live collection (current point count, embedder version)."""
        live = self.live_collection(corpus)
        entry = self.catalog.get(live)
        points = self.store.count(live)
        if entry is None:  # a collection made outside the manager: report what the store knows
            corpus_name, version = parse_collection_name(live) or (corpus, 0)
            return CollectionInfo(name=live, corpus=corpus_name, version=version, points=points, dim=0)
        return entry.info(points=points)

    def versions(self, corpus: str) -> list[CollectionInfo]:
        """Complete versions of ``corpus`` by version number (``[]`` if none). Live version: current point count."""
        self._check_corpus(corpus)
        existing = set(self.store.list_collections())
        live = self.store.get_alias(corpus)
        return [
            e.info(points=self.store.count(e.name) if e.name == live else None)
            for e in self.catalog.entries(corpus)
            if e.name in existing
        ]

    def _physical_versions(self, corpus: str) -> list[tuple[int, str]]:
        parsed = ((parse_collection_name(n), n) for n in self.store.list_collections())
        return sorted((p[1], n) for p, n in parsed if p is not None and p[0] == corpus)

    # ------------------------------------------------------------------------------------------------ builds
    def reindex(
        self,
        corpus: str,
        documents: Sequence[Document],
        *,
        embedder: Embedder,
        show_progress: bool = False,
        on_progress: ProgressCallback | None = None,
        allow_shrink: bool = False,
    ) -> ReindexReport:
        """Build a new version from ``documents`` (incrementally), swap the alias to it, prune old versions.
        ``on_progress`` and ``allow_shrink`` are as for :meth:`build_version`.

        Raises:
            InvalidInputError: bad corpus name, no documents, or duplicate document ids.
            StorageError / UpstreamUnavailableError: the store failed; the alias is left on the previous version.
        """
        with self._lock:
            report = self._build(
                corpus, documents, embedder=embedder, show_progress=show_progress, on_progress=on_progress,
                allow_shrink=allow_shrink,
            )  # fmt: skip
            try:
                self.store.set_alias(corpus, report.collection)
            except BaseException:
                self._discard(report.collection)
                raise
            try:
                pruned = tuple(self.prune(corpus))
            except FlywheelError:  # the new version is live; a failed cleanup must not report the reindex as failed
                logger.warning("prune after reindex failed corpus=%s", corpus, exc_info=True)
                pruned = ()
        logger.info(
            "reindex done corpus=%s collection=%s embedded=%d reused=%d deleted=%d seconds=%.2f",
            corpus, report.collection, report.embedded, report.reused, report.deleted, report.seconds,
        )  # fmt: skip
        return replace(report, swapped=True, pruned=pruned)

    def build_version(
        self,
        corpus: str,
        documents: Sequence[Document],
        *,
        embedder: Embedder,
        show_progress: bool = False,
        on_progress: ProgressCallback | None = None,
        allow_shrink: bool = False,
    ) -> ReindexReport:
        """Build a new version without moving the alias (a candidate embedder's collection).

        Chunks are reused from the live version only when the embedder version (and chunking) match; a different
        embedder version always re-embeds everything. ``on_progress(done, total)`` counts embedded chunks; if it
        raises (a cancelled job), the half-built version is dropped and the error propagates. Unless
        ``allow_shrink``, a build that drops more than ``max_drop_share`` of the live documents raises
        ``InvalidInputError`` before anything is embedded (and leaves no collection behind).
        """
        with self._lock:
            return self._build(
                corpus, documents, embedder=embedder, show_progress=show_progress, on_progress=on_progress,
                allow_shrink=allow_shrink,
            )  # fmt: skip

    def _build(
        self,
        corpus: str,
        documents: Sequence[Document],
        *,
        embedder: Embedder,
        show_progress: bool,
        on_progress: ProgressCallback | None = None,
        allow_shrink: bool = False,
    ) -> ReindexReport:
        started = time.perf_counter()
        self._check_corpus(corpus)
        docs = _unique(documents)
        if not docs:  # an empty build would silently wipe the corpus at the next swap
            raise InvalidInputError(f"no documents to index into corpus {corpus!r}", field="documents")
        live = self.store.get_alias(corpus)
        physical = self._physical_versions(corpus)
        version = (physical[-1][0] if physical else 0) + 1
        name = collection_name(corpus, version)
        self.store.create_collection(name, dim=embedder.dim, sparse=self.sparse_encoder is not None)
        try:
            plan = copy_unchanged(self.store, live=live, name=name, docs=docs, reusable=self._reusable(live, embedder))
            if not allow_shrink:
                self._check_shrink(corpus, plan)
            embedded, embed_seconds = embed_into(
                self.store, self.chunker, name, plan.to_embed, embedder=embedder, progress=show_progress,
                on_progress=on_progress, sparse_encoder=self.sparse_encoder,
            )  # fmt: skip
            asked = question_points(list(docs.values()), embedder=embedder, sparse_encoder=self.sparse_encoder)
            self.store.upsert(name, asked)
            chunks = self.store.count(name)
            if isinstance(self.store, SupportsOptimize) and chunks >= OPTIMIZE_MIN_POINTS:
                self.store.optimize(name)
            expected = plan.reused_chunks + embedded + len(asked)
            if chunks != expected:
                raise StorageError(f"collection {name} holds {chunks} points, expected {expected}")
            self.catalog.put(
                CatalogEntry.new(name, embedder_version=embedder.version, dim=embedder.dim,
                                 chunker=self.chunker.signature, documents=len(docs), chunks=chunks,
                                 sparse=self._sparse_signature)
            )  # fmt: skip
        except BaseException:
            self._discard(name)
            raise
        return ReindexReport(
            corpus=corpus, collection=name, version=version, previous=live, embedder_version=embedder.version,
            documents=len(docs), chunks=chunks, embedded=embedded, reused=plan.reused_chunks,
            deleted=plan.deleted_chunks, docs_new=plan.docs_new, docs_changed=plan.docs_changed,
            docs_unchanged=plan.docs_unchanged, docs_deleted=plan.docs_deleted, swapped=False,
            seconds=round(time.perf_counter() - started, 3), embed_seconds=round(embed_seconds, 3),
        )  # fmt: skip

    def _check_shrink(self, corpus: str, plan: BuildPlan) -> None:
        """Refuse a build that drops more than ``max_drop_share`` of the live version's documents."""
        live_docs = plan.docs_unchanged + plan.docs_changed + plan.docs_deleted
        if self.max_drop_share is None or live_docs == 0:
            return
        share = plan.docs_deleted / live_docs
        if share > self.max_drop_share:
            raise InvalidInputError(
                f"this (re)index would drop {plan.docs_deleted} of the {live_docs} documents of the live corpus "
                f"{corpus!r} ({share:.0%} > indexing.max_drop_share {self.max_drop_share:.0%}); check the source, "
                "or pass allow_shrink=true to replace the corpus on purpose",
                field="allow_shrink", dropped=plan.docs_deleted, live_documents=live_docs,
                max_drop_share=self.max_drop_share,
            )  # fmt: skip

    def _reusable(self, live: str | None, embedder: Embedder) -> bool:
        """Whether ``live``'s vectors can be reused: same embedder version and dimension, same chunking."""
        entry = self.catalog.get(live) if live else None
        return (
            entry is not None
            and entry.embedder_version == embedder.version
            and entry.dim == embedder.dim
            and entry.chunker == self.chunker.signature
            and entry.sparse == self._sparse_signature
        )

    @property
    def _sparse_signature(self) -> str:
        return self.sparse_encoder.signature if self.sparse_encoder is not None else ""

    # ------------------------------------------------------------------------------------------------ fusion
    def hybrid_params(self, collection: str) -> HybridParams | None:
        """``FusionProfile`` port: see :meth:`FusionProfiles.hybrid_params`."""
        return self.fusion.hybrid_params(collection)

    def set_fusion_weight(self, collection: str, weight: float | None) -> None:
        """Record a tuned keyword weight on a version: see :meth:`FusionProfiles.set_fusion_weight`."""
        with self._lock:
            self.fusion.set_fusion_weight(collection, weight)

    def _discard(self, name: str) -> None:
        """Best-effort removal of a half-built collection (a leftover has no catalog entry and is pruned later)."""
        try:
            self.catalog.remove(name)
            if self.store.collection_exists(name) and name not in self.store.list_aliases().values():
                self.store.drop_collection(name)
            logger.warning("half-built collection discarded collection=%s", name)
        except Exception:  # never mask the original failure
            logger.exception("could not discard half-built collection collection=%s", name)

    # ------------------------------------------------------------------------------------------------ aliases
    def swap_alias(self, corpus: str, collection: str) -> None:
        """Point the alias ``corpus`` at ``collection`` (a complete version of that corpus) atomically.

        Raises ``InvalidInputError`` if ``collection`` is not a version of ``corpus``, ``NotFoundError`` if it does
        not exist, ``ConflictError`` if it is incomplete (no catalog entry).
        """
        parsed = parse_collection_name(collection)
        if parsed is None or parsed[0] != self._check_corpus(corpus):
            raise InvalidInputError(f"{collection!r} is not a version of corpus {corpus!r}", field="collection")
        if not self.store.collection_exists(collection):
            raise NotFoundError(f"unknown collection {collection!r}", collection=collection)
        if self.catalog.get(collection) is None:
            raise ConflictError(f"collection {collection!r} is incomplete (never finished building)")
        with self._lock:
            self.store.set_alias(corpus, collection)
        logger.info("alias swapped corpus=%s collection=%s", corpus, collection)

    def rollback(self, corpus: str) -> str:
        """Point the alias at the newest complete version older than the live one; returns its name.

        Raises ``NotFoundError`` for an unknown corpus, ``ConflictError`` when no older version is kept.
        """
        live = self.live_collection(corpus)
        live_version = (parse_collection_name(live) or (corpus, 0))[1]
        older = [i for i in self.versions(corpus) if i.version < live_version]
        if not older:
            raise ConflictError(f"corpus {corpus!r} has no previous version to roll back to", corpus=corpus)
        self.swap_alias(corpus, older[-1].name)
        return older[-1].name

    def prune(self, corpus: str, *, protect: Collection[str] = ()) -> list[str]:
        """Drop old versions: keep aliased ones, ``protect`` ones (the caller's rollback target, a running canary)
        plus the newest ``keep_versions`` others; drop stale half-builds."""
        with self._lock:
            aliased = set(self.store.list_aliases().values()) | set(protect)
            complete = {e.name for e in self.catalog.entries(corpus)}
            physical = self._physical_versions(corpus)
            newest_complete = max((v for v, n in physical if n in complete), default=0)
            keep = [n for v, n in physical if n in complete and n not in aliased][-self.keep_versions :]
            drop = [
                n
                for v, n in physical
                if n not in aliased
                and ((n in complete and n not in keep) or (n not in complete and v < newest_complete))
            ]
            for name in drop:
                self.store.drop_collection(name)
                self.catalog.remove(name)
        if drop:
            logger.info("versions pruned corpus=%s dropped=%d", corpus, len(drop))
        return drop

    # ------------------------------------------------------------------------------------------------ PassageIndex
    def get_passages(self, corpus: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Live passages by chunk id (missing or malformed ids are absent). ``NotFoundError`` for unknown corpus."""
        points = self.store.retrieve(self.live_collection(corpus), list(chunk_ids))
        return {p.id: _chunk_of(p) for p in points}

    def upsert_correction(self, corpus: str, *, correction_id: str, query_id: str, text: str, meta: Metadata) -> str:
        """Embed and upsert a ``source="correction"`` passage into the live collection; returns its (first) chunk id.

        Re-upserting the same ``correction_id`` replaces the earlier passage. Raises ``ConflictError`` when no
        embedder is set or it differs from the live collection's embedder version.
        """
        embedder = self._embedder
        if embedder is None:
            raise ConflictError("no embedder configured for corrections (IndexManager(embedder=...))")
        document = correction_document(correction_id=correction_id, query_id=query_id, text=text, meta=meta)
        live = self.live_collection(corpus)
        entry = self.catalog.get(live)
        if entry is not None and entry.embedder_version != embedder.version:
            raise ConflictError(
                f"live collection {live} was built by embedder {entry.embedder_version!r}, "
                f"corrections would be embedded by {embedder.version!r}"
            )
        self._delete_document(live, document.id)
        sparse = self.sparse_encoder if self.store.has_sparse(live) else None
        embedded, _ = embed_into(
            self.store, self.chunker, live, [document], embedder=embedder, progress=False, sparse_encoder=sparse
        )
        self.store.upsert(live, question_points([document], embedder=embedder, sparse_encoder=sparse))
        logger.info("correction upserted corpus=%s correction_id=%s chunks=%d", corpus, correction_id, embedded)
        return chunk_id(document.id, 0)

    def revoke_correction(self, corpus: str, correction_id: str) -> None:
        """Remove a correction's passage(s) from the live collection. ``NotFoundError`` if it is not there."""
        live = self.live_collection(corpus)
        if not self._delete_document(live, f"correction:{correction_id}"):
            raise NotFoundError(
                f"correction {correction_id!r} is not in corpus {corpus!r}", correction_id=correction_id
            )
        logger.info("correction revoked corpus=%s correction_id=%s", corpus, correction_id)

    def _delete_document(self, collection: str, doc_id: str) -> int:
        """Delete every chunk of ``doc_id`` and its question point in one call (ids are deterministic; chunk 0
        carries ``chunk_count``)."""
        first = self.store.retrieve(collection, [chunk_id(doc_id, 0)])
        if not first:
            return 0
        count = int(first[0].payload.get("chunk_count", 1))
        self.store.delete(collection, [chunk_id(doc_id, i) for i in range(count)] + [question_point_id(doc_id)])
        return count


def _unique(documents: Sequence[Document]) -> dict[str, Document]:
    docs: dict[str, Document] = {}
    for doc in documents:
        if doc.id in docs:
            raise InvalidInputError(f"duplicate document id {doc.id!r}", field="id")
        docs[doc.id] = doc
    return docs


def _chunk_of(point: Point) -> Chunk:
    metadata = {k: v for k, v in point.payload.items() if k != "text"}
    return Chunk(id=point.id, doc_id=str(metadata.get("doc_id", "")), text=str(point.payload.get("text", "")),
                 metadata=metadata)  # fmt: skip


__all__ = ["IndexManager", "ReindexReport", "correction_document"]
