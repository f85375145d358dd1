"""Documents -> chunks along the document's layout (sections, paragraphs, code blocks); llama-index's
``SentenceSplitter`` cuts only what is longer than a chunk.

Contract: chunking is deterministic. A chunk id is ``uuid5(CHUNK_NAMESPACE, f"{doc_id}#{index}")`` so a reindex of an
unchanged document yields the same ids (and Qdrant-safe UUID strings). Chunk metadata holds the document's metadata
(less the layout keys ``_sections`` / ``_code``) plus ``doc_id``, ``doc_hash`` (:attr:`Document.hash`),
``chunk_index``, ``chunk_count``, ``source`` and, when the document has headings, ``section`` (the heading the chunk
falls under). Metadata is
never mixed into the chunk text (we embed the text ourselves, outside llama-index). No llama-index global
``Settings`` are read or written: the tokenizer and callback manager are passed explicitly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import InvalidInputError
from core.runtime import ensure_offline
from core.settings import IndexingSettings
from core.types import Chunk, Document
from indexing.readers.blocks import CODE_KEY, LAYOUT_KEYS, SECTIONS_KEY

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
        return f"section:{self.chunk_size}:{self.chunk_overlap}"


class Chunker:
    """Splits Documents into Chunks along their layout: sections first, then paragraphs, packed up to ``chunk_size``.

    A chunk does not straddle two sections unless the earlier one is shorter than :data:`MIN_SECTION_TOKENS` (a lone
    heading is carried into the next section rather than left as a chunk of its own). A code block (the loader's
    ``code`` spans) is never cut unless it alone exceeds ``chunk_size``; a paragraph or code block that does is split
    by llama-index's ``SentenceSplitter`` with ``chunk_overlap``. Chunk text is a slice of the document text.

    Args:
        chunk_size: maximum tokens per chunk.
        chunk_overlap: overlap in tokens between the pieces of a block longer than ``chunk_size``.
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
        from llama_index.core.node_parser import SentenceSplitter

        self.config = ChunkerConfig(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        self._tokenizer = tokenizer or _default_tokenizer()
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=self._tokenizer,
            callback_manager=CallbackManager([]),
            include_metadata=False,
            include_prev_next_rel=False,
        )

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
        ids = [doc.id for doc in documents]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidInputError(f"duplicate document id {dup!r}", field="id")
        return [chunk for doc in documents if doc.text.strip() for chunk in self._document(doc)]

    def _document(self, doc: Document) -> list[Chunk]:
        pieces: list[tuple[str, str | None]] = []
        for section, blocks in _sections(doc):
            pieces.extend(self._pack(doc.text, blocks, section))
        return _doc_chunks(doc, _merge_small(pieces, self._count, self.config.chunk_size))

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text))

    def _pack(self, text: str, blocks: list[tuple[int, int]], section: str | None) -> list[tuple[str, str | None]]:
        """Greedy packing of consecutive blocks (spans of ``text``) into chunks of at most ``chunk_size`` tokens."""
        out: list[tuple[str, str | None]] = []
        start = end = -1
        used = 0
        for b_start, b_end in blocks:
            tokens = self._count(text[b_start:b_end])
            if start >= 0 and used + tokens + 1 > self.config.chunk_size:
                out.append((text[start:end].strip(), section))
                start = -1
            if tokens > self.config.chunk_size:
                out.extend((part, section) for part in self._splitter.split_text(text[b_start:b_end]))
                continue
            if start < 0:
                start, used = b_start, 0
            end, used = b_end, used + tokens + 1
        if start >= 0:
            out.append((text[start:end].strip(), section))
        return [(t, s) for t, s in out if t]


#: A section shorter than this (tokens) is merged into the next chunk instead of standing alone (a lone heading).
MIN_SECTION_TOKENS = 24


def _sections(doc: Document) -> list[tuple[str | None, list[tuple[int, int]]]]:
    """The document as (section title, block spans) per section; code spans are never split into blocks."""
    text = doc.text
    starts = [(int(o), str(t)) for o, t in doc.metadata.get(SECTIONS_KEY) or () if 0 <= int(o) < len(text)]
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, None))  # type: ignore[arg-type]
    code = [(int(a), int(b)) for a, b in doc.metadata.get(CODE_KEY) or ()]
    bounds = [o for o, _ in starts[1:]] + [len(text)]
    return [(title, _blocks(text, start, end, code)) for (start, title), end in zip(starts, bounds, strict=True)]


def _blocks(text: str, start: int, end: int, code: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Paragraph spans of ``text[start:end]``: cut at blank lines that are not inside a code span."""
    spans: list[tuple[int, int]] = []
    begin = start
    for match in _BLANK.finditer(text, start, end):
        if any(a < match.start() < b for a, b in code):
            continue
        if text[begin : match.start()].strip():
            spans.append((begin, match.start()))
        begin = match.end()
    if text[begin:end].strip():
        spans.append((begin, end))
    return spans


def _merge_small(
    pieces: list[tuple[str, str | None]], count: Callable[[str], int], limit: int
) -> list[tuple[str, str | None]]:
    """Carry a piece shorter than :data:`MIN_SECTION_TOKENS` into the next piece of another section (if it fits);
    the merged chunk takes the next piece's section."""
    out: list[tuple[str, str | None]] = []
    carry, carry_section = "", None
    for text, section in pieces:
        if carry and count(carry) + count(text) + 2 <= limit:
            text = f"{carry}\n\n{text}"
        elif carry:
            out.append((carry, carry_section))
        carry = ""
        if count(text) < min(MIN_SECTION_TOKENS, limit // 2):
            carry, carry_section = text, section
            continue
        out.append((text, section))
    if carry:
        out.append((carry, carry_section))
    return out


_BLANK = re.compile(r"\n[ \t]*\n\s*")


def _doc_chunks(doc: Document, pieces: Sequence[tuple[str, str | None]]) -> list[Chunk]:
    doc_hash = doc.hash
    base = {k: v for k, v in doc.metadata.items() if k not in LAYOUT_KEYS}
    chunks = []
    for index, (text, section) in enumerate(pieces):
        metadata = {
            **base,
            "source": doc.metadata.get("source", "document"),
            "doc_id": doc.id,
            "doc_hash": doc_hash,
            "chunk_index": index,
            "chunk_count": len(pieces),
        }
        if section:
            metadata["section"] = section
        chunks.append(Chunk(id=chunk_id(doc.id, index), doc_id=doc.id, text=text, metadata=metadata))
    return chunks


__all__ = ["CHUNK_NAMESPACE", "Chunker", "ChunkerConfig", "chunk_id"]
