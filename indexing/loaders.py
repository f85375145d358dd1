"""Document loaders: folders / files of Markdown, text, HTML, PDF (each optionally gzipped), a JSONL file, or the
built-in FAQ corpus.

Contract: every loader returns ``list[Document]`` with stable ids (relative path, JSONL ``id``, FAQ id) and
``metadata["source"] == "document"``; bad input raises :class:`~core.errors.InvalidInputError` whose message names
the file (and for JSONL the 1-based line number and the field). Nothing here embeds or writes anything.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.errors import InvalidInputError
from core.types import Document
from indexing.readers import FORMATS, UnreadableFileError, file_format, read_layout
from indexing.readers.blocks import CODE_KEY, LAYOUT_KEYS, SECTIONS_KEY, TERMS_KEY
from indexing.readers.html import html_layout

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 20_000_000
#: Payload keys written by the chunker; document metadata must not shadow them.
RESERVED_METADATA_KEYS = LAYOUT_KEYS | {"text", "doc_id", "doc_hash", "chunk_index", "chunk_count", "section"}
FAQ_LANGUAGES = ("en", "sv")


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file that was not indexed and why (``reason`` is short and holds no content)."""

    path: str
    reason: str


@dataclass(slots=True)
class LoadResult:
    """Documents read from one or more source paths, the files skipped (with reasons) and the ignored count."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = field(default=0, metadata={"help": "files of unsupported types (images, CSS, ...) not read"})

    def summary(self) -> dict[str, Any]:
        """JSON-friendly report: counts and the skipped files (path + reason)."""
        return {
            "documents": len(self.documents),
            "skipped": len(self.skipped),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "ignored": self.ignored,
        }


def html_to_text(html: str) -> tuple[str, str | None]:
    """Main content of an HTML page as text (see :mod:`indexing.readers.html`). Returns ``(text, title)``."""
    layout = html_layout(html)
    return layout.text, layout.title


def _source_link(rel: str, base_url: str | None) -> str:
    return f"{base_url.rstrip('/')}/{quote(rel)}" if base_url else rel


def load_file(
    path: Path,
    *,
    root: Path,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    doc_id: str | None = None,
    source_base_url: str | None = None,
) -> Document | None:
    """Load one supported file (Markdown, text, HTML, PDF, each optionally ``.gz``) as a Document; ``None`` if empty.

    Doc id = ``doc_id`` or the path relative to ``root``. Metadata: ``path``, ``title`` (page title / first heading
    / file stem), ``description`` (the page's lead, when it has one), ``format``, ``link`` (``source_base_url`` +
    the relative path, else the relative path), ``source="document"``, and the layout offsets ``_sections`` /
    ``_code`` / ``_terms`` the chunker reads.
    Raises :class:`~indexing.readers.UnreadableFileError` (an ``InvalidInputError``) naming the file and the reason.
    """
    fmt, layout = read_layout(path, max_file_bytes=max_file_bytes)
    if not layout.text.strip():
        return None
    rel = doc_id or path.relative_to(root).as_posix()
    stem = path.name.split(".")[0] or path.name
    metadata: dict[str, Any] = {
        "path": rel, "title": layout.title or stem, "format": fmt, "source": "document",
        "link": _source_link(rel, source_base_url),
    }  # fmt: skip
    if layout.description:
        metadata["description"] = layout.description
    if layout.sections:
        metadata[SECTIONS_KEY] = layout.sections
    if layout.code:
        metadata[CODE_KEY] = layout.code
    if layout.terms:
        metadata[TERMS_KEY] = layout.terms
    return Document(id=rel, text=layout.text, metadata=metadata)


def _walk(root: Path, result: LoadResult) -> list[Path]:
    """Supported files under ``root`` (sorted; hidden entries skipped; directory symlinks not followed)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if file_format(path) is None:
                result.ignored += 1
            else:
                files.append(path)
    return sorted(files)


