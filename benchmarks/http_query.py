"""HTTP query latency and throughput: our ``flywheel serve`` vs a minimal encode+search FastAPI app, as one JSON line.

Setup: the built-in FAQ is indexed into a fresh data dir (``flywheel index --builtin faq``, the configured retrieval
mode). Then the servers run side by side as subprocesses on free ports, each under uvicorn: ``flywheel serve``
(``POST /v1/query``: body and rate limits, auth, routing, embed once, hybrid search, extractive answer, recording in
the background), the same service over a copy of the index in dense-only mode, and a minimal FastAPI app doing only
``encode + search`` on a copy of the same store (qdrant-edge locks a shard to one process). The FAQ's questions are
sent in rounds, the apps interleaved (A B, then B A, ...), with 1 client (sequential requests) and 4 clients
(threads) per round.

Fair comparison: every server loads the same packaged MiniLM through the same adapter
(``indexing.embedder.SentenceTransformerEmbedder``) and searches the same shard through the same store adapter; all
run uvicorn's defaults (asyncio loop, h11) in the same environment, so torch uses its default intra-op threads (one
per core) in each. What differs is ours: it batches questions that arrive together into one forward pass
(``retrieval.batching``), and scrubs and records every query in the background (``retrieval.recording``: the writer
waits for a gap in the traffic, at most 1 s). So that no app is timed while another's background work runs, after
each of our runs the benchmark reads the last recorded query back (``GET /v1/queries/{id}`` waits for the recorder),
untimed; the median time that took is ``record_backlog_ms`` (the recording work left when a burst ends).

Prints p50/p99 latency (ms) and queries/s for each app and concurrency, and the ratios the issue sets:
``p50_ratio_1`` (ours / minimal, 1 client, must be <= 2) and ``qps_ratio_4`` (ours / minimal, 4 clients, >= 0.5).
Timings are noisy on a shared machine: compare the ratios of one run, whose rounds are interleaved.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/http_query.py`` (~3 min on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _servers import free_port, wait_ready  # benchmarks/_servers.py (the script's own directory)

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "http-bench-admin-key"
#: ``flywheel`` CLI of this tree (the console script would run the installed checkout).
FLYWHEEL = [sys.executable, "-c", "import sys; from flywheel.cli import main; sys.exit(main())"]

MINIMAL_APP = '''
import os, sys
from core.runtime import ensure_offline
ensure_offline()
from fastapi import FastAPI
from pydantic import BaseModel
from indexing.embedder import SentenceTransformerEmbedder, default_model_path
from indexing.stores.edge import EdgeVectorStore

embedder = SentenceTransformerEmbedder(default_model_path())
store = EdgeVectorStore(os.environ["MINIMAL_VECTORS"])
corpus = os.environ.get("MINIMAL_CORPUS", "faq")
app = FastAPI()

class Question(BaseModel):
    question: str
    top_k: int = 5

@app.get("/readyz")
def ready() -> dict:
    return {"ok": True}

@app.post("/v1/query")
def query(body: Question) -> dict:
    vector = embedder.embed_queries([body.question])[0].tolist()
    hits = store.search(corpus, vector, top_k=body.top_k)
    return {"citations": [{"chunk_id": h.id, "score": h.score, "text": h.payload.get("text")} for h in hits]}
'''


def start(cmd: list[str], env: dict[str, str], port: int, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    """Start a server subprocess (log in ``workdir/{name}.log``) and wait until it is ready."""
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}", proc, log)
    return proc


def sequential(url: str, questions: list[str]) -> tuple[list[float], float]:
    """One client: latencies (ms) and wall seconds."""
    latencies = []
    started = time.perf_counter()
    with httpx.Client(headers={"X-API-Key": ADMIN_KEY}, timeout=60) as client:
        for question in questions:
            t0 = time.perf_counter()
            client.post(f"{url}/v1/query", json={"question": question}).raise_for_status()
            latencies.append(1000 * (time.perf_counter() - t0))
    return latencies, time.perf_counter() - started


def settle(url: str) -> float:
    """Our service: ask one question and read its record back, which waits until the background recorder has
    written everything answered before it. Returns the milliseconds the read-back took (untimed in the results)."""
    with httpx.Client(headers={"X-API-Key": ADMIN_KEY}, timeout=120) as client:
        query_id = client.post(f"{url}/v1/query", json={"question": "settle"}).raise_for_status().json()["query_id"]
        started = time.perf_counter()
        client.get(f"{url}/v1/queries/{query_id}").raise_for_status()
        return 1000 * (time.perf_counter() - started)


def concurrent(url: str, questions: list[str], clients: int) -> tuple[list[float], float]:
    """``clients`` threads splitting ``questions``: all latencies (ms) and wall seconds."""
    parts = [questions[i::clients] for i in range(clients)]
    results: list[list[float]] = [[] for _ in parts]

    def run(i: int) -> None:
        results[i] = sequential(url, parts[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [x for r in results for x in r], time.perf_counter() - started


def summarise(latencies: list[float], seconds: float) -> dict[str, float]:
    """p50 / p99 (ms) and queries per second."""
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "qps": round(len(ordered) / seconds, 2),
    }


def prepare(workdir: Path, env: dict[str, str]) -> Path:
    """Index the built-in FAQ into ``workdir/data``; copy its vectors for the minimal app. Returns the copy."""
    subprocess.run([*FLYWHEEL, "index", "--builtin", "faq"], cwd=workdir, env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    copy = workdir / "minimal_vectors"
    shutil.copytree(workdir / "data" / "vectors", copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


def measure(apps: dict[str, str], questions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of 1-client and 4-client runs of every app."""
    runs: dict[str, dict[str, list[Any]]] = {
        name: {"lat1": [], "sec1": [], "lat4": [], "sec4": [], "backlog": []} for name in apps
    }
    for name, url in apps.items():  # warm-up: models, caches, connection pools
        sequential(url, questions[: args.warmup])
        if name != "minimal":
            settle(url)
    for round_no in range(args.rounds):
        order = list(apps) if round_no % 2 == 0 else list(reversed(apps))
        chunk = questions[(round_no * args.per_round) % len(questions) :][: args.per_round] or questions
        for name in order:
            lat, sec = sequential(apps[name], chunk)
            runs[name]["lat1"] += lat
            runs[name]["sec1"].append(sec)
            if name != "minimal":
                runs[name]["backlog"].append(settle(apps[name]))
            lat, sec = concurrent(apps[name], chunk * 2, args.clients)
            runs[name]["lat4"] += lat
            runs[name]["sec4"].append(sec)
            if name != "minimal":
                runs[name]["backlog"].append(settle(apps[name]))
    out: dict[str, Any] = {}
    for name, r in runs.items():
        out[name] = {"1": summarise(r["lat1"], sum(r["sec1"])), str(args.clients): summarise(r["lat4"], sum(r["sec4"]))}
        if r["backlog"]:
            out[name]["record_backlog_ms"] = round(statistics.median(r["backlog"]), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=40, help="questions per round and app (1 client)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=15)
    args = parser.parse_args()

    import zaragoza_construction_faq

    questions = [row["q"] for row in zaragoza_construction_faq.load(lang="en")]
    workdir = Path(tempfile.mkdtemp(prefix="http-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
               FLYWHEEL_DATA_DIR=str(workdir / "data"), FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        copy = prepare(workdir, env)
        dense_dir = workdir / "data_dense"  # the same index, served dense-only by a second service (its own data dir)
        shutil.copytree(workdir / "data", dense_dir, ignore=shutil.ignore_patterns(".lock", "service.json"))
        (workdir / "minimal_app.py").write_text(MINIMAL_APP)
        ours, minimal = free_port(), free_port()
        serve = [*FLYWHEEL, "serve", "--host", "127.0.0.1", "--port", str(ours)]
        procs.append(start(serve, env, ours, workdir, "serve"))
        dense = free_port()
        dense_env = {**env, "FLYWHEEL_DATA_DIR": str(dense_dir), "FLYWHEEL_RETRIEVAL__MODE": "dense"}
        dense_serve = [*FLYWHEEL, "serve", "--host", "127.0.0.1", "--port", str(dense)]
        procs.append(start(dense_serve, dense_env, dense, workdir, "serve-dense"))
        minimal_env = {**env, "MINIMAL_VECTORS": str(copy), "PYTHONPATH": f"{workdir}{os.pathsep}{env['PYTHONPATH']}"}
        uvicorn = [sys.executable, "-m", "uvicorn", "minimal_app:app", "--host", "127.0.0.1", "--port", str(minimal)]
        procs.append(start([*uvicorn, "--log-level", "warning"], minimal_env, minimal, workdir, "minimal"))
        apps = {"ours": f"http://127.0.0.1:{ours}", "ours_dense": f"http://127.0.0.1:{dense}",
                "minimal": f"http://127.0.0.1:{minimal}"}  # fmt: skip
        result = measure(apps, questions, args)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
    c = str(args.clients)
    ratios = {
        "p50_ratio_1": round(result["ours"]["1"]["p50_ms"] / result["minimal"]["1"]["p50_ms"], 2),
        f"p50_ratio_{c}": round(result["ours"][c]["p50_ms"] / result["minimal"][c]["p50_ms"], 2),
        f"qps_ratio_{c}": round(result["ours"][c]["qps"] / result["minimal"][c]["qps"], 2),
        "qps_ratio_1": round(result["ours"]["1"]["qps"] / result["minimal"]["1"]["qps"], 2),
        "hybrid_vs_dense_p50_1": round(result["ours"]["1"]["p50_ms"] / result["ours_dense"]["1"]["p50_ms"], 2),
    }
    sys.stdout.write(json.dumps({"benchmark": "http_query", **result, **ratios}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
