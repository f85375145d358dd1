"""PDF -> :class:`~indexing.readers.blocks.Layout` with pypdf: one section per page (``page N``), lines re-flowed.

Contract: a PDF that pypdf cannot open, that is encrypted, or whose pages hold no extractable text raises
:class:`ValueError` (the loader reports the file as skipped with that reason).
"""

from __future__ import annotations

import io
import re

from indexing.readers.blocks import Block, Layout, assemble, paragraph


def pdf_layout(data: bytes) -> Layout:
    """Extract the text of every page; blank lines (or a line ending a sentence) separate paragraphs."""
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ValueError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (PyPdfError, OSError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ValueError(f"broken PDF: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    for number, text in enumerate(pages, start=1):
        paras = [p for chunk in re.split(r"\n\s*\n", text) if (p := paragraph(chunk)) is not None]
        if paras:
            blocks.append(Block("heading", f"page {number}", 1))
            blocks.extend(paras)
    if not blocks:
        raise ValueError("PDF has no extractable text")
    return assemble(blocks, title=(str(title).strip() or None) if title else None)


__all__ = ["pdf_layout"]
