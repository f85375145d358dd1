"""Building blocks of a collection version build: the report type, the reuse plan, copy-unchanged and embed.

Contract: :func:`copy_unchanged` streams the live version's points and copies (id, payload, vector) of every document
whose ``doc_hash`` matches and whose chunks are all present; everything else is left for :func:`embed_into`, which
chunks, embeds in batches of :data:`EMBED_BATCH` (longest chunks first) and upserts :data:`WRITE_BATCH` points at a
time. What is embedded and keyword-indexed is :attr:`Chunk.embedding_text` (the chunk's context header and text);
payload = ``{"text": chunk text, **chunk metadata}`` (the header is not stored: it is rebuilt from the metadata).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from core.errors import InvalidInputError
from core.ports import Embedder, ProgressCallback, SparseEncoder, VectorStore
from core.types import Chunk, Document, Metadata, Point
from indexing.chunking import Chunker
from indexing.loaders import RESERVED_METADATA_KEYS

EMBED_BATCH = 256  # chunks per embed round: the grain of progress reports and cancellation
WRITE_BATCH = 2048  # points per store upsert while building (each upsert flushes to disk)


#: Below this many points a collection is not optimised after a build: an exact scan is as fast as HNSW there
#: (~1 ms per query at 20,000 x 384-d on qdrant-edge) and exact, while the HNSW build costs ~0.5 CPU-ms per point.
OPTIMIZE_MIN_POINTS = 50_000


@runtime_checkable
class SupportsOptimize(Protocol):
    """A store that benefits from an explicit optimise pass after bulk writes (qdrant-edge builds HNSW then)."""

    def optimize(self, name: str) -> bool:
        """Optimise collection ``name``; True if anything changed."""
        ...


@dataclass(frozen=True, slots=True)
class ReindexReport:
    """Outcome of :meth:`IndexManager.reindex` / :meth:`IndexManager.build_version` (JSON-friendly fields)."""

    corpus: str
    collection: str = field(metadata={"help": "the new physical collection {corpus}__v{n}"})
    version: int
    previous: str | None = field(metadata={"help": "collection the alias pointed to before"})
    embedder_version: str
    documents: int
    chunks: int = field(metadata={"help": "points in the new collection"})
    embedded: int = field(metadata={"help": "chunks embedded by this run"})
    reused: int = field(metadata={"help": "chunks copied with their vectors from the previous version"})
    deleted: int = field(metadata={"help": "chunks of the previous version not carried over"})
    docs_new: int
    docs_changed: int
    docs_unchanged: int
    docs_deleted: int
    swapped: bool = field(metadata={"help": "whether the alias now points at the new collection"})
    pruned: tuple[str, ...] = ()
    seconds: float = 0.0
    embed_seconds: float = 0.0


def correction_document(*, correction_id: str, query_id: str, text: str, meta: Metadata | None = None) -> Document:
    """The Document of a correction passage (id ``correction:{correction_id}``, ``source="correction"``).

    Use it to pass approved corrections back into :meth:`IndexManager.reindex` so they survive it (unchanged ones are
    reused, not re-embedded). Raises ``InvalidInputError`` for blank text or reserved metadata keys.
    """
    if not text or not text.strip():
        raise InvalidInputError("correction text must not be empty", field="text")
    reserved = sorted(RESERVED_METADATA_KEYS.intersection(meta or {}))
    if reserved:
        raise InvalidInputError(f"correction metadata uses reserved key {reserved[0]!r}", field=f"meta.{reserved[0]}")
    metadata = {**(meta or {}), "source": "correction", "correction_id": correction_id, "query_id": query_id}
    return Document(id=f"correction:{correction_id}", text=text.strip(), metadata=metadata)


def _payload(chunk: Chunk) -> Metadata:
    return {"text": chunk.text, **chunk.metadata}


@dataclass(slots=True)
class BuildPlan:
    """What one build does: documents to embed, what was reused / dropped from the live version."""

    to_embed: list[Document] = field(default_factory=list)
    reused_chunks: int = 0
    deleted_chunks: int = 0
    docs_new: int = 0
    docs_changed: int = 0
    docs_unchanged: int = 0
    docs_deleted: int = 0


def copy_unchanged(
    store: VectorStore, *, live: str | None, name: str, docs: dict[str, Document], reusable: bool
) -> BuildPlan:
    """Copy points of unchanged documents from ``live`` into ``name`` (when ``reusable``: same embedder version
    and chunking); return the plan: documents left to embed and what was reused / dropped."""
    plan = BuildPlan()
    live_docs: dict[str, str] = {}  # doc_id -> doc_hash seen in live
    copied: dict[str, int] = {}
    expected: dict[str, int] = {}
    batch: list[Point] = []
    for point in store.scroll(live, with_vectors=reusable, batch_size=512) if live else ():
        if "alias_of" in point.payload:  # a correction's question point: rebuilt with its correction, not a document
            continue
        doc_id = str(point.payload.get("doc_id"))
        live_docs[doc_id] = str(point.payload.get("doc_hash"))
        doc = docs.get(doc_id)
        if reusable and doc is not None and point.payload.get("doc_hash") == doc.hash:
            batch.append(point)
            copied[doc_id] = copied.get(doc_id, 0) + 1
            expected[doc_id] = int(point.payload.get("chunk_count", 0))
        else:
            plan.deleted_chunks += 1
        if len(batch) >= 512:
            store.upsert(name, batch)
            batch = []
    if batch:
        store.upsert(name, batch)
    complete = {d for d, n in copied.items() if n == expected[d]}
    plan.reused_chunks = sum(copied[d] for d in complete)
    plan.deleted_chunks += sum(n for d, n in copied.items() if d not in complete)
    for doc_id, doc in docs.items():
        if doc_id in complete:
            plan.docs_unchanged += 1
        else:
            plan.to_embed.append(doc)
            plan.docs_changed += doc_id in live_docs
            plan.docs_new += doc_id not in live_docs
    plan.docs_deleted = len(set(live_docs) - set(docs))
    return plan


class _BufferedWriter:
    """Collects points and upserts them :data:`WRITE_BATCH` at a time (each store upsert ends with a flush to disk,
    which costs wall time per call, not per point); the rest is written when the block exits without an error."""

    def __init__(self, store: VectorStore, name: str) -> None:
        self._store, self._name = store, name
        self._pending: list[Point] = []

    def __enter__(self) -> _BufferedWriter:
        return self

    def upsert(self, points: Sequence[Point]) -> None:
        self._pending.extend(points)
        if len(self._pending) >= WRITE_BATCH:
            self._write()

    def _write(self) -> None:
        if self._pending:
            self._store.upsert(self._name, self._pending)
            self._pending = []

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:  # a failed or cancelled build is dropped: nothing more to write
            self._write()


def embed_into(
    store: VectorStore,
    chunker: Chunker,
    name: str,
    documents: Sequence[Document],
    *,
    embedder: Embedder,
    progress: bool,
    on_progress: ProgressCallback | None = None,
    sparse_encoder: SparseEncoder | None = None,
) -> tuple[int, float]:
    """Chunk, embed and upsert ``documents`` into ``name``. Returns (chunks embedded, seconds embedding).
    With ``sparse_encoder`` every point also carries its keyword vector (a hybrid collection).

    ``on_progress(done, total)`` is called in chunks after every batch (a job's progress and heartbeat); whatever it
    raises stops the build.
    """
    # longest first over the whole build (as SentenceTransformer.encode sorts within one call): batches of similar
    # length pad less than batches drawn from each EMBED_BATCH window
    chunks = sorted(chunker.chunk(documents), key=lambda c: len(c.embedding_text), reverse=True)
    if not chunks:
        return 0, 0.0
    from tqdm.auto import tqdm

    embed_seconds = 0.0
    with (
        tqdm(total=len(chunks), desc=f"embedding {name}", unit="chunk", disable=not progress) as bar,
        _BufferedWriter(store, name) as writer,
    ):
        for start in range(0, len(chunks), EMBED_BATCH):
            part = chunks[start : start + EMBED_BATCH]
            t0 = time.perf_counter()
            texts = [c.embedding_text for c in part]  # the chunk with its context header (title, section)
            vectors = embedder.embed_documents(texts)
            embed_seconds += time.perf_counter() - t0
            keywords = sparse_encoder.encode_documents(texts) if sparse_encoder else [None] * len(part)
            points = [
                Point(id=c.id, vector=v, payload=_payload(c), sparse=s)
                for c, v, s in zip(part, vectors, keywords, strict=True)
            ]
            writer.upsert(points)
            bar.update(len(part))
            if on_progress is not None:
                on_progress(start + len(part), len(chunks))
    return len(chunks), embed_seconds


__all__ = [
    "EMBED_BATCH",
    "OPTIMIZE_MIN_POINTS",
    "BuildPlan",
    "ReindexReport",
    "SupportsOptimize",
    "copy_unchanged",
    "correction_document",
    "embed_into",
]
