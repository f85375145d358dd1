"""A real ``flywheel serve`` process killed with SIGKILL in the middle of a reindex job or a cycle, then restarted.

What the issue asks of a crash: queries answer from the last good version, the job shows as failed, nothing
half-built is served or activated, and the next job of the kind runs (the slot is free, leftovers are cleaned up).
The service runs as a subprocess with its own data dir; each kill lands while the job reports progress inside a long
step (embedding for the reindex, training for the cycle), which is where a crash is most likely to hurt. A third
test cancels a reindex there through the API: it stops at its next progress report and drops what it half-built.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "kill-test-admin-key"}
FLYWHEEL = Path(sys.executable).with_name("flywheel")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(FLYWHEEL_DATA_DIR=str(data_dir), FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY=ADMIN["X-API-Key"])
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Service:
    """``flywheel serve`` in a subprocess on a free port."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env, self.port = workdir, env, _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(
            [str(FLYWHEEL), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _until(self._ready, timeout=120, what=f"the service to answer /readyz (log: {self.workdir / 'serve.log'})")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the service exited with {self.proc.returncode}: {self.log()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(encoding="utf-8", errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", headers=ADMIN, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any], *, status: int = 200) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, headers=ADMIN, timeout=60)
        assert response.status_code == status, response.text
        return response.json()


def _indexed_service(tmp_path: Path, faq: list[dict[str, Any]], n: int, **settings: str) -> Service:
    """A data dir whose live corpus holds the first ``n`` FAQ answers, and a service on it (not started)."""
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"id": e["id"], "text": e["a"]}) + "\n" for e in faq[:n]), encoding="utf-8")
    env = _env(tmp_path / "data") | settings
    done = subprocess.run(
        [str(FLYWHEEL), "index", str(small), "--json"], cwd=tmp_path, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return Service(tmp_path, env)


@pytest.fixture
def service(tmp_path: Path, faq: list[dict[str, Any]]) -> Iterator[Service]:
    svc = _indexed_service(tmp_path, faq, 20)
    yield svc
    svc.stop()


@pytest.fixture
def loop_service(tmp_path: Path, faq: list[dict[str, Any]]) -> Iterator[Service]:
    """60 answers, and cycle thresholds a few dozen feedback events can pass."""
    # thumbs and relevance only, no corrections: no eval case has a reference answer, so the answer metrics are
    # declared uncheckable (else the cycle is skipped before training, naming these settings)
    svc = _indexed_service(
        tmp_path, faq, 60, FLYWHEEL_TRAINING__MIN_PAIRS="8", FLYWHEEL_EVAL__MIN_SLICE_CASES="2",
        FLYWHEEL_EVAL__ALLOW_UNCHECKED='["semantic_similarity", "rouge_l"]',
    )
    yield svc
    svc.stop()


def test_a_service_killed_mid_reindex_restarts_serving_the_last_good_version(
    service: Service, faq: list[dict[str, Any]]
) -> None:
    small_ids = {e["id"] for e in faq[:20]}
    service.start()
    before = service.post("/v1/query", {"question": faq[0]["q"]})
    assert before["citations"] and {c["doc_id"] for c in before["citations"]} <= small_ids
    job = service.post("/v1/jobs", {"kind": "reindex", "params": {"source": "builtin:faq"}}, status=202)

    def mid_embed() -> dict[str, Any] | None:
        now = service.get(f"/v1/jobs/{job['id']}")
        assert now["status"] in ("queued", "running"), now  # it must not finish before the kill
        return now if now["step"] == "embed" and now["progress"] > 0.2 else None

    seen = _until(mid_embed, timeout=120, what="the reindex job to report progress inside the embed step")
    assert seen["progress"] < 0.9
    service.kill9()

    collections = service.workdir / "data" / "vectors" / "collections"
    left = sorted(p.name for p in collections.iterdir() if p.name.startswith("faq__"))
    half_built = [name for name in left if name != before["index_version"]]
    assert len(half_built) == 1, left  # what the kill left behind

    service.start()
    failed = service.get(f"/v1/jobs/{job['id']}")
    assert failed["status"] == "failed" and "interrupted" in failed["error"]
    after = service.post("/v1/query", {"question": faq[0]["q"]})
    assert after["index_version"] == before["index_version"]
    assert {c["doc_id"] for c in after["citations"]} <= small_ids

    again = service.post("/v1/jobs", {"kind": "reindex", "params": {"source": "builtin:faq"}}, status=202)
    finished = _until(
        lambda: (j := service.get(f"/v1/jobs/{again['id']}"))["status"] not in ("queued", "running") and j,
        timeout=300, what="the second reindex to finish",
    )  # fmt: skip
    assert finished["status"] == "succeeded", finished
    assert finished["result"]["documents"] == len(faq)
    served = service.post("/v1/query", {"question": faq[100]["q"]})
    assert served["index_version"] == finished["result"]["collection"]
    # the version the killed job half-built was never served and is gone after the next reindex
    assert finished["result"]["pruned"] == half_built
    kept = sorted(p.name for p in collections.iterdir() if p.name.startswith("faq__"))
    assert kept == [before["index_version"], finished["result"]["collection"]]


def test_a_service_killed_mid_cycle_restarts_with_the_cycle_abandoned_and_nothing_activated(
    loop_service: Service, faq: list[dict[str, Any]]
) -> None:
    from indexing.chunking import chunk_id

    service = loop_service
    service.start()
    deployment = service.get("/v1/admin/deployment")
    for n, entry in enumerate(faq[:60]):
        answer = service.post("/v1/query", {"question": entry["q"], "user_id": f"agent-{n % 4}"})
        right = chunk_id(entry["id"], 0)
        wrong = [c["chunk_id"] for c in answer["citations"] if c["chunk_id"] != right]
        up = any(c["chunk_id"] == right for c in answer["citations"])
        events = [
            {"kind": "thumbs", "value": "up" if up else "down"},
            {"kind": "relevance", "relevant": [right], "irrelevant": wrong[:2]},
        ]
        service.post("/v1/feedback:batch", {"events": [e | {"query_id": answer["query_id"]} for e in events]},
                     status=201)  # fmt: skip
    before = service.post("/v1/query", {"question": faq[0]["q"]})
    job = service.post("/v1/jobs", {"kind": "cycle"}, status=202)

    def mid_train() -> dict[str, Any] | None:
        now = service.get(f"/v1/jobs/{job['id']}")
        assert now["status"] in ("queued", "running"), now  # it must not end before the kill
        return now if now["step"] == "train" and now["progress"] > 2 / 8 else None

    _until(mid_train, timeout=180, what="the cycle job to report progress inside the train step")
    service.kill9()
    embedders = service.workdir / "data" / "models" / "embedder"
    assert [p for p in embedders.glob(".staging-*") if p.is_dir()]  # the killed run's half-trained model

    service.start()
    assert not list(embedders.glob(".staging-*"))  # swept at start-up: its owner is dead
    failed = service.get(f"/v1/jobs/{job['id']}")
    assert failed["status"] == "failed" and "interrupted" in failed["error"]
    (cycle,) = [cy for cy in service.get("/v1/cycles") if cy["job_id"] == job["id"]]
    assert cycle["status"] == "abandoned"
    after = service.get("/v1/admin/deployment")
    assert (after["live_collection"], after["models"]) == (deployment["live_collection"], deployment["models"])
    assert service.post("/v1/query", {"question": faq[0]["q"]})["index_version"] == before["index_version"]
    assert len(service.get("/v1/feedback?limit=1000")) == 2 * 60  # every event accepted before the kill is kept

    again = service.post("/v1/jobs", {"kind": "cycle"}, status=202)
    finished = _until(
        lambda: (j := service.get(f"/v1/jobs/{again['id']}"))["status"] not in ("queued", "running") and j,
        timeout=300, what="the next cycle to finish",
    )  # fmt: skip
    assert finished["status"] == "succeeded", finished


def test_a_reindex_cancelled_mid_embed_stops_within_seconds_and_drops_its_half_build(
    service: Service, faq: list[dict[str, Any]]
) -> None:
    service.start()
    before = service.post("/v1/query", {"question": faq[0]["q"]})
    job = service.post("/v1/jobs", {"kind": "reindex", "params": {"source": "builtin:faq"}}, status=202)

    def mid_embed() -> bool:
        now = service.get(f"/v1/jobs/{job['id']}")
        assert now["status"] in ("queued", "running"), now
        return now["step"] == "embed" and now["progress"] > 0.2

    _until(mid_embed, timeout=120, what="the reindex job to report progress inside the embed step")
    asked = time.monotonic()
    service.post(f"/v1/jobs/{job['id']}/cancel", {}, status=202)
    ended = _until(
        lambda: (j := service.get(f"/v1/jobs/{job['id']}"))["status"] not in ("queued", "running") and j,
        timeout=60, what="the cancelled job to stop",
    )  # fmt: skip
    assert ended["status"] == "cancelled" and ended["step"] == "embed", ended
    assert time.monotonic() - asked < 30  # at its next progress report, not after the whole build
    collections = service.workdir / "data" / "vectors" / "collections"
    assert sorted(p.name for p in collections.iterdir() if p.name.startswith("faq__")) == [before["index_version"]]
    assert service.post("/v1/query", {"question": faq[0]["q"]})["index_version"] == before["index_version"]
