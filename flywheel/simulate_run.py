"""The simulation's driver: index, baseline, then per cycle traffic -> feedback -> cycle -> held-out scores.

See :mod:`flywheel.simulate` for the contract. Traffic goes through ``container.router.answer`` (B's router and
``QueryService``) and ``container.feedback_intake.submit_batch`` (C's intake), exactly what the HTTP API calls.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np

from core.settings import Settings
from core.types import FeedbackKind
from flywheel.agents import LabelledQuestion, react
from flywheel.simulate import (
    ANSWER_METRICS,
    HEADLINE,
    Progress,
    SimulationConfig,
    config_json,
    documents,
    eval_cases,
    fresh_dir,
    load_questions,
    now,
    simulation_settings,
    split,
    split_gold,
    write_gold_set,
)

logger = logging.getLogger(__name__)


class Simulation:
    """One seeded simulation run over its own data directory."""

    def __init__(
        self, base: Settings, config: SimulationConfig, *, progress: Progress, overrides: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        self.overrides = dict(overrides or {})
        self.settings = simulation_settings(base, config)
        self.progress = progress
        self.rng = random.Random(config.seed)
        self.agents = [f"agent-{n:02d}" for n in range(1, config.agents + 1)]

    def run(self) -> dict[str, Any]:
        """Run and return ``{config, split, baseline, cycles: [...], lift, report, wall_s}``."""
        from flywheel.container import Container

        started = now()
        fresh_dir(self.settings.data_dir)
        items = load_questions(self.config.dataset, limit=self.config.limit)
        pool, held = split(items, holdout_share=self.config.holdout_share, seed=self.config.seed)
        gold, held = split_gold(held, share=self.config.gold_share)
        self.gold_count = len(gold)
        if gold and self.settings.eval.gold_set is not None:
            write_gold_set(self.settings.eval.gold_set, eval_cases(gold, "gold"))
        self.cases = eval_cases(held)
        self.answers = {i.doc_id: i.answer for i in items}
        self.per_case: dict[str, dict[str, float]] = {}  # metric -> case id -> value, of the untuned start
        self.final_per_case: dict[str, dict[str, float]] = {}  # ... of what is live after the last cycle
        if self.config.generator == "hf" and self.settings.generator.model_dir is None:
            from customization.base_models import ensure_smollm2

            self.progress(f"SmolLM2 base model: {ensure_smollm2(self.settings.base_models_path)}")
        c = Container(self.settings, overrides=self.overrides)
        try:
            results = self._run(c, items, pool, held)
        finally:
            c.close()
        results["wall_s"] = round(now() - started, 1)
        return results

    def _run(self, c: Any, items: list, pool: list, held: list) -> dict[str, Any]:
        t0 = now()
        self.progress(f"indexing {len(items)} answers (the questions are not indexed)")
        c.index_manager.reindex(c.settings.indexing.corpus, documents(items), embedder=c.embedder)
        c.deployer.current()  # baseline deployment record
        index_s = now() - t0
        baseline, self.per_case = self.measure(c)
        self.progress(f"untuned start: held-out MRR@10 {baseline['mrr@10']:.4f} on {len(held)} questions; answers "
                      f"({self.config.generator}) semantic similarity {_show(baseline.get('semantic_similarity'))}, "
                      f"ROUGE-L {_show(baseline.get('rouge_l'))}")  # fmt: skip
        out: dict[str, Any] = {
            "config": config_json(self.config),
            "split": {"questions": len(items), "pool": len(pool), "heldout": len(held), "gate_gold": self.gold_count},
            "baseline": baseline,
            "timings": {"index_s": round(index_s, 1), "baseline_eval_s": round(now() - t0 - index_s, 1)},
            "cycles": [], "generator": self.config.generator,
        }  # fmt: skip
        slices = traffic_slices(pool, self.config.cycles)
        for n, window in enumerate(slices, start=1):
            out["cycles"].append(self.one_cycle(c, n, window))
        promoted = [cy["status"] == "promoted" for cy in out["cycles"]]
        out["lift"] = lift(baseline, [cy["metrics"] for cy in out["cycles"]], promoted=promoted)
        out["lift"]["rejections_that_would_have_raised_mrr"] = [
            cy["cycle"]
            for cy in out["cycles"]
            if cy["rejected_candidate_metrics"] and cy["rejected_candidate_metrics"]["mrr@10"] > cy["metrics"]["mrr@10"]
        ]
        out["report"] = next((cy["report"] for cy in reversed(out["cycles"]) if cy.get("report")), None)
        out["lifts"] = self.lifts(self.per_case, self.final_per_case)
        if self.config.generator == "hf":
            out["adapter_vs_base"] = self.adapter_vs_base(c, out["cycles"])
        return out

    # ---------------------------------------------------------------------------------------------- a cycle
    def one_cycle(self, c: Any, n: int, pool: list[LabelledQuestion]) -> dict[str, Any]:
        from flywheel.cycle import CycleOptions, CycleSkipped

        t0 = now()
        traffic = self.traffic(c, pool)
        t1 = now()
        self.progress(f"cycle {n}: {traffic['queries']} queries, up-rate {traffic['up_rate']:.2f}; running the cycle")
        opts = CycleOptions(embedder_overrides=dict(self.config.training), min_eval_cases=self.config.min_eval_cases,
                            min_pairs=self.config.min_pairs,
                            generator_overrides=dict(self.config.generator_training))  # fmt: skip
        try:
            cycle = c.cycle_runner.run(None, opts)
        except CycleSkipped:
            cycle = c.state_store.list_cycles(limit=1)[0]
        t2 = now()
        metrics, self.final_per_case = self.measure(c)
        candidate = self.rejected_candidate(c, cycle)
        verdict = cycle.gate_verdict or {}
        unseen = f" (the rejected candidate: {candidate['mrr@10']:.4f})" if candidate else ""
        answers = f"semantic similarity {_show(metrics['semantic_similarity'])}, ROUGE-L {_show(metrics['rouge_l'])}"
        self.progress(f"cycle {n}: {cycle.status}; held-out MRR@10 {metrics['mrr@10']:.4f}{unseen}; {answers}")
        return {
            "cycle": n, "cycle_id": cycle.id, "status": cycle.status, "reason": cycle.reason,
            "decision": cycle.decision, "metrics": metrics, "rejected_candidate_metrics": candidate,
            "gate": {"passed": verdict.get("passed"), "reasons": verdict.get("reasons", [])},
            "gate_eval": (cycle.steps[4].get("detail", {}).get("summary") if len(cycle.steps) > 4 else None),
            "models": cycle.candidate_models, "collection": cycle.candidate_collection, "report": cycle.report_path,
            "traffic": traffic,
            "timings": {"traffic_s": round(t1 - t0, 1), "cycle_s": round(t2 - t1, 1),
                        "heldout_eval_s": round(now() - t2, 1),
                        "steps": {s["name"]: s.get("seconds") for s in cycle.steps}},
        }  # fmt: skip

    def traffic(self, c: Any, pool: list[LabelledQuestion]) -> dict[str, Any]:
        """Every question of this cycle's traffic asked once by a random agent, answered and reacted to."""
        from feedback.validation import FeedbackSubmission
        from indexing.chunking import chunk_id

        order = list(pool)
        self.rng.shuffle(order)
        stats: dict[str, float] = {"queries": 0, "up": 0, "noisy": 0, "events": 0, "top1": 0}
        router = self.traffic_router(c)
        for item in order:
            agent = self.rng.choice(self.agents)
            result = router.answer(item.question, top_k=self.config.top_k, user_id=agent)
            reaction = react(item, result.citations, correct_chunk_ids=[chunk_id(item.doc_id, 0)],
                             wrong_answers=self.answers, noise=self.config.noise, rng=self.rng)  # fmt: skip
            # Each simulated agent stands for its own API key: the principal its votes are counted by.
            subs = [FeedbackSubmission(query_id=result.query_id, kind=kind, data=data, user_id=agent, rater_id=agent,
                                       principal=f"sim:{agent}")
                    for kind, data in reaction.events]  # fmt: skip
            c.feedback_intake.submit_batch(subs)
            stats["queries"] += 1
            stats["events"] += len(subs)
            stats["noisy"] += reaction.noisy
            stats["top1"] += reaction.correct_rank == 1
            stats["up"] += any(k is FeedbackKind.THUMBS and d.get("value") == "up" for k, d in reaction.events)
        stats["up_rate"] = stats["up"] / max(1, stats["queries"])
        return stats

    def traffic_router(self, c: Any) -> Any:
        """What the agents query: the live router; with the ``hf`` generator, the live models answering
        extractively instead — the simulated agents judge the citations, never the wording, and SmolLM2 answers cost
        seconds each on 2 cores, so its time goes to training and to the measured answers."""
        if self.config.generator != "hf":
            return c.router
        from flywheel.arms import build_arm
        from retrieval.generators.extractive import ExtractiveGenerator

        extractive = ExtractiveGenerator(max_sentences=c.settings.retrieval.answer_sentences)
        return build_arm(c, dict(c.deployer.current().models), None, generator=extractive)

    def rejected_candidate(self, c: Any, cycle: Any) -> dict[str, float] | None:
        """Held-out metrics of a candidate the gate turned down (its collection is kept), so the run shows what the
        gate left on the table as well as what it let through; ``None`` for a promoted or skipped cycle."""
        from flywheel.arms import build_arm

        name = cycle.candidate_collection
        if cycle.status != "rejected" or not name or not c.vector_store.collection_exists(name):
            return None
        return self.heldout(build_arm(c, dict(cycle.candidate_models), name))

    def heldout(self, retriever: Any) -> dict[str, float]:
        """Headline IR metrics of ``retriever`` (the live router, or a candidate's arm) on the held-out questions."""
        from evals.ir import ir_metrics, retrieve_cases

        retrievals = retrieve_cases(retriever, self.cases, top_k=10)
        metrics = ir_metrics(self.cases, {cid: r.doc_ids for cid, r in retrievals.items()})
        return {name: round(float(metrics[name].value or 0.0), 4) for name in HEADLINE}

    def measure(self, c: Any, arm: Any = None) -> tuple[dict[str, float | None], dict[str, dict[str, float]]]:
        """What is live, on the held-out questions: the IR metrics over all of them and the live generator's
        answers (semantic similarity over the base MiniLM, so every cycle is scored by the same model, and ROUGE-L)
        on the first ``answer_cases``; plus the per-case values for the paired lift intervals. ``arm``: measure that
        query arm instead of what is live."""
        from evals.runner import Configuration, Evaluator
        from flywheel.arms import build_arm, load_embedder

        arm = arm or build_arm(c, c.deployer.current().models, None)
        evaluator = Evaluator(embedder=load_embedder(c, None), top_k=10, max_generation_cases=self.config.answer_cases)
        result = evaluator.evaluate(Configuration("live", arm, arm.generator), self.cases)
        values: dict[str, float | None] = {n: round(float(result.value(n) or 0.0), 4) for n in HEADLINE}
        for name in ANSWER_METRICS:
            value = result.value(name)
            values[name] = None if value is None else round(float(value), 4)
        per_case = {n: dict(result.metrics[n].per_case) for n in ("mrr@10", *ANSWER_METRICS) if n in result.metrics}
        return values, per_case

    def adapter_vs_base(self, c: Any, cycles: list[dict[str, Any]]) -> dict[str, Any]:
        """The newest adapter a cycle trained against the base generator, both answering the reported held-out
        questions from the same (live) retrieval: the generator's own lift, whether or not the gate promoted it."""
        from flywheel.arms import build_arm

        version = next((cy["models"].get("generator_adapter") for cy in reversed(cycles)
                        if (cy.get("models") or {}).get("generator_adapter")), None)  # fmt: skip
        if version is None:
            return {"adapter": None, "reason": "no cycle trained a generator adapter"}
        live = dict(c.deployer.current().models)
        _, base = self.measure(c, build_arm(c, {**live, "generator_adapter": None}, None))
        _, tuned = self.measure(c, build_arm(c, {**live, "generator_adapter": version}, None))
        return {"adapter": version, **self.lifts(base, tuned)}

    def lifts(self, start: dict[str, dict[str, float]], end: dict[str, dict[str, float]]) -> dict[str, Any]:
        """Relative lift of the live system after the last cycle over the untuned start, per metric, with the 95%
        paired-bootstrap interval (same held-out questions, same answered cases)."""
        from evals.gate import paired_bootstrap

        out: dict[str, Any] = {}
        rng = np.random.default_rng(self.config.seed)
        for name in ("mrr@10", *ANSWER_METRICS):
            ids = sorted(set(start.get(name, {})) & set(end.get(name, {})))
            if len(ids) < 2:
                out[name] = None
                continue
            before = np.array([[start[name][i]] for i in ids])
            after = np.array([[end[name][i]] for i in ids])
            diff, low, high = paired_bootstrap(before, after, samples=2000, confidence=0.95, rng=rng)[0]
            base = float(before.mean()) or 1e-9
            out[name] = {"n": len(ids), "start": round(float(before.mean()), 4), "final": round(float(after.mean()), 4),
                         "relative": round(float(diff) / base, 4), "ci_low": round(float(low) / base, 4),
                         "ci_high": round(float(high) / base, 4)}  # fmt: skip
        return out


