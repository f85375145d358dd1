"""One adversarial request in flight must not stall everyone: a normal query's p99 with and without it.

Starts a real ``flywheel serve`` (this checkout's code) on a small FAQ corpus, then alternates phases (A/B
interleaved, so drift on a shared machine hits both alike):

- A (unloaded): ``--queries`` normal queries, one at a time, latencies recorded;
- B (loaded): the same while an adversary keeps exactly one request in flight — the biggest the limits allow:
  ``filter`` (``limits.max_filter_keys`` keys x ``limits.max_filter_values`` values) or ``batch`` (a feedback batch of
  long comments filling ``limits.route_body_bytes['/v1/feedback:batch']``). The phase waits for the adversary's last
  request to finish before the next A phase starts. ``plain`` keeps an ordinary query in flight instead: the floor
  that any second request in flight sets on a 2-core machine, to read the adversaries' ratios against.

Prints one JSON line: per adversary the unloaded and loaded p50 / p99 (ms), the p99 ratio (target <= 2), the
adversarial requests completed and their statuses. Timings on a shared 2-core machine are noisy: quote the ratio.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/adversarial_load.py --adversary filter batch --rounds 4
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
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _servers import free_port, wait_ready  # benchmarks/_servers.py (the script's own directory)

REPO = Path(__file__).resolve().parents[1]
ADMIN = {"X-API-Key": "adversarial-bench-admin"}
QUESTIONS = [
    "How long do refunds take?", "Can I change my delivery address?", "Do you build extensions?",
    "What is the warranty on a new roof?", "How do I pay an invoice?", "Who handles planning permission?",
]  # fmt: skip


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(PYTHONPATH=str(REPO), FLYWHEEL_DATA_DIR=str(data_dir),
               FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY=ADMIN["X-API-Key"], FLYWHEEL_DEPLOY__REINDEX_CRON="",
               FLYWHEEL_DEPLOY__CANARY_CHECK_CRON="")  # fmt: skip
    return env


def _cli(*args: str) -> list[str]:
    """This checkout's ``flywheel`` command (``flywheel.cli.main``), run with this interpreter."""
    return [sys.executable, "-c", "import sys; from flywheel.cli import main; main(sys.argv[1:])", *args]


def start_service(workdir: Path, docs: int) -> tuple[subprocess.Popen[bytes], str]:
    """Index ``docs`` FAQ answers into a fresh data dir and start ``flywheel serve`` on it; returns (proc, url)."""
    import zaragoza_construction_faq

    faq = zaragoza_construction_faq.load(lang="en")[:docs]
    source = workdir / "faq.jsonl"
    source.write_text("".join(json.dumps({"id": e["id"], "text": e["a"]}) + "\n" for e in faq), encoding="utf-8")
    env = _env(workdir / "data")
    subprocess.run(_cli("index", str(source), "--json"), cwd=workdir, env=env, check=True, capture_output=True)
    port = free_port()
    log = open(workdir / "serve.log", "ab")  # noqa: SIM115 - the child process owns it
    proc = subprocess.Popen(_cli("serve", "--host", "127.0.0.1", "--port", str(port)), cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, workdir / "serve.log", timeout_s=180)
    except RuntimeError as exc:
        raise SystemExit(f"service did not become ready: {exc}") from exc
    return proc, url


