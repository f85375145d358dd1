"""Document loaders: a folder of Markdown / text / HTML files, a JSONL file, or the built-in FAQ corpus.

Contract: every loader returns ``list[Document]`` with stable ids (relative path, JSONL ``id``, FAQ id) and
``metadata["source"] == "document"``; bad input raises :class:`~core.errors.InvalidInputError` whose message names
the file (and for JSONL the 1-based line number and the field). Nothing here embeds or writes anything.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.types import Document

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 20_000_000
FORMATS: dict[str, str] = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html"}
#: Payload keys written by the chunker; document metadata must not shadow them.
RESERVED_METADATA_KEYS = frozenset({"text", "doc_id", "doc_hash", "chunk_index", "chunk_count"})
FAQ_LANGUAGES = ("en", "sv")

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg"})


class _HtmlToText(HTMLParser):
    """HTML -> plain text: drops script/style/head, breaks lines at block elements, keeps ``<title>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: str | None = None
        self._skip_depth = 0
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split()) or None
        elif tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)

    def text(self) -> str:
        """Collapsed text: runs of spaces become one, blank-line runs become one blank line."""
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> tuple[str, str | None]:
    """Convert an HTML page to plain text. Returns ``(text, title)`` (title from ``<title>``, else ``None``)."""
    parser = _HtmlToText()
    parser.feed(html)
    parser.close()
    return parser.text(), parser.title


def _markdown_title(text: str) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


def _read_text(path: Path, *, max_file_bytes: int) -> str:
    """Read a UTF-8 file, refusing oversized or unreadable ones with an error naming the file."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read file {path}: {exc.strerror or exc}", field="path", path=str(path)
        ) from exc
    if size > max_file_bytes:
        raise InvalidInputError(
            f"file {path} is {size} bytes, over the limit of {max_file_bytes} bytes (indexing.max_file_bytes)",
            field="path",
            path=str(path),
        )
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"file {path} is not UTF-8 text (byte {exc.start}): {exc.reason}", field="path", path=str(path)
        ) from exc
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read file {path}: {exc.strerror or exc}", field="path", path=str(path)
        ) from exc


def load_file(path: Path, *, root: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document | None:
    """Load one Markdown / text / HTML file as a Document (id = path relative to ``root``); ``None`` if empty."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"unsupported file type {path.suffix!r}: {path}", field="path", path=str(path))
    raw = _read_text(path, max_file_bytes=max_file_bytes)
    if fmt == "html":
        text, title = html_to_text(raw)
    else:
        text, title = raw.strip(), _markdown_title(raw) if fmt == "markdown" else None
    if not text:
        logger.info("skipping empty file path=%s", path.name)
        return None
    rel = path.relative_to(root).as_posix()
    metadata = {"path": rel, "title": title or path.stem, "format": fmt, "source": "document"}
    return Document(id=rel, text=text, metadata=metadata)


def load_folder(path: Path | str, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Load every ``.md``/``.markdown``/``.txt``/``.html``/``.htm`` file under ``path`` (recursively, sorted).

    Hidden files and directories are skipped; empty files are skipped. Doc id = POSIX path relative to ``path``;
    metadata ``path``, ``title`` (first Markdown ``#`` heading / HTML ``<title>`` / file stem), ``format``,
    ``source="document"``.

    Raises:
        InvalidInputError: ``path`` is not a directory, holds no supported file, or a file is oversized,
            unreadable or not UTF-8 (the message names the file).
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidInputError(f"not a directory: {root}", field="path", path=str(root))
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in FORMATS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and (p.is_file() or not p.exists())
    )
    if not files:
        raise InvalidInputError(
            f"no Markdown, text or HTML files under {root} (suffixes: {', '.join(sorted(FORMATS))})",
            field="path",
            path=str(root),
        )
    docs = [doc for file in files if (doc := load_file(file, root=root, max_file_bytes=max_file_bytes)) is not None]
    logger.info("folder loaded files=%d documents=%d", len(files), len(docs))
    return docs


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
    "html_to_text",
    "load_builtin_faq",
    "load_file",
    "load_folder",
    "load_jsonl",
]
