"""Loop commands: ``cycle``, ``promote``, ``rollback``, ``reindex``, ``eval --candidate``, ``jobs``, ``lineage``.

Each goes through ``backend_of(ctx)``: the data dir's running service over HTTP, else this process. The job commands
run their job where the store lives (the service's job runner, or this process' with the same bookkeeping and
one-cycle-at-a-time rule as ``POST /v1/jobs``), follow it with a progress bar on a terminal, turn Ctrl-C into a
cancellation, and print a short summary, or JSON with ``--json``.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import typer

from core.errors import ConflictError, FlywheelError

if TYPE_CHECKING:
    from flywheel.client import Backend


def _run_job(ctx: typer.Context, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run a job of ``kind`` where the store lives (the data dir's service, else this process) and wait for it,
    showing its step and progress on a terminal.

    Ctrl-C asks the job to cancel (it stops at its next step or progress report: within seconds even inside training
    or embedding, dropping what it half-built) and waits for it to end.
    """
    from flywheel.cli import backend_of

    backend = backend_of(ctx)
    backend.prepare_jobs()
    job = backend.submit_job(kind, params)
    try:
        _follow(backend, job["id"], kind)
    except KeyboardInterrupt:
        typer.echo(f"cancelling {kind} job {job['id']}; waiting for it to stop", err=True)
        with contextlib.suppress(ConflictError):  # it finished meanwhile
            backend.cancel_job(job["id"])
        with contextlib.suppress(KeyboardInterrupt):
            _follow(backend, job["id"], kind)
    return backend.finish_job(job["id"])


