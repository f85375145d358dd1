"""Documents -> chunks along the document's layout (sections, paragraphs, code blocks); llama-index's
``SentenceSplitter`` cuts only what is longer than a chunk.

Contract: chunking is deterministic. A chunk id is ``uuid5(CHUNK_NAMESPACE, f"{doc_id}#{index}")`` so a reindex of an
unchanged document yields the same ids (and Qdrant-safe UUID strings). Chunk metadata holds the document's metadata
(less the layout keys ``_sections`` / ``_code``) plus ``doc_id``, ``doc_hash`` (:attr:`Document.hash`),
``chunk_index``, ``chunk_count``, ``source`` and, when the document has headings, ``section`` (the heading the chunk
falls under). Metadata is never mixed into the chunk text. With ``headers`` (the default) each chunk gets a context
header (:attr:`Chunk.context`, see :func:`context_header`): the document's title and lead (``title``,
``description``), the section heading and, for a chunk that starts inside a definition-list entry (an option of a
man page), that entry's term — what a reader of the chunk alone would be missing. The header is embedded and
keyword-indexed with the text (:attr:`Chunk.embedding_text`); the stored and cited text is the chunk alone. A
definition-list term is never left as the last block of a chunk: it moves to the chunk that holds its description.
No llama-index global ``Settings`` are read or written: the tokenizer and callback manager are passed explicitly.
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
from indexing.readers.blocks import CODE_KEY, LAYOUT_KEYS, SECTIONS_KEY, TERMS_KEY

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

    chunk_size: int = field(default=200, metadata={"help": "maximum tokens (cl100k_base) per chunk"})
    chunk_overlap: int = field(default=32, metadata={"help": "tokens shared by consecutive chunks of a document"})
    headers: bool = field(default=True, metadata={"help": "give chunks a context header (title, lead, section)"})

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
        kind = "section-ctx" if self.headers else "section"
        return f"{kind}:{self.chunk_size}:{self.chunk_overlap}"


class Chunker:
    """Splits Documents into Chunks along their layout: sections first, then paragraphs, packed up to ``chunk_size``.

    A chunk does not straddle two sections unless the earlier one is shorter than :data:`MIN_SECTION_TOKENS` (a lone
    heading is carried into the next section rather than left as a chunk of its own). A code block (the loader's
    ``code`` spans) is never cut unless it alone exceeds ``chunk_size``; a paragraph or code block that does is split
    by llama-index's ``SentenceSplitter`` with ``chunk_overlap``. Chunk text is a slice of the document text.

    Args:
        chunk_size: maximum tokens per chunk (of its text; the context header comes on top).
        chunk_overlap: overlap in tokens between the pieces of a block longer than ``chunk_size``.
        headers: give each chunk its context header (:func:`context_header`).
        tokenizer: ``str -> list[int]`` used to count tokens; default tiktoken ``cl100k_base`` (bundled, offline).
    """

    def __init__(
        self,
        chunk_size: int = 200,
        chunk_overlap: int = 32,
        *,
        headers: bool = True,
        tokenizer: Callable[[str], Sequence[int]] | None = None,
    ) -> None:
        from llama_index.core.callbacks import CallbackManager
        from llama_index.core.node_parser import SentenceSplitter

        self.config = ChunkerConfig(chunk_size=chunk_size, chunk_overlap=chunk_overlap, headers=headers)
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
        """Build from ``settings.indexing`` (``chunk_size``, ``chunk_overlap``, ``chunk_headers``)."""
        return cls(settings.chunk_size, settings.chunk_overlap, headers=settings.chunk_headers)

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
        terms = _terms(doc)
        term_lines = [(start, body) for start, body, _, _ in terms]
        pieces: list[_Piece] = []
        for section, blocks in _sections(doc):
            pieces.extend(self._pack(doc.text, blocks, section, term_lines))
        merged = _merge_small(pieces, self._count, self.config.chunk_size)
        return _doc_chunks(doc, merged, terms if self.config.headers else None)

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text))

    def _pack(
        self, text: str, blocks: list[tuple[int, int]], section: str | None, term_lines: list[tuple[int, int]]
    ) -> list[_Piece]:
        """Greedy packing of consecutive blocks (spans of ``text``) into chunks of at most ``chunk_size`` tokens;
        the term lines of a definition-list entry that would end a chunk start the next one instead."""
        out: list[_Piece] = []
        packed: list[tuple[int, int, int]] = []  # (start, end, tokens) of the blocks of the open chunk
        size = self.config.chunk_size
        for b_start, b_end in blocks:
            tokens = self._count(text[b_start:b_end])
            if packed and sum(t + 1 for *_, t in packed) + tokens + 1 > size:
                keep = len(packed)
                while keep > 1 and any(a <= packed[keep - 1][0] < b for a, b in term_lines):
                    keep -= 1
                carried = packed[keep:]
                if tokens <= size and sum(t + 1 for *_, t in carried) + tokens + 1 > size:
                    keep, carried = len(packed), []  # the terms and their description do not fit together
                out.append(_Piece(text[packed[0][0] : packed[keep - 1][1]].strip(), section, packed[0][0]))
                packed = carried
            if tokens > size:  # split by sentences; carried term lines go with the first piece
                start = packed[0][0] if packed else b_start
                parts = self._splitter.split_text(text[start:b_end])
                out.extend(_Piece(part, section, start if n == 0 else b_start) for n, part in enumerate(parts))
                packed = []
                continue
            packed.append((b_start, b_end, tokens))
        if packed:
            out.append(_Piece(text[packed[0][0] : packed[-1][1]].strip(), section, packed[0][0]))
        return [p for p in out if p.text]


#: A section shorter than this (tokens) is merged into the next chunk instead of standing alone (a lone heading).
MIN_SECTION_TOKENS = 24
#: A definition-list term longer than this (characters) is cut in the context header.
MAX_TERM_CHARS = 120


@dataclass(frozen=True, slots=True)
class _Piece:
    """A chunk's text before numbering: its section and the document offset where it starts."""

    text: str
    section: str | None
    start: int


