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

Every precondition known before training — enough feedback, eval cases (curated + the gold set, which must
parse), contrastive pairs, each optional kind's rows and settings (``generator.kind`` for an adapter) — is checked
in the curate step, before any model loads. Too little ends the cycle as ``skipped`` with "not enough data (...)" and
the setting to change, not as a failure. A skipped, failed or cancelled cycle leaves no candidate collection and no
model version behind (:meth:`CycleRunner._discard`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from core.errors import FlywheelError, NotEnoughDataError
from core.ports import PassageIndex
from core.types import DatasetKind, ModelKind
from flywheel import gating, steps
from flywheel.arms import ArmServices, build_arm, load_embedder
from flywheel.corpus import live_documents
from flywheel.cycle_state import CycleState
from flywheel.deploy import BASE, Candidate, Deployer
from flywheel.jobs import JobCancelled, JobContext, JobSkipped
from flywheel.state import CycleRecord, JobStatus, StateStore
from flywheel.steps import datasets_repo

if TYPE_CHECKING:
    from core.ports import ProgressCallback
    from feedback.store import SqlStore
    from flywheel.lineage import Lineage
    from flywheel.training import TrainingServices

logger = logging.getLogger(__name__)

STEPS = ("reconcile", "curate", "train", "build", "evaluate", "gate", "deploy", "report")


@dataclass(slots=True)
class CycleOptions:
    """Per-run choices. ``None`` fields fall back to settings."""

    mode: str | None = field(default=None, metadata={"help": "promote | canary | shadow (default deploy.mode)"})
    embedder_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "EmbedderTrainingConfig fields to override for this cycle"}
    )
    generator_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "LoraConfig fields to override for this cycle's generator adapter"}
    )
    min_pairs: int | None = field(default=None, metadata={"help": "fewest contrastive pairs (training.min_pairs)"})
    min_eval_cases: int | None = field(default=None, metadata={"help": "fewest eval cases (eval.min_slice_cases)"})
    show_progress: bool = field(default=False, metadata={"help": "progress bars while embedding / training"})


class CycleSkipped(JobSkipped):
    """The cycle stopped early on purpose (not enough data); carries the cycle id."""


class CycleServices(ArmServices, Protocol):
    """What a cycle uses besides the query arms (the composition root, :class:`flywheel.container.Container`, is
    one); each step is handed only the few of these it needs."""

    @property
    def state_store(self) -> StateStore: ...
    @property
    def deployer(self) -> Deployer: ...
    @property
    def feedback_store(self) -> SqlStore: ...
    @property
    def passage_index(self) -> PassageIndex: ...
    @property
    def lineage(self) -> Lineage: ...

    def training_services(self) -> TrainingServices:
        """What training reads besides its rows."""


