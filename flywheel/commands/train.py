"""``flywheel train embedder|generator|reranker``: train a candidate model version from a curated dataset.

Reads the dataset with ``core.datasets.DatasetRepository(settings.datasets_dir)`` (latest version unless
``--dataset-version``), trains in a registry staging directory and registers a *candidate*: nothing live changes
(promotion is the deployer's job). Any failure (too few rows, unknown dataset version, bad base model, crash)
registers nothing and leaves the active version untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from core.types import DatasetKind

if TYPE_CHECKING:
    from flywheel.container import Container

train_app = typer.Typer(help="Train a candidate model version from curated datasets (nothing live changes).")

_DATASET_VERSION = typer.Option(None, "--dataset-version", min=1, help="dataset version (default: the latest)")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="training epochs (default: the config's)")
_SEED = typer.Option(None, "--seed", help="random seed (default: settings.training.seed)")
_JSON = typer.Option(False, "--json", help="print the registered version as JSON")


def register(app: typer.Typer) -> None:
    """Add the ``train`` sub-app and the ``models`` listing to the root app."""
    app.add_typer(train_app, name="train")
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


def _read(c: Container, kind: DatasetKind, version: int | None) -> tuple[list[Any], Any]:
    """Rows and manifest of a dataset version (``NotFoundError`` if it does not exist)."""
    from core.datasets import DatasetRepository

    repo = DatasetRepository(c.settings.datasets_dir)
    rows = repo.read(kind, version)
    return rows, repo.manifest(kind, version if version is not None else repo.latest(kind))  # type: ignore[arg-type]


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
    teacher: str | None = typer.Option(
        None,
        "--teacher",
        help="distill a bigger model: 'mpnet' (packaged all-mpnet-base-v2) or a model dir "
        "(default: settings.training.embedder_teacher)",
    ),
    as_json: bool = _JSON,
) -> None:
    """Fine-tune the embedder on a contrastive dataset, from the base model or the live one (training.embedder_start,
    as cycles do)."""
    from flywheel.training import train_embedder_version

    c = _container(ctx)
    pairs, manifest = _read(c, DatasetKind.CONTRASTIVE, dataset_version)
    overrides = _overrides(epochs, seed) | ({"teacher": teacher} if teacher else {})
    _report(train_embedder_version(c, pairs, manifest, overrides=overrides), as_json)


@train_app.command("generator")
def train_generator_cmd(
    ctx: typer.Context,
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """LoRA-tune the generator (settings.generator.model_dir, default SmolLM2-135M) on an SFT dataset."""
    from flywheel.training import train_generator_version

    c = _container(ctx)
    examples, manifest = _read(c, DatasetKind.SFT, dataset_version)
    _report(train_generator_version(c, examples, manifest, overrides=_overrides(epochs, seed)), as_json)


@train_app.command("reranker")
def train_reranker_cmd(
    ctx: typer.Context,
    dataset_version: int = _DATASET_VERSION,
    epochs: int = _EPOCHS,
    seed: int = _SEED,
    as_json: bool = _JSON,
) -> None:
    """Train a cross-encoder reranker (from the MiniLM weights) on a relevance dataset."""
    from flywheel.training import train_reranker_version

    c = _container(ctx)
    examples, manifest = _read(c, DatasetKind.RELEVANCE, dataset_version)
    _report(train_reranker_version(c, examples, manifest, overrides=_overrides(epochs, seed)), as_json)


def _overrides(epochs: int | None, seed: int | None) -> dict[str, Any]:
    """Config overrides from the command line (unset options keep the settings / config defaults)."""
    return {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}


__all__ = ["register", "train_app"]
