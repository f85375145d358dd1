"""Online comparison of the canary arms from the feedback each arm received.

Per arm we count rated answers (thumbs up / down, stars >= 4 as up, <= 2 as down), used vs abandoned answers and
corrections. The decision uses a two-proportion z-test on the thumbs-up rate with a fixed horizon
(``min_feedback`` rated answers per arm) plus an early harm stop: before the horizon the canary is rolled back only
when the candidate is worse at a stricter level (``early_alpha``), so peeking cannot promote by chance. At the horizon:
rollback when the candidate is significantly worse on the up-rate or significantly higher on the correction rate,
otherwise promote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from core.types import FeedbackEvent, FeedbackKind


@dataclass(slots=True)
class ArmStats:
    """Feedback tallies of one arm (``queries`` = distinct queries that got any feedback)."""

    queries: int = 0
    up: int = 0
    down: int = 0
    used: int = 0
    abandoned: int = 0
    corrections: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    @property
    def rated(self) -> int:
        """Answers with a thumbs / stars verdict."""
        return self.up + self.down

    @property
    def up_rate(self) -> float | None:
        """Thumbs-up rate among rated answers."""
        return self.up / self.rated if self.rated else None

    @property
    def used_rate(self) -> float | None:
        """Used / (used + abandoned)."""
        total = self.used + self.abandoned
        return self.used / total if total else None

    @property
    def correction_rate(self) -> float | None:
        """Corrections per query with feedback."""
        return self.corrections / self.queries if self.queries else None

    def add(self, event: FeedbackEvent) -> None:
        """Count one event."""
        if event.query_id not in self._seen:
            self._seen.add(event.query_id)
            self.queries += 1
        kind, data = event.kind, event.data
        if kind is FeedbackKind.THUMBS:
            self.up += data.get("value") == "up"
            self.down += data.get("value") == "down"
        elif kind is FeedbackKind.STARS:
            stars = int(data.get("value") or 0)
            self.up += stars >= 4
            self.down += 0 < stars <= 2
        elif kind in (FeedbackKind.USED, FeedbackKind.COPIED):
            self.used += 1
        elif kind is FeedbackKind.ABANDONED:
            self.abandoned += 1
        elif kind in (FeedbackKind.CORRECTION, FeedbackKind.EDITED):
            self.corrections += 1

    def to_json(self) -> dict[str, Any]:
        """Counts and rates."""
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return out | {"up_rate": self.up_rate, "used_rate": self.used_rate, "correction_rate": self.correction_rate}


def tally(events: Iterable[tuple[str, FeedbackEvent]]) -> dict[str, ArmStats]:
    """Tally ``(arm, event)`` pairs into per-arm stats."""
    arms: dict[str, ArmStats] = {}
    for arm, event in events:
        arms.setdefault(arm, ArmStats()).add(event)
    return arms


def two_proportion_z(success_a: int, n_a: int, success_b: int, n_b: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic of ``p_b - p_a`` and its two-sided p-value; ``(0, 1)`` when undefined."""
    if n_a == 0 or n_b == 0:
        return 0.0, 1.0
    pooled = (success_a + success_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (success_b / n_b - success_a / n_a) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass(slots=True)
class CanaryDecision:
    """``action`` is ``continue``, ``promote`` or ``rollback``; ``reasons`` explain it; stats per arm."""

    action: str
    reasons: list[str]
    z: float
    p_value: float
    arms: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def decide(
    current: ArmStats, candidate: ArmStats, *, min_feedback: int, alpha: float = 0.05, early_alpha: float = 0.01
) -> CanaryDecision:
    """Fixed-horizon decision with an early harm stop (see the module docstring)."""
    z, p = two_proportion_z(current.up, current.rated, candidate.up, candidate.rated)
    arms = {"current": current.to_json(), "candidate": candidate.to_json()}
    worse = z < 0
    if worse and p / 2 < early_alpha and min(current.rated, candidate.rated) >= 10:
        return CanaryDecision(
            "rollback", [f"candidate up-rate lower (z={z:.2f}, p={p:.4f}) before horizon"], z, p, arms
        )
    have = min(current.rated, candidate.rated)
    if have < min_feedback:
        return CanaryDecision("continue", [f"{have} of {min_feedback} rated answers per arm"], z, p, arms)
    if worse and p / 2 < alpha:
        return CanaryDecision("rollback", [f"candidate up-rate lower (z={z:.2f}, one-sided p={p / 2:.4f})"], z, p, arms)
    cz, cp = two_proportion_z(current.corrections, current.queries, candidate.corrections, candidate.queries)
    if cz > 0 and cp / 2 < alpha:
        return CanaryDecision("rollback", [f"candidate correction rate higher (z={cz:.2f})"], z, p, arms)
    return CanaryDecision("promote", [f"candidate not worse at the horizon (z={z:.2f}, p={p:.4f})"], z, p, arms)
