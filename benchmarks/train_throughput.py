"""Fine-tuning throughput: ``train_embedder`` vs the raw ``SentenceTransformerTrainer`` on the same pairs and settings.

Both arms train the packaged MiniLM with ``MultipleNegativesRankingLoss`` on the same FAQ question -> answer pairs,
one epoch, batch 32, lr 1e-4, max_seq_length 128, no-duplicates batch sampler, CPU. Our arm runs with mining and
pseudo-queries switched off so that the rows are identical; what is measured is the overhead of our path (config
validation, row building, trainer set-up, saving). Arms alternate ``--repeats`` times; medians of pairs/s are compared.
The last line is one JSON object; target ``ratio >= 0.95``.
Run: ``.venv/bin/python benchmarks/train_throughput.py [--pairs 128 --repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.runtime import ensure_offline

ensure_offline()

SETTINGS = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4, "max_seq_length": 128, "seed": 42}


def raw_arm(base: Path, rows: list[dict[str, Any]], out: Path) -> float:
    """Raw sentence-transformers: load, train, save. Returns wall seconds."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.training_args import BatchSamplers

    started = time.perf_counter()
    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    model.max_seq_length = SETTINGS["max_seq_length"]
    data = Dataset.from_dict({"anchor": [r["q"] for r in rows], "positive": [r["a"] for r in rows]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / ".trainer"),
        num_train_epochs=SETTINGS["epochs"],
        per_device_train_batch_size=SETTINGS["batch_size"],
        learning_rate=SETTINGS["learning_rate"],
        warmup_steps=0.1,
        seed=SETTINGS["seed"],
        data_seed=SETTINGS["seed"],
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    loss = losses.MultipleNegativesRankingLoss(model)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data.shuffle(seed=42), loss=loss).train()
    model.save_pretrained(str(out))
    return time.perf_counter() - started


def our_arm(base: Path, rows: list[dict[str, Any]], out: Path) -> float:
    """``train_embedder`` with the same settings (no mining, no pseudo-queries). Returns wall seconds."""
    from core.types import ContrastivePair
    from customization.embedder_training import EmbedderTrainingConfig, train_embedder

    started = time.perf_counter()
    pairs = [ContrastivePair(query=r["q"], positive=r["a"]) for r in rows]
    config = EmbedderTrainingConfig(
        **SETTINGS, hard_negatives=0, pseudo_queries_per_passage=0, show_progress=False, device="cpu", min_pairs=1
    )
    train_embedder(pairs, base_model_path=base, corpus_passages=[], output_dir=out, config=config)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Alternate the arms, print medians and the ratio, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import zaragoza_construction_faq

    from indexing.embedder import default_model_path

    base = default_model_path()
    rows = list(zaragoza_construction_faq.load(lang="en"))[: args.pairs]
    timings: dict[str, list[float]] = {"raw": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        for i in range(args.repeats):
            for name, arm in (
                (("raw", raw_arm), ("ours", our_arm)) if i % 2 == 0 else (("ours", our_arm), ("raw", raw_arm))
            ):
                timings[name].append(arm(base, rows, Path(tmp) / f"{name}-{i}"))
                print(f"repeat={i} arm={name} seconds={timings[name][-1]:.1f}", flush=True)
    pps = {name: len(rows) * SETTINGS["epochs"] / statistics.median(t) for name, t in timings.items()}
    ratio = pps["ours"] / pps["raw"]
    print(f"raw  median pairs/s {pps['raw']:.2f}\nours median pairs/s {pps['ours']:.2f}\nratio ours/raw {ratio:.3f}")
    summary = {
        "benchmark": "train_throughput",
        "pairs": len(rows),
        "settings": SETTINGS,
        "repeats": args.repeats,
        "seconds": {k: [round(x, 2) for x in v] for k, v in timings.items()},
        "median_pairs_per_s": {k: round(v, 3) for k, v in pps.items()},
        "ratio": round(ratio, 3),
        "target": 0.95,
        "target_met": bool(ratio >= 0.95),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
