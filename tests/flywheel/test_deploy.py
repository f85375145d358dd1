"""flywheel.deploy: blue/green promote (gate refusal, forced override), one-step rollback, crash reconcile, canary
stickiness with the arm recorded, online decision from per-arm feedback; cycle abandonment after a kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import EchoGenerator, FakeScrubber, HashingEmbedder

from core.errors import ConflictError, GateFailedError, InvalidInputError
from core.settings import RetrievalSettings
from core.types import Arm, Document, FeedbackEvent, FeedbackKind, ModelKind
from customization.registry import ModelRegistry
from feedback.store import SqlStore
from flywheel.arms import PinnedQueryService
from flywheel.deploy import Candidate, Deployer
from flywheel.lineage import Lineage
from flywheel.state import JobStatus, StateStore, new_id
from indexing.chunking import Chunker
from indexing.manager import IndexManager
from indexing.stores.edge import EdgeVectorStore
from retrieval.routing import DeploymentRouter
from retrieval.service import QueryService

pytestmark = pytest.mark.integration

CORPUS = "faq"
DOCS = [
    Document(id=f"d{i}", text=f"answer number {i} about topic {i % 5} and more words", metadata={}) for i in range(12)
]


class World:
    """A real store, registry, state and feedback store; arms over the hashing embedder (fake at the port)."""

    def __init__(self, tmp: Path, state: StateStore) -> None:
        self.store = EdgeVectorStore(tmp / "vectors")
        self.registry = ModelRegistry(tmp / "models")
        self.feedback = SqlStore(f"sqlite:///{tmp / 'fb.db'}")
        self.state = state
        self.manager = IndexManager(self.store, chunker=Chunker(chunk_size=256, chunk_overlap=16))
        self.v1 = self.manager.reindex(CORPUS, DOCS, embedder=HashingEmbedder(version="base")).collection
        self.models = [self._register(n) for n in range(2)]
        self.router = DeploymentRouter(current=self.arm({}, None))
        self.deployer = Deployer(
            state=state, store=self.store, registry=self.registry, corpus=CORPUS, arm_factory=self.arm,
            router=self.router, feedback=self.feedback, lineage=Lineage(state), min_feedback=20,
        )  # fmt: skip
        self.deployer.current()

    def _register(self, n: int) -> str:
        with self.registry.staging(ModelKind.EMBEDDER) as work:
            (work / "m").mkdir()
            (work / "m" / "weights.txt").write_text(f"model {n}")
            return self.registry.register(ModelKind.EMBEDDER, work / "m").version

    def arm(self, models: dict[str, Any], collection: str | None) -> QueryService:
        kwargs: dict[str, Any] = dict(
            embedder=HashingEmbedder(version=models.get("embedder") or "base"), store=self.store,
            generator=EchoGenerator(), query_log=self.feedback, scrubber=FakeScrubber(),
            settings=RetrievalSettings(), corpus=CORPUS,
        )  # fmt: skip
        return QueryService(**kwargs) if collection is None else PinnedQueryService(collection=collection, **kwargs)

    def candidate(self, *, model: str, passed: bool | None = True, cycle_id: str | None = None) -> Candidate:
        collection = self.manager.build_version(CORPUS, DOCS, embedder=HashingEmbedder(version=model)).collection
        return Candidate(collection, {"embedder": model, "reranker": None, "generator_adapter": None}, cycle_id, passed)

    def active(self) -> str | None:
        active = self.registry.active(ModelKind.EMBEDDER)
        return active.version if active else None


@pytest.fixture
def world(tmp_path: Path, sqlite_state: StateStore) -> Iterator[World]:
    w = World(tmp_path, sqlite_state)
    yield w
    w.feedback.close()
    w.store.close()


def test_promote_moves_alias_models_and_router_together(world: World) -> None:
    cand = world.candidate(model=world.models[0])
    record = world.deployer.promote(cand)
    assert world.store.get_alias(CORPUS) == cand.collection
    assert world.active() == world.models[0]
    assert world.router.state.current.embedder.version == world.models[0]
    assert record.previous is not None and record.previous["collection"] == world.v1
    assert world.deployer.current().id == record.id


def test_when_gate_failed_then_promote_refused_unless_forced_with_reason(world: World) -> None:
    cycle = world.state.create_cycle(CORPUS)
    world.state.update_cycle(cycle.id, gate_verdict={"passed": False, "reasons": ["mrr@10 did not improve"]})
    cand = world.candidate(model=world.models[0], passed=False, cycle_id=cycle.id)
    with pytest.raises(GateFailedError):
        world.deployer.promote(cand)
    assert world.store.get_alias(CORPUS) == world.v1 and world.active() is None
    with pytest.raises(InvalidInputError, match="reason"):
        world.deployer.promote(cand, force=True, reason="  ")
    world.deployer.promote(cand, force=True, reason="hotfix for a known bad slice", actor="admin-1")
    assert world.store.get_alias(CORPUS) == cand.collection
    verdict = world.state.get_cycle(cycle.id).gate_verdict or {}
    assert verdict["overridden_by"] == "admin-1" and verdict["override_reason"] == "hotfix for a known bad slice"


def test_rollback_restores_previous_alias_and_model_versions_in_one_step(world: World) -> None:
    first = world.candidate(model=world.models[0])
    world.deployer.promote(first)
    second = world.candidate(model=world.models[1])
    world.deployer.promote(second)
    assert (world.store.get_alias(CORPUS), world.active()) == (second.collection, world.models[1])
    world.deployer.rollback(reason="complaints")
    assert (world.store.get_alias(CORPUS), world.active()) == (first.collection, world.models[0])
    assert world.router.state.current.embedder.version == world.models[0]
    world.deployer.rollback(reason="again")
    assert (world.store.get_alias(CORPUS), world.active()) == (world.v1, None)
    with pytest.raises(ConflictError):
        world.deployer.rollback()


def test_when_killed_mid_promote_then_reconcile_returns_to_last_record(world: World) -> None:
    cand = world.candidate(model=world.models[0])
    # what a process killed between the alias swap / registry activation and the record write leaves behind:
    world.store.set_alias(CORPUS, cand.collection)
    world.registry.activate(ModelKind.EMBEDDER, world.models[0])
    fixed = world.deployer.reconcile()
    assert len(fixed) == 2
    assert world.store.get_alias(CORPUS) == world.v1 and world.active() is None
    assert world.deployer.reconcile() == []


def test_canary_is_sticky_per_user_and_records_the_arm(world: World) -> None:
    cand = world.candidate(model=world.models[0])
    world.deployer.start_canary(cand, mode="canary", share=0.5)
    with pytest.raises(ConflictError):
        world.deployer.start_canary(cand, mode="canary", share=0.5)
    arms: dict[str, set[str]] = {}
    for user in [f"u{i}" for i in range(16)]:
        for _ in range(3):
            result = world.router.answer("topic 3 question", user_id=user)
            recorded = world.feedback.get_query(result.query_id)
            assert recorded.arm == result.arm
            arms.setdefault(user, set()).add(str(result.arm))
            if result.arm is Arm.CANDIDATE:
                assert result.index_version == cand.collection
    assert all(len(a) == 1 for a in arms.values())  # sticky
    assert {a for s in arms.values() for a in s} == {"current", "candidate"}
    assert world.store.get_alias(CORPUS) == world.v1  # the alias only moves on promotion


def _rate(world: World, *, user: str, up: bool) -> None:
    result = world.router.answer("topic 1 question", user_id=user)
    event = FeedbackEvent(
        new_id(), result.query_id, FeedbackKind.THUMBS, {"value": "up" if up else "down"}, user_id=user
    )
    world.feedback.add_events([event], idempotency_keys=[None])


def test_canary_rolls_back_when_candidate_arm_gets_worse_feedback(world: World) -> None:
    world.deployer.start_canary(world.candidate(model=world.models[0]), mode="canary", share=0.5)
    for i in range(40):
        user = f"u{i}"
        on_candidate = world.router.choose(user_id=user, query_id="x") is Arm.CANDIDATE
        for _ in range(2):
            _rate(world, user=user, up=not on_candidate)
    decision = world.deployer.evaluate_canary()
    assert decision.action == "rollback"
    assert decision.arms["candidate"]["up_rate"] == 0.0 and decision.arms["current"]["up_rate"] == 1.0
    assert world.deployer.current().canary is None and world.router.state.candidate is None
    assert world.store.get_alias(CORPUS) == world.v1


def test_canary_promotes_at_horizon_when_not_worse(world: World) -> None:
    cand = world.candidate(model=world.models[0])
    world.deployer.start_canary(cand, mode="canary", share=0.5)
    assert world.deployer.evaluate_canary().action == "continue"
    for i in range(100):  # both arms equally happy; ~50 rated answers each, horizon 20
        _rate(world, user=f"u{i}", up=True)
    decision = world.deployer.evaluate_canary()
    assert decision.action == "promote", decision.reasons
    assert world.store.get_alias(CORPUS) == cand.collection and world.active() == world.models[0]


def test_the_scheduled_check_acts_on_a_decided_canary_but_waits_while_a_cycle_runs(world: World) -> None:
    assert world.deployer.scheduled_check() is None  # no canary: nothing to do
    cand = world.candidate(model=world.models[0])
    world.deployer.start_canary(cand, mode="canary", share=0.5)
    for i in range(100):
        _rate(world, user=f"u{i}", up=True)
    cycle = world.state.create_job("cycle", status=JobStatus.RUNNING)
    assert world.deployer.scheduled_check() is None  # a cycle may be switching: defer to the next check
    assert world.deployer.current().canary is not None
    world.state.update_job(cycle.id, status=JobStatus.SUCCEEDED)
    decision = world.deployer.scheduled_check()
    assert decision is not None and decision.action == "promote"
    assert world.store.get_alias(CORPUS) == cand.collection and world.deployer.current().canary is None