def _sources(paths: Sequence[Path]) -> list[tuple[Path, Path, str]]:
    """(source path, its id base, id prefix) per path: one path -> ids relative to it; several -> ids relative to
    their common parent folder, so two trees' ``README.md`` do not collide."""
    resolved = [p.resolve() for p in paths]
    if len(paths) == 1:
        base = resolved[0] if resolved[0].is_dir() else resolved[0].parent
        return [(paths[0], base, "")]
    common = Path(os.path.commonpath([r.parent for r in resolved]))
    return [(p, r if r.is_dir() else r.parent, (r if r.is_dir() else r.parent).relative_to(common).as_posix())
            for p, r in zip(paths, resolved, strict=True)]  # fmt: skip


def _candidates(path: Path, result: LoadResult) -> list[Path]:
    if path.is_dir():
        return _walk(path, result)
    if file_format(path) is None:
        result.skipped.append(SkippedFile(str(path), "unsupported file type"))
        return []
    return [path]


def _load_one(file: Path, *, base: Path, prefix: str, result: LoadResult, seen: set[str], **kwargs: Any) -> None:
    try:
        real = file.resolve(strict=True)
        if not real.is_relative_to(base):
            raise UnreadableFileError(file, "outside the source folder (symlink target)")
        rel = "/".join(p for p in (prefix, file.absolute().relative_to(base).as_posix()) if p and p != ".")
        if rel in seen:
            raise UnreadableFileError(file, "duplicate document id (the same file given twice)")
        doc = load_file(file, root=base, doc_id=rel, **kwargs)
    except UnreadableFileError as exc:
        result.skipped.append(SkippedFile(str(file), exc.reason))
        return
    except RuntimeError:  # Path.resolve(strict=True) on a symlink loop
        result.skipped.append(SkippedFile(str(file), "symlink loop"))
        return
    except OSError as exc:  # a vanished file, a dangling link, ELOOP
        reason = "symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        result.skipped.append(SkippedFile(str(file), reason))
        return
    if doc is None:
        result.skipped.append(SkippedFile(str(file), "empty (no text)"))
        return
    seen.add(rel)
    result.documents.append(doc)


def load_paths(
    paths: Sequence[Path | str],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    strict: bool = False,
    source_base_url: str | None = None,
) -> LoadResult:
    """Load every supported file under several folders / files. Unreadable files are skipped and reported.

    Raises:
        InvalidInputError: a path does not exist; with ``strict``, the first file that cannot be read (the message
            names it and the reason).
    """
    result = LoadResult()
    seen: set[str] = set()
    for path in (Path(p) for p in paths):
        if not path.exists():
            raise InvalidInputError(f"path does not exist: {path}", field="path", path=str(path))
    for path, base, prefix in _sources([Path(p) for p in paths]):
        for file in _candidates(path, result):
            _load_one(file, base=base, prefix=prefix, result=result, seen=seen, max_file_bytes=max_file_bytes,
                      source_base_url=source_base_url)  # fmt: skip
            if strict and result.skipped:
                bad = result.skipped[0]
                raise InvalidInputError(f"cannot read {bad.path}: {bad.reason} (--strict)", field="path",
                                        path=bad.path, reason=bad.reason)  # fmt: skip
    for bad in result.skipped:
        logger.warning("file skipped path=%s reason=%s", bad.path, bad.reason)
    logger.info("sources loaded documents=%d skipped=%d ignored=%d", len(result.documents), len(result.skipped),
                result.ignored)  # fmt: skip
    return result


def load_folder(
    path: Path | str, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, strict: bool = False
) -> list[Document]:
    """Documents of every supported file under ``path`` (see :func:`load_paths`).

    Raises:
        InvalidInputError: ``path`` is not a directory or yields no document; with ``strict`` also a file that
            cannot be read (the message names the file). Without it such files are skipped and logged.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidInputError(f"not a directory: {root}", field="path", path=str(root))
    result = load_paths([root], max_file_bytes=max_file_bytes, strict=strict)
    if not result.documents:
        raise InvalidInputError(
            f"no readable Markdown, text, HTML or PDF files under {root} (suffixes: {', '.join(sorted(FORMATS))}, "
            "optionally .gz)",
            field="path",
            path=str(root),
        )
    return result.documents


def _read_text(path: Path, *, max_file_bytes: int) -> str:
    """A JSONL file's text (UTF-8; a JSONL file in another encoding is an error, not a guess)."""
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            raise InvalidInputError(
                f"file {path} is {size} bytes, over the limit of {max_file_bytes} bytes (indexing.max_file_bytes)",
                field="path", path=str(path),
            )  # fmt: skip
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"file {path} is not UTF-8 text (byte {exc.start}): {exc.reason}", field="path",
                                path=str(path)) from exc  # fmt: skip
    except OSError as exc:
        raise InvalidInputError(f"cannot read file {path}: {exc.strerror or exc}", field="path",
                                path=str(path)) from exc  # fmt: skip


