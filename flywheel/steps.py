"""The cycle's steps as functions: each calls one stage package through its public API and takes the few services
it uses.

Kept apart from :mod:`flywheel.cycle` (which owns ordering, recording and crash safety) so each stage's wiring is
small and readable: curation (feedback), training (customization), candidate build (indexing), evaluation and
report (evals); the gate and the guardrails are in :mod:`flywheel.gating`. Lineage edges are recorded as artefacts are
produced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.datasets import DatasetRepository
from core.errors import InvalidInputError, NotEnoughDataError, NotFoundError
from core.ports import Embedder, Generator, PassageIndex, PiiScrubber, ProgressCallback, VectorStore
from core.settings import EvalSettings, JudgeSettings, RetrievalSettings, Settings
from core.types import DatasetKind, DatasetManifest, Document, EvalCase, GateVerdict, ModelKind
from flywheel.cycle_state import Curated, DatasetInfo, TrainingPlan
from flywheel.deploy import BASE, Candidate
from flywheel.lineage import Lineage, dataset_node, model_node
from flywheel.training import KINDS, REQUIRED, TrainingServices, not_enough

if TYPE_CHECKING:
    from core.types import ModelVersion
    from evals.runner import Comparison
    from feedback.store import SqlStore
    from indexing.manager import IndexManager
    from retrieval.service import QueryService

#: Builds the query arm of some model versions over a collection (``None``: the corpus alias).
ArmFactory = Callable[[Mapping[str, str | None], str | None], "QueryService"]

logger = logging.getLogger(__name__)

TRAINING_KINDS = (DatasetKind.CONTRASTIVE, DatasetKind.RELEVANCE, DatasetKind.SFT)
HEADLINE = ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10", "semantic_similarity", "rouge_l")


def datasets_repo(settings: Settings) -> DatasetRepository:
    """The dataset repository under ``settings.datasets_dir``."""
    return DatasetRepository(settings.datasets_dir)


# -------------------------------------------------------------------------------------------------- eval cases
def load_eval_cases(settings: EvalSettings, repo: DatasetRepository) -> list[EvalCase]:
    """Held-out eval cases: the gold set (JSONL of EvalCase fields) when configured, plus the newest curated ``eval``
    dataset (cases held out from training by curation), de-duplicated by id. Raises ``NotFoundError`` when neither
    exists, ``InvalidInputError`` for a bad gold set."""
    cases: list[EvalCase] = []
    if settings.gold_set is not None:
        cases.extend(load_gold_set(Path(settings.gold_set)))
    if repo.latest(DatasetKind.EVAL) is not None:
        seen = {case.id for case in cases}
        cases.extend(case for case in repo.read(DatasetKind.EVAL) if case.id not in seen)
    if not cases:
        raise NotFoundError("no eval dataset has been curated yet and no eval.gold_set is configured")
    return cases


def load_gold_set(path: Path) -> list[EvalCase]:
    """Read a JSONL gold set of ``EvalCase`` fields. Raises ``InvalidInputError`` for a missing or bad file."""
    if not path.is_file():
        raise InvalidInputError(f"eval.gold_set does not exist: {path}", field="eval.gold_set")
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                cases.append(EvalCase(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise InvalidInputError(f"{path}: line {n} is not an eval case: {exc}", field="eval.gold_set") from exc
    return cases


def require_eval_cases(settings: EvalSettings, repo: DatasetRepository, *, need: int) -> list[EvalCase]:
    """The eval cases, or ``NotEnoughDataError`` naming the settings that change the bar (checked before training)."""
    try:
        cases = load_eval_cases(settings, repo)
    except NotFoundError:
        cases = []
    if len(cases) < need:
        raise NotEnoughDataError(
            f"{len(cases)} of {need} eval cases: collect more feedback (curation holds out eval.holdout_share of it), "
            "add a gold set (eval.gold_set) or lower eval.min_slice_cases",
            have=len(cases), need=need,
        )  # fmt: skip
    guarded = [m for m in settings.guarded_generation_metrics if m not in settings.allow_unchecked]
    answered = min(sum(1 for c in cases if c.reference_answer), settings.max_generation_cases)
    if guarded and answered < need:
        raise NotEnoughDataError(
            f"{answered} of {need} eval cases with a reference answer, needed to check {', '.join(guarded)}: add a "
            "gold set with answers (eval.gold_set), collect more corrections, or leave them unchecked "
            "(eval.allow_unchecked) or unguarded (eval.guarded_generation_metrics)",
            have=answered, need=need,
        )  # fmt: skip
    return cases


# -------------------------------------------------------------------------------------------------- evaluation
def compare(
    arms: ArmFactory, candidate: Candidate, cases: list[EvalCase], *, live_models: Mapping[str, str | None],
    live_collection: str | None, embedder: Embedder, settings: EvalSettings, judge: JudgeSettings,
) -> Comparison:  # fmt: skip
    """Evaluate the live deployment (``live_models`` over ``live_collection``) and the candidate, each on its own
    collection and with its own generator (the arm's adapter version for ``hf``), on the same cases; answers bounded
    by ``eval.max_generation_cases`` and ``eval.generation_budget_s``."""
    from evals.runner import Configuration, Evaluator

    cur_arm, cand_arm = arms(live_models, live_collection), arms(candidate.models, candidate.collection)
    evaluator = Evaluator(
        embedder=embedder, judge=judge, top_k=10, max_generation_cases=settings.max_generation_cases,
        generation_budget_s=settings.generation_budget_s,
    )  # fmt: skip
    return evaluator.compare(
        Configuration("current", cur_arm, cur_arm.generator,
                      _versions(live_models, live_collection, cur_arm.generator)),
        Configuration("candidate", cand_arm, cand_arm.generator,
                      _versions(candidate.models, candidate.collection, cand_arm.generator)),
        cases,
    )  # fmt: skip


def _versions(models: Mapping[str, str | None], collection: str | None, generator: Generator) -> dict[str, str]:
    return {**{k: v or BASE for k, v in models.items()}, "collection": collection or "-",
            "generator": str(getattr(generator, "version", "-"))}  # fmt: skip


def summary(comparison: Comparison) -> dict[str, dict[str, float | None]]:
    """``{metric: {current, candidate}}`` for the headline IR and answer metrics."""
    return {n: {"current": comparison.current.value(n), "candidate": comparison.candidate.value(n)} for n in HEADLINE}


# ---------------------------------------------------------------------------------------------------- curation
def curate_datasets(
    *, feedback: SqlStore, repo: DatasetRepository, scrubber: PiiScrubber, embedder: Embedder,
    passages: PassageIndex, lineage: Lineage, settings: Settings, cycle_id: str | None,
) -> Curated:  # fmt: skip
    """Curate the corpus' feedback into new dataset versions (``Curator``); lineage events/users -> datasets.
    Raises ``NotEnoughDataError``."""
    from feedback.curation import Curator

    curator = Curator(feedback, repo, scrubber=scrubber, embedder=embedder, passages=passages)
    report = curator.curate(settings.indexing.corpus, holdout_share=settings.eval.holdout_share,
                            seed=settings.training.seed)  # fmt: skip
    manifests = {kind: repo.manifest(DatasetKind(kind), version) for kind, version in report.written.items()}
    for kind, manifest in manifests.items():
        sources = [("event", e) for e in manifest.event_ids] + [("user", u) for u in manifest.user_ids]
        if sources:
            lineage.link_many(sources, "dataset", dataset_node(kind, manifest.version), relation="curated")
        if cycle_id:
            lineage.link("dataset", dataset_node(kind, manifest.version), "cycle", cycle_id, relation="used")
    infos = {k: DatasetInfo(m.version, m.rows, len(m.user_ids)) for k, m in manifests.items()}
    return Curated(infos, report.as_dict())


# ---------------------------------------------------------------------------------------------------- training
def plan_training(
    settings: Settings, repo: DatasetRepository, curated: Curated, *, overrides: Mapping[str, dict[str, Any]],
    salt: str,
) -> TrainingPlan:  # fmt: skip
    """Check every kind's preconditions before any model loads: which kinds train (rows checked, config built,
    canaries planted in a generator adapter's rows, seeded by ``salt``) and which are left out, with the reason
    naming the setting. Raises ``NotEnoughDataError`` when a required kind (the embedder) cannot train."""
    plan = TrainingPlan()
    for kind in KINDS.values():
        why = kind.wanted(settings)
        info = curated.datasets.get(kind.dataset.value)
        if why is None and info is None:
            why = f"no {kind.dataset.value} dataset was curated"
        if why is not None:
            if kind.model in REQUIRED:
                raise NotEnoughDataError(f"{kind.model.value}: {why}", have=0, need=1)
            plan.left_out[kind.model.value] = why
            continue
        assert info is not None
        manifest = repo.manifest(kind.dataset, info.version)
        try:
            prepared = kind.prepare(settings, repo.read(kind.dataset, info.version), manifest,
                                    overrides=dict(overrides.get(kind.model.value, {})), salt=salt)  # fmt: skip
        except NotEnoughDataError as exc:
            if kind.model in REQUIRED:
                raise
            plan.left_out[kind.model.value] = not_enough(kind, exc)
            continue
        plan.ready[kind.model] = prepared
    return plan


def train(
    plan: TrainingPlan, *, services: TrainingServices, lineage: Lineage, cycle_id: str,
    on_progress: ProgressCallback | None = None,
) -> dict[ModelKind, ModelVersion]:  # fmt: skip
    """Train every kind the plan holds (one equal share of ``on_progress`` each) and register candidates; lineage
    datasets (and the parent) -> model, cycle -> model. Returns the registered versions by kind."""
    from customization.progress import part_of

    trained: dict[ModelKind, ModelVersion] = {}
    for n, (model_kind, prepared) in enumerate(plan.ready.items()):
        version = prepared.kind.train(services, prepared, extra_metrics={"cycle_id": cycle_id},
                                      on_progress=part_of(on_progress, n, len(plan.ready)))  # fmt: skip
        trained[model_kind] = version
        link_model(lineage, model_kind, version.version, parent=version.parent, datasets=[_node(prepared.manifest)])
        lineage.link("cycle", cycle_id, "model", model_node(model_kind.value, version.version), relation="ran")
        logger.info("%s candidate registered version=%s parent=%s", model_kind.value, version.version, version.parent)
    return trained


def _node(manifest: DatasetManifest) -> str:
    return dataset_node(manifest.kind.value, manifest.version)


def link_model(lineage: Lineage, kind: ModelKind, version: str, *, parent: str | None, datasets: list[str]) -> None:
    """Lineage: datasets (and the parent model) -> a trained model version."""
    sources = [("dataset", d) for d in datasets]
    if parent and parent != BASE:
        sources.append(("model", model_node(kind.value, parent)))
    lineage.link_many(sources, "model", model_node(kind.value, version), relation="trained")


def build_candidate(
    documents: list[Document], *, index_manager: IndexManager, embedder: Embedder, lineage: Lineage, corpus: str,
    models: Mapping[str, str | None], cycle_id: str, show_progress: bool,
    on_created: Callable[[str], None] | None = None, on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Embed the live corpus' ``documents`` (documents + correction passages) with the candidate ``embedder`` into a
    new collection version of ``corpus``; the alias does not move. ``on_progress`` counts embedded chunks."""
    live = index_manager.live_collection(corpus)
    report = index_manager.build_version(
        corpus, documents, embedder=embedder, show_progress=show_progress, on_progress=on_progress
    )
    if on_created is not None:
        on_created(report.collection)
    sources = [("collection", live)]
    if models.get(ModelKind.EMBEDDER.value):
        sources.append(("model", model_node(ModelKind.EMBEDDER.value, str(models[ModelKind.EMBEDDER.value]))))
    lineage.link_many(sources, "collection", report.collection, relation="built")
    lineage.link("cycle", cycle_id, "collection", report.collection, relation="ran")
    return {"collection": report.collection, "chunks": report.chunks, "embedded": report.embedded,
            "seconds": report.seconds}  # fmt: skip


#: Training questions a cycle's fusion-weight tuning searches at most (5 weights each: searches only, no answers).
TUNING_CASES = 200


def tune_fusion(
    arm: QueryService, *, collection: str, store: VectorStore, index_manager: IndexManager,
    settings: RetrievalSettings, repo: DatasetRepository, contrastive_version: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Tune the candidate ``collection``'s keyword weight (hybrid retrieval), searched through the candidate's
    ``arm``, on the cycle's TRAINING pairs and record it on that version (:func:`retrieval.fusion.tune_fusion_weight`),
    so the gate judges the weight with the candidate and a promotion serves it. Nothing happens in dense mode,
    without a keyword index or without curated pairs."""
    from retrieval.fusion import TuningCase, tune_fusion_weight

    if contrastive_version is None or not settings.tune_fusion_weight:
        return {"fusion_weight": None, "tuning_cases": 0}
    pairs = [p for p in repo.read(DatasetKind.CONTRASTIVE, contrastive_version) if p.positive_chunk_id]
    relevant: dict[str, set[str]] = {}
    for pair in pairs:
        relevant.setdefault(pair.query, set()).add(str(pair.positive_chunk_id))
    questions = sorted(relevant)[:TUNING_CASES]
    chunk_ids = sorted({cid for q in questions for cid in relevant[q]})
    doc_of = {p.id: str(p.payload.get("doc_id", "")) for p in store.retrieve(collection, chunk_ids)}
    cases = [TuningCase(q, frozenset(doc_of[cid] for cid in relevant[q] if cid in doc_of)) for q in questions]
    cases = [case for case in cases if case.relevant_doc_ids]
    tuning = tune_fusion_weight(arm, cases)
    if tuning.weight is not None:
        index_manager.set_fusion_weight(collection, tuning.weight)
    return {"fusion_weight": tuning.weight, "tuning_cases": len(cases),
            "fusion_mrr": {str(w): m for w, m in tuning.mrr.items()}}  # fmt: skip


# ------------------------------------------------------------------------------------------- gate (for eval)
def gate(settings: Settings, comparison: Comparison) -> GateVerdict:
    """The gate's verdict on a stored candidate (``flywheel eval``): no training sets, so no dataset guardrails."""
    from flywheel.gating import verdict

    return verdict(settings, comparison, [])


def verdict_json(result: GateVerdict) -> dict[str, Any]:
    """JSON form of a gate verdict."""
    from evals.gate import verdict_to_dict

    return verdict_to_dict(result)


__all__ = [
    "HEADLINE",
    "ArmFactory",
    "build_candidate",
    "compare",
    "curate_datasets",
    "datasets_repo",
    "gate",
    "link_model",
    "load_eval_cases",
    "load_gold_set",
    "plan_training",
    "require_eval_cases",
    "summary",
    "train",
    "verdict_json",
]
