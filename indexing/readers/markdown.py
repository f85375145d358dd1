"""Markdown and plain text -> :class:`~indexing.readers.blocks.Layout`.

Contract: hard-wrapped lines of a paragraph are joined; a blank line, a heading, a list item, a table row or a code
block ends a paragraph. Fenced code (```` ``` ```` / ``~~~``) and indented code (4 spaces or a tab after a blank line)
are kept verbatim, without the fences. ATX headings (``# Title``, Markdown only) and setext headings (a line
underlined with ``===`` / ``---``, both formats: AsciiDoc and many READMEs use them) become section titles.
"""

from __future__ import annotations

import re

from indexing.readers.blocks import Block, Layout, assemble, code, paragraph

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+\S")
_RULE = re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$")


class _Parser:
    """Line-by-line block parser (one pass; no nesting beyond what a reader needs)."""

    def __init__(self, *, markdown: bool) -> None:
        self.markdown = markdown
        self.blocks: list[Block] = []
        self.para: list[str] = []

    def flush(self) -> None:
        block = paragraph("\n".join(self.para))
        self.para.clear()
        if block is not None:
            self.blocks.append(block)

    def parse(self, text: str) -> list[Block]:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        i = 0
        while i < len(lines):
            i = self._line(lines, i)
        self.flush()
        return self.blocks

    def _line(self, lines: list[str], i: int) -> int:
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            return self._fenced(lines, i, fence.group(1))
        if not line.strip():
            self.flush()
            return i + 1
        if (line.startswith(("    ", "\t"))) and not self.para and (i == 0 or not lines[i - 1].strip()):
            return self._indented(lines, i)
        atx = _ATX.match(line) if self.markdown else None
        if atx:
            self._heading(atx.group(2), len(atx.group(1)))
            return i + 1
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not self.para and _SETEXT.match(nxt) and len(nxt.strip()) >= 3 and not _ITEM.match(line):
            self._heading(line.strip(), 1 if nxt.strip()[0] == "=" else 2)
            return i + 2
        if _RULE.match(line):
            self.flush()
            return i + 1
        if _ITEM.match(line) or line.lstrip().startswith("|"):
            self.flush()
        self.para.append(line)
        return i + 1

    def _heading(self, text: str, level: int) -> None:
        self.flush()
        self.blocks.append(Block("heading", " ".join(text.split()), level))

    def _fenced(self, lines: list[str], i: int, marker: str) -> int:
        self.flush()
        end = i + 1
        while end < len(lines) and not lines[end].lstrip().startswith(marker[0] * len(marker)):
            end += 1
        block = code("\n".join(lines[i + 1 : end]))
        if block is not None:
            self.blocks.append(block)
        return end + 1

    def _indented(self, lines: list[str], i: int) -> int:
        end = i
        while end < len(lines) and (lines[end].startswith(("    ", "\t")) or not lines[end].strip()):
            end += 1
        body = [line[4:] if line.startswith("    ") else line[1:] for line in lines[i:end]]
        block = code("\n".join(body))
        if block is not None:
            self.blocks.append(block)
        return end


def markdown_layout(text: str) -> Layout:
    """Parse Markdown (see the module contract); ``title`` = the first level-1 heading (else the first heading)."""
    return assemble(_Parser(markdown=True).parse(text))


def text_layout(text: str) -> Layout:
    """Parse plain text: paragraphs re-flowed, indented blocks verbatim, setext-underlined lines as headings."""
    layout = assemble(_Parser(markdown=False).parse(text))
    return Layout(
        text=layout.text, title=None, sections=layout.sections, code=layout.code, description=layout.description
    )


__all__ = ["markdown_layout", "text_layout"]