def _follow(backend: Backend, job_id: str, kind: str, *, poll_s: float = 0.5) -> None:
    """Poll the job until it ends; on a terminal, a progress bar with the current step."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.state import ACTIVE_JOB_STATUSES  # StrEnum members: equal to their string values

    console = Console(stderr=True)
    percent = TextColumn("{task.percentage:>3.0f}%")
    columns = (TextColumn("{task.description}"), BarColumn(), percent, TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(kind, total=1.0)
        while True:
            job = backend.job(job_id)
            bar.update(task, completed=job["progress"], description=f"{kind}: {job['step'] or job['status']}")
            if job["status"] not in ACTIVE_JOB_STATUSES:
                return
            time.sleep(poll_s)


def _show_job(job: dict[str, Any], *, as_json: bool) -> None:
    from flywheel.cli import echo_json

    data = {k: job.get(k) for k in ("id", "kind", "status", "step", "error", "result")}
    if as_json:
        echo_json(data)
        return
    typer.echo(f"job {job['id']} {job['kind']}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""))
    for key, value in (job["result"] or {}).items():
        typer.echo(f"  {key}: {value}")


def _show_result(job: dict[str, Any], *, as_json: bool) -> None:
    """A finished cycle / eval job: its current vs candidate table, verdict and report (``flywheel.render``); a job
    without a result (skipped, failed, cancelled) as a status line."""
    from flywheel.render import render_result

    if as_json or not job.get("result"):
        _show_job(job, as_json=as_json)
        return
    typer.echo(f"job {job['id']} {job['kind']}: {job['status']}")
    typer.echo(render_result(job["result"]))


def _fail_if_failed(job: dict[str, Any]) -> None:
    if job["status"] == "failed":
        raise FlywheelError(job["error"] or "job failed")
    if job["status"] == "cancelled":
        raise typer.Exit(130)  # as a shell reports a Ctrl-C'd command


def _deployment_line(prefix: str, record: dict[str, Any]) -> str:
    return f"{prefix}: {record['live_collection']} models={record['models']} deployment={record['id']}"


def register(app: typer.Typer) -> None:
    """Add the loop commands to the root app."""

    @app.command()
    def cycle(
        ctx: typer.Context,
        mode: str = typer.Option(None, "--mode", help="promote | canary | shadow (default deploy.mode)"),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Run one cycle now: curate -> train -> build -> evaluate -> gate -> promote / canary."""
        job = _run_job(ctx, "cycle", {"mode": mode} if mode else {})
        _show_result(job, as_json=as_json)
        _fail_if_failed(job)

    @app.command()
    def reindex(
        ctx: typer.Context,
        source: str = typer.Option(None, "--source", help="folder, .jsonl file or builtin:faq (default setting)"),
        allow_shrink: bool = typer.Option(
            False, "--allow-shrink", help="accept a version that drops more than indexing.max_drop_share of the docs"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Re-read the source documents + approved corrections, embed incrementally, switch (for an external cron)."""
        params: dict[str, Any] = {"source": _absolute_source(source)} if source else {}
        if allow_shrink:
            params["allow_shrink"] = True
        job = _run_job(ctx, "reindex", params)
        _show_job(job, as_json=as_json)
        _fail_if_failed(job)

    @app.command("eval")
    def eval_(
        ctx: typer.Context,
        candidate: str = typer.Option(..., "--candidate", help="a cycle id or a collection name"),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Evaluate the live deployment against a candidate on the held-out eval set, with the gate's verdict."""
        job = _run_job(ctx, "eval", {"candidate": candidate})
        _show_result(job, as_json=as_json)
        _fail_if_failed(job)

    @app.command()
    def promote(
        ctx: typer.Context,
        candidate: str = typer.Argument(None, help="cycle id or collection (default: the running canary)"),
        force: bool = typer.Option(False, "--force", help="promote even though the gate failed (needs --reason)"),
        reason: str = typer.Option(None, "--reason", help="why (recorded with the verdict)"),
        actor: str = typer.Option("cli", "--actor", help="who promotes (recorded)"),
    ) -> None:
        """Make a candidate live (alias + model versions); refused for a gate-failed candidate unless forced.

        Through a running service the actor recorded is the caller's API key id (``--actor`` is for in-process use)."""
        from flywheel.cli import backend_of

        record = backend_of(ctx).promote(candidate, force=force, reason=reason, actor=actor)
        typer.echo(_deployment_line("promoted", record))

    @app.command()
    def rollback(
        ctx: typer.Context,
        reason: str = typer.Option("manual rollback", "--reason", help="why (recorded)"),
    ) -> None:
        """End a running canary, else restore the previous alias target and model versions in one step."""
        from flywheel.cli import backend_of

        typer.echo(_deployment_line("live", backend_of(ctx).rollback(reason=reason)))

    @app.command()
    def jobs(
        ctx: typer.Context,
        job_id: str = typer.Argument(None, help="show one job"),
        limit: int = typer.Option(20, "--limit", min=1, max=500),
        as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    ) -> None:
        """List recent jobs (or show one)."""
        from flywheel.cli import backend_of, echo_json, timestamp

        backend = backend_of(ctx)
        if job_id:
            _show_job(backend.job(job_id), as_json=as_json)
            return
        rows = backend.jobs(limit=limit)
        if as_json:
            echo_json([{k: j[k] for k in ("id", "kind", "status", "step")} for j in rows])
            return
        for j in rows:
            typer.echo(f"{j['id']}  {j['kind']:8} {j['status']:10} {j['step'] or '-':10} {timestamp(j['created_at'])}")

    @app.command()
    def lineage(
        ctx: typer.Context,
        kind: str = typer.Argument(
            ..., help="event | user | query | dataset | model | collection | deployment | cycle"
        ),
        node_id: str = typer.Argument(..., help="its id (dataset contrastive:v3, model embedder:v2, faq__v4 ...)"),
    ) -> None:
        """What a thing came from and what it fed (transitively)."""
        from flywheel.cli import backend_of, echo_json

        echo_json(backend_of(ctx).lineage(kind, node_id))


def _absolute_source(source: str) -> str:
    """A reindex source as the service will read it: a local path made absolute (the service has its own cwd)."""
    from pathlib import Path

    if source.startswith("builtin:"):
        return source
    return str(Path(source).expanduser().resolve())
