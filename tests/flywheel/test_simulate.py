"""A tiny end-to-end simulation: index, agents' traffic through the router + intake, one full cycle with a real
(few-step) embedder fine-tune, held-out scoring; the held-out questions never reach a training dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeScrubber

from core.datasets import DatasetRepository
from core.settings import Settings
from core.types import DatasetKind, ModelKind
from flywheel.simulate import (
    HEADLINE,
    SimulationConfig,
    load_questions,
    simulation_settings,
    split,
    write_json,
)
from flywheel.simulate_run import run_simulation

pytestmark = pytest.mark.integration

LIMIT = 36


def test_tiny_simulation_runs_a_cycle_and_never_trains_on_held_out(settings: Settings, tmp_path: Path) -> None:
    config = SimulationConfig(
        limit=LIMIT, cycles=1, min_eval_cases=3, min_pairs=8, agents=3,
        training={"epochs": 1, "pseudo_queries_per_passage": 1, "batch_size": 16, "mini_batch_size": 16},
    )  # fmt: skip
    messages: list[str] = []
    results = run_simulation(settings, config, progress=messages.append, overrides={"scrubber": FakeScrubber()})
    assert results["split"] == {"questions": LIMIT, "pool": 22, "heldout": 7, "gate_gold": 7}
    cycle = results["cycles"][0]
    assert cycle["status"] in ("promoted", "rejected"), cycle["reason"]
    assert cycle["traffic"]["queries"] == 22 and cycle["traffic"]["events"] >= 3 * 22
    assert set(cycle["timings"]["steps"]) == {"reconcile", "curate", "train", "build", "evaluate", "gate", "deploy",
                                             "report"}  # fmt: skip
    assert Path(cycle["report"]).is_file()
    # generation measured every cycle beside retrieval: the live (extractive) generator's answers on the held-out
    # questions, the gate's comparison answered by both arms, lifts with paired-bootstrap intervals
    for name in ("semantic_similarity", "rouge_l"):
        assert 0.0 < results["baseline"][name] <= 1.0 and 0.0 < cycle["metrics"][name] <= 1.0
        lift = results["lifts"][name]
        assert lift["n"] == 7 and lift["ci_low"] <= lift["relative"] <= lift["ci_high"]
        assert cycle["gate_eval"][name]["current"] is not None and cycle["gate_eval"][name]["candidate"] is not None
    html = Path(cycle["report"]).read_text()
    assert "Generation: each arm&#x27;s answers" in html or "Generation: each arm's answers" in html
    assert "No feedback this cycle" not in html
    for name in ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10"):
        assert 0.0 <= results["baseline"][name] <= 1.0 and 0.0 <= cycle["metrics"][name] <= 1.0
    # a rejected candidate is still measured on the held-out questions (what the gate left on the table)
    rejected, missed = cycle["rejected_candidate_metrics"], results["lift"]["rejections_that_would_have_raised_mrr"]
    if cycle["status"] == "rejected":
        assert set(rejected) == set(HEADLINE) and all(0.0 <= v <= 1.0 for v in rejected.values())
        assert (missed == [1]) == (rejected["mrr@10"] > cycle["metrics"]["mrr@10"])
    else:
        assert rejected is None and missed == []
    # held-out questions are never used for training
    _pool, held = split(load_questions(None, limit=LIMIT), holdout_share=0.4, seed=config.seed)
    held_questions = {i.question for i in held}
    repo = DatasetRepository(settings.data_dir / "simulation" / "datasets")
    trained = [p.query for p in repo.read(DatasetKind.CONTRASTIVE)]
    assert trained and not held_questions.intersection(trained)
    out = write_json(results, tmp_path / "sim.json")
    assert json.loads(out.read_text())["cycles"][0]["cycle_id"] == cycle["cycle_id"]
    assert any("untuned start" in m for m in messages)


def test_cycle_with_train_reranker_trains_one_and_the_candidate_arm_reranks_with_it(
    settings: Settings, tmp_path: Path
) -> None:
    from customization.registry import ModelRegistry
    from flywheel.arms import build_arm
    from flywheel.container import Container

    settings = settings.model_copy(update={"training": settings.training.model_copy(update={"train_reranker": True})})
    config = SimulationConfig(
        limit=LIMIT, cycles=1, min_eval_cases=3, min_pairs=8, agents=3,
        training={"epochs": 1, "batch_size": 16, "mini_batch_size": 16},
    )  # fmt: skip
    results = run_simulation(settings, config, overrides={"scrubber": FakeScrubber()})
    cycle = results["cycles"][0]
    assert cycle["status"] in ("promoted", "rejected"), cycle["reason"]
    reranker = cycle["models"]["reranker"]
    assert reranker and reranker.startswith("v")
    version = ModelRegistry(settings.data_dir / "simulation" / "models").get(ModelKind.RERANKER, reranker)
    assert version.metrics["cycle_id"] == cycle["cycle_id"] and version.dataset_version
    # the candidate's arm (what a canary serves and what the gate evaluated) reranks with that version
    c = Container(simulation_settings(settings, config), overrides={"scrubber": FakeScrubber()})
    try:
        arm = build_arm(c, {"embedder": None, "reranker": reranker}, None)
        assert arm.reranker is not None and arm.reranker.version == reranker
        assert build_arm(c, {"embedder": None, "reranker": None}, None).reranker is None
    finally:
        c.close()