def run_simulation(
    base: Settings,
    config: SimulationConfig,
    *,
    progress: Progress | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the whole simulation and return its results (see :class:`flywheel.simulate_run.Simulation`).

    ``overrides`` replace container objects (tests pass port fakes, e.g. the PII scrubber).
    """
    return Simulation(base, config, progress=progress or (lambda _msg: None), overrides=overrides).run()


def _show(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def traffic_slices(pool: list[LabelledQuestion], cycles: int) -> list[list[LabelledQuestion]]:
    """The pool asked over the cycles: cycle ``n`` gets the ``n``-th of ``cycles`` equal slices (new traffic each
    period; curation accumulates everything asked so far)."""
    size = -(-len(pool) // cycles)
    return [pool[i * size : (i + 1) * size] for i in range(cycles)]


def lift(
    baseline: dict[str, float | None], per_cycle: list[dict[str, float | None]], *, promoted: list[bool]
) -> dict[str, Any]:
    """Relative MRR@10 lift of the last and the best cycle over the untuned start, and the promotions that lowered
    the held-out MRR@10 (harmful promotions; the target is none)."""
    start = float(baseline["mrr@10"] or 0.0)
    values = [float(m["mrr@10"] or 0.0) for m in per_cycle]
    prev = [start, *values[:-1]]
    drops = [i + 1 for i, (a, b) in enumerate(zip(prev, values, strict=True)) if promoted[i] and b < a - 1e-9]
    return {
        "start_mrr@10": start, "final_mrr@10": values[-1] if values else start,
        "relative": round((values[-1] - start) / start, 4) if values and start else 0.0,
        "best_relative": round((max(values) - start) / start, 4) if values and start else 0.0,
        "promotions": sum(promoted), "promotions_lowering_mrr": drops,
    }  # fmt: skip
