"""Retrieval-only latency on the embedded default (EdgeVectorStore, qdrant-edge) at 100k chunks, recall@10 against
exact search, and the ratio against llama-index's default ``VectorStoreIndex`` retriever over qdrant-client local mode.

Data: the 503 real FAQ answer embeddings (MiniLM) are the cluster centres; every synthetic chunk is a noisy copy of
one (unit-normalised, ~0.8 cosine to its centre), so the 100k vectors are clustered like real chunk embeddings.
Queries are the real FAQ *question* embeddings (lightly perturbed). Both sides get precomputed query vectors, so only
retrieval is timed (search + payload fetch). Run: ``.venv/bin/python benchmarks/retrieval_latency.py``.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.runtime import ensure_offline

ensure_offline()

from indexing.embedder import SentenceTransformerEmbedder, default_model_path  # noqa: E402
from indexing.loaders import load_builtin_faq  # noqa: E402
from indexing.stores.edge import EdgeVectorStore  # noqa: E402

TOP_K = 10


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_data(n: int, n_queries: int, *, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(vectors (n, d), queries (q, d), payloads) built from real FAQ embeddings."""
    docs = load_builtin_faq("en")
    embedder = SentenceTransformerEmbedder(default_model_path(), version="base", device="cpu")
    centres = embedder.embed_documents([d.text for d in docs])
    questions = embedder.embed_queries([d.metadata["question"] for d in docs])
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, len(docs), size=n)
    vectors = _unit(centres[owner] + sigma * rng.standard_normal((n, centres.shape[1]), dtype=np.float32))
    picks = rng.choice(len(docs), size=n_queries, replace=n_queries > len(docs))
    queries = _unit(questions[picks] + 0.01 * rng.standard_normal((n_queries, centres.shape[1]), dtype=np.float32))
    payloads = [
        {"text": docs[j].text[:200], "doc_id": docs[j].id, "category": docs[j].metadata["category"], "chunk_index": i}
        for i, j in enumerate(owner.tolist())
    ]
    return vectors, queries, payloads


def timed(fn: Callable[[np.ndarray], list[str]], queries: np.ndarray, *, warmup: int = 10) -> tuple[np.ndarray, list]:
    """Per-query latency in ms and the returned id lists."""
    for q in queries[:warmup]:
        fn(q)
    latencies, results = [], []
    for q in queries:
        started = time.perf_counter()
        results.append(fn(q))
        latencies.append((time.perf_counter() - started) * 1000)
    return np.asarray(latencies), results


def exact_top(vectors: np.ndarray, queries: np.ndarray, ids: list[str]) -> list[set[str]]:
    """Exact cosine top-k by brute force (vectors are unit length)."""
    scores = queries @ vectors.T
    return [{ids[i] for i in np.argpartition(-row, TOP_K)[:TOP_K]} for row in scores]


def build_edge(
    root: Path, vectors: np.ndarray, payloads: list[dict], ids: list[str], *, hnsw_ef: int
) -> tuple[EdgeVectorStore, dict]:
    """Write the points through the port and build HNSW; returns the store and build timings."""
    from core.types import Point

    store = EdgeVectorStore(root, hnsw_ef=hnsw_ef)
    store.create_collection("bench__v1", dim=vectors.shape[1])
    store.set_alias("bench", "bench__v1")
    started = time.perf_counter()
    for start in range(0, len(ids), 5000):
        batch = [
            Point(id=ids[i], vector=vectors[i], payload=payloads[i]) for i in range(start, min(start + 5000, len(ids)))
        ]
        store.upsert("bench__v1", batch)
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    store.optimize("bench__v1")
    return store, {"upsert_s": round(upsert_s, 2), "optimize_s": round(time.perf_counter() - started, 2)}


