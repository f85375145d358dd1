"""The regression gate on the built-in FAQ: a clean-feedback candidate passes, a 40%-flipped one is measured/blocked.

Run: ``.venv/bin/python benchmarks/gate_demo.py [--epochs 1] [--pseudo 0] [--flip 0.4]``

Setup (seeded): the 503 FAQ answers are the corpus; the questions are split 60/40 (the design's split). The 60%
become feedback pairs (question -> the answer an agent marked relevant, with the base model's best wrong answer as
the passage marked irrelevant). ``flipped``: for a ``--flip`` share of the pairs the agent's marks are reversed (the
wrong passage marked relevant, the true answer irrelevant). Two candidates are trained with customization's
``train_embedder`` (engineer D) from the packaged MiniLM; current = the untuned MiniLM. Every arm is evaluated by
``evals.runner.Evaluator`` on the 40% held-out questions against the full corpus, and ``evals.gate.RegressionGate``
(default ``EvalSettings``: primary mrr@10 must improve with CI lower bound > 0; recall@5 and ndcg@10 non-inferior
within 0.02; slices by category with >= 20 cases) decides. Default training is cheap (1 epoch, no pseudo-queries) to
fit 2 busy cores; ``--epochs 3 --pseudo 2`` is the trainer's own default recipe. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core.runtime import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402
from eval_speed import MatrixRetriever  # noqa: E402

from core.settings import EvalSettings  # noqa: E402
from core.types import ContrastivePair, EvalCase  # noqa: E402


def split(faq: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded 60/40 split of the FAQ rows (train, held-out)."""
    rows = sorted(faq, key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * 0.6)
    return rows[:cut], rows[cut:]


def feedback_pairs(train: list[dict[str, Any]], base: MatrixRetriever, *, flip: float, seed: int) -> list[Any]:
    """Agent marks as contrastive pairs; a ``flip`` share has relevant/irrelevant reversed."""
    hits = base.retrieve_many([r["q"] for r in train], top_k=2)
    text = dict(zip(base.ids, base.texts, strict=True))
    flipped = set(random.Random(seed + 1).sample(range(len(train)), round(flip * len(train))))
    pairs = []
    for i, (row, top) in enumerate(zip(train, hits, strict=True)):
        wrong = next(c for c in top if c.doc_id != row["id"])
        good = (text[row["id"]], f"{row['id']}#0")
        bad = (wrong.text, wrong.chunk_id)
        pos, neg = (bad, good) if i in flipped else (good, bad)
        pairs.append(
            ContrastivePair(query=row["q"], positive=pos[0], negatives=[neg[0]], positive_chunk_id=pos[1],
                            negative_chunk_ids=[neg[1]], provenance=[f"demo-event-{i}"])
        )  # fmt: skip
    return pairs


def train(pairs: list[Any], corpus: list[str], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune the packaged MiniLM with engineer D's trainer."""
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder
    from indexing.embedder import default_model_path

    config = EmbedderTrainingConfig(
        epochs=args.epochs, pseudo_queries_per_passage=args.pseudo, seed=args.seed, show_progress=False
    )
    return train_embedder(pairs, base_model_path=default_model_path(), corpus_passages=corpus, output_dir=out,
                          config=config)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pseudo", type=int, default=0, help="pseudo-queries per corpus passage (0: off)")
    parser.add_argument("--flip", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import zaragoza_construction_faq

    from evals.gate import RegressionGate
    from evals.runner import Comparison, Configuration, Evaluator
    from indexing.embedder import SentenceTransformerEmbedder, default_model_path

    faq = list(zaragoza_construction_faq.load(lang="en"))
    train_rows, held = split(faq, args.seed)
    ids, corpus = [r["id"] for r in faq], [r["a"] for r in faq]
    cases = [EvalCase(id=f"q-{r['id']}", question=r["q"], relevant_doc_ids=[r["id"]], reference_answer=r["a"],
                      slices={"category": r["category"]}) for r in held]  # fmt: skip
    base_embedder = SentenceTransformerEmbedder(default_model_path(), version="base", device="cpu")
    base = MatrixRetriever(base_embedder, ids, corpus)
    evaluator = Evaluator(embedder=base_embedder, top_k=10)
    current = evaluator.evaluate(Configuration("current", base, None, {"embedder": "base"}), cases)
    gate = RegressionGate(EvalSettings(), seed=args.seed)
    summary: dict[str, Any] = {"benchmark": "gate_demo", "held_out": len(cases), "train_pairs": len(train_rows),
                               "epochs": args.epochs, "pseudo": args.pseudo, "flip": args.flip,
                               "current": {m: current.value(m) for m in ("mrr@10", "recall@5", "ndcg@10")}}  # fmt: skip
    print(f"current (untuned MiniLM): mrr@10={current.value('mrr@10'):.4f} on {len(cases)} held-out questions")
    with tempfile.TemporaryDirectory() as tmp:
        for name, flip in (("clean", 0.0), ("flipped", args.flip)):
            pairs = feedback_pairs(train_rows, base, flip=flip, seed=args.seed)
            start = time.perf_counter()
            stats = train(pairs, corpus, Path(tmp) / name, args)
            seconds = time.perf_counter() - start
            tuned = SentenceTransformerEmbedder(Path(tmp) / name, version=name, device="cpu")
            arm = Configuration(name, MatrixRetriever(tuned, ids, corpus), None, {"embedder": name})
            cand = evaluator.evaluate(arm, cases)
            verdict = gate.check(Comparison(current, cand))
            primary = next(r for r in verdict.rows if r["scope"] == "overall" and r["metric"] == "mrr@10")
            print(f"{name}: trained {seconds:.0f}s ({stats.get('rows')} rows) mrr@10={cand.value('mrr@10'):.4f} "
                  f"diff={primary['diff']:+.4f} CI [{primary['ci_low']:+.4f}, {primary['ci_high']:+.4f}] "
                  f"-> {'PASS' if verdict.passed else 'BLOCKED'}")  # fmt: skip
            for reason in verdict.reasons:
                print(f"   - {reason}")
            summary[name] = {
                "passed": verdict.passed,
                "train_s": round(seconds, 1),
                "reasons": verdict.reasons,
                "metrics": {m: cand.value(m) for m in ("mrr@10", "recall@5", "ndcg@10")},
                "mrr_diff": primary["diff"],
                "mrr_ci": [primary["ci_low"], primary["ci_high"]],
            }
    summary["expected"] = bool(summary["clean"]["passed"]) and not summary["flipped"]["passed"]
    print(json.dumps(summary, default=lambda x: float(x) if isinstance(x, np.floating) else str(x)))


if __name__ == "__main__":
    main()
