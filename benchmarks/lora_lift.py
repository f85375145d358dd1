"""Generator LoRA lift: SmolLM2-135M-Instruct untuned vs LoRA-tuned on held-out FAQ answers, same retrieved passages.

Setup: the FAQ split of ``faq_lift.py`` (seeded 60/40 of questions). For every question the packaged MiniLM
retrieves the top ``--contexts`` answers from the full corpus; those passages are the generator's context (training
and evaluation alike, so the gold answer is sometimes missing, as in production). Training SFT examples: training
questions -> their reference answer with the citation marker of the gold passage when it was retrieved.
Evaluation: ``--eval`` held-out questions; both arms answer from the same passages with greedy decoding; citation
markers are stripped before scoring against the reference answer with

* RAGAS ``RougeScore`` (ROUGE-L F1), and
* RAGAS ``SemanticSimilarity`` with the packaged MiniLM as its embeddings (through ``evals.ragas_metrics``, the code
  the cycle's evaluation runs).

Prints means side by side, relative lifts and their 95% paired-bootstrap intervals over the held-out questions; the
last line is one JSON object; target ``>= +10%`` on both.
Run: ``.venv/bin/python benchmarks/lora_lift.py [--cache-dir data/base_models]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.runtime import ensure_offline

ensure_offline()

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faq_lift import split_faq  # noqa: E402

_MARKERS = re.compile(r"\s*\[\d+\]")


def retrieve(embedder: Any, faq: list[dict[str, Any]], rows: list[dict[str, Any]], k: int) -> list[list[str]]:
    """Top-``k`` FAQ answers for each row's question (packaged MiniLM, cosine)."""
    corpus = [r["a"] for r in faq]
    vectors = embedder.encode(corpus, batch_size=64, normalize_embeddings=True)
    queries = embedder.encode([r["q"] for r in rows], batch_size=64, normalize_embeddings=True)
    top = (-(queries @ vectors.T)).argsort(axis=1)[:, :k]
    return [[corpus[j] for j in row] for row in top]


def sft_examples(rows: list[dict[str, Any]], contexts: list[list[str]]) -> list[Any]:
    """Reference answers as targets, cited with the gold passage's marker when it was retrieved."""
    from core.types import SftExample

    out = []
    for row, ctx in zip(rows, contexts, strict=True):
        marker = f" [{ctx.index(row['a']) + 1}]" if row["a"] in ctx else ""
        out.append(SftExample(query=row["q"], contexts=ctx, target=row["a"] + marker, provenance=[row["id"]]))
    return out


def score(answers: list[str], references: list[str], embedder: Any) -> dict[str, list[float]]:
    """Per-answer RAGAS ``RougeScore`` (ROUGE-L F1) and ``SemanticSimilarity`` (over ``embedder``, our Embedder port)
    of ``answers`` vs ``references``, citation markers stripped, in input order (an empty answer scores 0): the same
    code the cycle's evaluation runs."""
    from evals.ragas_metrics import RagasSample, compute_non_llm

    samples = [
        RagasSample(case_id=f"q{i}", question="", retrieved_ids=[], reference_ids=[],
                    answer=_MARKERS.sub("", a).strip(), reference=ref)
        for i, (a, ref) in enumerate(zip(answers, references, strict=True))
    ]  # fmt: skip
    metrics = compute_non_llm(samples, embedder=embedder)
    return {
        name: [float(metrics[name].per_case.get(s.case_id, 0.0)) for s in samples]
        for name in ("rouge_l", "semantic_similarity")
    }


def lift_interval(tuned: list[float], untuned: list[float], *, seed: int, rounds: int = 2000) -> list[float]:
    """95% paired-bootstrap interval of the relative lift ``mean(tuned) / mean(untuned) - 1`` over the questions."""
    import numpy as np

    a, b = np.asarray(tuned), np.asarray(untuned)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(rounds, len(a)))
    ratios = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-9) - 1.0
    return [round(float(v), 4) for v in np.percentile(ratios, [2.5, 97.5])]


