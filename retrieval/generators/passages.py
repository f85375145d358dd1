"""Reading a passage as a person does: paragraphs, whole sentences, code blocks, lists and tables.

Contract: :func:`passage_units` turns a passage into ordered :class:`Unit` s. Hard-wrapped prose lines are joined
into paragraphs first (a blank line, a heading, a list item, a table row or code ends a paragraph), then split into
sentences by spaCy's rule-based ``sentencizer`` (no model, ~0.2 ms a passage). Fenced (```) or indented code and
shell-prompt lines form one ``code`` unit kept verbatim; consecutive list items form one ``list`` unit and table rows
one ``table`` unit, items intact. Headings are dropped (they are titles, not answers).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

UnitKind = Literal["sentence", "code", "list", "table"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$|^[^|]*\|[^|]*\|")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_PROMPT = re.compile(r"^\s*(?:\$|#|>>>|%|[A-Za-z]:\\>)\s+\S")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Unit:
    """One answerable piece of a passage, in reading order."""

    kind: UnitKind
    text: str

    @property
    def words(self) -> int:
        """Number of whitespace-separated words."""
        return len(_WORD.findall(self.text))

    @property
    def block(self) -> bool:
        """Whether it is laid out on lines of its own (code, list, table)."""
        return self.kind != "sentence"


_NLP_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _sentencizer() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def sentences(paragraph: str) -> list[str]:
    """Whole sentences of one paragraph (spaCy's rule-based sentencizer)."""
    text = " ".join(paragraph.split())
    if not text:
        return []
    nlp = _sentencizer()
    with _NLP_LOCK:  # spaCy's Language object is not documented as thread-safe
        doc = nlp(text)
    return [s.text.strip() for s in doc.sents if s.text.strip()]


def _line_kind(line: str) -> str:
    if not line.strip():
        return "blank"
    if _HEADING.match(line):
        return "heading"
    if _LIST_ITEM.match(line):
        return "list"
    if _TABLE_ROW.match(line) and line.count("|") >= 2:
        return "table"
    if line.startswith(("    ", "\t")) or _PROMPT.match(line):
        return "code"
    return "prose"


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Consecutive lines grouped by kind; fenced code is one block whatever its lines look like."""
    blocks: list[tuple[str, list[str]]] = []
    fenced: list[str] | None = None
    for line in text.splitlines():
        if _FENCE.match(line):
            if fenced is None:
                fenced = []
            else:
                blocks.append(("code", fenced))
                fenced = None
            continue
        if fenced is not None:
            fenced.append(line)
            continue
        kind = _line_kind(line)
        if kind in ("blank", "heading"):  # separators: they end the block before them
            blocks.append((kind, []))
        elif kind == "prose" and blocks and blocks[-1][0] == "prose" and _title_break(blocks[-1][1], line):
            title = blocks[-1][1].pop()  # a short unpunctuated line before a capitalised one: a title, not prose
            blocks.extend([("heading", [title]), (kind, [line])])
        elif blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(line)
        elif kind == "prose" and blocks and blocks[-1][0] == "list" and line.startswith((" ", "\t")):
            blocks[-1][1].append(line)  # a wrapped list item continues the item
        else:
            blocks.append((kind, [line]))
    if fenced:
        blocks.append(("code", fenced))
    return blocks


def _title_like(line: str, *, alone: bool = False) -> bool:
    """A short line without closing punctuation (a page or section title), when followed by a new sentence."""
    stripped = line.strip()
    return 0 < len(stripped) <= (80 if alone else 60) and stripped[-1] not in ".!?:;,)\"'"


def _title_break(paragraph: list[str], line: str) -> bool:
    """Whether the paragraph's last line is a title: short, unpunctuated, and ``line`` starts a new sentence."""
    return bool(paragraph) and _title_like(paragraph[-1]) and line.lstrip()[:1].isupper()


def _list_items(lines: list[str]) -> str:
    items: list[str] = []
    for line in lines:
        if _LIST_ITEM.match(line) or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    return "\n".join(items)


def passage_units(text: str) -> list[Unit]:
    """The units of a passage in reading order (see the module docstring)."""
    units: list[Unit] = []
    for kind, lines in _blocks(text):
        if kind == "prose" and not (len(lines) == 1 and _title_like(lines[0], alone=True)):
            units.extend(Unit("sentence", s) for s in sentences(" ".join(lines)))
        elif kind == "code":
            code = "\n".join(lines).strip("\n")
            if code.strip():
                units.append(Unit("code", _dedent(code)))
        elif kind == "list":
            units.append(Unit("list", _list_items(lines)))
        elif kind == "table":
            units.append(Unit("table", "\n".join(line.rstrip() for line in lines)))
    return units


def _dedent(code: str) -> str:
    lines = code.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines)


__all__ = ["Unit", "UnitKind", "passage_units", "sentences"]
