"""``flywheel train embedder|generator|reranker``: train a candidate model version from a curated dataset, through
the kind's one entry in :data:`flywheel.training.KINDS` (the same entry a cycle's train step uses).

Reads the dataset with ``core.datasets.DatasetRepository(settings.datasets_dir)`` (latest version unless
``--dataset-version``), trains in a registry staging directory and registers a *candidate*: nothing live changes
(promotion is the deployer's job). Any failure (too few rows, unknown dataset version, bad base model, crash)
registers nothing and leaves the active version untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from flywheel.container import Container

_DATASET_VERSION = typer.Option(None, "--dataset-version", min=1, help="dataset version (default: the latest)")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="training epochs (default: the config's)")
_SEED = typer.Option(None, "--seed", help="random seed (default: settings.training.seed)")
_JSON = typer.Option(False, "--json", help="print the registered version as JSON")


def register(app: typer.Typer) -> None:
    """Add ``train KIND`` and the ``models`` listing to the root app."""
    app.command("train")(train)
    app.command("models")(models)


def models(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="embedder | reranker | generator_adapter (default: all)"),
    status: str = typer.Option(None, "--status", help="candidate | active | retired (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print the versions as JSON"),
) -> None:
    """List registered model versions: status, parent, dataset, headline training metrics (fits 80 columns)."""
    from flywheel.cli import backend_of, echo_json

    versions = backend_of(ctx).models(kind, status)
    if as_json:
        echo_json(versions)
        return
    _print_models(versions)


# Short labels so the table fits 80 columns; the caption says what they stand for.
_KIND_LABELS = {"embedder": "embedder", "reranker": "reranker", "generator_adapter": "generator"}


def _print_models(versions: list[dict[str, Any]]) -> None:
    """The registry as a table that fits an 80-column terminal (no important column truncated)."""
    from rich.console import Console
    from rich.table import Table

    from flywheel.cli import short_time

    console = Console()
    if not versions:
        console.print("no model versions registered: `flywheel train` or `flywheel cycle`")
        return
    table = Table(title="model versions", box=None, padding=(0, 1), collapse_padding=True, caption_justify="left",
                  caption="ver: version; from: the version it was trained from; secs: training time")  # fmt: skip
    for column in ("kind", "ver", "status", "from", "dataset", "rows", "secs", "created (UTC)"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("rows", "secs") else "left")
    for m in versions:
        metrics = m["metrics"]
        table.add_row(
            _KIND_LABELS.get(m["kind"], m["kind"]), m["version"], m["status"], m["parent"] or "base",
            m["dataset_version"] or "-", str(metrics.get("rows", metrics.get("examples", "-"))),
            _seconds(metrics.get("train_seconds")), short_time(m["created_at"]),
        )  # fmt: skip
    console.print(table)
    if any(m["kind"] == "generator_adapter" for m in versions):
        console.print("generator: the LoRA generator adapter (kind generator_adapter)")


def _seconds(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "-"


def _container(ctx: typer.Context) -> Container:
    """The in-process container; training reads the live corpus, so a running service must not own the store."""
    from flywheel.cli import container_of, refuse_beside_service

    refuse_beside_service(ctx, instead="run `flywheel cycle` (it trains through the service)")
    return container_of(ctx)


def _report(version: Any, as_json: bool) -> None:
    import dataclasses

    from flywheel.cli import echo_json

    if as_json:
        echo_json(dataclasses.asdict(version))
        return
    typer.echo(f"registered candidate {version.kind.value} {version.version} (dataset {version.dataset_version})")
    typer.echo(" ".join(f"{k}={v}" for k, v in version.metrics.items()))


def train(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="embedder | reranker | generator"),
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    teacher: str | None = typer.Option(
        None,
        "--teacher",
        help="embedder only: distill a bigger model, 'mpnet' (packaged all-mpnet-base-v2) or a model dir "
        "(default: settings.training.embedder_teacher)",
    ),
    as_json: bool = _JSON,
) -> None:
    """Train a candidate of KIND on its curated dataset (embedder: contrastive, from the base model or the live one
    as cycles do; reranker: relevance, from the MiniLM weights; generator: LoRA SFT of settings.generator.model_dir,
    default SmolLM2-135M, with canaries planted for the memorisation probe). Nothing live changes."""
    from core.datasets import DatasetRepository
    from core.errors import InvalidInputError
    from flywheel.training import EMBEDDER, kind_named, read_dataset

    c = _container(ctx)
    entry = kind_named(kind)
    if teacher and entry is not EMBEDDER:
        raise InvalidInputError("--teacher applies to the embedder only", field="teacher")
    rows, manifest = read_dataset(DatasetRepository(c.settings.datasets_dir), entry, dataset_version)
    overrides = _overrides(epochs, seed) | ({"teacher": teacher} if teacher else {})
    prepared = entry.prepare(c.settings, rows, manifest, overrides=overrides, salt="cli")
    _report(entry.train(c.training_services(), prepared), as_json)


def _overrides(epochs: int | None, seed: int | None) -> dict[str, Any]:
    """Config overrides from the command line (unset options keep the settings / config defaults)."""
    return {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}


__all__ = ["register", "train"]
