"""Canary routing (sticky, proportional, monotonic), shadow mode and run-time arm swaps."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fakes import EchoGenerator, FakeQueryLog, FakeScrubber, HashingEmbedder

from core.errors import InvalidInputError
from core.settings import RetrievalSettings
from core.types import Arm
from retrieval.routing import CanaryRouter, DeploymentRouter
from retrieval.service import QueryService

pytestmark = pytest.mark.unit


@pytest.fixture
def log() -> FakeQueryLog:
    return FakeQueryLog()


@pytest.fixture
def arms(edge_store: Any, corpus_writer: Any, log: FakeQueryLog) -> tuple[QueryService, QueryService]:
    embedder = HashingEmbedder()
    corpus_writer(edge_store, embedder, corpus="kb")

    def arm(version: str, *, fail: bool = False) -> QueryService:
        return QueryService(
            embedder=embedder,
            store=edge_store,
            generator=EchoGenerator(version=version, fail=fail),
            query_log=log,
            scrubber=FakeScrubber(),
            settings=RetrievalSettings(),
            corpus="kb",
        )

    return arm("gen-current"), arm("gen-candidate")


def test_bucket_is_stable_and_salted() -> None:
    router = CanaryRouter(0.5, salt="r1")
    assert router.bucket("user-7") == CanaryRouter(0.5, salt="r1").bucket("user-7")
    assert router.bucket("user-7") != CanaryRouter(0.5, salt="r2").bucket("user-7")
    assert 0.0 <= router.bucket("user-7") < 1.0


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 1.0])
def test_share_of_keys_routed_matches_share(share: float) -> None:
    router = CanaryRouter(share)
    routed = sum(router.to_candidate(f"user-{i}") for i in range(10_000)) / 10_000
    assert routed == pytest.approx(share, abs=0.02)


def test_raising_share_only_moves_users_to_candidate() -> None:
    small, large = CanaryRouter(0.1), CanaryRouter(0.3)
    users = [f"user-{i}" for i in range(2000)]
    assert {u for u in users if small.to_candidate(u)} <= {u for u in users if large.to_candidate(u)}


@pytest.mark.parametrize("share", [-0.1, 1.1])
def test_when_share_out_of_range_then_invalid(share: float) -> None:
    with pytest.raises(InvalidInputError):
        CanaryRouter(share)


def test_canary_is_sticky_per_user_and_arm_recorded(arms: tuple[QueryService, QueryService], log: FakeQueryLog) -> None:
    current, candidate = arms
    router = DeploymentRouter(current=current, candidate=candidate, mode="canary", canary_share=0.5)
    seen: dict[str, set[str]] = {}
    for i in range(40):
        user = f"user-{i % 8}"
        result = router.answer("refund receipt", user_id=user)
        seen.setdefault(user, set()).add(result.arm)
        expected = "gen-candidate" if result.arm is Arm.CANDIDATE else "gen-current"
        assert result.generator_version == expected
        assert log.get_query(result.query_id).arm is result.arm
    assert all(len(user_arms) == 1 for user_arms in seen.values())
    assert {arm for user_arms in seen.values() for arm in user_arms} == {Arm.CURRENT, Arm.CANDIDATE}


def test_anonymous_queries_split_per_query(arms: tuple[QueryService, QueryService]) -> None:
    router = DeploymentRouter(current=arms[0], candidate=arms[1], mode="canary", canary_share=0.5)
    results = [router.answer("shipping time").arm for _ in range(40)]
    assert set(results) == {Arm.CURRENT, Arm.CANDIDATE}


def test_shadow_mode_serves_current_and_logs_candidate_as_shadow(
    arms: tuple[QueryService, QueryService], log: FakeQueryLog
) -> None:
    router = DeploymentRouter(current=arms[0], candidate=arms[1], mode="shadow")
    result = router.answer("password reset", user_id="u1")
    assert (result.arm, result.generator_version) == (Arm.CURRENT, "gen-current")
    shadow = log.get_query(f"{result.query_id}-shadow")
    assert (shadow.arm, shadow.generator_version, shadow.user_id) == (Arm.SHADOW, "gen-candidate", "u1")


def test_failing_shadow_never_fails_the_query(arms: tuple[QueryService, QueryService], log: FakeQueryLog) -> None:
    arms[1].generator = EchoGenerator(fail=True)
    router = DeploymentRouter(current=arms[0], candidate=arms[1], mode="shadow")
    result = router.answer("password reset")
    assert result.arm is Arm.CURRENT
    assert list(log.records) == [result.query_id]


def test_promote_mode_ignores_candidate_and_configure_swaps_arms(arms: tuple[QueryService, QueryService]) -> None:
    current, candidate = arms
    router = DeploymentRouter(current=current, candidate=candidate, mode="promote")
    assert router.answer("refund", user_id="u").generator_version == "gen-current"
    router.configure(current=candidate, clear_candidate=True)
    assert router.state.mode == "promote" and router.state.candidate is None
    assert router.answer("refund", user_id="u").generator_version == "gen-candidate"


def test_when_mode_needs_candidate_and_none_then_invalid(arms: tuple[QueryService, QueryService]) -> None:
    with pytest.raises(InvalidInputError, match="needs a candidate"):
        DeploymentRouter(current=arms[0], mode="canary")
    router = DeploymentRouter(current=arms[0])
    with pytest.raises(InvalidInputError, match="unknown routing mode"):
        router.configure(mode="blue")  # type: ignore[arg-type]
    assert router.state.mode == "promote"


def test_concurrent_queries_during_swaps_all_succeed(arms: tuple[QueryService, QueryService]) -> None:
    current, candidate = arms
    router = DeploymentRouter(current=current, candidate=candidate, mode="canary", canary_share=0.5)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for i in range(10):
                router.answer("warranty", user_id=f"u{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for share in (0.0, 1.0, 0.2, 0.9):
        router.configure(canary_share=share)
    for thread in threads:
        thread.join()
    assert errors == []
    assert router.state.canary.share == 0.9
