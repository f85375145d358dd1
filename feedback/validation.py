"""Per-kind validation of feedback submissions (the intake's rules; the API schemas mirror them).

Each kind allows exactly its own fields: a field of another kind is a "wrong kind/field combination". Validation
returns the normalised ``data`` dict and the names of its free-text fields (to be scrubbed before persisting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInputError
from core.types import FeedbackKind
from core.validation import nul_path

TEXT_FIELDS = ("text", "question")
STRENGTHS = ("slight", "clear", "strong")
MAX_DWELL_S = 86_400.0
MAX_IDS = 200
MAX_ID_CHARS = 200  # user_id, tenant, rater_id (the API schemas' limit; the store's columns hold as much)
IDENTIFIERS = ("user_id", "tenant", "rater_id")


@dataclass(slots=True)
class FeedbackSubmission:
    """One feedback event as submitted (not yet validated or scrubbed).

    ``data`` holds the kind-specific fields, e.g. ``{"value": "up"}`` for thumbs, ``{"text": ...}`` for a correction,
    ``{"relevant": [...], "irrelevant": [...]}`` for relevance, ``{"other_query_id": ..., "strength": "clear"}`` for
    a preference (``query_id`` is the preferred answer). ``principal`` is the authenticated caller (the API sets it
    from the verified key, in-process callers name themselves); ``rater_id`` is only a label and never a vote.
    """

    query_id: str
    kind: FeedbackKind | str
    data: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    tenant: str | None = None
    rater_id: str | None = None
    idempotency_key: str | None = None
    principal: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem: dotted field path and message."""

    field: str
    message: str


def _text(data: Mapping[str, Any], name: str, *, max_chars: int, required: bool) -> list[Problem]:
    value = data.get(name)
    if value is None:
        return [Problem(name, "is required for this kind")] if required else []
    if not isinstance(value, str):
        return [Problem(name, "must be a string")]
    if required and not value.strip():
        return [Problem(name, "must not be empty")]
    if len(value) > max_chars:
        return [Problem(name, f"is {len(value)} characters long; the limit is {max_chars}")]
    return []


def _thumbs(data: Mapping[str, Any], _max: int) -> list[Problem]:
    return [] if data.get("value") in ("up", "down") else [Problem("value", "must be 'up' or 'down'")]


def _stars(data: Mapping[str, Any], _max: int) -> list[Problem]:
    value = data.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        return [Problem("value", f"must be an integer from 1 to 5, got {value!r}")]
    return []


