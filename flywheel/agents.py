"""Simulated support agents: how a real agent reacts to an answer, given that it knows the right passage.

An agent asked a question whose correct document is known (the simulation's ground truth). Seeing the answer and
its citations it:

- rates it: thumbs up when the correct document is cited, down otherwise;
- marks passages: the correct passage relevant (it knows where the answer lives, even when it was not cited) and the
  cited passages ranked above it irrelevant (all cited passages when the correct one is missing);
- corrects a wrong answer with the reference answer;
- uses the answer when the correct passage is the top citation, abandons it otherwise.

With probability ``noise`` the agent gets this query wrong: rating, use and marks are flipped (a wrong cited passage
is marked relevant and the correct one irrelevant) and a correction, if any, carries another document's answer.
The decisions are pure functions of the inputs and the seeded ``random.Random`` passed in (reproducible runs).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.types import Citation, FeedbackKind


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    """A question with its correct document id and reference answer (ground truth of the simulation)."""

    id: str
    question: str
    doc_id: str
    answer: str
    category: str | None = None


@dataclass(slots=True)
class AgentReaction:
    """The feedback an agent gives to one answer: ``(kind, data)`` events in submission order."""

    events: list[tuple[FeedbackKind, dict[str, Any]]] = field(default_factory=list)
    correct_cited: bool = False
    correct_rank: int | None = None
    noisy: bool = False


def react(
    item: LabelledQuestion,
    citations: Sequence[Citation],
    *,
    correct_chunk_ids: Sequence[str],
    wrong_answers: Mapping[str, str],
    noise: float,
    rng: random.Random,
) -> AgentReaction:
    """Decide an agent's feedback to ``citations`` for ``item`` (see the module docstring).

    Args:
        item: the question and its ground truth.
        citations: the answer's citations, best first.
        correct_chunk_ids: the live chunk ids of the correct document (the agent can find them when not cited).
        wrong_answers: doc id -> answer text of other documents (wrong corrections are drawn from the cited ones).
        noise: probability that this reaction is wrong (flipped).
        rng: the simulation's seeded random source.
    """
    doc_ids = [c.doc_id for c in citations]
    rank = doc_ids.index(item.doc_id) + 1 if item.doc_id in doc_ids else None
    noisy = rng.random() < noise
    reaction = AgentReaction(correct_cited=rank is not None, correct_rank=rank, noisy=noisy)
    good = (rank is not None) != noisy
    reaction.events.append((FeedbackKind.THUMBS, {"value": "up" if good else "down"}))
    marks = _relevance(item, citations, rank=rank, correct_chunk_ids=correct_chunk_ids, noisy=noisy)
    if marks["relevant"] or marks["irrelevant"]:
        reaction.events.append((FeedbackKind.RELEVANCE, marks))
    if rank != 1:
        text = _wrong_answer(item, citations, wrong_answers) if noisy else item.answer
        if text:
            reaction.events.append((FeedbackKind.CORRECTION, {"text": text}))
    used = (rank == 1) != noisy
    reaction.events.append((FeedbackKind.USED if used else FeedbackKind.ABANDONED, {}))
    return reaction


def _relevance(
    item: LabelledQuestion,
    citations: Sequence[Citation],
    *,
    rank: int | None,
    correct_chunk_ids: Sequence[str],
    noisy: bool,
) -> dict[str, list[str]]:
    above = citations if rank is None else citations[: rank - 1]
    wrong = [c.chunk_id for c in above if c.doc_id != item.doc_id]
    right = list(correct_chunk_ids[:1]) if rank is None else [citations[rank - 1].chunk_id]
    if not noisy:
        return {"relevant": right, "irrelevant": _dedup(wrong)}
    # A wrong reaction marks a wrong passage relevant and the right one irrelevant.
    decoys = [c.chunk_id for c in citations if c.doc_id != item.doc_id]
    return {"relevant": decoys[:1], "irrelevant": right}


def _wrong_answer(item: LabelledQuestion, citations: Sequence[Citation], wrong_answers: Mapping[str, str]) -> str:
    for citation in citations:
        if citation.doc_id != item.doc_id and citation.doc_id in wrong_answers:
            return wrong_answers[citation.doc_id]
    return ""


def _dedup(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))
