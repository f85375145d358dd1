"""flywheel.cycle crash safety and skipping: a cycle killed between build and swap leaves the alias alone and is
abandoned (candidate dropped) by the next run; too little feedback ends as skipped "not enough data (n of m)"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeScrubber, HashingEmbedder

from core.datasets import DatasetRepository
from core.settings import Settings
from core.types import DatasetKind, Document, ModelKind, SftExample
from flywheel.container import Container
from flywheel.cycle import CycleSkipped
from flywheel.jobs import JobRunner
from flywheel.state import JobStatus

pytestmark = pytest.mark.integration

DOCS = [Document(id=f"d{i}", text=f"answer {i} on subject {i % 4}, with several words", metadata={}) for i in range(10)]


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    embedder = HashingEmbedder(version="base")
    c = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    c.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
    yield c
    c.close()


def test_cycle_killed_between_build_and_swap_is_abandoned_and_alias_kept(container: Container) -> None:
    corpus = container.settings.indexing.corpus
    live = container.vector_store.get_alias(corpus)
    # a cycle whose process died after building its candidate collection, before any swap
    job = container.state_store.create_job("cycle", status=JobStatus.RUNNING)
    cycle = container.state_store.create_cycle(corpus, job_id=job.id)
    built = container.index_manager.build_version(corpus, DOCS, embedder=HashingEmbedder(version="cand"))
    container.state_store.update_cycle(cycle.id, candidate_collection=built.collection)
    assert container.vector_store.get_alias(corpus) == live  # building never moves the alias
    # restart: the job is reaped, the cycle abandoned, its candidate dropped, the alias untouched
    runner = JobRunner(container.state_store, {"cycle": lambda ctx: {}})
    assert runner.recover() == [job.id]
    assert container.cycle_runner.abandon_stale() == [cycle.id]
    record = container.state_store.get_cycle(cycle.id)
    assert record.status == "abandoned" and "stopped" in (record.reason or "")
    assert not container.vector_store.collection_exists(built.collection)
    assert container.vector_store.get_alias(corpus) == live
    assert container.cycle_runner.abandon_stale() == []


def test_when_too_little_feedback_then_cycle_is_skipped_not_failed(container: Container) -> None:
    with pytest.raises(CycleSkipped) as skipped:
        container.cycle_runner.run()
    assert "not enough data (0 of 10" in skipped.value.reason
    cycle = container.state_store.list_cycles(limit=1)[0]
    assert cycle.status == "skipped" and cycle.reason == skipped.value.reason
    assert [s["name"] for s in cycle.steps] == ["reconcile", "curate"] and cycle.steps[-1]["status"] == "skipped"


def test_cycle_job_records_skip(container: Container, tmp_path: Path) -> None:
    job = container.job_runner.submit("cycle")
    done = container.job_runner.wait(job.id, timeout=60)
    assert done.status is JobStatus.SKIPPED and "not enough data" in (done.error or "")


def test_reindex_switches_through_the_deployer_and_can_roll_back(container: Container, tmp_path: Path) -> None:
    from flywheel.loop import reindex

    corpus = container.settings.indexing.corpus
    before = container.deployer.current()
    source = tmp_path / "docs.jsonl"
    lines = [f'{{"id": "d{i}", "text": "answer {i} on subject {i % 4}, with several words"}}' for i in range(9)]
    lines.append('{"id": "new", "text": "a brand new answer about returns and exchanges"}')
    source.write_text("\n".join(lines), encoding="utf-8")
    result = reindex(container, source=str(source))
    assert container.vector_store.get_alias(corpus) == result["collection"] != before.live_collection
    assert result["documents"] == 10 and result["embedded"] >= 1
    record = container.deployer.current()
    assert record.live_collection == result["collection"] and record.previous["collection"] == before.live_collection
    container.deployer.rollback(reason="bad source")
    assert container.vector_store.get_alias(corpus) == before.live_collection


def test_rejected_candidates_stay_for_eval_and_forced_promotion_and_only_the_newest_are_kept(
    container: Container,
) -> None:
    from core.errors import GateFailedError
    from flywheel.loop import resolve_candidate

    corpus = container.settings.indexing.corpus
    models = dict(container.deployer.current().models)
    rejected = []
    for i in range(container.settings.indexing.keep_versions + 1):  # oldest first
        cycle = container.state_store.create_cycle(corpus)
        built = container.index_manager.build_version(corpus, DOCS, embedder=HashingEmbedder(version=f"cand{i}"))
        container.state_store.update_cycle(
            cycle.id, status="rejected", candidate_collection=built.collection, candidate_models=models,
            gate_verdict={"passed": False, "reasons": ["mrr@10 did not improve"]},
        )  # fmt: skip
        rejected.append((cycle.id, built.collection))
    assert container.cycle_runner.prune_rejected() == [rejected[0][0]]
    assert not container.vector_store.collection_exists(rejected[0][1])
    assert all(container.vector_store.collection_exists(name) for _, name in rejected[1:])
    assert container.cycle_runner.prune_rejected() == []
    newest_id, newest_collection = rejected[-1]
    candidate = resolve_candidate(container, newest_id)
    assert candidate.gate_passed is False
    with pytest.raises(GateFailedError):
        container.deployer.promote(candidate)
    live_before = container.vector_store.get_alias(corpus)
    container.deployer.promote(candidate, force=True, reason="the gate set misses the new product line")
    assert container.vector_store.get_alias(corpus) == newest_collection
    # the live collection and the rollback target are never pruned or cleaned up
    assert container.deployer.collections_in_use() == {newest_collection, live_before}


def test_the_service_scheduler_runs_the_nightly_reindex_and_the_canary_check(settings: Settings) -> None:
    from flywheel.loop import make_scheduler

    c = Container(settings, overrides={"embedder": HashingEmbedder(version="base"), "scrubber": FakeScrubber()})
    try:
        assert set(make_scheduler(c).tasks) == {"reindex", "canary"}
        assert make_scheduler(c).tasks["canary"][0] == "*/10 * * * *"
    finally:
        c.close()
    off = settings.model_copy(
        update={"deploy": settings.deploy.model_copy(update={"reindex_cron": None, "canary_check_cron": ""})}
    )
    c = Container(off, overrides={"embedder": HashingEmbedder(version="base"), "scrubber": FakeScrubber()})
    try:
        assert make_scheduler(c).tasks == {}
    finally:
        c.close()


def _traffic(c: Container, questions: int) -> None:
    """Agents ask about the documents and mark the right passage relevant (enough for contrastive pairs)."""
    from core.types import FeedbackKind
    from feedback.validation import FeedbackSubmission
    from indexing.chunking import chunk_id

    for i in range(questions):
        agent = f"agent-{i % 3}"
        result = c.router.answer(f"question {i} about subject {i % 4} answer {i % 10}", top_k=3, user_id=agent)
        marks = {"relevant": [chunk_id(f"d{i % 10}", 0)], "irrelevant": []}
        c.feedback_intake.submit_batch([
            FeedbackSubmission(query_id=result.query_id, kind=FeedbackKind.THUMBS, data={"value": "up"},
                               user_id=agent, rater_id=agent),
            FeedbackSubmission(query_id=result.query_id, kind=FeedbackKind.RELEVANCE, data=marks, user_id=agent,
                               rater_id=agent),
        ])  # fmt: skip


def test_when_too_few_eval_cases_then_skipped_before_training_in_seconds_leaving_nothing(settings: Settings) -> None:
    import time

    settings = settings.model_copy(update={"training": settings.training.model_copy(update={"min_pairs": 4})})
    embedder = HashingEmbedder(version="base")
    c = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    try:
        c.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
        _traffic(c, 30)
        collections = set(c.vector_store.list_collections())
        started = time.perf_counter()
        with pytest.raises(CycleSkipped) as skipped:
            c.cycle_runner.run()
        seconds = time.perf_counter() - started
        assert seconds < 5, seconds
        reason = skipped.value.reason
        assert "of 20 eval cases" in reason and "eval.min_slice_cases" in reason and "eval.gold_set" in reason
        cycle = c.state_store.list_cycles(limit=1)[0]
        assert cycle.status == "skipped" and [s["name"] for s in cycle.steps] == ["reconcile", "curate"]
        assert set(c.vector_store.list_collections()) == collections  # no candidate collection
        assert c.registry.list() == []  # no model version
    finally:
        c.close()


def test_when_gold_set_is_missing_then_cycle_fails_before_training(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    settings = settings.model_copy(
        update={"training": settings.training.model_copy(update={"min_pairs": 4}),
                "eval": settings.eval.model_copy(update={"gold_set": missing})}
    )  # fmt: skip
    embedder = HashingEmbedder(version="base")
    c = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    try:
        c.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
        _traffic(c, 12)
        from core.errors import InvalidInputError

        with pytest.raises(InvalidInputError, match=r"eval\.gold_set does not exist"):
            c.cycle_runner.run()
        cycle = c.state_store.list_cycles(limit=1)[0]
        assert cycle.status == "failed" and [s["name"] for s in cycle.steps] == ["reconcile", "curate"]
        assert c.registry.list() == []
    finally:
        c.close()


# -------------------------------------------------------------------------- a tuned adapter is probed before serving
class _EchoCanaries:
    """A fake ``Generator`` that has memorised its training rows: it completes every planted canary prefix."""

    version = "v1"

    def __init__(self, rows: list) -> None:  # type: ignore[type-arg]
        self.memory = {r.query: r.target for r in rows}

    def generate(self, question: str, passages: object) -> object:
        from core.types import Answer

        return Answer(text=self.memory.get(question, "I do not know."), citations=(), generator_version=self.version)


def _sft_state(settings: Settings, rows: list) -> tuple:  # type: ignore[type-arg]
    """A cycle state that trained a generator adapter on ``rows`` (canaries planted as the train step does)."""
    from core.types import ModelVersion
    from flywheel.cycle_state import Curated, CycleState, DatasetInfo
    from flywheel.training import GENERATOR_ADAPTER

    repo = DatasetRepository(settings.datasets_dir)
    manifest = repo.write(DatasetKind.SFT, rows, event_ids=["e1"], user_ids=["u1"])
    prepared = GENERATOR_ADAPTER.prepare(settings, rows, manifest, overrides={}, salt="cycle-1")
    state = CycleState(curated=Curated({"sft": DatasetInfo(manifest.version, manifest.rows, 1)}))
    state.plan.ready[ModelKind.GENERATOR_ADAPTER] = prepared
    version = ModelVersion(ModelKind.GENERATOR_ADAPTER, "v1", "/nowhere", metrics=dict(prepared.extra_metrics))
    state.trained[ModelKind.GENERATOR_ADAPTER] = version
    return state, prepared, repo


def test_when_tuned_adapter_reproduces_a_planted_canary_then_guardrail_and_verdict_fail(
    settings: Settings, tmp_path: Path
) -> None:
    from evals.report import render_report
    from flywheel import gating

    rows = [SftExample(f"how do I do thing {i}?", [f"passage {i}"], f"You do thing {i} like this.") for i in range(20)]
    state, prepared, repo = _sft_state(settings, rows)
    canaries = [r for r in prepared.rows if r.provenance and r.provenance[0].startswith("canary:")]
    assert len(canaries) == settings.training.sft_canaries and "canary_seed" in prepared.extra_metrics
    leaky = gating.cycle_guardrails(state, repo=repo, scrubber=FakeScrubber(), ledger=None, settings=settings,
                                    candidate_generator=_EchoCanaries(prepared.rows))  # fmt: skip
    probe = next(g for g in leaky if g.name == "memorisation_probe")
    assert not probe.passed and probe.details["leak_rate"] == 1.0
    assert next(g for g in leaky if g.name == "sft_set_pii").passed  # the stored SFT rows hold no PII
    clean = gating.cycle_guardrails(state, repo=repo, scrubber=FakeScrubber(), ledger=None, settings=settings,
                                    candidate_generator=_EchoCanaries(rows))  # fmt: skip
    assert next(g for g in clean if g.name == "memorisation_probe").passed
    # the report shows the leak rate, never the canary text
    path = render_report(tmp_path / "r.html", cycle_id="c", guardrails=leaky)
    html = path.read_text()
    assert "leak rate 100.0%" in html
    assert not any(c.target in html or c.target.rstrip(".").split()[-1] in html for c in canaries)


def test_when_sft_set_holds_residual_pii_then_its_guardrail_fails(settings: Settings) -> None:
    from flywheel import gating

    rows = [SftExample(f"question {i}", ["passage"], f"answer {i}") for i in range(19)]
    rows.append(SftExample("where do I write?", ["passage"], "Write to jane.doe@example.com for a refund."))
    state, _prepared, repo = _sft_state(settings, rows)
    results = gating.cycle_guardrails(state, repo=repo, scrubber=FakeScrubber(), ledger=None, settings=settings,
                                      candidate_generator=_EchoCanaries([]))  # fmt: skip
    pii = next(g for g in results if g.name == "sft_set_pii")
    assert not pii.passed and pii.details["entity_counts"] == {"EMAIL_ADDRESS": 1}