def build_peer(vectors: np.ndarray, payloads: list[dict], ids: list[str]) -> tuple[Callable, Callable, float]:
    """llama-index VectorStoreIndex over qdrant-client local mode (in memory), default retriever. Explicit
    ``MockEmbedding`` only because the index demands an embed model; it is never called (vectors are given)."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import QueryBundle, TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    vector_store = LlamaQdrant(collection_name="peer", client=client)
    index = VectorStoreIndex(
        nodes=[],
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=MockEmbedding(embed_dim=vectors.shape[1]),
    )
    started = time.perf_counter()
    for start in range(0, len(ids), 5000):
        nodes = [
            TextNode(id_=ids[i], text=payloads[i]["text"], embedding=vectors[i].tolist(),
                     metadata={k: v for k, v in payloads[i].items() if k != "text"})
            for i in range(start, min(start + 5000, len(ids)))
        ]  # fmt: skip
        index.insert_nodes(nodes)
    build_s = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=TOP_K)

    def search(q: np.ndarray) -> list[str]:
        return [n.node.node_id for n in retriever.retrieve(QueryBundle(query_str="", embedding=q.tolist()))]

    return search, client.close, build_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="chunks in the edge collection")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--peer-n", type=int, default=20_000, help="chunks for the llama-index peer (slow to build)")
    parser.add_argument("--peer-queries", type=int, default=60)
    parser.add_argument("--sigma", type=float, default=0.04, help="noise per dimension around each real centre")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hnsw-ef", type=int, default=256, help="HNSW beam width at query time (store default)")
    args = parser.parse_args()

    vectors, queries, payloads = make_data(args.n, args.queries, sigma=args.sigma, seed=args.seed)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(args.n)]
    print(f"data ready n={args.n} dim={vectors.shape[1]} queries={len(queries)}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        store, build = build_edge(Path(tmp) / "edge", vectors, payloads, ids, hnsw_ef=args.hnsw_ef)
        ours_ms, ours_ids = timed(lambda q: [h.id for h in store.search("bench", q, top_k=TOP_K)], queries)
        exact_ms, _ = timed(lambda q: [h.id for h in store.search("bench", q, top_k=TOP_K, exact=True)], queries[:50])
        store.close()
    truth = exact_top(vectors, queries, ids)
    recall = float(np.mean([len(set(got) & want) / TOP_K for got, want in zip(ours_ids, truth, strict=True)]))
    print(f"edge build: {build}", file=sys.stderr)

    pn = min(args.peer_n, args.n)
    peer_search, peer_close, peer_build_s = build_peer(vectors[:pn], payloads[:pn], ids[:pn])
    peer_ms, _ = timed(peer_search, queries[: args.peer_queries], warmup=3)
    peer_close()

    p50, p99 = float(np.percentile(ours_ms, 50)), float(np.percentile(ours_ms, 99))
    peer_p50 = float(np.percentile(peer_ms, 50))
    print(f"ours  EdgeVectorStore (HNSW)  N={args.n}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  recall@10 {recall:.4f}")
    print(f"ours  exact search fallback   N={args.n}: p50 {np.percentile(exact_ms, 50):.2f} ms")
    print(f"peer  llama-index VectorStoreIndex over qdrant-client local N={pn}: p50 {peer_p50:.2f} ms "
          f"p99 {np.percentile(peer_ms, 99):.2f} ms (build {peer_build_s:.1f} s)")  # fmt: skip
    print(f"speed-up p50 peer/ours: {peer_p50 / p50:.1f}x")
    result = {
        "benchmark": "retrieval_latency",
        "n": args.n,
        "hnsw_ef": args.hnsw_ef,
        "queries": len(queries),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "recall_at_10": round(recall, 4),
        "exact_p50_ms": round(float(np.percentile(exact_ms, 50)), 3),
        "edge_upsert_s": build["upsert_s"],
        "edge_optimize_s": build["optimize_s"],
        "peer": "llama-index VectorStoreIndex retriever + qdrant-client local (:memory:)",
        "peer_n": pn,
        "peer_queries": len(peer_ms),
        "peer_p50_ms": round(peer_p50, 3),
        "peer_p99_ms": round(float(np.percentile(peer_ms, 99)), 3),
        "peer_over_ours_p50": round(peer_p50 / p50, 2),
        "targets": {"p50_ms": 20, "p99_ms": 60, "recall_at_10": 0.95},
        "pass": p50 <= 20 and p99 <= 60 and recall >= 0.95,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
