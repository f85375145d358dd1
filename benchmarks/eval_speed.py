"""Speed of a full per-cycle evaluation: ~200 held-out FAQ questions, IR metrics + non-LLM RAGAS, real MiniLM.

Run: ``.venv/bin/python benchmarks/eval_speed.py [--cases 200] [--repeats 3]``

Our path: ``evals.runner.Evaluator.evaluate`` on a configuration = an in-memory exact-cosine retriever over the 503
FAQ answers (index built once, as in production where the collection exists before evaluation) + the extractive
generator (``retrieval.generators.extractive``); IR metrics via sentence-transformers, RAGAS (ID-based context
precision/recall, non-LLM context recall, semantic similarity on MiniLM, ROUGE-L) via ragas 0.4.3. No judge.
Peer, side by side: sentence-transformers' own ``InformationRetrievalEvaluator`` run end to end on the same model,
queries and corpus (it embeds the corpus on every run) — its MRR@10 must equal ours (congruence check).
Target (issue 5): full evaluation <= 120 s on 2 cores. Prints per-stage timings; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.runtime import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402

from core.types import Citation, EvalCase, SearchFilter  # noqa: E402

TARGET_S = 120.0


class MatrixRetriever:
    """Exact cosine search over a matrix of passage vectors; ``retrieve_many`` embeds all questions in one batch."""

    def __init__(self, embedder, ids: Sequence[str], texts: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
        self.embedder, self.ids, self.texts = embedder, list(ids), list(texts)
        self.matrix = embedder.embed_documents(self.texts)

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        return self.retrieve_many([question], top_k=top_k)[0]

    def retrieve_many(self, questions: Sequence[str], *, top_k: int, filter: SearchFilter | None = None):  # type: ignore[no-untyped-def]
        scores = self.embedder.embed_queries(list(questions)) @ self.matrix.T
        top = np.argsort(-scores, axis=1)[:, :top_k]
        return [
            [Citation(f"{self.ids[j]}#0", self.ids[j], self.texts[j], float(row[j])) for j in idx]
            for row, idx in zip(scores, top, strict=True)
        ]


def held_out(faq: list[dict], n: int, seed: int = 42) -> list[EvalCase]:
    """A seeded 40% hold-out of the FAQ questions (the design's 60/40 split), first ``n`` of it."""
    rows = sorted(faq, key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    hold = rows[int(len(rows) * 0.6) :][:n]
    return [
        EvalCase(id=f"q-{r['id']}", question=r["q"], relevant_doc_ids=[r["id"]], reference_answer=r["a"],
                 slices={"category": r["category"]})
        for r in hold
    ]  # fmt: skip


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def peer_ir(model, cases: list[EvalCase], faq: list[dict]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """sentence-transformers' evaluator end to end (embeds corpus + queries); returns (seconds, mrr@10)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    evaluator = InformationRetrievalEvaluator(
        queries={c.id: c.question for c in cases},
        corpus={r["id"]: r["a"] for r in faq},
        relevant_docs={c.id: set(c.relevant_doc_ids) for c in cases},
        write_csv=False,
        batch_size=64,
    )
    result, seconds = timed(evaluator, model)
    key = next(k for k in result if k.endswith("mrr@10"))
    return seconds, float(result[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the IR-only timing (median reported)")
    args = parser.parse_args()

    import zaragoza_construction_faq

    from evals.runner import Configuration, Evaluator
    from indexing.embedder import SentenceTransformerEmbedder, default_model_path
    from retrieval.generators.extractive import ExtractiveGenerator

    stages: dict[str, float] = {}
    embedder, stages["load_model"] = timed(SentenceTransformerEmbedder, default_model_path(), device="cpu")
    faq = list(zaragoza_construction_faq.load(lang="en"))
    cases = held_out(faq, args.cases)
    retriever, stages["index_503_answers"] = timed(
        MatrixRetriever, embedder, [r["id"] for r in faq], [r["a"] for r in faq]
    )
    load, index = stages["load_model"], stages["index_503_answers"]
    print(f"cases={len(cases)} corpus={len(faq)} load={load:.1f}s index={index:.1f}s")

    evaluator = Evaluator(embedder=embedder, top_k=10, answer_top_k=5)
    config = Configuration("current", retriever, ExtractiveGenerator(embedder), {"embedder": "base"})
    cpu_start = time.process_time()
    result, stages["full_eval"] = timed(evaluator.evaluate, config, cases)
    stages["full_eval_cpu"] = time.process_time() - cpu_start
    for stage, seconds in result.timings_s.items():
        print(f"  full eval stage {stage:<9} {seconds:7.2f} s")
    full = stages["full_eval"]
    print(
        f"full evaluation (IR + non-LLM RAGAS, {len(cases)} cases): {full:.1f} s wall (target {TARGET_S:.0f} s), "
        f"{stages['full_eval_cpu']:.1f} CPU-s in this process (~ the wall time on an idle machine: nothing waits on I/O)"
    )

    ir_only = Evaluator(embedder=embedder, top_k=10)
    ir_config = Configuration("ir-only", retriever, None)
    ir_times = [timed(ir_only.evaluate, ir_config, cases)[1] for _ in range(args.repeats)]
    peer_times, peer_mrr = [], 0.0
    for _ in range(args.repeats):
        seconds, peer_mrr = peer_ir(embedder.model, cases, faq)
        peer_times.append(seconds)
    ours_ir, peer = statistics.median(ir_times), statistics.median(peer_times)
    print(f"IR-only evaluation (ours, prebuilt index + ID RAGAS): median {ours_ir:.2f} s over {args.repeats}")
    print(f"sentence-transformers InformationRetrievalEvaluator (embeds corpus too): median {peer:.2f} s")
    print(f"ratio peer/ours {peer / ours_ir:.2f}x; mrr@10 ours {result.value('mrr@10'):.4f} peer {peer_mrr:.4f}")

    metrics = {k: round(v.value, 4) for k, v in result.metrics.items() if v.value is not None}
    skipped = {k: v.skipped for k, v in result.metrics.items() if v.skipped}
    mrr = metrics.get("mrr@10", -1.0)
    summary = {
        "benchmark": "eval_speed",
        "cases": len(cases),
        "corpus": len(faq),
        "full_eval_s": round(full, 2),
        "target_s": TARGET_S,
        "within_target": full <= TARGET_S,
        "full_eval_cpu_s": round(stages["full_eval_cpu"], 2),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "eval_stages_s": result.timings_s,
        "ir_only_median_s": round(ours_ir, 3),
        "peer_st_ir_median_s": round(peer, 3),
        "peer_over_ours": round(peer / ours_ir, 2),
        "mrr@10": mrr,
        "peer_mrr@10": round(peer_mrr, 4),
        "congruent": abs(mrr - round(peer_mrr, 4)) < 1e-3,
        "metrics": metrics,
        "skipped": skipped,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
