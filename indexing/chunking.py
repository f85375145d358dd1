"""Documents -> chunks with llama-index's ``IngestionPipeline`` and ``SentenceSplitter``.

Contract: chunking is deterministic. A chunk id is ``uuid5(CHUNK_NAMESPACE, f"{doc_id}#{index}")`` so a reindex of an
unchanged document yields the same ids (and Qdrant-safe UUID strings). Chunk metadata holds the document's metadata
plus ``doc_id``, ``doc_hash`` (:attr:`Document.hash`), ``chunk_index``, ``chunk_count`` and ``source``. Metadata is
never mixed into the chunk text (we embed the text ourselves, outside llama-index). No llama-index global
``Settings`` are read or written: the tokenizer and callback manager are passed explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import InvalidInputError
from core.runtime import ensure_offline
from core.settings import IndexingSettings
from core.types import Chunk, Document

#: Namespace of chunk ids (fixed forever: changing it would re-embed every corpus).
CHUNK_NAMESPACE = uuid.UUID("6f1d7c1e-3b7a-5d0e-9a55-2f6c1b0e4a11")


def chunk_id(doc_id: str, index: int) -> str:
    """Deterministic chunk id (UUID string) of chunk ``index`` of document ``doc_id``."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}#{index}"))


def _default_tokenizer() -> Callable[[str], list[int]]:
    """tiktoken ``cl100k_base`` from llama-index's bundled cache (offline), passed explicitly to the splitter."""
    ensure_offline()  # sets TIKTOKEN_CACHE_DIR to the bundled cache before tiktoken looks for it
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base")
    return lambda text: encoding.encode(text, allowed_special="all")


@dataclass(frozen=True, slots=True)
class ChunkerConfig:
    """Chunking hyper-parameters (part of a collection's identity: changing them disables chunk reuse)."""

    chunk_size: int = field(default=512, metadata={"help": "maximum tokens (cl100k_base) per chunk"})
    chunk_overlap: int = field(default=32, metadata={"help": "tokens shared by consecutive chunks of a document"})

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.chunk_overlap < 0 or self.chunk_overlap >= self.chunk_size:
            raise InvalidInputError(
                f"invalid chunking: chunk_size={self.chunk_size}, chunk_overlap={self.chunk_overlap} "
                "(need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size)",
                field="chunk_overlap",
            )

    @property
    def signature(self) -> str:
        """Short identity string stored with each collection version."""
        return f"sentence:{self.chunk_size}:{self.chunk_overlap}"


class Chunker:
    """Splits Documents into Chunks with a llama-index ``IngestionPipeline([SentenceSplitter])``.

    Args:
        chunk_size: maximum tokens per chunk.
        chunk_overlap: overlap in tokens between consecutive chunks.
        tokenizer: ``str -> list[int]`` used to count tokens; default tiktoken ``cl100k_base`` (bundled, offline).
    """

    def __init__(
        self,
        chunk_size: int = 512,
        chunk_overlap: int = 32,
        *,
        tokenizer: Callable[[str], Sequence[int]] | None = None,
    ) -> None:
        from llama_index.core.callbacks import CallbackManager
        from llama_index.core.ingestion import IngestionPipeline
        from llama_index.core.node_parser import SentenceSplitter

        self.config = ChunkerConfig(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=tokenizer or _default_tokenizer(),
            callback_manager=CallbackManager([]),
            include_metadata=False,  # metadata is never part of the embedded text
            include_prev_next_rel=False,
            id_func=lambda i, node: chunk_id(node.node_id, i),
        )
        # No docstore, vector store or cache: the IndexManager owns persistence and incrementality.
        self._pipeline = IngestionPipeline(transformations=[splitter], disable_cache=True)

    @classmethod
    def from_settings(cls, settings: IndexingSettings) -> Chunker:
        """Build from ``settings.indexing`` (``chunk_size``, ``chunk_overlap``)."""
        return cls(settings.chunk_size, settings.chunk_overlap)

    @property
    def signature(self) -> str:
        """Identity of the chunking configuration (see :attr:`ChunkerConfig.signature`)."""
        return self.config.signature

    def chunk(self, documents: Sequence[Document]) -> list[Chunk]:
        """Chunk ``documents`` in order; documents with blank text yield no chunk.

        Each document's chunks are numbered 0..n-1 in reading order. Raises ``InvalidInputError`` on duplicate ids.
        """
        from llama_index.core.schema import Document as LlamaDocument

        ids = [doc.id for doc in documents]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidInputError(f"duplicate document id {dup!r}", field="id")
        by_id = {doc.id: doc for doc in documents if doc.text.strip()}
        llama_docs = [LlamaDocument(text=doc.text, id_=doc.id) for doc in by_id.values()]
        nodes = self._pipeline.run(documents=llama_docs, show_progress=False) if llama_docs else []
        grouped: dict[str, list[str]] = {doc_id: [] for doc_id in by_id}
        for node in nodes:
            grouped[node.ref_doc_id or ""].append(node.get_content())
        return [chunk for doc_id, texts in grouped.items() for chunk in _doc_chunks(by_id[doc_id], texts)]


def _doc_chunks(doc: Document, texts: Sequence[str]) -> list[Chunk]:
    doc_hash = doc.hash
    chunks = []
    for index, text in enumerate(texts):
        metadata = {
            **doc.metadata,
            "source": doc.metadata.get("source", "document"),
            "doc_id": doc.id,
            "doc_hash": doc_hash,
            "chunk_index": index,
            "chunk_count": len(texts),
        }
        chunks.append(Chunk(id=chunk_id(doc.id, index), doc_id=doc.id, text=text, metadata=metadata))
    return chunks


__all__ = ["CHUNK_NAMESPACE", "Chunker", "ChunkerConfig", "chunk_id"]
