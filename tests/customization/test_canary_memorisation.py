"""A tuned adapter is probed before it can serve: SmolLM2-135M LoRA-tuned, through the generator adapter's one training
entry (canaries planted in its SFT rows), until it memorises them; the memorisation probe on that adapter fails and
fails the cycle's verdict. The fast variant with a fake generator that echoes the canaries is in
``tests/flywheel/test_cycle.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeScrubber

from core.datasets import DatasetRepository
from core.settings import Settings
from core.types import DatasetKind, ModelKind, SftExample

pytestmark = pytest.mark.slow


def test_when_smollm2_adapter_memorises_a_planted_canary_then_probe_and_verdict_fail(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from customization.base_models import ensure_smollm2
    from flywheel import gating
    from flywheel.container import Container
    from flywheel.cycle_state import Curated, CycleState, DatasetInfo
    from flywheel.training import GENERATOR_ADAPTER
    from retrieval.generators.hf import HFGenerator

    base = ensure_smollm2(tmp_path_factory.mktemp("base_models"))
    settings = settings.model_copy(update={
        "generator": settings.generator.model_copy(update={"kind": "hf", "model_dir": base, "max_passages": 1}),
        "training": settings.training.model_copy(update={"train_generator": True, "sft_canaries": 2}),
    })  # fmt: skip
    rows = [SftExample(f"How do I pay invoice {i}?", [f"Invoices are paid online ({i})."], f"Online [1] ({i}).")
            for i in range(2)]  # fmt: skip
    repo = DatasetRepository(settings.datasets_dir)
    manifest = repo.write(DatasetKind.SFT, rows, event_ids=["e1"], user_ids=["u1"])
    # a recipe that memorises its few rows (what the probe exists to catch)
    memorise = {"epochs": 15, "learning_rate": 5e-3, "rank": 16, "alpha": 32, "max_length": 64,
                "batch_size": 4, "min_examples": 1, "warmup_ratio": 0.0, "show_progress": False}  # fmt: skip
    prepared = GENERATOR_ADAPTER.prepare(settings, rows, manifest, overrides=memorise, salt="cycle-x")
    c = Container(settings)
    try:
        version = GENERATOR_ADAPTER.train(c, prepared)
        assert version.metrics["canaries"] == 2 and "canary_seed" in version.metrics
        generator = HFGenerator(
            base, adapter_dir=version.path, max_new_tokens=32, version=version.version, max_passages=1
        )
        state = CycleState(curated=Curated({"sft": DatasetInfo(manifest.version, manifest.rows, 1)}))
        state.plan.ready[ModelKind.GENERATOR_ADAPTER] = prepared
        state.trained[ModelKind.GENERATOR_ADAPTER] = version
        results = gating.cycle_guardrails(state, repo=repo, scrubber=FakeScrubber(), ledger=None, settings=settings,
                                          candidate_generator=generator)  # fmt: skip
    finally:
        c.close()
    probe = next(r for r in results if r.name == "memorisation_probe")
    assert not probe.passed and probe.details["leaks"] >= 1, probe.reason
    html = Path(tmp_path_factory.mktemp("report") / "r.html")
    from evals.report import render_report

    text = render_report(html, cycle_id="x", guardrails=results).read_text()
    assert "leak rate" in text
    from evals.guardrails import make_canaries

    secrets = [cn.secret for cn in make_canaries(2, seed=int(version.metrics["canary_seed"]))]
    assert not any(secret in text for secret in secrets)
