"""Turning raw events into resolved (query, passage) labels: votes, per-rater weights, weighted conflict resolution.

A *vote* says "for this normalised question, passage ``chunk_id`` is relevant (+1) / irrelevant (-1)", with a base
weight by signal strength: explicit relevance marks 1.0, answer-level signals (thumbs, stars, used, copied) 0.5 on
the answer's top cited passage. Rater weights come from agreement with the unweighted majority on contested keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.types import FeedbackEvent, FeedbackKind, QueryRecord
from feedback.text import normalize_text

MARK_WEIGHT = 1.0
ANSWER_WEIGHT = 0.5
POSITIVE_STARS = 4
NEGATIVE_STARS = 2


@dataclass(frozen=True, slots=True)
class Vote:
    """One rater's judgement of one (question, passage)."""

    key: tuple[str, str]  # (normalised question, chunk id)
    label: int  # +1 relevant, -1 irrelevant
    weight: float
    rater: str
    event_id: str


@dataclass(slots=True)
class Resolved:
    """The weighted-vote outcome for one (question, passage): label, confidence in (0, 1], supporting events."""

    question: str
    chunk_id: str
    label: int
    confidence: float
    event_ids: list[str] = field(default_factory=list)
    contested: bool = False


def rater_of(event: FeedbackEvent) -> str:
    """The rater identity used for weighting and conflict votes: the authenticated principal that sent the event.

    A client-supplied ``rater_id`` or ``user_id`` is a label and never a separate voter (one key could otherwise
    outvote everyone by inventing ids); events stored without a principal share one ``anonymous`` voice.
    """
    return event.principal or "anonymous"


def _answer_label(event: FeedbackEvent) -> int:
    kind, value = event.kind, event.data.get("value")
    if kind in (FeedbackKind.USED, FeedbackKind.COPIED) or (kind == FeedbackKind.THUMBS and value == "up"):
        return 1
    if kind == FeedbackKind.THUMBS and value == "down":
        return -1
    if kind == FeedbackKind.STARS and isinstance(value, int):
        return 1 if value >= POSITIVE_STARS else -1 if value <= NEGATIVE_STARS else 0
    return 0


def votes_of(event: FeedbackEvent, query: QueryRecord) -> list[Vote]:
    """The votes one event casts (none for kinds that say nothing about passages)."""
    question, rater = normalize_text(query.question), rater_of(event)
    if event.kind == FeedbackKind.RELEVANCE:
        marks = [(c, 1) for c in event.data.get("relevant", [])] + [(c, -1) for c in event.data.get("irrelevant", [])]
        return [Vote((question, c), label, MARK_WEIGHT, rater, event.id) for c, label in marks]
    label = _answer_label(event)
    if label == 0 or not query.chunk_ids:
        return []
    return [Vote((question, query.chunk_ids[0]), label, ANSWER_WEIGHT, rater, event.id)]


def ballots(key_votes: Sequence[Vote]) -> list[Vote]:
    """One vote per rater (principal) on one key: the rater's latest, so repeating a judgement never adds weight."""
    latest: dict[str, Vote] = {}
    for vote in key_votes:
        latest[vote.rater] = vote
    return list(latest.values())


def rater_weights(votes: Sequence[Vote]) -> dict[str, float]:
    """Per-rater weight = 2 x Laplace-smoothed share of votes agreeing with the unweighted majority (0..2, 1 = neutral).

    Only keys with at least two raters count (agreement on a key nobody else judged says nothing). A rater who is
    never contested keeps weight 1.0.
    """
    by_key: dict[tuple[str, str], list[Vote]] = defaultdict(list)
    for vote in votes:
        by_key[vote.key].append(vote)
    agree: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for all_votes in by_key.values():
        key_votes = ballots(all_votes)
        if len(key_votes) < 2:
            continue
        balance = sum(v.label for v in key_votes)
        if balance == 0:
            continue
        majority = 1 if balance > 0 else -1
        for vote in key_votes:
            total[vote.rater] += 1
            agree[vote.rater] += vote.label == majority
    return {r: (agree[r] + 1) / (total[r] + 2) * 2 if total[r] else 1.0 for r in {v.rater for v in votes}}


def resolve(votes: Iterable[Vote], weights: dict[str, float]) -> tuple[list[Resolved], int]:
    """Weighted vote per (question, passage); returns resolved labels and the number of ties dropped."""
    by_key: dict[tuple[str, str], list[Vote]] = defaultdict(list)
    for vote in votes:
        by_key[vote.key].append(vote)
    resolved: list[Resolved] = []
    ties = 0
    for (question, chunk_id), all_votes in by_key.items():
        key_votes = ballots(all_votes)
        score = sum(v.label * v.weight * weights.get(v.rater, 1.0) for v in key_votes)
        mass = sum(v.weight * weights.get(v.rater, 1.0) for v in key_votes)
        if abs(score) < 1e-9:
            ties += 1
            continue
        label = 1 if score > 0 else -1
        agreeing = sorted({v.event_id for v in key_votes if v.label == label})
        contested = len({v.label for v in key_votes}) > 1
        resolved.append(Resolved(question, chunk_id, label, abs(score) / mass, agreeing, contested))
    return resolved, ties
