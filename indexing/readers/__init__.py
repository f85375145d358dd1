"""Readers: one file (optionally gzip-compressed) -> :class:`~indexing.readers.blocks.Layout`.

Contract: :func:`read_layout` picks the reader by suffix (``.md``/``.markdown``, ``.txt``, ``.html``/``.htm``,
``.pdf``, each also as ``.gz``), enforces the size limit on the bytes read (after decompression) and raises
:class:`UnreadableFileError` with a short reason (``binary``, ``over the size limit``, ``not decodable``, ``broken
PDF``, an OS error such as a symlink loop) for anything it cannot read. Text that is not UTF-8 is decoded with the
encoding charset-normalizer detects, when it detects one with confidence.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from core.errors import InvalidInputError
from indexing.readers.blocks import Layout
from indexing.readers.html import html_layout
from indexing.readers.markdown import markdown_layout, text_layout
from indexing.readers.pdf import pdf_layout

FORMATS: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html", ".pdf": "pdf",
}  # fmt: skip
_MAX_CHAOS = 0.2  # charset-normalizer's "mess" ratio above which a guess is not trusted


class UnreadableFileError(InvalidInputError):
    """A file that cannot be read as a document; ``reason`` is short and names no content."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}", field="path", path=str(path), reason=reason)
        self.path = path
        self.reason = reason


def file_format(path: Path) -> str | None:
    """The format of ``path`` by suffix (``foo.html.gz`` -> ``html``), ``None`` if unsupported."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def _read_bytes(path: Path, *, max_file_bytes: int) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read(max_file_bytes + 1)  # bounded: a small archive may inflate without end
        else:
            if path.stat().st_size > max_file_bytes:
                raise UnreadableFileError(path, f"over the size limit of {max_file_bytes} bytes")
            data = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UnreadableFileError(path, f"broken gzip file ({exc})") from exc
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or str(exc)) from exc
    if len(data) > max_file_bytes:
        raise UnreadableFileError(path, f"over the size limit of {max_file_bytes} bytes")
    return data


def decode_text(data: bytes, *, path: Path) -> str:
    """UTF-8 (BOM allowed), UTF-16 with a BOM, else the encoding charset-normalizer detects with confidence.

    Raises ``UnreadableFileError`` for binary data (NUL bytes without a UTF-16 BOM) or undecodable text.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnreadableFileError(path, "not decodable as UTF-16") from exc
    if b"\x00" in data[:8192]:
        raise UnreadableFileError(path, "binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is None or best.chaos > _MAX_CHAOS:
        raise UnreadableFileError(path, "not UTF-8 and no text encoding detected")
    return data.decode(best.encoding, errors="replace")


def read_layout(path: Path, *, max_file_bytes: int) -> tuple[str, Layout]:
    """Read one file; returns ``(format, layout)``. Raises ``UnreadableFileError`` (see the module contract)."""
    fmt = file_format(path)
    if fmt is None:
        raise UnreadableFileError(path, f"unsupported file type {''.join(path.suffixes[-2:])!r}")
    data = _read_bytes(path, max_file_bytes=max_file_bytes)
    if fmt == "pdf":
        try:
            return fmt, pdf_layout(data)
        except ValueError as exc:
            raise UnreadableFileError(path, str(exc)) from exc
    text = decode_text(data, path=path)
    if fmt == "html":
        return fmt, html_layout(text)
    return fmt, (markdown_layout(text) if fmt == "markdown" else text_layout(text))


__all__ = ["FORMATS", "Layout", "UnreadableFileError", "decode_text", "file_format", "read_layout"]
