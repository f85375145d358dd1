"""Dense vs hybrid retrieval on the built-in FAQ's held-out questions, and extractive answer quality, as one JSON line.

Setup: the 503 English FAQ answers are the corpus (one passage each), indexed once into an embedded qdrant-edge
collection with dense (packaged MiniLM) and keyword (``indexing.sparse``) vectors, as ``retrieval.mode=hybrid``
builds them. For each ``--seeds`` seed the questions are shuffled and split 60/40 as in ``faq_lift.py``; the 40%
held-out questions are searched dense and hybrid (each ``--weights`` keyword weight) and scored by MRR@10. The
verdict compares the mean paired difference (hybrid - dense) with the spread of the dense MRR over seeds.

Answers (``--answers N``): the extractive generator answers N held-out questions from their top-5 dense passages;
ROUGE-L F1 and semantic similarity (MiniLM cosine) against the FAQ's reference answer, and milliseconds per answer.
``--old-generator FILE`` also runs an older ``extractive.py`` (e.g. ``git show main:retrieval/generators/extractive.py
> /tmp/old_extractive.py``) on the same passages, side by side.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/hybrid_faq.py`` (~1-2 min on 2 busy cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from core.runtime import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402


def held_out(faq: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The 40% of questions a seeded 60/40 split keeps for measuring (as ``faq_lift.split_faq``)."""
    order = [row["id"] for row in faq]
    random.Random(seed).shuffle(order)
    keep = set(order[round(0.6 * len(order)) :])
    return [row for row in faq if row["id"] in keep]


def mrr_at_10(ranked: list[list[str]], wanted: list[str]) -> float:
    """Mean reciprocal rank of ``wanted[i]`` in ``ranked[i]`` (0 beyond rank 10)."""
    total = 0.0
    for ids, want in zip(ranked, wanted, strict=True):
        total += 1.0 / (ids.index(want) + 1) if want in ids[:10] else 0.0
    return total / len(wanted)


def build(store: Any, embedder: Any, encoder: Any, faq: list[dict[str, Any]]) -> None:
    """One hybrid collection of the FAQ answers (payload ``doc_id``)."""
    from core.types import Point

    vectors = embedder.embed_documents([r["a"] for r in faq])
    sparse = encoder.encode_documents([r["a"] for r in faq])
    store.create_collection("faq__v1", dim=embedder.dim, sparse=True)
    store.upsert("faq__v1", [
        Point(id=str(uuid.uuid5(uuid.NAMESPACE_URL, r["id"])), vector=v.tolist(), payload={"doc_id": r["id"],
              "text": r["a"]}, sparse=s)
        for r, v, s in zip(faq, vectors, sparse, strict=True)
    ])  # fmt: skip


def retrieval_ab(store: Any, embedder: Any, encoder: Any, faq: list[dict], args: argparse.Namespace) -> dict:
    """MRR@10 dense vs hybrid per seed and weight, the paired differences and the verdict."""
    from core.types import HybridParams

    qvec = dict(zip([r["id"] for r in faq], embedder.embed_queries([r["q"] for r in faq]), strict=True))
    arms = [(m, w) for m in args.methods for w in args.weights]
    per_seed: dict[str, list[float]] = {"dense": [], **{f"{m}@{w}": [] for m, w in arms}}
    for seed in range(args.seeds):
        rows = held_out(faq, seed)
        wanted = [r["id"] for r in rows]
        dense = [[h.payload["doc_id"] for h in store.search("faq__v1", qvec[r["id"]], top_k=10)] for r in rows]
        per_seed["dense"].append(mrr_at_10(dense, wanted))
        for method, weight in arms:
            params = HybridParams(sparse_weight=weight, rrf_k=args.rrf_k, candidates=args.candidates, method=method)
            ranked = [
                [h.payload["doc_id"] for h in store.hybrid_search(
                    "faq__v1", qvec[r["id"]], encoder.encode_query(r["q"]), top_k=10, params=params)]
                for r in rows
            ]  # fmt: skip
            per_seed[f"{method}@{weight}"].append(mrr_at_10(ranked, wanted))
    spread = max(per_seed["dense"]) - min(per_seed["dense"])
    summary: dict[str, Any] = {"seeds": args.seeds, "dense_mrr10_spread": round(spread, 4)}
    for arm, values in per_seed.items():
        summary[f"{arm}_mrr10"] = round(statistics.mean(values), 4)
        summary[f"{arm}_per_seed"] = [round(v, 4) for v in values]
        if arm != "dense":
            diff = statistics.mean(h - d for h, d in zip(values, per_seed["dense"], strict=True))
            summary[f"{arm}_minus_dense"] = round(diff, 4)
            summary[f"{arm}_ok"] = diff >= -spread
    return summary


