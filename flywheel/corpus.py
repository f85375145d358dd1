"""The corpus as documents: read back from the live collection (for candidate builds) or from a configured source
(for the nightly reindex), plus the approved corrections that must survive a rebuild.

Reading back: chunks of a document are ordered by ``chunk_index`` and joined, removing the overlap the chunker
added between neighbours; single-chunk documents (the FAQ) come back exactly. Correction passages
(``source="correction"``) come back as their own documents, so a candidate collection keeps them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError
from core.ports import VectorStore
from core.settings import IndexingSettings
from core.types import Document

if TYPE_CHECKING:
    from feedback.store import SqlStore

logger = logging.getLogger(__name__)

_CHUNK_KEYS = frozenset({"text", "doc_id", "doc_hash", "chunk_index", "chunk_count", "section"})


def live_documents(store: VectorStore, collection: str) -> list[Document]:
    """Documents of a corpus' live ``collection`` (source documents and correction passages), by doc id order."""
    parts: dict[str, list[tuple[int, str]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for point in store.scroll(collection, with_vectors=False, batch_size=512):
        payload = point.payload
        if "alias_of" in payload:  # a correction's question point: rebuilt with its correction, not a document
            continue
        doc_id = str(payload.get("doc_id") or point.id)
        parts.setdefault(doc_id, []).append((int(payload.get("chunk_index", 0)), str(payload.get("text", ""))))
        meta.setdefault(doc_id, {k: v for k, v in payload.items() if k not in _CHUNK_KEYS})
    docs = [Document(id=d, text=_join([t for _, t in sorted(parts[d])]), metadata=meta[d]) for d in sorted(parts)]
    logger.info("live documents read collection=%s documents=%d", collection, len(docs))
    return docs


def _join(texts: list[str]) -> str:
    out = texts[0] if texts else ""
    for nxt in texts[1:]:
        overlap = _overlap(out, nxt)
        out = out + ("" if overlap else " ") + nxt[overlap:]
    return out


def _overlap(left: str, right: str, *, max_chars: int = 2000) -> int:
    """Length of the longest suffix of ``left`` that is a prefix of ``right`` (at least 20 chars to count)."""
    for size in range(min(len(left), len(right), max_chars), 19, -1):
        if left.endswith(right[:size]):
            return size
    return 0


def load_source(settings: IndexingSettings, source: str) -> tuple[list[Document], dict[str, Any]]:
    """Documents from a source spec: ``builtin:faq``, a ``.jsonl`` file, or a folder; plus the load report
    (``skipped`` count and ``skipped_files`` with reasons: unreadable files are skipped, not fatal).
    ``InvalidInputError`` for a bad spec."""
    from indexing import loaders

    max_bytes = settings.max_file_bytes
    kind = source_kind(source)
    if kind == "builtin":
        return loaders.load_builtin_faq("en"), {"skipped": 0, "skipped_files": []}
    if kind == "jsonl":
        return loaders.load_jsonl(Path(source), max_file_bytes=max_bytes), {"skipped": 0, "skipped_files": []}
    result = loaders.load_paths([Path(source)], max_file_bytes=max_bytes, source_base_url=settings.source_base_url)
    return result.documents, {k: v for k, v in result.summary().items() if k.startswith("skipped")}


def source_kind(source: str) -> str:
    """``builtin`` / ``jsonl`` / ``folder`` for a valid source spec (nothing is read); ``InvalidInputError`` else."""
    if source.startswith("builtin:"):
        name = source.split(":", 1)[1]
        if name != "faq":
            raise InvalidInputError(f"unknown built-in corpus {name!r}; available: faq", field="source")
        return "builtin"
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".jsonl":
        return "jsonl"
    if path.is_dir():
        return "folder"
    raise InvalidInputError(f"reindex source is not builtin:faq, a .jsonl file or a folder: {source}", field="source")


def approved_corrections(feedback: SqlStore, corpus: str) -> list[Document]:
    """Approved / applied corrections of ``corpus`` as documents (they must survive a reindex), each with the
    (scrubbed) question it corrects, so its question point is rebuilt with it. Agreeing corrections share one live
    passage under the id the fast path gave it, so revoking any of them after the reindex still removes it."""
    from core.errors import NotFoundError
    from feedback.fastpath import live_correction_id
    from feedback.store import CorrectionState
    from indexing.manager import correction_document

    docs: dict[str, Document] = {}
    for state in (CorrectionState.APPROVED, CorrectionState.APPLIED):
        for rec in feedback.list_corrections(state=state):
            live_id = live_correction_id(rec)
            if rec.corpus == corpus and getattr(rec, "text", None) and live_id not in docs:
                try:
                    meta = {"question": feedback.get_query(rec.query_id).question}
                except NotFoundError:  # the query was deleted: the correction survives without its question point
                    meta = {}
                docs[live_id] = correction_document(
                    correction_id=live_id, query_id=rec.query_id, text=rec.text, meta=meta
                )
    return list(docs.values())


def live_passages(store: VectorStore, collection: str) -> list[str]:
    """Texts of the live ``collection``'s document passages (not corrections): the trainer's corpus for hard-negative
    mining and pseudo-query domain adaptation."""
    texts = [
        str(p.payload.get("text", ""))
        for p in store.scroll(collection, with_vectors=False, batch_size=512)
        if p.payload.get("source", "document") == "document"
    ]
    return sorted(t for t in texts if t.strip())
