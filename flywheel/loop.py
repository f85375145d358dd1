"""Wiring of the loop's objects for the composition root, and the job kinds.

:class:`flywheel.container.Container` delegates here (``state_store``, ``lineage``, ``deployer``, ``cycle_runner``,
``job_runner``, ``scheduler``, ``start_loop``) so the shared container file stays small.

Job kinds: ``cycle`` (a full cycle), ``reindex`` (re-read the source documents — ``deploy.reindex_source`` or the
job's ``source`` — plus approved corrections, embed incrementally with the ACTIVE embedder into a new version and
switch to it through the deployer), ``curate`` (curation only) and ``eval`` (current vs a candidate collection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, get_args

from core.errors import InvalidInputError, NotFoundError
from core.ports import ProgressCallback
from core.settings import DeploySettings, Settings
from core.types import ModelKind
from flywheel.cycle import CycleRunner, CycleServices
from flywheel.jobs import Handler, JobContext, JobRunner, ParamsCheck

if TYPE_CHECKING:
    from customization.registry import ModelRegistry
    from flywheel.deploy import Deployer
    from flywheel.schedule import Scheduler
    from retrieval.routing import DeploymentRouter
    from retrieval.service import QueryService


class LoopServices(CycleServices, Protocol):
    """What the loop's wiring and job kinds use (the composition root, :class:`flywheel.container.Container`, is
    one)."""

    @property
    def cycle_runner(self) -> CycleRunner: ...
    @property
    def job_runner(self) -> JobRunner: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def router(self) -> DeploymentRouter: ...

    def adopt_arm(self, arm: QueryService) -> None:
        """Make ``arm``'s models this process' current ones (after a deployment switch)."""


logger = logging.getLogger(__name__)


def deployed_embedder_version(registry: ModelRegistry) -> str | None:
    """The embedder version the active deployment serves (the registry's active pointer mirrors the record)."""
    active = registry.active(ModelKind.EMBEDDER)
    return active.version if active is not None else None


def make_deployer(c: LoopServices) -> Deployer:
    """The deployer of the container's corpus; applying a deployment also swaps the container's current arm."""
    from flywheel.arms import build_arm
    from flywheel.deploy import Deployer

    def arm_factory(models: dict[str, str | None], collection: str | None) -> Any:
        return build_arm(c, models, collection)

    deployer = Deployer(
        state=c.state_store, store=c.vector_store, registry=c.registry, corpus=c.settings.indexing.corpus,
        arm_factory=arm_factory, router=c.router, feedback=c.feedback_store, lineage=c.lineage,
        min_feedback=c.settings.deploy.canary_min_feedback, on_applied=c.adopt_arm,
    )  # fmt: skip
    return deployer


def make_job_runner(c: LoopServices) -> JobRunner:
    """Job runner with the four job kinds and the checks of their params."""
    handlers: dict[str, Handler] = {
        "cycle": c.cycle_runner.job_handler,
        "reindex": lambda ctx: reindex(c, ctx),
        "curate": lambda ctx: curate_job(c, ctx),
        "eval": lambda ctx: eval_job(c, ctx),
    }
    return JobRunner(c.state_store, handlers, checks=job_param_checks(c), max_workers=2)


def job_param_checks(c: LoopServices) -> dict[str, ParamsCheck]:
    """The submit-time check of each job kind's params (see :class:`flywheel.jobs.JobRunner`)."""
    return {
        "cycle": check_cycle_params,
        "reindex": lambda params: check_reindex_params(params, settings=c.settings),
        "curate": lambda params: _known_params("curate", params, ()),
        "eval": lambda params: check_eval_params(c, params),
    }


# ------------------------------------------------------------------------------------- job params (submit time)
DEPLOY_MODES: tuple[str, ...] = get_args(DeploySettings.model_fields["mode"].annotation)


def _known_params(kind: str, params: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(known))
    if unknown:
        valid = ", ".join(known) if known else "none"
        raise InvalidInputError(f"unknown {kind} job param(s) {', '.join(unknown)}; valid: {valid}", field="params")
    return params


def _text_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InvalidInputError(f"params.{name} must be a non-empty string", field=f"params.{name}")
    return value


def check_cycle_params(params: dict[str, Any]) -> dict[str, Any]:
    """``{mode?, embedder?}``: a deploy mode, and ``EmbedderTrainingConfig`` overrides checked like the train step
    checks them (unknown setting, mistyped value)."""
    from customization.embedder_training import EmbedderTrainingConfig

    _known_params("cycle", params, ("mode", "embedder"))
    mode = _text_param(params, "mode")
    if mode is not None and mode not in DEPLOY_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(DEPLOY_MODES)}, got {mode!r}", field="params.mode")
    embedder = params.get("embedder", {})
    if not isinstance(embedder, dict):
        raise InvalidInputError("params.embedder must be an object of training settings", field="params.embedder")
    EmbedderTrainingConfig.from_overrides(embedder)
    return params


