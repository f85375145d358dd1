"""``flywheel train embedder|generator|reranker``: train a candidate model version from a curated dataset.

Reads the dataset with ``core.datasets.DatasetRepository(settings.datasets_dir)`` (latest version unless
``--dataset-version``), trains in a registry staging directory and registers a *candidate*: nothing live changes
(promotion is the deployer's job). Any failure (too few rows, unknown dataset version, bad base model, crash)
registers nothing and leaves the active version untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from core.types import DatasetKind, ModelKind

if TYPE_CHECKING:
    from flywheel.container import Container

train_app = typer.Typer(help="Train a candidate model version from curated datasets (nothing live changes).")

_DATASET_VERSION = typer.Option(None, "--dataset-version", min=1, help="dataset version (default: the latest)")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="training epochs (default: the config's)")
_SEED = typer.Option(None, "--seed", help="random seed (default: settings.training.seed)")
_JSON = typer.Option(False, "--json", help="print the registered version as JSON")


def register(app: typer.Typer) -> None:
    """Add the ``train`` sub-app to the root app."""
    app.add_typer(train_app, name="train")


def _read(c: Container, kind: DatasetKind, version: int | None) -> tuple[list[Any], Any]:
    """Rows and manifest of a dataset version (``NotFoundError`` if it does not exist)."""
    from core.datasets import DatasetRepository

    repo = DatasetRepository(c.settings.datasets_dir)
    rows = repo.read(kind, version)
    return rows, repo.manifest(kind, version if version is not None else repo.latest(kind))  # type: ignore[arg-type]


def _run(
    c: Container,
    kind: ModelKind,
    manifest: Any,
    *,
    parent: str | None,
    config: Any,
    train: Callable[[Path], dict[str, Any]],
) -> Any:
    """Train into a staging dir and register a candidate with the dataset's lineage; returns the ModelVersion."""
    from customization.registry import DatasetRef

    ref = DatasetRef(manifest.kind.value, manifest.version, manifest.provenance_hash, tuple(manifest.user_ids))
    with c.registry.staging(kind) as work:
        metrics = train(work / "model")
        return c.registry.register(
            kind,
            work / "model",
            parent=parent,
            datasets=[ref],
            config=config.to_dict(),
            seed=config.seed,
            metrics=metrics,
        )


def _report(version: Any, as_json: bool) -> None:
    import dataclasses

    from flywheel.cli import echo_json

    if as_json:
        echo_json(dataclasses.asdict(version))
        return
    typer.echo(f"registered candidate {version.kind.value} {version.version} (dataset {version.dataset_version})")
    typer.echo(" ".join(f"{k}={v}" for k, v in version.metrics.items()))


@train_app.command("embedder")
def train_embedder_cmd(
    ctx: typer.Context,
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """Fine-tune the active embedder on a contrastive dataset (hard negatives + corpus pseudo-queries)."""
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder, usable_pairs
    from flywheel.arms import embedder_path
    from flywheel.cli import container_of
    from flywheel.corpus import live_passages

    c = container_of(ctx)
    pairs, manifest = _read(c, DatasetKind.CONTRASTIVE, dataset_version)
    cfg = c.settings.training
    config = EmbedderTrainingConfig(
        epochs=epochs or cfg.epochs, seed=cfg.seed if seed is None else seed, min_pairs=cfg.min_pairs
    )
    usable_pairs(pairs, config)  # fail on too few rows before loading anything
    active = c.registry.active(ModelKind.EMBEDDER)
    parent = active.version if active else None
    base = embedder_path(c, parent)
    passages = live_passages(c, c.settings.indexing.corpus)

    def run(out: Path) -> dict[str, Any]:
        return train_embedder(pairs, base_model_path=base, corpus_passages=passages, output_dir=out, config=config)

    _report(_run(c, ModelKind.EMBEDDER, manifest, parent=parent, config=config, train=run), as_json)


@train_app.command("generator")
def train_generator_cmd(
    ctx: typer.Context,
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """LoRA-tune the generator (settings.generator.model_dir, default SmolLM2-135M) on an SFT dataset."""
    from customization.base_models import ensure_smollm2
    from customization.lora import LoraConfig, check_examples, train_generator_adapter
    from flywheel.cli import container_of

    c = container_of(ctx)
    examples, manifest = _read(c, DatasetKind.SFT, dataset_version)
    cfg = c.settings.training
    config = LoraConfig(seed=cfg.seed if seed is None else seed, min_examples=cfg.min_sft_examples)
    if epochs:
        config.epochs = epochs
    check_examples(examples, config)  # fail on too few rows before converting / loading the base model
    base = c.settings.generator.model_dir or ensure_smollm2(c.settings.data_dir / "base_models")

    def run(out: Path) -> dict[str, Any]:
        metrics = train_generator_adapter(examples, base_model_dir=base, output_dir=out, config=config)
        return {**metrics, "base_model_dir": str(base)}

    _report(_run(c, ModelKind.GENERATOR_ADAPTER, manifest, parent=None, config=config, train=run), as_json)


@train_app.command("reranker")
def train_reranker_cmd(
    ctx: typer.Context,
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """Train a cross-encoder reranker (from the MiniLM weights) on a relevance dataset."""
    from customization.reranker_training import RerankerTrainingConfig, train_reranker
    from flywheel.cli import container_of
    from indexing.embedder import default_model_path

    c = container_of(ctx)
    examples, manifest = _read(c, DatasetKind.RELEVANCE, dataset_version)
    config = RerankerTrainingConfig(seed=c.settings.training.seed if seed is None else seed)
    if epochs:
        config.epochs = epochs
    base = Path(c.settings.embedder.model_path or default_model_path())

    def run(out: Path) -> dict[str, Any]:
        return train_reranker(examples, base_model_path=base, output_dir=out, config=config)

    _report(_run(c, ModelKind.RERANKER, manifest, parent=None, config=config, train=run), as_json)


__all__ = ["register", "train_app"]
