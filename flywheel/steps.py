"""The cycle's steps as functions over the container: each calls one stage package through its public API.

Kept apart from :mod:`flywheel.cycle` (which owns ordering, recording and crash safety) so each stage's wiring is
small and readable: curation (feedback), training (customization), candidate build (indexing), evaluation, gate,
guardrails and report (evals). Lineage edges are recorded as artefacts are produced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.datasets import DatasetRepository
from core.errors import InvalidInputError, NotFoundError
from core.ports import ProgressCallback
from core.types import DatasetKind, EvalCase, ModelKind
from flywheel.arms import build_arm
from flywheel.deploy import BASE, Candidate
from flywheel.lineage import dataset_node, model_node

if TYPE_CHECKING:
    from flywheel.container import Container

logger = logging.getLogger(__name__)

TRAINING_KINDS = (DatasetKind.CONTRASTIVE, DatasetKind.RELEVANCE, DatasetKind.SFT)


def datasets_repo(c: Container) -> DatasetRepository:
    """The dataset repository under ``settings.datasets_dir``."""
    return DatasetRepository(c.settings.datasets_dir)


# -------------------------------------------------------------------------------------------------- evaluation
def eval_cases(c: Container) -> list[EvalCase]:
    """Held-out eval cases: the gold set (JSONL of EvalCase fields) when configured, plus the newest curated ``eval``
    dataset (cases held out from training by curation), de-duplicated by id. Raises ``NotFoundError`` when neither
    exists."""
    cases: list[EvalCase] = []
    gold = c.settings.eval.gold_set
    if gold is not None:
        cases.extend(load_gold_set(Path(gold)))
    repo = datasets_repo(c)
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


def compare(c: Container, candidate: Candidate, cases: list[EvalCase]) -> Any:
    """Evaluate the live deployment and the candidate (each on its own collection) on the same cases."""
    from evals.runner import Configuration, Evaluator

    current = c.deployer.current()
    cur_arm = build_arm(c, current.models, current.live_collection)
    cand_arm = build_arm(c, candidate.models, candidate.collection)
    evaluator = Evaluator(embedder=c.embedder, judge=c.settings.judge, top_k=10)
    return evaluator.compare(
        Configuration("current", cur_arm, None, _versions(current.models, current.live_collection)),
        Configuration("candidate", cand_arm, None, _versions(candidate.models, candidate.collection)),
        cases,
    )


def _versions(models: dict[str, str | None], collection: str | None) -> dict[str, str]:
    return {**{k: v or BASE for k, v in models.items()}, "collection": collection or "-"}


def summary(comparison: Any) -> dict[str, dict[str, float | None]]:
    """``{metric: {current, candidate}}`` for the headline IR metrics."""
    names = ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10")
    return {n: {"current": comparison.current.value(n), "candidate": comparison.candidate.value(n)} for n in names}


def gate(c: Container, comparison: Any, *, datasets: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Regression gate plus guardrails (training-set PII, provenance); a failed guardrail fails the verdict."""
    import dataclasses

    from evals.gate import RegressionGate

    verdict = RegressionGate(c.settings.eval, seed=c.settings.training.seed).check(comparison)
    results = guardrails(c, datasets)
    failed = [r for r in results if not r.passed]
    if failed:
        reasons = [*verdict.reasons, *(f"guardrail {r.name}: {r.reason}" for r in failed)]
        verdict = dataclasses.replace(verdict, passed=False, reasons=reasons)
    return verdict, results


def guardrails(c: Container, datasets: dict[str, Any]) -> list[Any]:
    """Residual-PII scan of the user-written text of the contrastive training set (the queries: positives and
    negatives are knowledge-base passages, whose names and places are content, not leaked user data) and the
    provenance check of every row."""
    from core.ports import ProvenanceLedger
    from evals.guardrails import check_provenance, scan_pii

    version = datasets.get(DatasetKind.CONTRASTIVE.value, {}).get("version")
    if version is None:
        return []
    rows = datasets_repo(c).read(DatasetKind.CONTRASTIVE, version)
    queries = {f"row-{i}": [row.query] for i, row in enumerate(rows)}
    results = [scan_pii(queries, c.scrubber, name="training_set_pii")]
    if isinstance(c.feedback_store, ProvenanceLedger):
        results.append(check_provenance(rows, c.feedback_store))
    return results


def verdict_json(verdict: Any) -> dict[str, Any]:
    """JSON form of a gate verdict."""
    from evals.gate import verdict_to_dict

    return verdict_to_dict(verdict)