def adversarial_request(kind: str, limits: dict[str, Any], query_id: str) -> tuple[str, dict[str, Any]]:
    """(path, body) of the biggest request the limits allow for ``kind`` (``plain``: an ordinary query)."""
    if kind == "plain":
        return "/v1/query", {"question": "How long do refunds take?"}
    if kind == "filter":
        filters = {f"key{k}": [f"value-{k}-{v}" for v in range(limits["max_filter_values"])]
                   for k in range(limits["max_filter_keys"])}  # fmt: skip
        return "/v1/query", {"question": "How long do refunds take?", "filters": filters}
    budget = limits["batch_bytes"] - 200
    text_chars = min(limits["max_text_chars"], 4000)
    event_bytes = text_chars + 120
    count = max(1, min(limits["max_batch"], budget // event_bytes))
    words = ["the", "invoice", "for", "the", "roof", "repair", "was", "sent", "twice", "so", "a", "refund", "is"]
    text = " ".join(words[i % len(words)] for i in range(text_chars // 5))[:text_chars]
    events = [{"query_id": query_id, "kind": "comment", "text": text} for _ in range(count)]
    return "/v1/feedback:batch", {"events": events}


class Adversary:
    """Keeps one adversarial request in flight until stopped (then waits for the last one to finish)."""

    def __init__(self, url: str, path: str, body: dict[str, Any]) -> None:
        self.url, self.path, self.body = url, path, body
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()
        self.in_flight = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=600) as client:
            while not self.stop.is_set():
                self.in_flight.set()
                response = client.post(self.url + self.path, json=self.body, headers=ADMIN)
                self.statuses[response.status_code] += 1

    def __enter__(self) -> Adversary:
        self.thread.start()
        self.in_flight.wait()
        time.sleep(0.3)  # the request is being parsed / worked on
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_queries(client: httpx.Client, url: str, n: int) -> list[float]:
    """``n`` sequential normal queries; latencies in ms."""
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = client.post(f"{url}/v1/query", json={"question": QUESTIONS[i % len(QUESTIONS)]}, headers=ADMIN)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


def p99(values: list[float]) -> float:
    """99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def measure(url: str, kind: str, limits: dict[str, Any], *, rounds: int, queries: int) -> dict[str, Any]:
    """A/B interleaved rounds for one adversary kind."""
    unloaded: list[float] = []
    loaded: list[float] = []
    statuses: Counter[int] = Counter()
    with httpx.Client(timeout=120) as client:
        run_queries(client, url, 5)  # warm-up
        query_id = client.post(f"{url}/v1/query", json={"question": "refund"}, headers=ADMIN).json()["query_id"]
        path, body = adversarial_request(kind, limits, query_id)
        for _ in range(rounds):
            unloaded += run_queries(client, url, queries)
            with Adversary(url, path, body) as adversary:
                loaded += run_queries(client, url, queries)
            statuses.update(adversary.statuses)
    result = {
        "unloaded_p50_ms": round(statistics.median(unloaded), 1), "unloaded_p99_ms": round(p99(unloaded), 1),
        "loaded_p50_ms": round(statistics.median(loaded), 1), "loaded_p99_ms": round(p99(loaded), 1),
        "adversary_statuses": dict(statuses), "request_bytes": len(json.dumps(body)), "queries_per_phase": queries,
    }  # fmt: skip
    result["p99_ratio"] = round(result["loaded_p99_ms"] / result["unloaded_p99_ms"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adversary", nargs="+", choices=["plain", "filter", "batch"],
                        default=["plain", "filter", "batch"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--queries", type=int, default=30, help="normal queries per phase")
    parser.add_argument("--docs", type=int, default=120, help="FAQ answers indexed")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from core.settings import Settings

    settings = Settings(_env_file=None)
    cfg = settings.limits
    limits = {"max_filter_keys": cfg.max_filter_keys, "max_filter_values": cfg.max_filter_values,
              "batch_bytes": cfg.route_body_bytes.get("/v1/feedback:batch", cfg.max_body_bytes),
              "max_text_chars": settings.feedback.max_text_chars, "max_batch": settings.feedback.max_batch}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="adversarial-"))
    proc, url = start_service(workdir, args.docs)
    try:
        out = {}
        for kind in args.adversary:
            out[kind] = measure(url, kind, limits, rounds=args.rounds, queries=args.queries)
            print(json.dumps({kind: out[kind]}), file=sys.stderr, flush=True)  # progress, in case of a timeout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shutil.rmtree(workdir, ignore_errors=True)  # kept (with serve.log) when anything above failed
    print(json.dumps({"benchmark": "adversarial_load", "limits": limits, "results": out}))


if __name__ == "__main__":
    main()
