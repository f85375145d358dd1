"""``flywheel demo --generator hf`` wiring on a tiny run: SmolLM2 answers, a LoRA adapter trained in the cycle from the
agents' corrections (canaries planted and probed), and the adapter measured against the base generator. Slow: it
converts SmolLM2 once (~50 s) and trains and generates with it on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeScrubber

from core.settings import Settings
from flywheel.simulate import SimulationConfig
from flywheel.simulate_run import run_simulation

pytestmark = pytest.mark.slow


def test_when_the_demo_runs_with_the_hf_generator_then_the_adapter_is_trained_probed_and_measured_against_base(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = settings.model_copy(update={
        "base_models_dir": tmp_path_factory.getbasetemp() / "base_models",
        "training": settings.training.model_copy(update={"min_sft_examples": 4}),
    })  # fmt: skip
    config = SimulationConfig(
        limit=60, cycles=1, min_eval_cases=3, min_pairs=8, agents=3, generator="hf", answer_cases=6,
        gate_answer_cases=6, max_new_tokens=16,
        training={"epochs": 1, "pseudo_queries_per_passage": 0, "batch_size": 16, "mini_batch_size": 16},
        generator_training={"epochs": 1, "max_length": 256, "batch_size": 8},
    )  # fmt: skip
    results = run_simulation(base, config, overrides={"scrubber": FakeScrubber()})

    cycle = results["cycles"][0]
    assert results["generator"] == "hf" and cycle["status"] in ("promoted", "rejected"), cycle["reason"]
    adapter = cycle["models"]["generator_adapter"]
    assert adapter, "the cycle trained no generator adapter"
    # the gate compared both arms' SmolLM2 answers (the candidate with its new adapter)
    for name in ("semantic_similarity", "rouge_l"):
        assert cycle["gate_eval"][name]["current"] is not None and cycle["gate_eval"][name]["candidate"] is not None
    # the adapter against the base generator on the same retrieval, with its paired-bootstrap interval
    versus = results["adapter_vs_base"]
    assert versus["adapter"] == adapter
    for name in ("semantic_similarity", "rouge_l"):
        lift = versus[name]
        assert lift["n"] == 6 and lift["ci_low"] <= lift["relative"] <= lift["ci_high"]
    # the memorisation probe ran on the candidate adapter before it could serve (leak rate in the report)
    assert "leak rate" in Path(cycle["report"]).read_text()
    # SmolLM2 was converted into the shared cache, not into the wiped simulation directory
    assert (tmp_path_factory.getbasetemp() / "base_models" / "smollm2-135m-instruct" / "config.json").is_file()
    assert not (Path(results["report"]).parents[1] / "base_models").exists()
