"""Loop commands: ``cycle``, ``promote``, ``rollback``, ``reindex``, ``eval --candidate``, ``jobs``, ``lineage``.

The job commands run their job in the calling process (same bookkeeping, same one-cycle-at-a-time rule as the
service's ``POST /v1/jobs``), follow it with a progress bar on a terminal, turn Ctrl-C into a cancellation, and print
a short summary, or JSON with ``--json``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import typer

from core.errors import ConflictError, FlywheelError, InvalidInputError


def _run_job(ctx: typer.Context, kind: str, params: dict[str, Any]) -> Any:
    """Run a job of ``kind`` in this process and wait for it, showing its step and progress on a terminal.

    Ctrl-C asks the job to cancel (it stops at its next step or progress report: within seconds even inside training
    or embedding, dropping what it half-built) and waits for it to end.
    """
    from flywheel.cli import container_of
    from flywheel.jobs import STALE_AFTER_S

    c = container_of(ctx)
    c.job_runner.recover(stale_after_s=STALE_AFTER_S)  # only jobs whose process is gone (a service may own the rest)
    c.registry.sweep_staging()  # training runs that died (a live one in another process holds its lock)
    job = c.job_runner.submit(kind, params)
    try:
        _follow(c, job.id, kind)
    except KeyboardInterrupt:
        typer.echo(f"cancelling {kind} job {job.id}; waiting for it to stop", err=True)
        with contextlib.suppress(ConflictError):  # it finished meanwhile
            c.job_runner.cancel(job.id)
    return c, c.job_runner.wait(job.id)


def _follow(c: Any, job_id: str, kind: str, *, poll_s: float = 0.5) -> None:
    """Poll the job's row until it ends; on a terminal, a progress bar with the current step."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.state import ACTIVE_JOB_STATUSES

    console = Console(stderr=True)
    percent = TextColumn("{task.percentage:>3.0f}%")
    columns = (TextColumn("{task.description}"), BarColumn(), percent, TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(kind, total=1.0)
        while True:
            job = c.state_store.get_job(job_id)
            bar.update(task, completed=job.progress, description=f"{kind}: {job.step or job.status.value}")
            if job.status not in ACTIVE_JOB_STATUSES:
                return
            time.sleep(poll_s)


def _show_job(job: Any, *, as_json: bool) -> None:
    from flywheel.cli import echo_json

    data = {"id": job.id, "kind": job.kind, "status": job.status.value, "step": job.step, "error": job.error,
            "result": job.result}  # fmt: skip
    if as_json:
        echo_json(data)
        return
    typer.echo(f"job {job.id} {job.kind}: {job.status.value}" + (f" ({job.error})" if job.error else ""))
    for key, value in (job.result or {}).items():
        typer.echo(f"  {key}: {value}")


def _show_result(job: Any, *, as_json: bool) -> None:
    """A finished cycle / eval job: its current vs candidate table, verdict and report (``flywheel.render``); a job
    without a result (skipped, failed, cancelled) as a status line."""
    from flywheel.render import render_result

    if as_json or not job.result:
        _show_job(job, as_json=as_json)
        return
    typer.echo(f"job {job.id} {job.kind}: {job.status.value}")
    typer.echo(render_result(job.result))


def _fail_if_failed(job: Any) -> None:
    if job.status.value == "failed":
        raise FlywheelError(job.error or "job failed")
    if job.status.value == "cancelled":
        raise typer.Exit(130)  # as a shell reports a Ctrl-C'd command


def register(app: typer.Typer) -> None:
    """Add the loop commands to the root app."""

    @app.command()
    def cycle(
        ctx: typer.Context,
        mode: str = typer.Option(None, "--mode", help="promote | canary | shadow (default deploy.mode)"),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Run one cycle now: curate -> train -> build -> evaluate -> gate -> promote / canary."""
        _c, job = _run_job(ctx, "cycle", {"mode": mode} if mode else {})
        _show_result(job, as_json=as_json)
        _fail_if_failed(job)

    @app.command()
    def reindex(
        ctx: typer.Context,
        source: str = typer.Option(None, "--source", help="folder, .jsonl file or builtin:faq (default setting)"),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Re-read the source documents + approved corrections, embed incrementally, switch (for an external cron)."""
        _c, job = _run_job(ctx, "reindex", {"source": source} if source else {})
        _show_job(job, as_json=as_json)
        _fail_if_failed(job)

    @app.command("eval")
    def eval_(
        ctx: typer.Context,
        candidate: str = typer.Option(..., "--candidate", help="a cycle id or a collection name"),
        as_json: bool = typer.Option(False, "--json", help="print the job as JSON"),
    ) -> None:
        """Evaluate the live deployment against a candidate on the held-out eval set, with the gate's verdict."""
        _c, job = _run_job(ctx, "eval", {"candidate": candidate})
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
        """Make a candidate live (alias + model versions); refused for a gate-failed candidate unless forced."""
        from flywheel.cli import container_of
        from flywheel.deploy import Candidate
        from flywheel.loop import resolve_candidate

        c = container_of(ctx)
        c.deployer.reconcile()
        if candidate:
            cand = resolve_candidate(c, candidate)
        else:
            canary = c.deployer.current().canary
            if not canary:
                raise InvalidInputError("no canary is running: name a cycle id or collection", field="candidate")
            cand = Candidate(canary["collection"], canary["models"], canary.get("cycle_id"), gate_passed=True)
        record = c.deployer.promote(cand, force=force, reason=reason, actor=actor)
        typer.echo(f"promoted: {record.live_collection} models={record.models} deployment={record.id}")

    @app.command()
    def rollback(
        ctx: typer.Context,
        reason: str = typer.Option("manual rollback", "--reason", help="why (recorded)"),
    ) -> None:
        """End a running canary, else restore the previous alias target and model versions in one step."""
        from flywheel.cli import container_of

        c = container_of(ctx)
        c.deployer.reconcile()
        record = c.deployer.rollback(reason=reason)
        typer.echo(f"live: {record.live_collection} models={record.models} deployment={record.id}")

    @app.command()
    def jobs(
        ctx: typer.Context,
        job_id: str = typer.Argument(None, help="show one job"),
        limit: int = typer.Option(20, "--limit", min=1, max=500),
        as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    ) -> None:
        """List recent jobs (or show one)."""
        from flywheel.cli import container_of, echo_json

        state = container_of(ctx).state_store
        if job_id:
            _show_job(state.get_job(job_id), as_json=as_json)
            return
        rows = state.list_jobs(limit=limit)
        if as_json:
            echo_json([{"id": j.id, "kind": j.kind, "status": j.status.value, "step": j.step} for j in rows])
            return
        for j in rows:
            created = j.created_at.isoformat(timespec="seconds") if j.created_at else "-"
            typer.echo(f"{j.id}  {j.kind:8} {j.status.value:10} {j.step or '-':10} {created}")

    @app.command()
    def lineage(
        ctx: typer.Context,
        kind: str = typer.Argument(
            ..., help="event | user | query | dataset | model | collection | deployment | cycle"
        ),
        node_id: str = typer.Argument(..., help="its id (dataset contrastive:v3, model embedder:v2, faq__v4 ...)"),
    ) -> None:
        """What a thing came from and what it fed (transitively)."""
        from flywheel.cli import container_of, echo_json

        echo_json(container_of(ctx).lineage.trace(kind, node_id).to_json())