def load_generator(path: str | None, embedder: Any) -> Any:
    """This tree's extractive generator, or the ``ExtractiveGenerator`` of an older ``extractive.py`` file."""
    if path is None:
        from retrieval.generators.extractive import ExtractiveGenerator
    else:
        spec = importlib.util.spec_from_file_location("old_extractive", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["old_extractive"] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        ExtractiveGenerator = module.ExtractiveGenerator
    takes_embedder = "embedder" in inspect.signature(ExtractiveGenerator).parameters
    return ExtractiveGenerator(embedder) if takes_embedder else ExtractiveGenerator()


def answer_quality(store: Any, embedder: Any, faq: list[dict], generator: Any, cases: int) -> dict[str, float]:
    """ROUGE-L F1, semantic similarity vs the reference answers, ms per answer, fragment share."""
    from rouge_score import rouge_scorer

    from retrieval.generators.extractive import answer_segments
    from retrieval.service import citation_from_hit

    rows = held_out(faq, 0)[:cases]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    answers, seconds = [], 0.0
    for row in rows:
        hits = store.search("faq__v1", embedder.embed_queries([row["q"]])[0], top_k=5)
        started = time.perf_counter()
        answers.append(generator.generate(row["q"], [citation_from_hit(h) for h in hits]).text)
        seconds += time.perf_counter() - started
    plain = [" ".join(answer_segments(a)) for a in answers]
    refs = [r["a"] for r in rows]
    similarity = np.sum(embedder.embed_documents(plain) * embedder.embed_documents(refs), axis=1)
    segments = [s for a in answers for s in answer_segments(a)]
    rouge = [scorer.score(ref, answer)["rougeL"].fmeasure for ref, answer in zip(refs, plain, strict=True)]
    return {
        "rougeL_f1": round(float(np.mean(rouge)), 4),
        "semantic_similarity": round(float(np.mean(similarity)), 4),
        "ms_per_answer": round(1000 * seconds / len(rows), 2),
        "fragment_share": round(sum(len(s.split()) < 5 for s in segments) / max(1, len(segments)), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--methods", nargs="+", default=["rrf", "score"], choices=["rrf", "score"])
    parser.add_argument("--rrf-k", type=int, default=60)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--answers", type=int, default=100, help="held-out questions answered (0: skip)")
    parser.add_argument("--old-generator", default=None, help="an older extractive.py to compare answers with")
    args = parser.parse_args()

    import zaragoza_construction_faq

    from indexing.embedder import SentenceTransformerEmbedder, default_model_path
    from indexing.sparse import Bm25SparseEncoder
    from indexing.stores.edge import EdgeVectorStore

    faq = list(zaragoza_construction_faq.load(lang="en"))
    embedder = SentenceTransformerEmbedder(default_model_path(), device="cpu")
    encoder = Bm25SparseEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "vectors")
        try:
            started = time.perf_counter()
            build(store, embedder, encoder, faq)
            sys.stderr.write(f"indexed {len(faq)} answers in {time.perf_counter() - started:.0f} s\n")
            result: dict[str, Any] = {"benchmark": "hybrid_faq", **retrieval_ab(store, embedder, encoder, faq, args)}
            if args.answers:
                result["answers"] = answer_quality(store, embedder, faq, load_generator(None, embedder), args.answers)
                if args.old_generator:
                    old = load_generator(args.old_generator, embedder)
                    result["answers_old"] = answer_quality(store, embedder, faq, old, args.answers)
        finally:
            store.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
