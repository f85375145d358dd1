"""The layout every reader produces: a list of blocks (headings, paragraphs, code) and its flattening into text.

Contract: :func:`assemble` joins blocks with a blank line. Paragraph text is re-flowed (runs of whitespace become one
space); code is kept verbatim. The result records where each section starts (``sections``: ``[offset, title]``, the
title being the heading path's last element) and where each code block lies (``code``: ``[start, end]``), both as
character offsets into the text, so the chunker can cut at section boundaries and keep code whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "code"]

#: Document metadata keys holding a layout's offsets (written by the loaders, read by the chunker, never copied into
#: chunk payloads): ``_sections`` = ``[[offset, title], ...]``, ``_code`` = ``[[start, end], ...]``.
SECTIONS_KEY = "_sections"
CODE_KEY = "_code"
LAYOUT_KEYS = frozenset({SECTIONS_KEY, CODE_KEY})

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of a document's layout: a heading (``level`` 1..6), a paragraph, or a code block."""

    kind: BlockKind
    text: str
    level: int = 0


@dataclass(frozen=True, slots=True)
class Layout:
    """A document as text plus its structure (offsets into ``text``)."""

    text: str
    title: str | None = None
    sections: list[list[int | str]] = field(default_factory=list)
    code: list[list[int]] = field(default_factory=list)


def reflow(text: str) -> str:
    """Join hard-wrapped lines and collapse whitespace: a paragraph becomes one line."""
    return _SPACE.sub(" ", text).strip()


def paragraph(text: str) -> Block | None:
    """A re-flowed paragraph block, or ``None`` for blank text."""
    flowed = reflow(text)
    return Block("paragraph", flowed) if flowed else None


def code(text: str) -> Block | None:
    """A verbatim code block (only trailing whitespace and surrounding blank lines removed), or ``None`` if blank."""
    lines = [line.rstrip() for line in text.expandtabs(8).split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return Block("code", "\n".join(lines)) if lines else None


def assemble(blocks: list[Block], *, title: str | None = None) -> Layout:
    """Flatten ``blocks`` into a :class:`Layout`. Headings start sections and stay in the text as their own paragraph.

    ``title`` defaults to the first level-1 heading (else the first heading).
    """
    parts: list[str] = []
    sections: list[list[int | str]] = []
    code_spans: list[list[int]] = []
    offset = 0
    for block in blocks:
        if parts:
            offset += 2  # the "\n\n" separator
        if block.kind == "heading":
            sections.append([offset, block.text])
        elif block.kind == "code":
            code_spans.append([offset, offset + len(block.text)])
        parts.append(block.text)
        offset += len(block.text)
    if title is None:
        headings = [b for b in blocks if b.kind == "heading"]
        top = [b for b in headings if b.level == 1] or headings
        title = top[0].text if top else None
    return Layout(text="\n\n".join(parts), title=title, sections=sections, code=code_spans)


__all__ = ["CODE_KEY", "LAYOUT_KEYS", "SECTIONS_KEY", "Block", "Layout", "assemble", "code", "paragraph", "reflow"]
