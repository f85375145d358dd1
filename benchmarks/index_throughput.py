"""Indexing throughput: our path (chunk + embed + write via IndexManager into EdgeVectorStore) vs raw
``SentenceTransformer.encode`` on the same chunks; plus an unchanged-corpus reindex (must embed 0 chunks).

Run: ``.venv/bin/python benchmarks/index_throughput.py [--docs N] [--rounds R]``. Rounds alternate raw/ours/ours/raw
(ABBA) to cancel drift on a noisy machine; medians are reported. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.runtime import ensure_offline

ensure_offline()

from core.settings import IndexingSettings  # noqa: E402
from indexing.chunking import Chunker  # noqa: E402
from indexing.embedder import SentenceTransformerEmbedder, default_model_path  # noqa: E402
from indexing.loaders import load_builtin_faq  # noqa: E402
from indexing.manager import IndexManager  # noqa: E402
from indexing.stores.edge import EdgeVectorStore  # noqa: E402


def _raw(embedder: SentenceTransformerEmbedder, texts: list[str]) -> float:
    """Seconds for the raw library call on the same chunk texts (same batch size, normalised)."""
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - started


def _ours(
    embedder: SentenceTransformerEmbedder, chunker: Chunker, docs: list, root: Path
) -> tuple[float, IndexManager]:
    """Seconds for a full (cold store) reindex through IndexManager: chunk + embed + write + alias swap."""
    store = EdgeVectorStore(root)
    manager = IndexManager(store, chunker=chunker, keep_versions=1)
    started = time.perf_counter()
    report = manager.reindex("faq", docs, embedder=embedder)
    elapsed = time.perf_counter() - started
    assert report.embedded == report.chunks, report
    return elapsed, manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=503, help="FAQ documents to index (max 503)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (each: raw, ours, ours, raw)")
    args = parser.parse_args()

    docs = load_builtin_faq("en")[: args.docs]
    chunker = Chunker.from_settings(IndexingSettings())
    embedder = SentenceTransformerEmbedder(default_model_path(), version="base", device="cpu")
    texts = [c.text for c in chunker.chunk(docs)]  # also warms the splitter (nltk / tiktoken load)
    embedder.embed_documents(texts[:64])  # warm the model
    print(f"docs={len(docs)} chunks={len(texts)} batch_size={embedder.batch_size}", file=sys.stderr)

    raw_s: list[float] = []
    ours_s: list[float] = []
    managers: list[IndexManager] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            raw_s.append(_raw(embedder, texts))
            for k in range(2):
                elapsed, manager = _ours(embedder, chunker, docs, Path(tmp) / f"r{r}-{k}")
                ours_s.append(elapsed)
                managers.append(manager)
            raw_s.append(_raw(embedder, texts))
            print(f"round {r}: raw={raw_s[-2:]} ours={ours_s[-2:]}", file=sys.stderr)
        manager = managers[-1]
        started = time.perf_counter()
        unchanged = manager.reindex("faq", docs, embedder=embedder)
        unchanged_s = time.perf_counter() - started
        for m in managers:
            m.store.close()

    raw_rate = len(texts) / statistics.median(raw_s)
    ours_rate = len(texts) / statistics.median(ours_s)
    ratio = ours_rate / raw_rate
    print(f"raw SentenceTransformer.encode : median {statistics.median(raw_s):.2f} s  -> {raw_rate:.1f} chunks/s")
    print(f"ours (chunk+embed+write+swap)  : median {statistics.median(ours_s):.2f} s  -> {ours_rate:.1f} chunks/s")
    print(f"ratio ours/raw                 : {ratio:.3f}  (target >= 0.90)")
    print(f"unchanged reindex              : embedded={unchanged.embedded} reused={unchanged.reused} "
          f"in {unchanged_s:.2f} s")  # fmt: skip
    result = {
        "benchmark": "index_throughput",
        "docs": len(docs),
        "chunks": len(texts),
        "rounds": args.rounds,
        "raw_median_s": round(statistics.median(raw_s), 3),
        "ours_median_s": round(statistics.median(ours_s), 3),
        "raw_chunks_per_s": round(raw_rate, 2),
        "ours_chunks_per_s": round(ours_rate, 2),
        "ratio": round(ratio, 3),
        "target_ratio": 0.9,
        "unchanged_reindex_embedded": unchanged.embedded,
        "unchanged_reindex_reused": unchanged.reused,
        "unchanged_reindex_s": round(unchanged_s, 3),
        "pass": ratio >= 0.9 and unchanged.embedded == 0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