# ------------------------------------------------------------------------------------------------- lineage help
def link_datasets(c: Container, manifests: dict[str, Any]) -> None:
    """Lineage: events and users -> each curated dataset version."""
    for kind, manifest in manifests.items():
        node = dataset_node(kind, manifest.version)
        sources = [("event", e) for e in manifest.event_ids] + [("user", u) for u in manifest.user_ids]
        if sources:
            c.lineage.link_many(sources, "dataset", node, relation="curated")


def link_model(c: Container, kind: ModelKind, version: str, *, parent: str | None, datasets: list[str]) -> None:
    """Lineage: datasets (and the parent model) -> a trained model version."""
    sources = [("dataset", d) for d in datasets]
    if parent and parent != BASE:
        sources.append(("model", model_node(kind.value, parent)))
    c.lineage.link_many(sources, "model", model_node(kind.value, version), relation="trained")


# ---------------------------------------------------------------------------------------------------- training
def train(
    c: Container,
    *,
    datasets: dict[str, Any],
    overrides: dict[str, Any],
    show_progress: bool,
    cycle_id: str,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train the cycle's candidate models on the newest (cumulative) curated datasets and register them:

    - the embedder (always) on the contrastive pairs plus the live corpus passages (hard-negative mining), from the
      base model or the live one (``settings.training.embedder_start``). ``NotEnoughDataError`` when too few pairs;
    - the reranker when ``training.train_reranker`` and a relevance dataset exists;
    - the generator LoRA adapter when ``training.train_generator``, ``generator.kind == "hf"`` (the only generator
      that serves adapters) and an SFT dataset exists.

    A reranker or generator with too little data is left out (the arm keeps the live version) with the reason in
    ``skipped``. Returns ``{"models": {kind: version}, "skipped": {kind: reason}}``. ``on_progress`` follows the
    training runs, one equal share per model that may be trained.
    """
    from core.errors import NotEnoughDataError
    from customization.progress import part_of
    from flywheel.training import train_embedder_version, train_generator_version, train_reranker_version

    repo = datasets_repo(c)
    tag = {"cycle_id": cycle_id}

    def rows(kind: DatasetKind) -> tuple[list[Any], Any]:
        version = datasets[kind.value]["version"]
        return repo.read(kind, version), repo.manifest(kind, version)

    pairs, manifest = rows(DatasetKind.CONTRASTIVE)
    fields = {"show_progress": show_progress, **overrides}
    optional = (
        (ModelKind.RERANKER, DatasetKind.RELEVANCE, c.settings.training.train_reranker, train_reranker_version),
        (ModelKind.GENERATOR_ADAPTER, DatasetKind.SFT, c.settings.training.train_generator, train_generator_version),
    )
    parts = 1 + sum(1 for *_, wanted, _fn in optional if wanted)
    trained = {ModelKind.EMBEDDER: (train_embedder_version(c, pairs, manifest, overrides=fields, extra_metrics=tag,
                                                           on_progress=part_of(on_progress, 0, parts)),
                                    manifest)}  # fmt: skip
    skipped: dict[str, str] = {}
    part = 0
    for model_kind, data_kind, wanted, fn in optional:
        if not wanted:
            continue
        part += 1
        if data_kind.value not in datasets:
            skipped[model_kind.value] = f"no {data_kind.value} dataset was curated"
            continue
        if model_kind is ModelKind.GENERATOR_ADAPTER and c.settings.generator.kind != "hf":
            skipped[model_kind.value] = f"generator.kind is {c.settings.generator.kind!r}: only 'hf' serves an adapter"
            continue
        examples, data_manifest = rows(data_kind)
        try:
            trained[model_kind] = (fn(c, examples, data_manifest, overrides={"show_progress": show_progress},
                                      extra_metrics=tag, on_progress=part_of(on_progress, part, parts)),
                                   data_manifest)  # fmt: skip
        except NotEnoughDataError as exc:
            skipped[model_kind.value] = f"not enough data ({exc.have} of {exc.need}): {exc.message}"
            logger.info("cycle %s: %s not trained: %s", cycle_id, model_kind.value, exc.message)
    for kind, (version, data_manifest) in trained.items():
        node = dataset_node(data_manifest.kind.value, data_manifest.version)
        link_model(c, kind, version.version, parent=version.parent, datasets=[node])
        c.lineage.link("cycle", cycle_id, "model", model_node(kind.value, version.version), relation="ran")
        logger.info("%s candidate registered version=%s parent=%s", kind.value, version.version, version.parent)
    return {"models": {kind.value: v.version for kind, (v, _) in trained.items()}, "skipped": skipped}


def build_candidate(
    c: Container, models: dict[str, str | None], *, cycle_id: str, show_progress: bool,
    on_created: Any = None, on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Re-embed the live corpus (documents + correction passages) with the candidate embedder into a new collection
    version; the alias does not move. ``on_progress`` counts embedded chunks."""
    from flywheel.arms import load_embedder
    from flywheel.corpus import live_documents

    corpus = c.settings.indexing.corpus
    live = c.index_manager.live_collection(corpus)
    embedder = load_embedder(c, models.get(ModelKind.EMBEDDER.value))
    documents = live_documents(c, corpus)
    report = c.index_manager.build_version(
        corpus, documents, embedder=embedder, show_progress=show_progress, on_progress=on_progress
    )
    if on_created is not None:
        on_created(report.collection)
    sources = [("collection", live)]
    if models.get(ModelKind.EMBEDDER.value):
        sources.append(("model", model_node(ModelKind.EMBEDDER.value, str(models[ModelKind.EMBEDDER.value]))))
    c.lineage.link_many(sources, "collection", report.collection, relation="built")
    c.lineage.link("cycle", cycle_id, "collection", report.collection, relation="ran")
    return {"collection": report.collection, "chunks": report.chunks, "embedded": report.embedded,
            "seconds": report.seconds}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ report
def report(c: Container, cycle: Any, comparison: Any, verdict: Any, *, guardrails: list[Any]) -> Path:
    """Render the cycle's HTML report (E's ``render_report``) under ``settings.reports_dir``."""
    from evals.report import render_report

    history = []
    for past in reversed(c.state_store.list_cycles(limit=50)):
        cand = ((past.eval_results or {}).get("candidate") or {}).get("metrics") or {}
        values = {name: m.get("value") for name, m in cand.items() if isinstance(m, dict)}
        if values:
            history.append({"cycle": past.id[:8], "metrics": values})
    path = c.settings.reports_dir / f"cycle-{cycle.id}.html"
    return render_report(
        path, cycle_id=cycle.id, comparison=comparison, verdict=verdict, guardrails=guardrails, history=history,
        feedback_counts=feedback_counts(c, since=_previous_cycle_time(c, cycle)),
        versions={"collection": cycle.candidate_collection, **(cycle.candidate_models or {})},
        primary_metric=c.settings.eval.primary_metric, tolerance=c.settings.eval.tolerance,
    )  # fmt: skip


def _previous_cycle_time(c: Container, cycle: Any) -> Any:
    earlier = [p for p in c.state_store.list_cycles(limit=50) if p.created_at and p.created_at < cycle.created_at]
    return earlier[0].created_at if earlier else None


def feedback_counts(c: Container, *, since: Any = None) -> dict[str, int]:
    """Feedback events by kind since ``since`` (all when ``None``)."""
    from collections import Counter

    events = c.feedback_store.list_events(since=since, limit=1_000_000)
    return dict(Counter(str(e.kind) for e in events))


# ---------------------------------------------------------------------------------------------------- curation
def curate(c: Container, *, cycle_id: str | None) -> dict[str, Any]:
    """Curate the corpus' feedback into new dataset versions (C's ``Curator``); lineage events/users -> datasets.

    Returns ``{kind: {version, rows}}`` plus ``_report`` (counts, drops, refusals). Raises ``NotEnoughDataError``.
    """
    from feedback.curation import Curator

    corpus = c.settings.indexing.corpus
    repo = datasets_repo(c)
    curator = Curator(c.feedback_store, repo, scrubber=c.scrubber, embedder=c.embedder, passages=c.passage_index)
    report = curator.curate(corpus, holdout_share=c.settings.eval.holdout_share, seed=c.settings.training.seed)
    out: dict[str, Any] = {}
    manifests = {}
    for kind, version in report.written.items():
        manifest = repo.manifest(DatasetKind(kind), version)
        manifests[kind] = manifest
        out[kind] = {"version": version, "rows": manifest.rows, "users": len(manifest.user_ids)}
    link_datasets(c, manifests)
    if cycle_id:
        for kind, manifest in manifests.items():
            c.lineage.link("dataset", dataset_node(kind, manifest.version), "cycle", cycle_id, relation="used")
    out["_report"] = report.as_dict()
    return out
