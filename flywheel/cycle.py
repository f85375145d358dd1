"""One turn of the flywheel: curate -> train -> build candidate collection -> evaluate + guardrails -> gate -> deploy.

Every step is recorded on the cycle row (name, status, seconds, detail) as it finishes, and the job (when run as one)
shows the current step and progress. Crash safety:

- Nothing visible changes before the deploy step: training registers a *candidate* model version (not active) and
  the candidate collection is built with ``IndexManager.build_version`` (no alias swap).
- The deploy step goes through :class:`flywheel.deploy.Deployer`, whose record-last ordering plus ``reconcile()`` (run
  at the start of every cycle) returns the alias and active models to the last recorded deployment after a crash.
- A cycle left ``running`` by a dead process is *abandoned* at the start of the next cycle: its candidate
  collection is dropped (unless something serves from it) and the row is marked ``abandoned`` with the reason. The
  next cycle starts fresh from the feedback (curation is cheap and deterministic).
- A candidate the gate rejects keeps its collection, so it can still be evaluated (``flywheel eval --candidate``)
  or promoted by hand (``flywheel promote CYCLE --force --reason ...``); only the newest ``indexing.keep_versions``
  rejected candidates are kept, older ones are dropped when a newer one is rejected.

Too little feedback ends the cycle as ``skipped`` with "not enough data (n of m)", not as a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import FlywheelError, NotEnoughDataError, NotFoundError
from core.ports import ProgressCallback
from core.types import DatasetKind, EvalCase
from flywheel.deploy import BASE, Candidate
from flywheel.jobs import JobCancelled, JobContext, JobSkipped
from flywheel.state import CycleRecord, JobStatus

if TYPE_CHECKING:
    from flywheel.container import Container

logger = logging.getLogger(__name__)

STEPS = ("reconcile", "curate", "train", "build", "evaluate", "gate", "deploy", "report")


@dataclass(slots=True)
class CycleOptions:
    """Per-run choices. ``None`` fields fall back to settings."""

    mode: str | None = field(default=None, metadata={"help": "promote | canary | shadow (default deploy.mode)"})
    embedder_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "EmbedderTrainingConfig fields to override for this cycle"}
    )
    min_pairs: int | None = field(default=None, metadata={"help": "fewest contrastive pairs (training.min_pairs)"})
    min_eval_cases: int | None = field(default=None, metadata={"help": "fewest eval cases (eval.min_slice_cases)"})
    show_progress: bool = field(default=False, metadata={"help": "progress bars while embedding / training"})


class CycleSkipped(JobSkipped):
    """The cycle stopped early on purpose (not enough data); carries the cycle id."""


class CycleRunner:
    """Runs cycles for the container's corpus; see the module docstring for the contract."""

    def __init__(self, container: Container) -> None:
        self.c = container
        self.corpus = container.settings.indexing.corpus

    # ------------------------------------------------------------------------------------------------ entry
    def run(self, ctx: JobContext | None = None, options: CycleOptions | None = None) -> CycleRecord:
        """Run one cycle to its end; returns the final cycle row. Raises ``CycleSkipped`` (status ``skipped``),
        ``JobCancelled`` (status ``cancelled``) or the step's error (status ``failed``)."""
        opts = options or CycleOptions()
        self.abandon_stale()
        cycle = self.c.state_store.create_cycle(self.corpus, job_id=ctx.job_id if ctx else None)
        run = _Run(self, cycle.id, ctx, opts)
        try:
            run.execute()
        except CycleSkipped as skip:
            self._finish(cycle.id, "skipped", skip.reason)
            raise
        except JobCancelled:
            self._cleanup_candidate(cycle.id)
            self._finish(cycle.id, "cancelled", "cancelled by request")
            raise
        except FlywheelError as exc:
            self._cleanup_candidate(cycle.id)
            self._finish(cycle.id, "failed", f"{type(exc).__name__}: {exc.message}")
            raise
        except Exception as exc:
            self._cleanup_candidate(cycle.id)
            self._finish(cycle.id, "failed", f"internal error: {type(exc).__name__}")
            raise
        return self.c.state_store.get_cycle(cycle.id)

    def job_handler(self, ctx: JobContext) -> dict[str, Any]:
        """``cycle`` job kind: run with options from the job params; result is the cycle summary."""
        opts = CycleOptions(mode=ctx.params.get("mode"), embedder_overrides=dict(ctx.params.get("embedder", {})))
        cycle = self.run(ctx, opts)
        return {"cycle_id": cycle.id, "status": cycle.status, "decision": cycle.decision}

    # --------------------------------------------------------------------------------------- crash recovery
    def abandon_stale(self) -> list[str]:
        """Abandon cycles left ``running`` whose job is no longer running (or that had no job and no live
        process: any running cycle at this point, since one cycle runs at a time). Returns their ids."""
        abandoned = []
        for cycle in self.c.state_store.list_cycles(status="running", limit=100):
            if cycle.job_id and self._job_alive(cycle.job_id):
                continue
            self._cleanup_candidate(cycle.id)
            self._finish(cycle.id, "abandoned", "abandoned: the process running it stopped before it finished")
            abandoned.append(cycle.id)
            logger.warning("cycle abandoned cycle_id=%s", cycle.id)
        return abandoned

    def _job_alive(self, job_id: str) -> bool:
        try:
            return self.c.state_store.get_job(job_id).status is JobStatus.RUNNING
        except FlywheelError:
            return False

    def _cleanup_candidate(self, cycle_id: str) -> bool:
        """Drop the cycle's candidate collection unless it may serve (``Deployer.collections_in_use``); whether it
        was dropped."""
        cycle = self.c.state_store.get_cycle(cycle_id)
        name = cycle.candidate_collection
        if not name or not self.c.vector_store.collection_exists(name):
            return False
        if name in self.c.deployer.collections_in_use():
            return False
        self.c.vector_store.drop_collection(name)
        logger.info("candidate collection dropped cycle_id=%s collection=%s", cycle_id, name)
        return True

    def prune_rejected(self) -> list[str]:
        """Drop the candidate collections of rejected cycles older than the newest ``indexing.keep_versions``
        (those stay for ``eval`` and forced promotion); returns the ids of the cycles whose collection was dropped."""
        keep = self.c.settings.indexing.keep_versions
        rejected = [
            cy
            for cy in self.c.state_store.list_cycles(status="rejected", limit=10_000)
            if cy.corpus == self.corpus and cy.candidate_collection
        ]
        return [cy.id for cy in rejected[keep:] if self._cleanup_candidate(cy.id)]

    def _finish(self, cycle_id: str, status: str, reason: str | None) -> None:
        self.c.state_store.update_cycle(cycle_id, status=status, reason=reason)
        logger.info("cycle end cycle_id=%s status=%s", cycle_id, status)