def _jsonl_error(path: Path, line_no: int, field: str, problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path}: line {line_no}: field {field!r} {problem}", field=field, line=line_no, path=str(path)
    )


def _parse_jsonl_record(path: Path, line_no: int, line: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _jsonl_error(path, line_no, "<line>", f"is not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise _jsonl_error(path, line_no, "<line>", f"must be a JSON object, got {type(record).__name__}")
    doc_id = record.get("id")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise _jsonl_error(path, line_no, "id", "is missing or not a non-empty string")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _jsonl_error(path, line_no, "text", "is missing or not a non-empty string")
    metadata = record.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _jsonl_error(path, line_no, "metadata", f"must be a JSON object, got {type(metadata).__name__}")
    reserved = sorted(RESERVED_METADATA_KEYS.intersection(metadata))
    if reserved:
        raise _jsonl_error(path, line_no, f"metadata.{reserved[0]}", "is a reserved key")
    return Document(id=doc_id, text=text.strip(), metadata={"source": "document", **metadata})


def load_jsonl(path: Path | str, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Load a JSONL file: one object per line with ``id`` (string), ``text`` (string), optional ``metadata`` (object).

    Blank lines are skipped. ``metadata["source"]`` defaults to ``"document"``.

    Raises:
        InvalidInputError: oversized / unreadable file, invalid JSON, a missing or mistyped field, a reserved
            metadata key, a duplicate id, or no record at all. The message names the file, the 1-based line number
            and the field (``detail`` carries ``line`` and ``field``).
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"not a file: {file}", field="path", path=str(file))
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(_read_text(file, max_file_bytes=max_file_bytes).splitlines(), start=1):
        if not line.strip():
            continue
        doc = _parse_jsonl_record(file, line_no, line)
        if doc.id in seen:
            raise _jsonl_error(file, line_no, "id", f"duplicates the id of line {seen[doc.id]}: {doc.id!r}")
        seen[doc.id] = line_no
        docs.append(doc)
    if not docs:
        raise InvalidInputError(f"{file}: no records (empty JSONL file)", field="path", path=str(file))
    return docs


def faq_document(entry: Mapping[str, Any], *, lang: str = "en") -> Document:
    """One FAQ entry (``id, category, q, a, sources``) -> Document: text = the answer only, question in metadata."""
    metadata = {
        "question": entry["q"],
        "category": entry["category"],
        "sources": list(entry.get("sources") or []),
        "lang": lang,
        "source": "document",
    }
    return Document(id=str(entry["id"]), text=str(entry["a"]).strip(), metadata=metadata)


def load_builtin_faq(lang: str = "en") -> list[Document]:
    """The built-in ``zaragoza-construction-faq`` corpus (503 answers per language) as Documents.

    Doc id = FAQ id; text = the answer only; metadata ``question``, ``category``, ``sources``, ``lang``,
    ``source="document"``. Raises ``InvalidInputError`` for a language other than ``en`` / ``sv``.
    """
    if lang not in FAQ_LANGUAGES:
        raise InvalidInputError(f"unknown FAQ language {lang!r}; expected one of {FAQ_LANGUAGES}", field="lang")
    try:
        import zaragoza_construction_faq
    except ImportError as exc:  # pragma: no cover - install problem
        raise InvalidInputError("the built-in corpus package zaragoza-construction-faq is not installed") from exc
    return _faq_documents(zaragoza_construction_faq.load(lang=lang), lang=lang)


def _faq_documents(entries: Iterable[Mapping[str, Any]], *, lang: str) -> list[Document]:
    return [faq_document(entry, lang=lang) for entry in entries]


__all__ = [
    "FORMATS",
    "RESERVED_METADATA_KEYS",
    "LoadResult",
    "SkippedFile",
    "html_to_text",
    "load_builtin_faq",
    "load_file",
    "load_folder",
    "load_jsonl",
    "load_paths",
]