class CycleRunner:
    """Runs cycles for the container's corpus; see the module docstring for the contract."""

    def __init__(self, container: CycleServices) -> None:
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
            self._discard(run)
            self._finish(cycle.id, "skipped", skip.reason)
            raise
        except JobCancelled:
            self._discard(run)
            self._finish(cycle.id, "cancelled", "cancelled by request")
            raise
        except FlywheelError as exc:
            self._discard(run)
            self._finish(cycle.id, "failed", f"{type(exc).__name__}: {exc.message}")
            raise
        except Exception as exc:
            self._discard(run)
            self._finish(cycle.id, "failed", f"internal error: {type(exc).__name__}")
            raise
        return self.c.state_store.get_cycle(cycle.id)

    def _discard(self, run: _Run) -> None:
        """A cycle that did not finish leaves nothing behind: its candidate collection (unless it serves) and the
        model versions it registered (never served: candidates)."""
        self._cleanup_candidate(run.id)
        for kind, version in run.state.trained.items():
            try:
                self.c.registry.discard(kind, version.version)
            except FlywheelError as exc:  # keep cleaning the rest; the version stays as a candidate
                logger.warning("candidate not discarded kind=%s version=%s error=%s", kind.value, version.version,
                               type(exc).__name__)  # fmt: skip

    def job_handler(self, ctx: JobContext) -> dict[str, Any]:
        """``cycle`` job kind: run with options from the job params; result is the cycle summary (decision,
        current vs candidate metrics with the gate's CIs, the verdict's reasons, the report path)."""
        opts = CycleOptions(mode=ctx.params.get("mode"), embedder_overrides=dict(ctx.params.get("embedder", {})))
        cycle = self.run(ctx, opts)
        verdict = cycle.gate_verdict or {}
        return {"cycle_id": cycle.id, "status": cycle.status, "decision": cycle.decision,
                "summary": _summary_of(cycle), "gate": {"passed": verdict.get("passed"),
                                                        "reasons": verdict.get("reasons", []),
                                                        "rows": verdict.get("rows", [])},
                "guardrails": {k: {"passed": g.get("passed"), "reason": g.get("reason")}
                               for k, g in (cycle.guardrails or {}).items()},
                "report": cycle.report_path}  # fmt: skip

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
    """One running cycle: its id, job context, options and typed :class:`CycleState`."""

    def __init__(self, runner: CycleRunner, cycle_id: str, ctx: JobContext | None, opts: CycleOptions) -> None:
        self.r, self.c, self.id, self.ctx, self.opts = runner, runner.c, cycle_id, ctx, opts
        self.steps: list[dict[str, Any]] = []
        self.state = CycleState()
        self.repo = datasets_repo(runner.c.settings)
        self.span = (0.0, 1.0)  # the running step's share of the job's progress

    def execute(self) -> None:
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("reconcile", self.reconcile), ("curate", self.curate), ("train", self.train), ("build", self.build),
            ("evaluate", self.evaluate), ("gate", self.gate), ("deploy", self.deploy), ("report", self.report),
        ]  # fmt: skip
        for n, (name, fn) in enumerate(plan):
            self.span = (n / len(plan), (n + 1) / len(plan))
            with self.step(name, progress=n / len(plan)) as detail:
                detail.update(fn())

    @contextmanager
    def step(self, name: str, *, progress: float) -> Iterator[dict[str, Any]]:
        if self.ctx is not None:
            self.ctx.step(name, progress=progress)
        started, detail = time.perf_counter(), dict[str, Any]()
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

    def skip(self, reason: str, **detail: Any) -> NoReturn:
        raise CycleSkipped(reason, {"cycle_id": self.id, **detail})

    # ---------------------------------------------------------------------------------------------- steps
    def reconcile(self) -> dict[str, Any]:
        fixed = self.c.deployer.reconcile()
        current = self.c.deployer.current()
        return {"repaired": fixed, "live_collection": current.live_collection, "models": current.models}

    def curate(self) -> dict[str, Any]:
        """Curate, then check every precondition of the later steps (eval cases, gold set, each kind's rows and
        settings) before any model loads: a cycle that cannot finish is skipped here, having built nothing."""
        c = self.c
        try:
            self.state.curated = steps.curate_datasets(
                feedback=c.feedback_store, repo=self.repo, scrubber=c.scrubber, embedder=c.embedder,
                passages=c.passage_index, lineage=c.lineage, settings=c.settings, cycle_id=self.id,
            )  # fmt: skip
        except NotEnoughDataError as exc:
            self.skip(f"skipped: not enough data ({exc.have} of {exc.need} feedback events)", have=exc.have)
        c.state_store.update_cycle(self.id, datasets=self.state.curated.to_dict())
        need = self.opts.min_eval_cases or c.settings.eval.min_slice_cases
        try:
            self.state.eval_cases = steps.require_eval_cases(c.settings.eval, self.repo, need=need)
            self.state.plan = steps.plan_training(c.settings, self.repo, self.state.curated,
                                                  overrides=self._overrides(), salt=self.id)  # fmt: skip
        except NotEnoughDataError as exc:
            self.skip(f"skipped: not enough data ({exc.message})", have=exc.have, need=exc.need)
        return {"datasets": self.state.curated.to_dict(), "eval_cases": len(self.state.eval_cases),
                "will_train": sorted(k.value for k in self.state.plan.ready),
                "not_trained": self.state.plan.left_out}  # fmt: skip

    def _overrides(self) -> dict[str, dict[str, Any]]:
        """Config overrides per model kind: the embedder's options, progress bars for every kind."""
        embedder = dict(self.opts.embedder_overrides)
        if self.opts.min_pairs is not None:
            embedder.setdefault("min_pairs", self.opts.min_pairs)
        shown = {"show_progress": self.opts.show_progress}
        return {ModelKind.EMBEDDER.value: shown | embedder, ModelKind.RERANKER.value: shown,
                ModelKind.GENERATOR_ADAPTER.value: shown | dict(self.opts.generator_overrides)}  # fmt: skip

    def train(self) -> dict[str, Any]:
        trained = steps.train(self.state.plan, services=self.c.training_services(), lineage=self.c.lineage,
                              cycle_id=self.id, on_progress=self.reporter())  # fmt: skip
        self.state.trained = trained
        models = {k.value: v.version for k, v in trained.items()}
        current = self.c.deployer.current().models
        merged = {k: models.get(k, current.get(k)) for k in {*current, *models}}
        self.state.candidate = Candidate(collection="", models=merged, cycle_id=self.id)
        self.c.state_store.update_cycle(self.id, candidate_models=merged)
        return {"models": merged, "trained": sorted(models), "not_trained": self.state.plan.left_out}

    def _candidate(self) -> Candidate:
        if self.state.candidate is None:
            raise RuntimeError("the cycle has no candidate before its train step")
        return self.state.candidate

    def build(self) -> dict[str, Any]:
        c, candidate = self.c, self._candidate()
        info = steps.build_candidate(
            live_documents(c.vector_store, c.index_manager.live_collection(self.r.corpus)),
            index_manager=c.index_manager, embedder=load_embedder(c, candidate.models.get(ModelKind.EMBEDDER.value)),
            lineage=c.lineage, corpus=self.r.corpus, models=candidate.models, cycle_id=self.id,
            show_progress=self.opts.show_progress,
            on_created=lambda name: c.state_store.update_cycle(self.id, candidate_collection=name),
            on_progress=self.reporter(),
        )  # fmt: skip
        candidate.collection = info["collection"]
        contrastive = self.state.curated.datasets.get(DatasetKind.CONTRASTIVE.value)
        info |= steps.tune_fusion(
            build_arm(c, candidate.models, candidate.collection), collection=candidate.collection,
            store=c.vector_store, index_manager=c.index_manager, settings=c.settings.retrieval, repo=self.repo,
            contrastive_version=contrastive.version if contrastive else None,
        )  # fmt: skip
        return info

    def evaluate(self) -> dict[str, Any]:
        c, current = self.c, self.c.deployer.current()
        comparison = steps.compare(
            lambda models, collection: build_arm(c, models, collection), self._candidate(), self.state.eval_cases,
            live_models=current.models, live_collection=current.live_collection, embedder=c.embedder,
            settings=c.settings.eval, judge=c.settings.judge,
        )  # fmt: skip
        self.state.comparison = comparison
        self.c.state_store.update_cycle(self.id, eval_results=comparison.to_dict())
        return {"cases": len(self.state.eval_cases), "summary": steps.summary(comparison),
                "answered": len(comparison.candidate.answers)}  # fmt: skip

    def gate(self) -> dict[str, Any]:
        from evals.gate import verdict_to_dict

        candidate, comparison = self._candidate(), self.state.comparison
        assert comparison is not None
        arm = build_arm(self.c, candidate.models, candidate.collection)
        self.state.guardrails = gating.cycle_guardrails(
            self.state, repo=self.repo, scrubber=self.c.scrubber, ledger=self.c.feedback_store,
            settings=self.c.settings, candidate_generator=arm.generator,
        )  # fmt: skip
        self.state.verdict = gating.verdict(self.c.settings, comparison, self.state.guardrails)
        verdict = verdict_to_dict(self.state.verdict)
        candidate.gate_passed = self.state.verdict.passed
        guards = {g.name: g.to_dict() for g in self.state.guardrails}
        self.c.state_store.update_cycle(self.id, gate_verdict=verdict, guardrails=guards)
        return {"passed": verdict["passed"], "reasons": verdict["reasons"][:10]}

    def deploy(self) -> dict[str, Any]:
        candidate = self._candidate()
        mode = self.opts.mode or self.c.settings.deploy.mode
        decision: dict[str, Any]
        if not candidate.gate_passed:
            decision = {"action": "rejected", "mode": mode, "reason": "gate failed"}
        elif mode == "promote":
            record = self.c.deployer.promote(candidate)
            decision = {"action": "promoted", "mode": mode, "deployment_id": record.id}
        else:
            share = self.c.settings.deploy.canary_share
            record = self.c.deployer.start_canary(candidate, mode=mode, share=share)
            decision = {"action": f"{mode}_started", "mode": mode, "share": share, "deployment_id": record.id}
        decision["collection"] = candidate.collection
        status = {"promoted": "promoted", "rejected": "rejected"}.get(decision["action"], "canary")
        self.c.state_store.update_cycle(self.id, decision=decision, status=status)
        if status == "rejected":
            decision["pruned_rejected_cycles"] = self.r.prune_rejected()
        return decision

    def report(self) -> dict[str, Any]:
        c = self.c
        cycle = c.state_store.get_cycle(self.id)
        path = gating.write_report(
            self.state, cycle, settings=c.settings, states=c.state_store, feedback=c.feedback_store, repo=self.repo,
            since=gating.previous_cycle_time(c.state_store, cycle),
        )  # fmt: skip
        c.state_store.update_cycle(self.id, report_path=str(path))
        return {"report": str(path)}


def _summary_of(cycle: CycleRecord) -> dict[str, dict[str, float | None]]:
    """``{metric: {current, candidate}}`` from the cycle's stored evaluation (empty when it did not evaluate)."""
    results = cycle.eval_results or {}
    if not results:
        return {}
    from evals.runner import Comparison

    return steps.summary(Comparison.from_dict(results))


def model_versions(models: dict[str, str | None]) -> dict[str, str]:
    """Models dict with ``None`` shown as ``base`` (for display and eval versions)."""
    return {k: v or BASE for k, v in models.items()}
