"""Held-out retrieval lift on the built-in FAQ: untuned MiniLM vs a naive MNRL fine-tune vs ``train_embedder``.

Setup (fixed, seeded): the 503 English FAQ answers are the corpus (one passage each; questions are never embedded
into it). The questions are shuffled with ``--seed`` and split 60/40; the 60% become question -> answer training
pairs, the 40% are only ever used for measuring (each question against the full corpus of 503 answers).

* ``untuned``: the packaged all-MiniLM-L6-v2.
* ``naive``:   plain ``MultipleNegativesRankingLoss`` on the training pairs, 3 epochs, batch 32, default lr 5e-5,
  raw ``SentenceTransformerTrainer`` (the baseline the design names: ~0.73 MRR@10).
* ``ours``:    ``customization.embedder_training.train_embedder`` with its default config on the same pairs, with the
  live corpus (the 503 answers) available for mining and pseudo-queries, as in the service.

Prints MRR@10, recall@1, recall@10 side by side and the relative lifts over untuned; the last line is one JSON object.
Run: ``.venv/bin/python benchmarks/faq_lift.py`` (about 10-20 min on 2 busy cores).
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

from core.runtime import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402


def split_faq(seed: int, train_share: float = 0.6) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict]]:
    """(all rows, training rows, held-out rows) of the English FAQ, split by a seeded shuffle of the ids."""
    import zaragoza_construction_faq

    faq = list(zaragoza_construction_faq.load(lang="en"))
    order = [row["id"] for row in faq]
    random.Random(seed).shuffle(order)
    cut = round(train_share * len(order))
    by_id = {row["id"]: row for row in faq}
    return faq, [by_id[i] for i in order[:cut]], [by_id[i] for i in order[cut:]]


def evaluate(model: Any, faq: list[dict[str, Any]], held_out: list[dict[str, Any]]) -> dict[str, float]:
    """MRR@10, recall@1 and recall@10 of ``held_out`` questions against all FAQ answers."""
    corpus = model.encode([r["a"] for r in faq], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    queries = model.encode([r["q"] for r in held_out], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    position = {row["id"]: k for k, row in enumerate(faq)}
    scores = queries @ corpus.T
    ranks = np.array([int((scores[i] > scores[i, position[r["id"]]]).sum()) + 1 for i, r in enumerate(held_out)])
    return {
        "mrr@10": round(float(np.where(ranks <= 10, 1.0 / ranks, 0.0).mean()), 4),
        "recall@1": round(float((ranks == 1).mean()), 4),
        "recall@10": round(float((ranks <= 10).mean()), 4),
    }


def train_naive(base: Path, train: list[dict[str, Any]], out: Path, *, seed: int) -> float:
    """The baseline: raw SentenceTransformerTrainer, MNRL, 3 epochs, batch 32, lr 5e-5; returns seconds."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.training_args import BatchSamplers

    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    model.max_seq_length = 128
    data = Dataset.from_dict({"anchor": [r["q"] for r in train], "positive": [r["a"] for r in train]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / ".trainer"),
        num_train_epochs=3,
        per_device_train_batch_size=32,
        learning_rate=5e-5,
        seed=seed,
        data_seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    started = time.perf_counter()
    SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=losses.MultipleNegativesRankingLoss(model)
    ).train()
    model.save_pretrained(str(out))
    return time.perf_counter() - started


def train_ours(base: Path, train: list[dict[str, Any]], corpus: list[str], out: Path, overrides: dict) -> dict:
    """``train_embedder`` with its defaults (plus ``overrides``) on the same pairs; returns its metrics."""
    from core.types import ContrastivePair
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder

    pairs = [ContrastivePair(query=r["q"], positive=r["a"], provenance=[r["id"]]) for r in train]
    config = EmbedderTrainingConfig(**{"show_progress": False, "device": "cpu", **overrides})
    return train_embedder(pairs, base_model_path=base, corpus_passages=corpus, output_dir=out, config=config)


def lift(row: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Relative change of each metric over ``base`` (0.15 == +15%)."""
    return {k: round(row[k] / base[k] - 1.0, 4) for k in base}


def run_arm(arm: str, seed: int, overrides: dict, out: str) -> tuple[str, dict[str, float], dict[str, Any]]:
    """Train (unless ``untuned``) and evaluate one arm in this process; returns (arm, metrics, training info)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from indexing.embedder import default_model_path

    torch.set_num_threads(1)  # arms run side by side on a shared CPU: one thread each avoids spin contention
    torch.manual_seed(seed)
    base = default_model_path()
    faq, train, held = split_faq(seed)
    info: dict[str, Any] = {}
    if arm == "untuned":
        return arm, evaluate(SentenceTransformer(str(base), device="cpu"), faq, held), info
    if arm == "naive":
        info["train_seconds"] = round(train_naive(base, train, Path(out), seed=seed), 1)
    else:
        info = train_ours(base, train, [r["a"] for r in faq], Path(out), overrides)
    return arm, evaluate(SentenceTransformer(out, device="cpu"), faq, held), info


def main(argv: list[str] | None = None) -> int:
    """Run the three arms (in parallel processes) and print the table + JSON."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-naive", action="store_true", help="only untuned vs ours (quicker iteration)")
    parser.add_argument("--config", default="{}", help="JSON overrides of EmbedderTrainingConfig for 'ours'")
    args = parser.parse_args(argv)
    arms = ["untuned", "ours"] if args.skip_naive else ["untuned", "naive", "ours"]
    _, train, held = split_faq(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="faq-lift-") as tmp,
        ProcessPoolExecutor(max_workers=len(arms) - 1, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        futures = [pool.submit(run_arm, a, args.seed, json.loads(args.config), str(Path(tmp) / a)) for a in arms]
        done = {arm: (metrics, info) for arm, metrics, info in (f.result() for f in futures)}
    results = {arm: done[arm][0] for arm in arms}
    lifts = {name: lift(row, results["untuned"]) for name, row in results.items() if name != "untuned"}
    print(f"{'arm':<10}{'mrr@10':>10}{'recall@1':>10}{'recall@10':>11}   lift mrr / r@1")
    for name, row in results.items():
        rel = lifts.get(name, {})
        extra = f"   {rel['mrr@10']:+.1%} / {rel['recall@1']:+.1%}" if rel else ""
        print(f"{name:<10}{row['mrr@10']:>10.4f}{row['recall@1']:>10.4f}{row['recall@10']:>11.4f}{extra}")
    ours = done["ours"][1]
    summary = {
        "benchmark": "faq_lift",
        "split": {"seed": args.seed, "train_questions": len(train), "held_out_questions": len(held), "corpus": 503},
        "results": results,
        "relative_lift_vs_untuned": lifts,
        "train_seconds": {arm: done[arm][1].get("train_seconds") for arm in arms if arm != "untuned"},
        "ours_config_overrides": json.loads(args.config),
        "ours_rows": {k: v for k, v in ours.items() if k.endswith(("pairs", "negatives")) or k == "rows"},
        "targets": {"mrr@10": 0.15, "recall@1": 0.20},
        "targets_met": bool(lifts["ours"]["mrr@10"] >= 0.15 and lifts["ours"]["recall@1"] >= 0.20),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
