"""Pure parts of the loop: the canary's two-proportion test and decision, cron scheduling, agent reactions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from core.errors import ConflictError, InvalidInputError
from core.types import Citation, FeedbackEvent, FeedbackKind
from flywheel.agents import LabelledQuestion, react
from flywheel.online import ArmStats, decide, tally, two_proportion_z
from flywheel.schedule import Scheduler, next_run

pytestmark = pytest.mark.unit


def _arm(up: int, down: int, corrections: int = 0) -> ArmStats:
    stats = ArmStats()
    for i in range(up + down):
        stats.add(FeedbackEvent(f"e{i}", f"q{i}", FeedbackKind.THUMBS, {"value": "up" if i < up else "down"}))
    for i in range(corrections):
        stats.add(FeedbackEvent(f"c{i}", f"q{i}", FeedbackKind.CORRECTION, {"text": "x"}))
    return stats


def test_two_proportion_z_matches_a_hand_computed_value() -> None:
    z, p = two_proportion_z(40, 100, 60, 100)
    assert z == pytest.approx(2.8284, abs=1e-3) and p == pytest.approx(0.00468, abs=1e-4)
    assert two_proportion_z(0, 0, 1, 1) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("current", "candidate", "action"),
    [
        (_arm(10, 2), _arm(10, 2), "continue"),  # below the horizon
        (_arm(45, 15), _arm(46, 14), "promote"),  # not worse at the horizon
        (_arm(50, 10), _arm(30, 30), "rollback"),  # clearly worse at the horizon
        (_arm(18, 2), _arm(2, 18), "rollback"),  # early harm stop before the horizon
        (_arm(45, 15, corrections=2), _arm(45, 15, corrections=30), "rollback"),  # more corrections
    ],
)
def test_canary_decision_table(current: ArmStats, candidate: ArmStats, action: str) -> None:
    assert decide(current, candidate, min_feedback=50).action == action


def test_tally_counts_used_abandoned_and_stars() -> None:
    events = [
        ("current", FeedbackEvent("1", "q1", FeedbackKind.USED, {})),
        ("current", FeedbackEvent("2", "q2", FeedbackKind.ABANDONED, {})),
        ("candidate", FeedbackEvent("3", "q3", FeedbackKind.STARS, {"value": 5})),
        ("candidate", FeedbackEvent("4", "q3", FeedbackKind.STARS, {"value": 1})),
    ]
    arms = tally(events)
    assert arms["current"].used_rate == 0.5 and arms["candidate"].up_rate == 0.5 and arms["candidate"].queries == 1


def test_next_run_and_invalid_cron() -> None:
    after = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run("0 3 * * *", after) == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    with pytest.raises(InvalidInputError):
        next_run("every night", after)


def test_scheduler_runs_due_tasks_once_and_survives_busy_slot() -> None:
    calls: list[str] = []

    def busy() -> None:
        raise ConflictError("a cycle job is already running", job_id="j1")

    sched = Scheduler({"reindex": ("0 3 * * *", lambda: calls.append("reindex")), "busy": ("0 3 * * *", busy)})
    before = datetime(2026, 1, 1, 2, 59, tzinfo=UTC)
    assert sched.run_pending(before, datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC)) == ["reindex"]
    assert sched.run_pending(datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC), datetime(2026, 1, 1, 3, 1, tzinfo=UTC)) == []
    assert calls == ["reindex"]


ITEM = LabelledQuestion(id="a", question="how do I pay?", doc_id="a", answer="Pay by transfer.")


def _cites(*doc_ids: str) -> list[Citation]:
    return [Citation(chunk_id=f"c-{d}", doc_id=d, text=f"text {d}", score=1.0) for d in doc_ids]


def _react(citations: list[Citation], noise: float) -> dict[FeedbackKind, dict]:
    reaction = react(ITEM, citations, correct_chunk_ids=["c-a"], wrong_answers={"b": "wrong b"}, noise=noise,
                     rng=random.Random(0))  # fmt: skip
    return dict(reaction.events)


def test_agent_rewards_a_right_top_answer() -> None:
    events = _react(_cites("a", "b"), noise=0.0)
    assert events[FeedbackKind.THUMBS] == {"value": "up"} and FeedbackKind.USED in events
    assert events[FeedbackKind.RELEVANCE] == {"relevant": ["c-a"], "irrelevant": []}
    assert FeedbackKind.CORRECTION not in events


def test_agent_marks_passages_above_the_right_one_and_corrects() -> None:
    events = _react(_cites("b", "c", "a"), noise=0.0)
    assert events[FeedbackKind.THUMBS] == {"value": "up"}
    assert events[FeedbackKind.RELEVANCE] == {"relevant": ["c-a"], "irrelevant": ["c-b", "c-c"]}
    assert events[FeedbackKind.CORRECTION] == {"text": "Pay by transfer."} and FeedbackKind.ABANDONED in events


def test_agent_finds_the_right_passage_when_not_cited() -> None:
    events = _react(_cites("b", "c"), noise=0.0)
    assert events[FeedbackKind.THUMBS] == {"value": "down"}
    assert events[FeedbackKind.RELEVANCE] == {"relevant": ["c-a"], "irrelevant": ["c-b", "c-c"]}


def test_wrong_reaction_flips_every_signal() -> None:
    events = _react(_cites("b", "a"), noise=1.0 - 1e-12)
    assert events[FeedbackKind.THUMBS] == {"value": "down"} and FeedbackKind.USED in events
    assert events[FeedbackKind.RELEVANCE] == {"relevant": ["c-b"], "irrelevant": ["c-a"]}
    assert events[FeedbackKind.CORRECTION] == {"text": "wrong b"}
