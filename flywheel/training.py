"""Train one candidate model version of each kind from a curated dataset version: used by ``flywheel train ...`` and
by the cycle's train step, so both start from the same parent, use the same settings and register the same way.

Every function trains inside a registry staging directory and registers a *candidate* (nothing live changes); a
failure (too few rows, bad base model, crash) registers nothing. Rows are checked before any model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.ports import ProgressCallback
from core.types import ModelKind
from flywheel.deploy import BASE

if TYPE_CHECKING:
    from core.types import DatasetManifest
    from customization.registry import ModelVersion
    from flywheel.container import Container


def register_trained(
    c: Container,
    kind: ModelKind,
    manifest: DatasetManifest,
    *,
    parent: str | None,
    config: Any,
    train: Callable[[Path], dict[str, Any]],
    extra_metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Run ``train(staging_dir)`` and register its output as a candidate with the dataset's provenance."""
    from customization.registry import DatasetRef

    ref = DatasetRef(manifest.kind.value, manifest.version, manifest.provenance_hash, tuple(manifest.user_ids))
    with c.registry.staging(kind) as work:
        metrics = train(work / "model")
        return c.registry.register(
            kind, work / "model", parent=parent, datasets=[ref], config=config.to_dict(), seed=config.seed,
            metrics={**metrics, **(extra_metrics or {})},
        )  # fmt: skip


def embedder_parent(c: Container) -> str:
    """Where embedder training starts (``training.embedder_start``): the base model or the live embedder."""
    active = c.deployer.current().models.get(ModelKind.EMBEDDER.value)
    if c.settings.training.embedder_start == "active" and active not in (None, BASE):
        return str(active)
    return BASE


def train_embedder_version(
    c: Container,
    pairs: Sequence[Any],
    manifest: DatasetManifest,
    *,
    overrides: dict[str, Any] | None = None,
    extra_metrics: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ModelVersion:
    """Fine-tune an embedder on contrastive ``pairs`` (+ the live corpus for mining) -> candidate version."""
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder, usable_pairs
    from flywheel.arms import embedder_path
    from flywheel.corpus import live_passages

    cfg = c.settings.training
    config = EmbedderTrainingConfig.from_overrides(
        overrides or {}, epochs=cfg.epochs, seed=cfg.seed, min_pairs=cfg.min_pairs, teacher=cfg.embedder_teacher
    )
    usable_pairs(pairs, config)  # fail on too few rows before loading anything
    parent = embedder_parent(c)
    base = embedder_path(c, parent)
    passages = live_passages(c, c.settings.indexing.corpus)

    def run(out: Path) -> dict[str, Any]:
        return train_embedder(pairs, base_model_path=base, corpus_passages=passages, output_dir=out, config=config,
                              base_models_dir=c.settings.data_dir / "base_models", on_progress=on_progress)  # fmt: skip

    return register_trained(
        c, ModelKind.EMBEDDER, manifest, parent=parent, config=config, train=run, extra_metrics=extra_metrics
    )


def train_reranker_version(
    c: Container,
    examples: Sequence[Any],
    manifest: DatasetManifest,
    *,
    overrides: dict[str, Any] | None = None,
    extra_metrics: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ModelVersion:
    """Train a cross-encoder (from the MiniLM weights) on relevance ``examples`` -> candidate version."""
    from customization.reranker_training import RerankerTrainingConfig, check_examples, train_reranker
    from indexing.embedder import default_model_path

    config = RerankerTrainingConfig(**({"seed": c.settings.training.seed} | (overrides or {})))
    check_examples(examples, config)
    base = Path(c.settings.embedder.model_path or default_model_path())

    def run(out: Path) -> dict[str, Any]:
        return train_reranker(examples, base_model_path=base, output_dir=out, config=config, on_progress=on_progress)

    return register_trained(
        c, ModelKind.RERANKER, manifest, parent=None, config=config, train=run, extra_metrics=extra_metrics
    )


def train_generator_version(
    c: Container,
    examples: Sequence[Any],
    manifest: DatasetManifest,
    *,
    overrides: dict[str, Any] | None = None,
    extra_metrics: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ModelVersion:
    """LoRA-tune the generator (``generator.model_dir``, default SmolLM2-135M) on SFT ``examples`` -> candidate."""
    from customization.base_models import ensure_smollm2
    from customization.lora import LoraConfig, check_examples, train_generator_adapter

    cfg = c.settings.training
    config = LoraConfig(**({"seed": cfg.seed, "min_examples": cfg.min_sft_examples} | (overrides or {})))
    check_examples(examples, config)  # fail on too few rows before converting / loading the base model
    base = c.settings.generator.model_dir or ensure_smollm2(c.settings.data_dir / "base_models")

    def run(out: Path) -> dict[str, Any]:
        metrics = train_generator_adapter(
            examples, base_model_dir=base, output_dir=out, config=config, on_progress=on_progress
        )
        return {**metrics, "base_model_dir": str(base)}

    return register_trained(
        c, ModelKind.GENERATOR_ADAPTER, manifest, parent=None, config=config, train=run, extra_metrics=extra_metrics
    )


__all__ = [
    "embedder_parent",
    "register_trained",
    "train_embedder_version",
    "train_generator_version",
    "train_reranker_version",
]
