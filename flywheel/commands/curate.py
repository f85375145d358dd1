"""``flywheel curate``: turn consented feedback into new dataset versions (contrastive, relevance, SFT, eval, gaps)."""

from __future__ import annotations

from typing import Any

import typer


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
        from core.errors import GuardrailViolationError
        from flywheel.cli import backend_of, echo_json

        data = backend_of(ctx).curate(corpus=corpus, holdout_share=holdout_share, seed=seed)
        if json_out:
            echo_json(data)
        else:
            _print(data)
        if data["refused"]:
            kinds = ", ".join(sorted(data["refused"]))
            raise GuardrailViolationError(f"residual PII found; datasets not written: {kinds}", refused=data["refused"])


def _print(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

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