def _dwell(data: Mapping[str, Any], _max: int) -> list[Problem]:
    value = data.get("seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_DWELL_S:
        return [Problem("seconds", f"must be a number of seconds from 0 to {MAX_DWELL_S:.0f}, got {value!r}")]
    return []


def _ids(data: Mapping[str, Any], name: str) -> list[Problem]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return [Problem(name, "must be a list of chunk ids (non-empty strings)")]
    if len(value) > MAX_IDS:
        return [Problem(name, f"lists {len(value)} chunk ids; the limit is {MAX_IDS}")]
    return []


def _relevance(data: Mapping[str, Any], _max: int) -> list[Problem]:
    problems = _ids(data, "relevant") + _ids(data, "irrelevant")
    if problems:
        return problems
    relevant, irrelevant = set(data.get("relevant", [])), set(data.get("irrelevant", []))
    if not relevant and not irrelevant:
        return [Problem("relevant", "relevance feedback needs at least one relevant or irrelevant chunk id")]
    both = sorted(relevant & irrelevant)
    return [Problem("irrelevant", f"chunk ids marked both relevant and irrelevant: {', '.join(both)}")] if both else []


def _preference(data: Mapping[str, Any], _max: int) -> list[Problem]:
    problems = []
    other = data.get("other_query_id")
    if not isinstance(other, str) or not other:
        problems.append(Problem("other_query_id", "is required: the id of the query whose answer was not preferred"))
    if data.get("strength") not in STRENGTHS:
        problems.append(Problem("strength", f"must be one of {', '.join(STRENGTHS)}"))
    return problems


def _text_rule(name: str, *, required: bool) -> Callable[[Mapping[str, Any], int], list[Problem]]:
    return lambda data, max_chars: _text(data, name, max_chars=max_chars, required=required)


def _missing(data: Mapping[str, Any], max_chars: int) -> list[Problem]:
    return _text(data, "text", max_chars=max_chars, required=False) + _text(
        data, "question", max_chars=max_chars, required=False
    )


def _nothing(_data: Mapping[str, Any], _max: int) -> list[Problem]:
    return []


# kind -> (allowed fields, rule)
RULES: dict[FeedbackKind, tuple[frozenset[str], Callable[[Mapping[str, Any], int], list[Problem]]]] = {
    FeedbackKind.THUMBS: (frozenset({"value"}), _thumbs),
    FeedbackKind.STARS: (frozenset({"value"}), _stars),
    FeedbackKind.COMMENT: (frozenset({"text"}), _text_rule("text", required=True)),
    FeedbackKind.ISSUE: (frozenset({"text"}), _text_rule("text", required=True)),
    FeedbackKind.USED: (frozenset(), _nothing),
    FeedbackKind.COPIED: (frozenset(), _nothing),
    FeedbackKind.EDITED: (frozenset({"text"}), _text_rule("text", required=True)),
    FeedbackKind.ABANDONED: (frozenset(), _nothing),
    FeedbackKind.REGENERATED: (frozenset(), _nothing),
    FeedbackKind.DWELL: (frozenset({"seconds"}), _dwell),
    FeedbackKind.CORRECTION: (frozenset({"text"}), _text_rule("text", required=True)),
    FeedbackKind.RELEVANCE: (frozenset({"relevant", "irrelevant"}), _relevance),
    FeedbackKind.MISSING_KNOWLEDGE: (frozenset({"text", "question"}), _missing),
    FeedbackKind.PREFERENCE: (frozenset({"other_query_id", "strength"}), _preference),
}


def parse_kind(kind: FeedbackKind | str) -> FeedbackKind:
    """The kind, or ``InvalidInputError`` naming the valid kinds."""
    try:
        return FeedbackKind(kind)
    except ValueError as exc:
        valid = ", ".join(k.value for k in FeedbackKind)
        raise InvalidInputError(f"unknown feedback kind {kind!r}; expected one of: {valid}", field="kind") from exc


def _identifier_problems(submission: FeedbackSubmission) -> list[Problem]:
    """NUL characters anywhere (one rule for every backend) and identifiers longer than the store holds."""
    fields = {name: getattr(submission, name) for name in IDENTIFIERS}
    found = nul_path({"query_id": submission.query_id, **fields, "data": submission.data})
    if found is not None:
        return [Problem(found, "must not contain NUL (\\x00) characters")]
    return [
        Problem(name, f"is {len(value)} characters long; the limit is {MAX_ID_CHARS}")
        for name, value in fields.items()
        if isinstance(value, str) and len(value) > MAX_ID_CHARS
    ]


def check(submission: FeedbackSubmission, *, max_text_chars: int) -> list[Problem]:
    """Every problem of one submission's shape (empty list: valid). Store-dependent checks come later."""
    if not isinstance(submission.query_id, str) or not submission.query_id:
        return [Problem("query_id", "is required")]
    problems = _identifier_problems(submission)
    if problems:
        return problems
    try:
        kind = parse_kind(submission.kind)
    except InvalidInputError as exc:
        return [Problem("kind", exc.message)]
    allowed, rule = RULES[kind]
    extra = sorted(set(submission.data) - allowed)
    if extra:
        return [Problem(f"data.{name}", f"is not a field of kind {kind.value}") for name in extra]
    return [Problem(f"data.{p.field}", p.message) for p in rule(submission.data, max_text_chars)]


def normalised_data(submission: FeedbackSubmission) -> dict[str, Any]:
    """The validated ``data`` with defaults filled in (relevance lists, stars as int, dwell as float)."""
    kind = FeedbackKind(submission.kind)
    data = dict(submission.data)
    if kind == FeedbackKind.RELEVANCE:
        data = {"relevant": list(data.get("relevant", [])), "irrelevant": list(data.get("irrelevant", []))}
    elif kind == FeedbackKind.DWELL:
        data["seconds"] = float(data["seconds"])
    return data
