"""``flywheel curate``: turn consented feedback into new dataset versions (contrastive, relevance, SFT, eval, gaps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from feedback.curation import CurationReport


def register(app: typer.Typer) -> None:
    """Add the ``curate`` command to the root app."""

    @app.command("curate")
    def curate(
        ctx: typer.Context,
        corpus: str | None = typer.Option(None, help="corpus to curate (default: settings.indexing.corpus)"),
        holdout_share: float | None = typer.Option(None, min=0.0, max=1.0, help="eval hold-out share of questions"),
        seed: int | None = typer.Option(None, help="hold-out hash seed (default: settings.training.seed)"),
        json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Curate the feedback log into datasets; exits 2 when there are too few events, 7 when PII blocked a set."""
        from core.datasets import DatasetRepository
        from core.errors import GuardrailViolationError, InvalidInputError
        from feedback.curation import Curator
        from flywheel.cli import container_of, echo_json

        c = container_of(ctx)
        name = corpus or c.settings.indexing.corpus
        if holdout_share is not None and not 0.0 < holdout_share < 1.0:
            raise InvalidInputError("--holdout-share must be strictly between 0 and 1", field="holdout_share")
        curator = Curator(
            c.feedback_store,
            DatasetRepository(c.settings.datasets_dir),
            scrubber=c.scrubber,
            embedder=c.embedder,
            passages=c.passage_index,
        )
        report = curator.curate(
            name,
            holdout_share=holdout_share if holdout_share is not None else c.settings.eval.holdout_share,
            seed=seed if seed is not None else c.settings.training.seed,
        )
        if json_out:
            echo_json(report.as_dict())
        else:
            _print(report)
        if report.refused:
            kinds = ", ".join(sorted(report.refused))
            raise GuardrailViolationError(f"residual PII found; datasets not written: {kinds}", refused=report.refused)


def _print(report: CurationReport) -> None:
    from rich.console import Console
    from rich.table import Table

    data = report.as_dict()
    table = Table(title=f"curated corpus {data['corpus']!r}: {data['events']} events, {data['queries']} queries")
    table.add_column("dataset")
    table.add_column("version", justify="right")
    table.add_column("rows", justify="right")
    for kind, rows in sorted(data["rows"].items()):
        version = data["written"].get(kind)
        table.add_row(kind, f"v{version}" if version else "refused" if kind in data["refused"] else "-", str(rows))
    console = Console()
    console.print(table)
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(data["dropped"].items()) if v)
    console.print(f"dropped: {dropped or 'nothing'}; raters: {data['raters']}; users: {data['users']}")
