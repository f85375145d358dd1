"""ModelRegistry: atomic registration, immutable versions, active pointer, rollback, retirement, dataset users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.types import ModelKind, ModelStatus
from customization.registry import DatasetRef, ModelRegistry

pytestmark = pytest.mark.unit

EMB = ModelKind.EMBEDDER


def _register(registry: ModelRegistry, kind: ModelKind = EMB, *, users: tuple[str, ...] = ("u1",), tag: str = "x"):
    with registry.staging(kind) as work:
        (work / "weights.bin").write_text(tag)
        return registry.register(
            kind,
            work,
            parent=None,
            datasets=[DatasetRef("contrastive", 3, "abc123", users)],
            config={"epochs": 1},
            seed=7,
            metrics={"rows": 16},
        )


def test_when_registered_then_manifest_holds_lineage_and_artifacts_are_moved(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    version = _register(registry)
    assert version.version == "v1"
    assert version.status == ModelStatus.CANDIDATE
    assert version.dataset_version == "contrastive/v3"
    assert version.provenance_hash == "abc123"
    assert version.seed == 7 and version.config == {"epochs": 1} and version.metrics == {"rows": 16}
    assert (Path(version.path) / "weights.bin").read_text() == "x"
    manifest = json.loads((tmp_path / "embedder" / "v1" / "manifest.json").read_text())
    assert manifest["user_ids"] == ["u1"]
    assert [p.name for p in (tmp_path / "embedder").iterdir() if p.name.startswith(".staging")] == []


def test_when_registered_twice_then_versions_increase_and_never_overwrite(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = _register(registry, tag="one")
    second = _register(registry, tag="two")
    assert (first.version, second.version) == ("v1", "v2")
    assert (Path(first.path) / "weights.bin").read_text() == "one"
    assert [m.version for m in registry.list(EMB)] == ["v1", "v2"]


def test_when_training_crashes_inside_staging_then_nothing_is_registered(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RuntimeError), registry.staging(EMB) as work:
        (work / "half.bin").write_text("partial")
        raise RuntimeError("boom")
    assert registry.list(EMB) == []
    assert list((tmp_path / "embedder").iterdir()) == []


def test_sweep_removes_staging_dirs_of_dead_runs_and_keeps_live_ones(tmp_path: Path) -> None:
    import os
    import time

    registry = ModelRegistry(tmp_path)
    base = tmp_path / EMB.value
    base.mkdir(parents=True)
    dead = base / ".staging-dead"  # a process killed mid-training: its lock file is there but nobody holds it
    (dead / "model").mkdir(parents=True)
    (base / ".staging-dead.lock").touch()
    old = base / ".staging-old"  # killed before it took its lock, long ago
    old.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = base / ".staging-fresh"  # just made, about to take its lock
    fresh.mkdir()
    with registry.staging(EMB) as live:
        (live / "weights.bin").write_text("training")
        removed = registry.sweep_staging()
        assert sorted(removed) == sorted([str(dead), str(old)])
        assert live.is_dir() and fresh.is_dir() and not (base / ".staging-dead.lock").exists()
    assert not live.exists() and not live.with_name(live.name + ".lock").exists()


def test_when_artifacts_are_empty_then_invalid_input_and_nothing_registered(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with registry.staging(EMB) as work, pytest.raises(InvalidInputError):
        registry.register(EMB, work)
    assert registry.list(EMB) == []


def test_activate_rollback_and_retire(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.active(EMB) is None
    v1, v2 = _register(registry), _register(registry)
    registry.activate(EMB, v1.version)
    registry.activate(EMB, v2.version)
    assert registry.active(EMB).version == "v2"  # type: ignore[union-attr]
    assert registry.get(EMB, "v1").status == ModelStatus.CANDIDATE
    with pytest.raises(ConflictError):
        registry.retire(EMB, "v2")
    assert registry.rollback(EMB).version == "v1"  # type: ignore[union-attr]
    assert registry.get(EMB, "v2").status == ModelStatus.CANDIDATE
    registry.retire(EMB, "v2")
    assert registry.get(EMB, "v2").status == ModelStatus.RETIRED
    with pytest.raises(ConflictError):
        registry.activate(EMB, "v2")
    assert registry.rollback(EMB) is None  # back to the base model
    assert registry.active(EMB) is None


def test_when_version_is_unknown_then_not_found(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(NotFoundError):
        registry.get(EMB, "v9")
    with pytest.raises(NotFoundError):
        registry.activate(EMB, "v9")
    with pytest.raises(NotFoundError):
        registry.get(EMB, "../etc")


def test_models_for_user_answers_which_models_saw_a_user(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry, users=("alice",))
    _register(registry, ModelKind.RERANKER, users=("alice", "bob"))
    _register(registry, users=("bob",))
    seen = {(m.kind, m.version) for m in registry.models_for_user("alice")}
    assert seen == {(ModelKind.EMBEDDER, "v1"), (ModelKind.RERANKER, "v1")}
    assert registry.models_for_user("carol") == []
    assert registry.dataset_refs(EMB, "v2")[0].user_ids == ("bob",)