class _Run:
    """State of one running cycle (kept off the runner so the runner stays reusable)."""

    def __init__(self, runner: CycleRunner, cycle_id: str, ctx: JobContext | None, opts: CycleOptions) -> None:
        self.r, self.c, self.id, self.ctx, self.opts = runner, runner.c, cycle_id, ctx, opts
        self.steps: list[dict[str, Any]] = []
        self.datasets: dict[str, Any] = {}
        self.candidate: Candidate | None = None
        self.eval_cases: list[EvalCase] = []
        self.comparison: Any = None
        self.verdict: Any = None
        self.guardrails: list[Any] = []
        self.span = (0.0, 1.0)  # the running step's share of the job's progress

    def execute(self) -> None:
        plan: list[tuple[str, Callable[[], Any]]] = [
            ("reconcile", self.reconcile), ("curate", self.curate), ("train", self.train), ("build", self.build),
            ("evaluate", self.evaluate), ("gate", self.gate), ("deploy", self.deploy), ("report", self.report),
        ]  # fmt: skip
        for n, (name, fn) in enumerate(plan):
            self.span = (n / len(plan), (n + 1) / len(plan))
            with self.step(name, progress=n / len(plan)) as detail:
                detail.update(fn() or {})

    @contextmanager
    def step(self, name: str, *, progress: float) -> Iterator[dict[str, Any]]:
        if self.ctx is not None:
            self.ctx.step(name, progress=progress)
        started, detail = time.perf_counter(), {}
        entry: dict[str, Any] = {"name": name, "status": "running"}
        self.steps.append(entry)
        try:
            yield detail
        except CycleSkipped:
            entry |= {"status": "skipped", "seconds": round(time.perf_counter() - started, 3)}
            raise
        except BaseException:
            entry |= {"status": "failed", "seconds": round(time.perf_counter() - started, 3)}
            raise
        else:
            entry |= {"status": "succeeded", "seconds": round(time.perf_counter() - started, 3), "detail": detail}
        finally:
            self.c.state_store.update_cycle(self.id, steps=list(self.steps))
            logger.info("cycle step cycle_id=%s step=%s status=%s", self.id, name, entry["status"])

    def reporter(self) -> ProgressCallback | None:
        """Progress inside the running step (training steps, embedded chunks): job progress, heartbeat, cancel."""
        return self.ctx.reporter(*self.span) if self.ctx is not None else None

    def skip(self, reason: str, **detail: Any) -> None:
        raise CycleSkipped(reason, {"cycle_id": self.id, **detail})

    # ---------------------------------------------------------------------------------------------- steps
    def reconcile(self) -> dict[str, Any]:
        fixed = self.c.deployer.reconcile()
        current = self.c.deployer.current()
        return {"repaired": fixed, "live_collection": current.live_collection, "models": current.models}

    def curate(self) -> dict[str, Any]:
        from flywheel import steps

        try:
            self.datasets = steps.curate(self.c, cycle_id=self.id)
        except NotEnoughDataError as exc:
            self.skip(f"skipped: not enough data ({exc.have} of {exc.need} feedback events)", have=exc.have)
        self.c.state_store.update_cycle(self.id, datasets=self.datasets)
        need = self.opts.min_pairs or self.c.settings.training.min_pairs
        have = int(self.datasets.get(DatasetKind.CONTRASTIVE.value, {}).get("rows", 0))
        if have < need:
            self.skip(f"skipped: not enough data ({have} of {need} contrastive pairs)", have=have, need=need)
        return {"datasets": self.datasets}

    def train(self) -> dict[str, Any]:
        from flywheel import steps

        try:
            overrides = dict(self.opts.embedder_overrides)
            if self.opts.min_pairs is not None:
                overrides.setdefault("min_pairs", self.opts.min_pairs)
            trained = steps.train(self.c, datasets=self.datasets, overrides=overrides,
                                  show_progress=self.opts.show_progress, cycle_id=self.id,
                                  on_progress=self.reporter())  # fmt: skip
        except NotEnoughDataError as exc:
            self.skip(f"skipped: not enough data ({exc.have} of {exc.need}): {exc.message}", have=exc.have)
        models = trained["models"]
        current = self.c.deployer.current().models
        merged = {k: models.get(k, current.get(k)) for k in {*current, *models}}
        self.candidate = Candidate(collection="", models=merged, cycle_id=self.id)
        self.c.state_store.update_cycle(self.id, candidate_models=merged)
        return {"models": merged, "trained": sorted(models), "not_trained": trained["skipped"]}

    def build(self) -> dict[str, Any]:
        from flywheel import steps

        assert self.candidate is not None
        info = steps.build_candidate(
            self.c, self.candidate.models, cycle_id=self.id, show_progress=self.opts.show_progress,
            on_created=lambda name: self.c.state_store.update_cycle(self.id, candidate_collection=name),
            on_progress=self.reporter(),
        )  # fmt: skip
        self.candidate.collection = info["collection"]
        return info

    def evaluate(self) -> dict[str, Any]:
        from flywheel import steps

        assert self.candidate is not None
        try:
            self.eval_cases = steps.eval_cases(self.c)
        except NotFoundError:
            self.eval_cases = []
        need = self.opts.min_eval_cases or self.c.settings.eval.min_slice_cases
        if len(self.eval_cases) < need:
            self.skip(
                f"skipped: not enough data ({len(self.eval_cases)} of {need} eval cases)", have=len(self.eval_cases)
            )
        self.comparison = steps.compare(self.c, self.candidate, self.eval_cases)
        results = self.comparison.to_dict()
        self.c.state_store.update_cycle(self.id, eval_results=results)
        return {"cases": len(self.eval_cases), "summary": steps.summary(self.comparison)}

    def gate(self) -> dict[str, Any]:
        from flywheel import steps

        assert self.candidate is not None
        self.verdict, self.guardrails = steps.gate(self.c, self.comparison, datasets=self.datasets)
        verdict = steps.verdict_json(self.verdict)
        self.candidate.gate_passed = bool(verdict["passed"])
        guards = {g.name: g.to_dict() for g in self.guardrails}
        self.c.state_store.update_cycle(self.id, gate_verdict=verdict, guardrails=guards)
        return {"passed": verdict["passed"], "reasons": verdict["reasons"][:10]}

    def deploy(self) -> dict[str, Any]:
        assert self.candidate is not None
        mode = self.opts.mode or self.c.settings.deploy.mode
        if not self.candidate.gate_passed:
            decision = {"action": "rejected", "mode": mode, "reason": "gate failed"}
        elif mode == "promote":
            record = self.c.deployer.promote(self.candidate)
            decision = {"action": "promoted", "mode": mode, "deployment_id": record.id}
        else:
            share = self.c.settings.deploy.canary_share
            record = self.c.deployer.start_canary(self.candidate, mode=mode, share=share)
            decision = {"action": f"{mode}_started", "mode": mode, "share": share, "deployment_id": record.id}
        decision["collection"] = self.candidate.collection
        status = {"promoted": "promoted", "rejected": "rejected"}.get(decision["action"], "canary")
        self.c.state_store.update_cycle(self.id, decision=decision, status=status)
        if status == "rejected":
            decision["pruned_rejected_cycles"] = self.r.prune_rejected()
        return decision

    def report(self) -> dict[str, Any]:
        from flywheel import steps

        cycle = self.c.state_store.get_cycle(self.id)
        path = steps.report(self.c, cycle, self.comparison, self.verdict, guardrails=self.guardrails)
        self.c.state_store.update_cycle(self.id, report_path=str(path))
        return {"report": str(path)}


def model_versions(models: dict[str, str | None]) -> dict[str, str]:
    """Models dict with ``None`` shown as ``base`` (for display and eval versions)."""
    return {k: v or BASE for k, v in models.items()}


def cases_or_skip(cases: Sequence[EvalCase], need: int) -> list[EvalCase]:
    """The cases, or ``NotEnoughDataError`` when fewer than ``need``."""
    if len(cases) < need:
        raise NotEnoughDataError(f"not enough eval cases ({len(cases)} of {need})", have=len(cases), need=need)
    return list(cases)
