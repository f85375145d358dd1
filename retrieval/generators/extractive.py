"""Extractive answers: a short paragraph of whole sentences copied from the cited passages, with ``[n]`` markers.

No LLM and no model pass: answering costs well under a millisecond a passage. Each passage is read as units
(:mod:`retrieval.generators.passages`: whole sentences from spaCy's sentencizer over re-flowed paragraphs, code
blocks, lists and tables kept intact). A unit is scored by the question's keywords it holds (the shared tokenizer of
:mod:`core.text`; rarer words among the cited passages and identifiers weigh more). The answer is the best *window*
of up to ``max_sentences`` consecutive units of one passage (the better-ranked passage wins close calls), kept in
reading order so it reads as a paragraph:

- a sentence that introduces a block ("To dump a single table named mytab:") brings the block with it, whole;
- a list or table that is chosen keeps all its items (up to ``max_block_lines`` lines);
- when the window is short, the best window of the next passage that shares the question's keywords follows it;
- each passage's part ends with its marker ``[n]``, and no part has fewer than :data:`MIN_SEGMENT_WORDS` words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInputError
from core.text import is_identifier, tokenize
from core.types import Answer, Citation
from retrieval.generators.passages import Unit, passage_units

NO_PASSAGE_ANSWER = "No relevant passage was found in the knowledge base for this question."
VERSION = "extractive"
#: Fewest words between two citation markers (shorter parts are dropped or merged).
MIN_SEGMENT_WORDS = 5

_MARKER = re.compile(r"\s*\[\d+\]")


def answer_segments(text: str) -> list[str]:
    """The parts of an answer between citation markers (for measuring fragments: parts under 5 words)."""
    return [part.strip() for part in _MARKER.split(text) if part.strip()]


@dataclass(frozen=True, slots=True)
class _Window:
    passage: int  # 0-based index into the citations
    units: tuple[Unit, ...]
    relevance: float  # keyword evidence of the window
    score: float = 0.0  # relevance plus the passage's rank prior

    @property
    def words(self) -> int:
        return sum(u.words for u in self.units)


class ExtractiveGenerator:
    """``Generator`` that answers with whole sentences (and the blocks they introduce) of the cited passages.

    Args:
        max_sentences: units (sentences or blocks) in the answer, at most.
        passage_weight: how much a better retrieval rank counts against keyword evidence, in [0, 1].
        max_passages: passages the answer may draw from (the best-ranked first).
        max_block_lines: a list, table or code block longer than this is cut at a line boundary.
    """

    def __init__(
        self,
        *,
        max_sentences: int = 3,
        passage_weight: float = 0.5,
        max_passages: int = 2,
        max_block_lines: int = 12,
    ) -> None:
        if max_sentences < 1:
            raise InvalidInputError("max_sentences must be at least 1", field="max_sentences")
        if not 0.0 <= passage_weight <= 1.0:
            raise InvalidInputError("passage_weight must be in [0, 1]", field="passage_weight")
        if max_passages < 1:
            raise InvalidInputError("max_passages must be at least 1", field="max_passages")
        self.max_sentences = max_sentences
        self.passage_weight = passage_weight
        self.max_passages = max_passages
        self.max_block_lines = max_block_lines

    @property
    def version(self) -> str:
        """Always ``"extractive"``."""
        return VERSION

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Answer from ``passages`` only; a clear "no relevant passage" answer when there are none."""
        citations = tuple(passages)
        units = [passage_units(c.text) for c in citations]
        if not any(units):
            return Answer(text=NO_PASSAGE_ANSWER, citations=citations, generator_version=VERSION)
        weights = _term_weights(question, units)
        windows = self._choose(units, weights)
        parts = [f"{_render(w.units, self.max_block_lines)} [{w.passage + 1}]" for w in windows]
        return Answer(text=" ".join(parts), citations=citations, generator_version=VERSION)

    # ------------------------------------------------------------------------------------------------ choice
    def _choose(self, units: list[list[Unit]], weights: dict[str, float]) -> list[_Window]:
        windows = [self._best_window(i, u, weights) for i, u in enumerate(units[: self.max_passages * 2]) if u]
        top = max(w.relevance for w in windows) or 1.0
        best = sorted(
            (_Window(w.passage, w.units, w.relevance, w.relevance + self.passage_weight * top / (1 + w.passage))
             for w in windows),
            key=lambda w: (-w.score, w.passage),
        )  # fmt: skip
        chosen: list[_Window] = []
        seen: set[str] = set()
        budget = self.max_sentences
        for window in best:
            fresh = tuple(u for u in window.units if _key(u) not in seen)[:budget]
            if sum(u.words for u in fresh) < MIN_SEGMENT_WORDS:
                continue
            if chosen and (window.relevance <= 0 or len(chosen) >= self.max_passages):
                break
            chosen.append(_Window(window.passage, fresh, window.relevance))
            seen.update(_key(u) for u in fresh)
            budget -= len(fresh)
            if budget <= 0:
                break
        return chosen or [_fallback(units)]

    def _best_window(self, passage: int, units: list[Unit], weights: dict[str, float]) -> _Window:
        """The best run of up to ``max_sentences`` units of one passage, an introducer pulling in its block."""
        terms = [set(tokenize(u.text)) & weights.keys() for u in units]
        best: _Window | None = None
        for start in range(len(units)):
            stop = _window_stop(units, start, self.max_sentences)
            covered = set().union(*terms[start:stop])
            # the question's keywords the window covers, and a window should open on relevant text
            relevance = sum(weights[t] for t in covered) + 0.5 * sum(weights[t] for t in terms[start])
            if best is None or relevance > best.relevance:
                best = _Window(passage, tuple(units[start:stop]), relevance)
        assert best is not None
        return best


