"""Extractive answers: the best-matching sentences of the cited passages, with ``[n]`` citation markers. No LLM.

Each sentence of each cited passage is scored against the question with the embedder (cosine similarity), blended
with its passage's retrieval score so that sentences of top passages win ties; the best ``max_sentences`` distinct
sentences (within ``max_score_gap`` of the best one) form the answer, best first, each followed by the marker
``[n]`` of its passage (1-based citation order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInputError
from core.ports import Embedder
from core.types import Answer, Citation

NO_PASSAGE_ANSWER = "No relevant passage was found in the knowledge base for this question."
VERSION = "extractive"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9ÅÄÖÉ])")
_MARKDOWN_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")


def split_sentences(text: str, *, min_chars: int = 12) -> list[str]:
    """Split a passage into sentences (line breaks and sentence punctuation); drops fragments under ``min_chars``.

    When every piece is shorter than ``min_chars`` the non-empty pieces are kept, so a short passage still yields one.
    """
    pieces: list[str] = []
    for line in text.splitlines():
        line = _MARKDOWN_PREFIX.sub("", line).strip()
        if line:
            pieces.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    long_enough = [p for p in pieces if len(p) >= min_chars]
    return long_enough or pieces


@dataclass(frozen=True, slots=True)
class _Candidate:
    passage: int  # 0-based index into the citations
    sentence: str


class ExtractiveGenerator:
    """``Generator`` that answers with sentences copied from the cited passages.

    Args:
        embedder: scores sentences against the question (the query path's embedder).
        max_sentences: sentences in the answer (at most).
        passage_weight: weight of the passage's retrieval score in a sentence's score (0 ignores retrieval).
        min_sentence_chars: shorter fragments (headings, list bullets) are not candidates.
        max_score_gap: sentences scoring more than this below the best one are left out (off-topic filler).
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_sentences: int = 3,
        passage_weight: float = 0.3,
        min_sentence_chars: int = 12,
        max_score_gap: float = 0.25,
    ) -> None:
        if max_sentences < 1:
            raise InvalidInputError("max_sentences must be at least 1", field="max_sentences")
        if not 0.0 <= passage_weight <= 1.0:
            raise InvalidInputError("passage_weight must be in [0, 1]", field="passage_weight")
        if max_score_gap < 0.0:
            raise InvalidInputError("max_score_gap must be >= 0", field="max_score_gap")
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.passage_weight = passage_weight
        self.min_sentence_chars = min_sentence_chars
        self.max_score_gap = max_score_gap

    @property
    def version(self) -> str:
        """Always ``"extractive"``."""
        return VERSION

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Answer from ``passages`` only; a clear "no relevant passage" answer when there are none."""
        citations = tuple(passages)
        candidates = [
            _Candidate(passage=i, sentence=s)
            for i, passage in enumerate(citations)
            for s in split_sentences(passage.text, min_chars=self.min_sentence_chars)
        ]
        if not candidates:
            return Answer(text=NO_PASSAGE_ANSWER, citations=citations, generator_version=VERSION)
        scores = self._scores(question, candidates, citations)
        chosen = self._choose(candidates, scores)
        text = " ".join(f"{c.sentence} [{c.passage + 1}]" for c in chosen)
        return Answer(text=text, citations=citations, generator_version=VERSION)

    def _scores(self, question: str, candidates: list[_Candidate], citations: tuple[Citation, ...]) -> np.ndarray:
        query = self.embedder.embed_queries([question])[0]
        sentences = self.embedder.embed_documents([c.sentence for c in candidates])
        similarity = sentences @ query
        passage_scores = np.array([citations[c.passage].score for c in candidates], dtype=np.float32)
        return (1.0 - self.passage_weight) * similarity + self.passage_weight * passage_scores

    def _choose(self, candidates: list[_Candidate], scores: np.ndarray) -> list[_Candidate]:
        chosen: list[_Candidate] = []
        seen: set[str] = set()
        floor = float(scores.max()) - self.max_score_gap
        # Stable sort: equal scores keep citation order (better-ranked passage first).
        for index in np.argsort(-scores, kind="stable"):
            if scores[index] < floor:
                break
            candidate = candidates[int(index)]
            key = " ".join(candidate.sentence.lower().split())
            if key in seen:
                continue
            seen.add(key)
            chosen.append(candidate)
            if len(chosen) == self.max_sentences:
                break
        return chosen
