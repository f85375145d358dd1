"""Held-out retrieval lift on the built-in FAQ: untuned MiniLM vs a naive MNRL fine-tune vs ``train_embedder``.

Setup (fixed, seeded): the 503 English FAQ answers are the corpus (one passage each; questions are never embedded
into it). The questions are shuffled with ``--seed`` and split 60/40; the 60% become question -> answer training
pairs, the 40% are only ever used for measuring (each question against the full corpus of 503 answers).

* ``untuned``: the packaged all-MiniLM-L6-v2.
* ``naive``:   plain ``MultipleNegativesRankingLoss`` on the training pairs, 3 epochs, batch 32, default lr 5e-5,
  raw ``SentenceTransformerTrainer`` (the baseline the design names: ~0.73 MRR@10).
* ``ours``:    ``customization.embedder_training.train_embedder`` with its default config (plus ``--config``) on the
  same pairs, with the live corpus (the 503 answers) available for mining and pseudo-queries, as in the service.
  ``--config '{"teacher": "mpnet"}'`` distils the packaged all-mpnet-base-v2, fine-tuned on the same pairs, into the
  student (``customization.distillation``): that is the recipe that reaches the +15% / +20% targets (~25 min more).

Prints MRR@10, recall@1, recall@10 side by side and the relative lifts over untuned; the last line is one JSON object.
Run: ``.venv/bin/python benchmarks/faq_lift.py`` (about 10-20 min on 2 busy cores; with the teacher about 60 min).
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


def train_ours(
    base: Path,
    train: list[dict[str, Any]],
    corpus: list[str],
    out: Path,
    overrides: dict,
    models_dir: Path | None = None,
) -> dict:
    """``train_embedder`` with its defaults (plus ``overrides``) on the same pairs; returns its metrics.
    ``models_dir``: where the packaged teacher is extracted (``{"teacher": "mpnet"}``)."""
    from core.types import ContrastivePair
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder

    pairs = [ContrastivePair(query=r["q"], positive=r["a"], provenance=[r["id"]]) for r in train]
    config = EmbedderTrainingConfig(**{"show_progress": False, "device": "cpu", **overrides})
    return train_embedder(pairs, base_model_path=base, corpus_passages=corpus, output_dir=out, config=config,
                          base_models_dir=models_dir)  # fmt: skip


def lift(row: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Relative change of each metric over ``base`` (0.15 == +15%)."""
    return {k: round(row[k] / base[k] - 1.0, 4) for k in base}


def run_arm(
    arm: str, split_seed: int, train_seed: int, overrides: dict, out: str, models_dir: str | None = None
) -> tuple[str, int, dict[str, float], dict[str, Any]]:
    """Train (unless ``untuned``) and evaluate one arm in this process; returns (arm, seed, metrics, training info)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from indexing.embedder import default_model_path

    torch.set_num_threads(1)  # arms run side by side on a shared CPU: one thread each avoids spin contention
    torch.manual_seed(train_seed)
    base = default_model_path()
    faq, train, held = split_faq(split_seed)
    info: dict[str, Any] = {}
    if arm == "untuned":
        return arm, train_seed, evaluate(SentenceTransformer(str(base), device="cpu"), faq, held), info
    if arm == "naive":
        info["train_seconds"] = round(train_naive(base, train, Path(out), seed=train_seed), 1)
    else:
        info = train_ours(base, train, [r["a"] for r in faq], Path(out), {"seed": train_seed, **overrides},
                          Path(models_dir) if models_dir else None)  # fmt: skip
    return arm, train_seed, evaluate(SentenceTransformer(out, device="cpu"), faq, held), info


def mean_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """Metric-wise mean of several runs."""
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def main(argv: list[str] | None = None) -> int:
    """Run the arms (in parallel processes, one per training seed) and print the table + JSON."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="seed of the 60/40 split")
    parser.add_argument(
        "--train-seeds",
        default="42,1,2",
        help="comma-separated training seeds; every trained arm runs once per seed and is reported as the mean "
        "(one fine-tune of 302 pairs moves held-out MRR@10 by about +-0.013 from seed to seed)",
    )
    parser.add_argument("--workers", type=int, default=2, help="training processes side by side")
    parser.add_argument("--skip-naive", action="store_true", help="only untuned vs ours (quicker iteration)")
    parser.add_argument("--config", default="{}", help="JSON overrides of EmbedderTrainingConfig for 'ours'")
    parser.add_argument(
        "--cache-dir", default=None, help="where a packaged teacher is extracted (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.train_seeds.split(",") if s.strip()]
    trained = ["ours"] if args.skip_naive else ["naive", "ours"]
    overrides = json.loads(args.config)
    _, train, held = split_faq(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="faq-lift-") as tmp,
        ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        models_dir = Path(args.cache_dir or tmp) / "base_models"
        if overrides.get("teacher") == "mpnet":
            from customization.base_models import ensure_mpnet

            ensure_mpnet(models_dir)  # once, before the arms start side by side
        jobs = [("untuned", seeds[0])] + [(arm, s) for s in seeds for arm in trained]
        futures = [
            pool.submit(run_arm, arm, args.seed, s, overrides, str(Path(tmp) / f"{arm}-{s}"), str(models_dir))
            for arm, s in jobs
        ]
        done = [f.result() for f in futures]
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    seconds: dict[str, list[float]] = {}
    ours_rows: dict[str, Any] = {}
    for arm, s, metrics, info in done:
        per_seed.setdefault(arm, {})[s] = metrics
        if "train_seconds" in info:
            seconds.setdefault(arm, []).append(info["train_seconds"])
        if arm == "ours":
            keep = ("pairs", "negatives", "queries", "teacher_train_seconds")
            ours_rows = {k: v for k, v in info.items() if k.endswith(keep) or k == "rows"}
    results = {arm: mean_row(list(rows.values())) for arm, rows in per_seed.items()}
    lifts = {name: lift(row, results["untuned"]) for name, row in results.items() if name != "untuned"}
    print(f"mean over training seeds {seeds}")
    print(f"{'arm':<10}{'mrr@10':>10}{'recall@1':>10}{'recall@10':>11}   lift mrr / r@1   per-seed mrr@10")
    for name, row in results.items():
        rel = lifts.get(name, {})
        extra = f"   {rel['mrr@10']:+.1%} / {rel['recall@1']:+.1%}" if rel else " " * 18
        spread = " ".join(f"{per_seed[name][s]['mrr@10']:.4f}" for s in seeds) if name != "untuned" else ""
        print(f"{name:<10}{row['mrr@10']:>10.4f}{row['recall@1']:>10.4f}{row['recall@10']:>11.4f}{extra}   {spread}")
    summary = {
        "benchmark": "faq_lift",
        "split": {"seed": args.seed, "train_questions": len(train), "held_out_questions": len(held), "corpus": 503},
        "train_seeds": seeds,
        "results": results,
        "per_seed": {arm: {str(s): m for s, m in rows.items()} for arm, rows in per_seed.items()},
        "relative_lift_vs_untuned": lifts,
        "train_seconds_median": {arm: float(np.median(v)) for arm, v in seconds.items()},
        "ours_config_overrides": overrides,
        "ours_rows": ours_rows,
        "targets": {"mrr@10": 0.15, "recall@1": 0.20},
        "targets_met": bool(lifts["ours"]["mrr@10"] >= 0.15 and lifts["ours"]["recall@1"] >= 0.20),
        "ours_beats_naive": None if args.skip_naive else bool(results["ours"]["mrr@10"] > results["naive"]["mrr@10"]),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