def _window_stop(units: list[Unit], start: int, size: int) -> int:
    """End (exclusive) of the window from ``start``: ``size`` units, extended over a block a sentence introduces."""
    stop = min(len(units), start + size)
    if stop < len(units) and units[stop - 1].text.rstrip().endswith(":") and units[stop].block:
        stop += 1
    return stop


def _term_weights(question: str, units: list[list[Unit]]) -> dict[str, float]:
    """Question keywords weighted by rarity among the cited passages' units; identifiers count double."""
    terms = set(tokenize(question))
    all_units = [set(tokenize(u.text)) for passage in units for u in passage]
    df = Counter(t for unit in all_units for t in unit & terms)
    n = max(1, len(all_units))
    return {t: math.log(1.0 + n / (1.0 + df[t])) * (2.0 if is_identifier(t) else 1.0) for t in terms}


def _key(unit: Unit) -> str:
    return " ".join(unit.text.lower().split())


def _render(units: Sequence[Unit], max_lines: int) -> str:
    """Sentences joined into a paragraph; blocks on lines of their own (cut at ``max_lines`` lines)."""
    text = ""
    for unit in units:
        if unit.block:
            lines = unit.text.splitlines()
            block = "\n".join(lines[:max_lines] + (["…"] if len(lines) > max_lines else []))
            text = f"{text}\n{block}\n" if text else f"{block}\n"
        else:
            text = f"{text} {unit.text}" if text and not text.endswith("\n") else f"{text}{unit.text}"
    return text.strip()


def _fallback(units: list[list[Unit]]) -> _Window:
    """No part reached the word minimum: the best-ranked passage's opening units, joined until it does."""
    passage = next(i for i, u in enumerate(units) if u)
    taken: list[Unit] = []
    for unit in units[passage]:
        taken.append(unit)
        if sum(u.words for u in taken) >= MIN_SEGMENT_WORDS:
            break
    return _Window(passage, tuple(taken), 0.0)


__all__ = ["MIN_SEGMENT_WORDS", "NO_PASSAGE_ANSWER", "ExtractiveGenerator", "answer_segments"]