def context_header(metadata: dict, term: str | None = None) -> str:
    """The context header of a chunk with ``metadata`` (see the module contract): ``"{title}: {description}"`` on
    the first line, ``"{section} › {term}"`` on the second; empty parts are left out (a document without title,
    description and sections, such as an FAQ answer or a correction, gets no header)."""
    title = str(metadata.get("title") or "").strip()
    description = str(metadata.get("description") or "").strip()
    section = str(metadata.get("section") or "").strip()
    head = f"{title}: {description}" if title and description else title or description
    tail = " › ".join(p for p in (section if section != title else "", term or "") if p)
    return "\n".join(p for p in (head, tail) if p)


_Term = tuple[int, int, int, str]  # (entry start, description start, entry end, term)


def _terms(doc: Document) -> list[_Term]:
    """The document's definition-list entries, from the reader's ``_terms`` offsets."""
    terms = []
    for start, body, end, term in doc.metadata.get(TERMS_KEY) or ():
        text = " ".join(str(term).split())
        if len(text) > MAX_TERM_CHARS:
            text = text[:MAX_TERM_CHARS].rsplit(" ", 1)[0] + " …"
        terms.append((int(start), int(body), int(end), text))
    return terms


def _term_at(terms: list[_Term], offset: int) -> str | None:
    """The term of the innermost entry whose description (not its term lines) holds ``offset``."""
    inside = [(start, term) for start, body, end, term in terms if body <= offset < end]
    return max(inside)[1] if inside else None


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


def _merge_small(pieces: list[_Piece], count: Callable[[str], int], limit: int) -> list[_Piece]:
    """Carry a piece shorter than :data:`MIN_SECTION_TOKENS` into the next piece of another section (if it fits);
    the merged chunk takes the next piece's section and starts where the carried piece did."""
    out: list[_Piece] = []
    carry: _Piece | None = None
    for piece in pieces:
        if carry and count(carry.text) + count(piece.text) + 2 <= limit:
            piece = _Piece(f"{carry.text}\n\n{piece.text}", piece.section, carry.start)
        elif carry:
            out.append(carry)
        carry = None
        if count(piece.text) < min(MIN_SECTION_TOKENS, limit // 2):
            carry = piece
            continue
        out.append(piece)
    if carry:
        out.append(carry)
    return out


_BLANK = re.compile(r"\n[ \t]*\n\s*")


def _doc_chunks(doc: Document, pieces: Sequence[_Piece], terms: list[_Term] | None) -> list[Chunk]:
    """Number the pieces; ``terms`` (``None``: no headers) give each chunk its context header."""
    doc_hash = doc.hash
    base = {k: v for k, v in doc.metadata.items() if k not in LAYOUT_KEYS}
    chunks = []
    for index, piece in enumerate(pieces):
        text, section = piece.text, piece.section
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
        context = context_header(metadata, _term_at(terms, piece.start)) if terms is not None else ""
        chunks.append(Chunk(id=chunk_id(doc.id, index), doc_id=doc.id, text=text, metadata=metadata, context=context))
    return chunks


__all__ = ["CHUNK_NAMESPACE", "Chunker", "ChunkerConfig", "chunk_id", "context_header"]
