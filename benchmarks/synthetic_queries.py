"""Do synthetic questions for the unasked passages lift the fine-tuned embedder? (doc2query / GPL-style, measured.)

Same fixed FAQ split as ``faq_lift.py`` (302 training questions, 201 held-out, 503 answers as the corpus). The
packaged SmolLM2-135M is LoRA-tuned on the 302 training pairs as a passage -> question generator (loss on the question
tokens only), then writes ``--per-passage`` sampled questions for every passage that has no training question (the
held-out questions are never shown to it). Arms, each ``train_embedder`` with its defaults, once per training seed:

* ``real``:      the 302 real pairs (the ``ours`` arm of ``faq_lift.py``).
* ``synthetic``: the real pairs + every cleaned synthetic question (ends with "?", de-duplicated per passage).
* ``filtered``:  the real pairs + the synthetic questions whose passage the untuned model ranks first (round-trip
  consistency filter, as in Promptagator).

Prints held-out MRR@10 / recall@1 per arm, some generated questions, and one JSON object on the last line.
Run: ``.venv/bin/python benchmarks/synthetic_queries.py --cache-dir /tmp/models`` (about 30-40 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from core.runtime import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faq_lift import evaluate, lift, mean_row, split_faq, train_ours  # noqa: E402

SYSTEM = "Write the question a customer asked that this passage answers."


def question_prompt(tokenizer: Any, passage: str) -> str:
    """The generator's chat prompt for one passage."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": " ".join(passage.split())}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_question_example(tokenizer: Any, example: Any, config: Any) -> dict[str, list[int]]:
    """``SftExample(query=passage, target=question)`` -> ids with the loss on the question (+ end token) only."""
    from customization.lora import IGNORE_INDEX

    prompt = tokenizer(question_prompt(tokenizer, example.query), add_special_tokens=False)["input_ids"]
    target = tokenizer(example.target.strip() + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    prompt = prompt[-(config.max_length - len(target)) :]
    return {"input_ids": prompt + target, "labels": [IGNORE_INDEX] * len(prompt) + target}


def train_question_generator(base: Path, train: list[dict[str, Any]], out: Path, *, epochs: int) -> dict[str, Any]:
    """LoRA (r=16) on (answer -> question) pairs; returns the adapter's training metrics."""
    from core.types import SftExample
    from customization.lora import LoraConfig, train_generator_adapter

    examples = [SftExample(query=r["a"], contexts=[], target=r["q"]) for r in train]
    config = LoraConfig(rank=16, alpha=32, epochs=epochs, batch_size=4, learning_rate=2e-4, seed=42, device="cpu")
    return train_generator_adapter(
        examples, base_model_dir=base, output_dir=out, config=config, encode=encode_question_example
    )


def generate_questions(base: Path, adapter: Path, passages: list[str], *, per_passage: int) -> list[list[str]]:
    """``per_passage`` sampled questions (top-p 0.9, temperature 0.8, seeded) for each passage, in batches of 16."""
    import torch
    from tqdm.auto import tqdm

    from retrieval.generators.hf import load_adapter, load_causal_lm

    torch.manual_seed(42)
    tokenizer, model = load_causal_lm(base, device="cpu")
    model = load_adapter(model, adapter).eval()
    tokenizer.padding_side = "left"
    out: list[list[str]] = []
    for start in tqdm(range(0, len(passages), 16), desc="questions"):
        batch = [question_prompt(tokenizer, p) for p in passages[start : start + 16]]
        inputs = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(
                **inputs, max_new_tokens=40, do_sample=True, top_p=0.9, temperature=0.8,
                num_return_sequences=per_passage, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        texts = tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        out.extend([t.strip() for t in texts[i : i + per_passage]] for i in range(0, len(texts), per_passage))
    return out


def clean(questions: list[str]) -> list[str]:
    """Questions that end with "?", without repeats (case-insensitive)."""
    seen: set[str] = set()
    kept = []
    for q in questions:
        if q.endswith("?") and len(q.split()) >= 3 and q.lower() not in seen:
            seen.add(q.lower())
            kept.append(q)
    return kept


def round_trip(rows: list[dict[str, Any]], faq: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The synthetic rows whose own passage the untuned model ranks first among all answers."""
    from sentence_transformers import SentenceTransformer

    from indexing.embedder import default_model_path

    model = SentenceTransformer(str(default_model_path()), device="cpu")
    corpus = model.encode([r["a"] for r in faq], batch_size=64, normalize_embeddings=True)
    queries = model.encode([r["q"] for r in rows], batch_size=64, normalize_embeddings=True)
    position = {r["id"]: k for k, r in enumerate(faq)}
    scores = queries @ corpus.T
    return [r for i, r in enumerate(rows) if int(np.argmax(scores[i])) == position[r["id"]]]


def run_arm(arm: str, rows: list[dict[str, Any]], seed: int, out: str) -> tuple[str, int, dict[str, float], float]:
    """Train ``train_embedder`` on ``rows`` with ``seed`` and evaluate on the held-out questions."""
    import torch
    from sentence_transformers import SentenceTransformer

    from indexing.embedder import default_model_path

    torch.set_num_threads(1)
    faq, _, held = split_faq(42)
    info = train_ours(default_model_path(), rows, [r["a"] for r in faq], Path(out), {"seed": seed})
    return arm, seed, evaluate(SentenceTransformer(out, device="cpu"), faq, held), float(info["train_seconds"])


def main(argv: list[str] | None = None) -> int:
    """Train the question generator, write the questions, train the arms side by side, print table + JSON."""
    import torch
    from sentence_transformers import SentenceTransformer

    from customization.base_models import ensure_smollm2
    from indexing.embedder import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True, help="where SmolLM2-135M is converted to a HF checkpoint once")
    parser.add_argument("--train-seeds", default="42,1", help="comma-separated embedder training seeds")
    parser.add_argument("--per-passage", type=int, default=3, help="sampled questions per unasked passage")
    parser.add_argument("--epochs", type=int, default=2, help="question-generator LoRA epochs")
    parser.add_argument("--workers", type=int, default=2, help="embedder trainings side by side")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the generator")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.train_seeds.split(",") if s.strip()]
    torch.set_num_threads(args.threads)
    faq, train, held = split_faq(42)
    asked = {r["id"] for r in train}
    unasked = [r for r in faq if r["id"] not in asked]
    base = ensure_smollm2(Path(args.cache_dir))
    with tempfile.TemporaryDirectory(prefix="synthetic-queries-") as tmp:
        started = time.perf_counter()
        generator = train_question_generator(base, train, Path(tmp) / "adapter", epochs=args.epochs)
        gen_train_s = time.perf_counter() - started
        started = time.perf_counter()
        questions = generate_questions(
            base, Path(tmp) / "adapter", [r["a"] for r in unasked], per_passage=args.per_passage
        )
        gen_s = time.perf_counter() - started
        synthetic = [
            {"q": q, "a": r["a"], "id": r["id"]} for r, qs in zip(unasked, questions, strict=True) for q in clean(qs)
        ]
        filtered = round_trip(synthetic, faq)
        arms = {"real": train, "synthetic": train + synthetic, "filtered": train + filtered}
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(run_arm, arm, rows, s, str(Path(tmp) / f"{arm}-{s}"))
                for s in seeds
                for arm, rows in arms.items()
            ]
            done = [f.result() for f in futures]
    untuned = evaluate(SentenceTransformer(str(default_model_path()), device="cpu"), faq, held)
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    seconds: dict[str, list[float]] = {}
    for arm, s, metrics, secs in done:
        per_seed.setdefault(arm, {})[s] = metrics
        seconds.setdefault(arm, []).append(secs)
    results = {"untuned": untuned} | {arm: mean_row(list(rows.values())) for arm, rows in per_seed.items()}
    lifts = {arm: lift(row, untuned) for arm, row in results.items() if arm != "untuned"}
    for r, qs in list(zip(unasked, questions, strict=True))[:8]:
        print(f"held-out: {r['q']}\n  generated: {qs}")
    print(f"mean over training seeds {seeds}")
    print(f"{'arm':<11}{'pairs':>7}{'mrr@10':>9}{'recall@1':>10}   lift mrr / r@1   per-seed mrr@10")
    for arm, row in results.items():
        n = len(arms[arm]) if arm in arms else 0
        rel = f"   {lifts[arm]['mrr@10']:+.1%} / {lifts[arm]['recall@1']:+.1%}" if arm in lifts else " " * 18
        spread = " ".join(f"{per_seed[arm][s]['mrr@10']:.4f}" for s in seeds) if arm in per_seed else ""
        print(f"{arm:<11}{n:>7}{row['mrr@10']:>9.4f}{row['recall@1']:>10.4f}{rel}   {spread}")
    generator_info = {
        "train_seconds": round(gen_train_s, 1),
        "generate_seconds": round(gen_s, 1),
        "steps": generator["steps"],
        "train_loss": round(generator["train_loss"], 4),
    }
    summary = {
        "benchmark": "synthetic_queries",
        "train_seeds": seeds,
        "unasked_passages": len(unasked),
        "synthetic_pairs": len(synthetic),
        "filtered_pairs": len(filtered),
        "generator": generator_info,
        "results": results,
        "per_seed": {arm: {str(s): m for s, m in rows.items()} for arm, rows in per_seed.items()},
        "relative_lift_vs_untuned": lifts,
        "train_seconds_median": {arm: float(np.median(v)) for arm, v in seconds.items()},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