def check_reindex_params(params: dict[str, Any], *, settings: Settings) -> dict[str, Any]:
    """``{source?, allow_shrink?}``: ``builtin:faq``, or an existing ``.jsonl`` file or folder under the source roots
    (not read here; stored resolved, so a symlink swapped later cannot redirect the job); ``allow_shrink``: a bool."""
    from flywheel.corpus import source_kind

    _known_params("reindex", params, ("source", "allow_shrink"))
    if not isinstance(params.get("allow_shrink", False), bool):
        raise InvalidInputError("params.allow_shrink must be true or false", field="params.allow_shrink")
    source = _text_param(params, "source")
    if source is None:
        return params
    resolved = confined_source(settings, source)
    source_kind(resolved)
    return {**params, "source": resolved}


def confined_source(settings: Settings, source: str) -> str:
    """``source`` checked against ``indexing.source_roots`` (:func:`indexing.confine.confine_source`), resolved."""
    from indexing.confine import confine_source

    allowed = [settings.deploy.reindex_source] if settings.deploy.reindex_source else []
    return confine_source(source, roots=settings.source_roots, always_allowed=allowed)


def check_eval_params(c: LoopServices, params: dict[str, Any]) -> dict[str, Any]:
    """``{candidate}``: a cycle with a candidate collection, or an existing collection."""
    _known_params("eval", params, ("candidate",))
    resolve_candidate(c, _text_param(params, "candidate") or "")
    return params


def make_scheduler(c: LoopServices) -> Scheduler:
    """Scheduler with the nightly reindex (``deploy.reindex_cron``) and the canary check (``deploy.canary_check_cron``,
    a no-op while no canary runs); an unset cron leaves its task out."""
    from flywheel.schedule import Scheduler

    deploy = c.settings.deploy
    tasks: dict[str, tuple[str, Callable[[], object]]] = {}
    if deploy.reindex_cron:
        tasks["reindex"] = (deploy.reindex_cron, lambda: c.job_runner.submit("reindex"))
    if deploy.canary_check_cron:
        tasks["canary"] = (deploy.canary_check_cron, c.deployer.scheduled_check)
    return Scheduler(tasks)


def start_loop(c: LoopServices, *, scheduler: bool = True) -> dict[str, Any]:
    """Service start-up: fail jobs a dead process left running, abandon their cycles, remove the staging dirs of
    training runs that died, reconcile the alias and active models with the last deployment record, re-attach a
    running canary, start the scheduler."""
    failed = c.job_runner.recover()
    abandoned = c.cycle_runner.abandon_stale()
    swept = c.registry.sweep_staging()
    repaired = c.deployer.reconcile()
    record = c.state_store.current_deployment(c.settings.indexing.corpus)
    if record is not None and record.canary:
        c.deployer.attach_canary(record.canary)
    if scheduler:
        c.scheduler.start()
    summary = {"failed_jobs": failed, "abandoned_cycles": abandoned, "repaired": repaired, "swept_staging": swept}
    logger.info("loop started failed=%d abandoned=%d repaired=%d swept=%d", len(failed), len(abandoned), len(repaired),
                len(swept))  # fmt: skip
    return summary


# ------------------------------------------------------------------------------------------------- job kinds
def reindex(c: LoopServices, ctx: JobContext | None = None, *, source: str | None = None) -> dict[str, Any]:
    """Nightly reindex: source documents + approved corrections, incrementally embedded with the active embedder
    into a new version, then switched to (alias + deployment record) by the deployer."""
    from flywheel.corpus import approved_corrections, live_documents, load_source

    corpus = c.settings.indexing.corpus
    spec = source or (ctx.params.get("source") if ctx else None) or c.settings.deploy.reindex_source
    if ctx:
        ctx.step("load", progress=0.05)
    c.deployer.reconcile()
    loaded: dict[str, Any] = {"skipped": 0, "skipped_files": []}
    if spec:
        documents, loaded = load_source(c.settings.indexing, confined_source(c.settings, spec))
        documents = documents + approved_corrections(c.feedback_store, corpus)
    else:
        documents = live_documents(c.vector_store, c.index_manager.live_collection(corpus))
    if not documents:
        raise InvalidInputError(f"the reindex source {spec or 'live collection'} holds no documents", field="source")
    if ctx:
        ctx.step("embed", progress=0.2)
    report, record = switch_to_new_version(
        c, documents, note=f"reindex from {spec or 'live collection'}",
        allow_shrink=bool(ctx.params.get("allow_shrink", False)) if ctx else False,
        on_built=(lambda: ctx.step("switch", progress=0.9)) if ctx else None,
        on_progress=ctx.reporter(0.2, 0.9) if ctx else None,
    )  # fmt: skip
    return {"collection": report.collection, "deployment_id": record.id, "embedded": report.embedded,
            "reused": report.reused, "documents": report.documents, "pruned": list(report.pruned),
            **loaded}  # fmt: skip


