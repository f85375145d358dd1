"""Indexing throughput: our path (chunk + embed + write via IndexManager into EdgeVectorStore) vs raw
``SentenceTransformer.encode`` on the same chunks; plus an unchanged-corpus reindex (must embed 0 chunks).

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/index_throughput.py [--docs N] [--rounds R] [--source PATH ...]``
(``--source``: index real files through ``load_paths``, the new extraction, instead of the FAQ; e.g.
``--source /usr/share/doc/git-doc/git-*.html`` ; ``--docs`` then caps the files). Rounds alternate raw/ours/ours/raw
(ABBA) to cancel drift on a noisy machine; medians of wall time and of process CPU time are reported (CPU time is
less sensitive to other processes sharing the cores). The last stdout line is one JSON object.
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
from indexing.loaders import load_builtin_faq, load_paths  # noqa: E402
from indexing.manager import IndexManager  # noqa: E402
from indexing.sparse import Bm25SparseEncoder  # noqa: E402
from indexing.stores.edge import EdgeVectorStore  # noqa: E402


def _raw(embedder: SentenceTransformerEmbedder, texts: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of the raw library call on the same chunk texts (same batch size, normalised)."""
    started, cpu = time.perf_counter(), time.process_time()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - started, time.process_time() - cpu


def _ours(
    embedder: SentenceTransformerEmbedder, chunker: Chunker, docs: list, root: Path, *, sparse: bool = True
) -> tuple[float, float, IndexManager]:
    """(wall s, CPU s) of a full (cold store) reindex through IndexManager: chunk + embed + write + alias swap;
    ``sparse``: with the BM25 keyword vectors of hybrid mode (the default ``retrieval.mode``)."""
    store = EdgeVectorStore(root)
    encoder = Bm25SparseEncoder() if sparse else None
    manager = IndexManager(store, chunker=chunker, keep_versions=1, sparse_encoder=encoder)
    started, cpu = time.perf_counter(), time.process_time()
    report = manager.reindex("faq", docs, embedder=embedder)
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    assert report.embedded == report.chunks, report
    return elapsed, cpu_s, manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=503, help="FAQ documents to index (max 503)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (each: raw, ours, ours, raw)")
    parser.add_argument("--source", nargs="*", type=Path, help="files/folders to index instead of the FAQ")
    args = parser.parse_args()

    docs = load_paths(args.source).documents[: args.docs] if args.source else load_builtin_faq("en")[: args.docs]
    chunker = Chunker.from_settings(IndexingSettings())
    embedder = SentenceTransformerEmbedder(default_model_path(), version="base", device="cpu")
    texts = [c.embedding_text for c in chunker.chunk(docs)]  # what our path embeds (header + text); warms the splitter
    embedder.embed_documents(texts[:64])  # warm the model
    print(f"docs={len(docs)} chunks={len(texts)} batch_size={embedder.batch_size}", file=sys.stderr)

    raw_s: list[float] = []
    ours_s: list[float] = []
    raw_cpu: list[float] = []
    ours_cpu: list[float] = []
    managers: list[IndexManager] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for arm in ("raw", "ours", "ours", "raw"):
                if arm == "raw":
                    wall, cpu = _raw(embedder, texts)
                    raw_s.append(wall)
                    raw_cpu.append(cpu)
                else:
                    wall, cpu, manager = _ours(embedder, chunker, docs, Path(tmp) / f"r{r}-{len(ours_s)}")
                    ours_s.append(wall)
                    ours_cpu.append(cpu)
                    managers.append(manager)
            print(f"round {r}: raw={raw_s[-2:]} ours={ours_s[-2:]} cpu raw={raw_cpu[-2:]} ours={ours_cpu[-2:]}",
                  file=sys.stderr)  # fmt: skip
        manager = managers[-1]
        started = time.perf_counter()
        unchanged = manager.reindex("faq", docs, embedder=embedder)
        unchanged_s = time.perf_counter() - started
        for m in managers:
            m.store.close()

    raw_rate = len(texts) / statistics.median(raw_s)
    ours_rate = len(texts) / statistics.median(ours_s)
    ratio = ours_rate / raw_rate
    cpu_ratio = statistics.median(raw_cpu) / statistics.median(ours_cpu)
    print(f"raw SentenceTransformer.encode : median {statistics.median(raw_s):.2f} s  -> {raw_rate:.1f} chunks/s")
    print(f"ours (chunk+embed+write+swap)  : median {statistics.median(ours_s):.2f} s  -> {ours_rate:.1f} chunks/s")
    print(f"ratio ours/raw                 : {ratio:.3f} wall, {cpu_ratio:.3f} CPU time  (target >= 0.90)")
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
        "cpu_ratio": round(cpu_ratio, 3),
        "source": "files" if args.source else "faq",
        "target_ratio": 0.9,
        "unchanged_reindex_embedded": unchanged.embedded,
        "unchanged_reindex_reused": unchanged.reused,
        "unchanged_reindex_s": round(unchanged_s, 3),
        "pass": ratio >= 0.9 and unchanged.embedded == 0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
