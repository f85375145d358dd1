"""The layout every reader produces: a list of blocks (headings, paragraphs, code) and its flattening into text.

Contract: :func:`assemble` joins blocks with a blank line. Paragraph text is re-flowed (runs of whitespace become one
space); code is kept verbatim. The result records where each section starts (``sections``: ``[offset, title]``, the
title being the heading path's last element) and where each code block lies (``code``: ``[start, end]``), both as
character offsets into the text, so the chunker can cut at section boundaries and keep code whole. ``description``
is the document's lead: its first paragraph of at least :data:`LEAD_MIN_WORDS` words, cut to its first sentence when
longer than :data:`LEAD_MAX_CHARS` characters (and then at a word boundary) — a man page's NAME line ("git-push -
Update remote refs along with associated objects"), a guide's opening sentence. The chunker puts title and lead in
each chunk's context header (what is embedded with the chunk, never its cited text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "code"]

#: Document metadata keys holding a layout's offsets (written by the loaders, read by the chunker, never copied into
#: chunk payloads): ``_sections`` = ``[[offset, title], ...]``, ``_code`` = ``[[start, end], ...]``, ``_terms`` =
#: ``[[start, body, end, term], ...]`` (definition-list entries: ``start`` of the term lines, ``body`` where the
#: description starts, ``end`` where it ends, the term text).
SECTIONS_KEY = "_sections"
CODE_KEY = "_code"
TERMS_KEY = "_terms"
LAYOUT_KEYS = frozenset({SECTIONS_KEY, CODE_KEY, TERMS_KEY})

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of a document's layout: a heading (``level`` 1..6), a paragraph, or a code block. ``entry`` numbers
    the definition-list entry the block belongs to (its term or its description; 0: none), ``term`` marks the
    entry's term line."""

    kind: BlockKind
    text: str
    level: int = 0
    entry: int = 0
    term: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    """A document as text plus its structure (offsets into ``text``)."""

    text: str
    title: str | None = None
    sections: list[list[int | str]] = field(default_factory=list)
    code: list[list[int]] = field(default_factory=list)
    description: str | None = None
    terms: list[list[int | str]] = field(default_factory=list)


#: A lead paragraph needs this many words (a lone "NAME" or a date line is not a description).
LEAD_MIN_WORDS = 3
#: A longer lead is cut to its first sentence, then to this many characters at a word boundary.
LEAD_MAX_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def lead(text: str) -> str | None:
    """A paragraph shortened to a description (see the module contract); ``None`` when it has too few words."""
    flowed = reflow(text)
    if len(flowed.split()) < LEAD_MIN_WORDS:
        return None
    if len(flowed) > LEAD_MAX_CHARS:
        flowed = _SENTENCE_END.split(flowed, maxsplit=1)[0]
    if len(flowed) > LEAD_MAX_CHARS:
        flowed = flowed[:LEAD_MAX_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return flowed


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


def assemble(blocks: list[Block], *, title: str | None = None, description: str | None = None) -> Layout:
    """Flatten ``blocks`` into a :class:`Layout`. Headings start sections and stay in the text as their own paragraph.

    ``title`` defaults to the first level-1 heading (else the first heading); ``description`` to the lead of the
    first paragraph that has one (:func:`lead`).
    """
    parts: list[str] = []
    sections: list[list[int | str]] = []
    code_spans: list[list[int]] = []
    entries: dict[int, list[int | str]] = {}  # entry -> [start, body, end, term]
    offset = 0
    for block in blocks:
        if parts:
            offset += 2  # the "\n\n" separator
        if block.kind == "heading":
            sections.append([offset, block.text])
        elif block.kind == "code":
            code_spans.append([offset, offset + len(block.text)])
        end = offset + len(block.text)
        if block.entry and block.term and block.entry not in entries:
            entries[block.entry] = [offset, end, end, block.text]
        elif block.entry in entries:
            entry = entries[block.entry]
            entry[2] = end
            if block.term:  # "-f" then "--force": one entry with two term lines
                entry[1], entry[3] = end, f"{entry[3]}, {block.text}"
        parts.append(block.text)
        offset += len(block.text)
    if title is None:
        headings = [b for b in blocks if b.kind == "heading"]
        top = [b for b in headings if b.level == 1] or headings
        title = top[0].text if top else None
    if description is None:
        description = next((d for b in blocks if b.kind == "paragraph" and (d := lead(b.text))), None)
    return Layout(
        text="\n\n".join(parts), title=title, sections=sections, code=code_spans, description=description,
        terms=list(entries.values()),
    )  # fmt: skip


__all__ = [
    "CODE_KEY", "LAYOUT_KEYS", "SECTIONS_KEY", "TERMS_KEY", "Block", "Layout", "assemble", "code", "lead", "paragraph",
    "reflow",
]  # fmt: skip