def switch_to_new_version(
    c: LoopServices,
    documents: Sequence[Any],
    *,
    note: str,
    show_progress: bool = False,
    on_built: Callable[[], None] | None = None,
    on_progress: ProgressCallback | None = None,
    allow_shrink: bool = False,
) -> tuple[Any, Any]:
    """Build a new version of the corpus from ``documents`` with the ACTIVE embedder (incrementally) and switch to it
    through the deployer (alias + deployment record, so ``reconcile`` keeps it and ``rollback`` can undo it), then
    prune old versions except those that may serve again. Returns (the build report, the deployment record).
    Unless ``allow_shrink``, a version that drops more than ``indexing.max_drop_share`` of the live documents is
    refused (``InvalidInputError``) and the alias stays."""
    import dataclasses

    corpus = c.settings.indexing.corpus
    report = c.index_manager.build_version(
        corpus, documents, embedder=c.embedder, show_progress=show_progress, on_progress=on_progress,
        allow_shrink=allow_shrink,
    )  # fmt: skip
    if on_built is not None:
        on_built()
    record = c.deployer.switch_collection(report.collection, note=note)
    pruned = c.index_manager.prune(corpus, protect=c.deployer.collections_in_use())
    return dataclasses.replace(report, swapped=True, pruned=tuple(pruned)), record


def curate_job(c: LoopServices, ctx: JobContext) -> dict[str, Any]:
    """Curation only: writes new dataset versions, returns their manifests' summary."""
    from flywheel import steps

    ctx.step("curate", progress=0.1)
    curated = steps.curate_datasets(
        feedback=c.feedback_store, repo=steps.datasets_repo(c.settings), scrubber=c.scrubber, embedder=c.embedder,
        passages=c.passage_index, lineage=c.lineage, settings=c.settings, cycle_id=None,
    )  # fmt: skip
    return {"datasets": curated.to_dict()}


def eval_job(c: LoopServices, ctx: JobContext) -> dict[str, Any]:
    """Evaluate the live deployment against a candidate (``params.candidate``: a cycle id or a collection)."""
    from flywheel import steps
    from flywheel.arms import build_arm

    candidate = resolve_candidate(c, str(ctx.params.get("candidate") or ""))
    ctx.step("evaluate", progress=0.1)
    live = c.deployer.current()
    comparison = steps.compare(
        lambda models, collection: build_arm(c, models, collection), candidate,
        steps.load_eval_cases(c.settings.eval, steps.datasets_repo(c.settings)), live_models=live.models,
        live_collection=live.live_collection, embedder=c.embedder, settings=c.settings.eval, judge=c.settings.judge,
    )  # fmt: skip
    ctx.step("gate", progress=0.8)
    verdict = steps.gate(c.settings, comparison)
    # no training sets: no dataset guardrails
    return {"summary": steps.summary(comparison), "gate": steps.verdict_json(verdict), "guardrails": {}}


def resolve_candidate(c: LoopServices, ref: str) -> Any:
    """A cycle id (its candidate) or a collection name (with the current models) as a :class:`Candidate`."""
    from flywheel.deploy import Candidate

    if not ref:
        raise InvalidInputError("a candidate (cycle id or collection name) is required", field="candidate")
    if c.vector_store.collection_exists(ref):
        return Candidate(ref, dict(c.deployer.current().models))
    try:
        cycle = c.state_store.get_cycle(ref)
    except NotFoundError:
        raise NotFoundError(f"no cycle or collection named {ref!r}", candidate=ref) from None
    if not cycle.candidate_collection:
        raise NotFoundError(f"cycle {ref} produced no candidate collection", cycle_id=ref)
    passed = (cycle.gate_verdict or {}).get("passed")
    return Candidate(cycle.candidate_collection, dict(cycle.candidate_models), cycle.id, gate_passed=passed)