def generate(model_dir: Path, adapter: Path | None, questions: list[str], contexts: list[list[str]], n: int) -> list:
    """Greedy answers of ``HFGenerator`` (with ``adapter`` when given) for each question over its contexts."""
    from core.types import Citation
    from retrieval.generators.hf import HFGenerator

    generator = HFGenerator(model_dir, adapter_dir=adapter, max_new_tokens=n, device="cpu")
    passages = [[Citation(f"c{i}", f"d{i}", t, 1.0) for i, t in enumerate(ctx)] for ctx in contexts]
    return [a.text for a in generator.generate_many(questions, passages, batch_size=8)]


def main(argv: list[str] | None = None) -> int:
    """Train the adapter, answer held-out questions with both arms, print the comparison and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default="data/base_models", help="where the converted SmolLM2 is cached")
    parser.add_argument("--train", type=int, default=120, help="training questions used (of the 60%%)")
    parser.add_argument("--eval", type=int, default=64, help="held-out questions answered by each arm")
    parser.add_argument("--contexts", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=72)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    import torch

    from customization.base_models import ensure_smollm2
    from customization.lora import LoraConfig, train_generator_adapter
    from indexing.embedder import default_model_path

    torch.manual_seed(args.seed)
    model_dir = ensure_smollm2(args.cache_dir)
    from indexing.embedder import SentenceTransformerEmbedder

    port = SentenceTransformerEmbedder(default_model_path(), device="cpu")
    embedder = port.model  # one load: raw encode for retrieval, the port for the RAGAS metrics
    faq, train, held = split_faq(args.seed)
    train, held = train[: args.train], held[: args.eval]
    examples = sft_examples(train, retrieve(embedder, faq, train, args.contexts))
    held_ctx = retrieve(embedder, faq, held, args.contexts)
    config = LoraConfig(epochs=args.epochs, seed=args.seed, show_progress=False, device="cpu")
    with tempfile.TemporaryDirectory(prefix="lora-lift-") as tmp:
        metrics = train_generator_adapter(examples, base_model_dir=model_dir, output_dir=tmp, config=config)
        started = time.perf_counter()
        tuned = generate(model_dir, Path(tmp), [r["q"] for r in held], held_ctx, args.max_new_tokens)
    untuned = generate(model_dir, None, [r["q"] for r in held], held_ctx, args.max_new_tokens)
    gen_seconds = time.perf_counter() - started
    refs = [r["a"] for r in held]
    per_case = {"untuned": score(untuned, refs, port), "lora": score(tuned, refs, port)}
    results = {arm: {k: round(sum(v) / len(v), 4) for k, v in rows.items()} for arm, rows in per_case.items()}
    lifts = {k: round(results["lora"][k] / results["untuned"][k] - 1.0, 4) for k in results["untuned"]}
    intervals = {k: lift_interval(per_case["lora"][k], per_case["untuned"][k], seed=args.seed) for k in lifts}
    print(f"{'arm':<9}{'rouge_l':>9}{'sem_sim':>9}")
    for name, row in results.items():
        print(f"{name:<9}{row['rouge_l']:>9.4f}{row['semantic_similarity']:>9.4f}")
    print(f"lift     {lifts['rouge_l']:>+9.1%}{lifts['semantic_similarity']:>+9.1%}")
    print("95% CI   " + "  ".join(f"[{lo:+.1%}, {hi:+.1%}]" for lo, hi in intervals.values()))
    print(f"example untuned: {untuned[0][:200]!r}\nexample lora:    {tuned[0][:200]!r}")
    summary = {
        "benchmark": "lora_lift",
        "model": model_dir.name,
        "train_examples": len(examples),
        "eval_questions": len(held),
        "contexts_per_question": args.contexts,
        "lora": {k: v for k, v in config.to_dict().items() if k not in {"device", "show_progress"}},
        "train_metrics": {k: metrics[k] for k in ("steps", "first_loss", "train_loss", "train_seconds")},
        "generation_seconds": round(gen_seconds, 1),
        "results": results,
        "relative_lift": lifts,
        "relative_lift_95ci": intervals,
        "metrics_impl": {
            "rouge_l": "ragas RougeScore (rougeL, fmeasure)",
            "semantic_similarity": "ragas SemanticSimilarity (MiniLM)",
        },
        "target": 0.10,
        "target_met": bool(min(lifts.values()) >= 0.10),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
