"""A real ``flywheel serve`` whose data dir lives on a tiny filesystem (a 128 MiB tmpfs): a nearly full disk and a
read-only remount give 503s and not-ready, never a dead process (without the guard: SIGBUS, exit 135, no log line).

Needs root to mount; skipped with the reason otherwise. A read-only remount is refused by the kernel while the
service holds files open for writing, so the read-only half restarts the service on the remounted data dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ADMIN = {"X-API-Key": "disk-test-admin-key"}
RESERVE = 16 * 2**20


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from flywheel.cli import main; main(sys.argv[1:])", *args]


def _mount(target: Path, *options: str) -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)], capture_output=True)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip()


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "mnt"
    target.mkdir()
    reason = _mount(target, "size=128m")
    if reason:
        pytest.skip(f"real tiny-filesystem test not possible here: {reason}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


class Serve:
    """This checkout's ``flywheel serve`` in a subprocess."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, ready: bool = True) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(_cli("serve", "--host", "127.0.0.1", "--port", str(port)), cwd=self.workdir,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the service did not answer /healthz")

    def assert_alive(self) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        log = (self.workdir / "serve.log").read_text(errors="replace")[-3000:]
        assert code is None, f"the service died with exit {code}: {log}"

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", json=body, headers=ADMIN, timeout=120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def _wait_job(serve: Serve, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = serve.call("GET", f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled", "skipped"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def _setup(tmp_path: Path, data: Path, faq: list[dict[str, Any]]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(PYTHONPATH=str(REPO), FLYWHEEL_DATA_DIR=str(data), FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY=ADMIN["X-API-Key"],
               FLYWHEEL_STORE__MIN_FREE_BYTES=str(RESERVE), FLYWHEEL_STORE__MIN_FREE_SHARE="0",
               FLYWHEEL_FEEDBACK__FAST_PATH="immediate", FLYWHEEL_DEPLOY__REINDEX_CRON="",
               FLYWHEEL_DEPLOY__CANARY_CHECK_CRON="")  # fmt: skip
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"id": e["id"], "text": e["a"]}) + "\n" for e in faq[:12]))
    done = subprocess.run(_cli("index", str(small), "--json"), cwd=tmp_path, env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    (data / "sources").mkdir()
    (data / "sources" / "kb.jsonl").write_text(
        "".join(json.dumps({"id": e["id"], "text": e["a"]}) + "\n" for e in faq[:16])
    )
    return env


def _fill(mount: Path, *, leave: int) -> Path:
    """A filler file that leaves ``leave`` bytes free on ``mount``."""
    filler = mount / "filler.bin"
    st = os.statvfs(mount)
    size = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as handle:
        handle.truncate(0)
        chunk = b"\0" * 2**20
        for _ in range(size // len(chunk)):
            handle.write(chunk)
    return filler


@pytest.mark.slow  # ~2 min alone, ~6 min on a loaded 2-core machine
def test_serve_on_a_full_then_read_only_disk_answers_503_and_stays_alive(
    tmp_path: Path, tiny: Path, faq: list[dict[str, Any]]
) -> None:
    data = tiny / "data"
    serve = Serve(tmp_path, _setup(tmp_path, data, faq))
    serve.start()
    try:
        qid = serve.call("POST", "/v1/query", {"question": "How long do refunds take?"}).json()["query_id"]
        filler = _fill(tiny, leave=RESERVE + 2 * 2**20)  # a new collection needs more than that
        before = sorted(p.name for p in (data / "vectors" / "collections").iterdir())
        job = serve.call("POST", "/v1/jobs", {"kind": "reindex", "params": {"source": "kb.jsonl"}})
        assert job.status_code == 202, job.text
        failed = _wait_job(serve, job.json()["id"])
        assert failed["status"] == "failed" and "nearly full" in failed["error"], failed
        serve.assert_alive()
        assert sorted(p.name for p in (data / "vectors" / "collections").iterdir()) == before  # nothing half-built
        assert serve.call("POST", "/v1/query", {"question": "How long do refunds take?"}).status_code == 200
        filler.unlink()
        assert _wait_job(serve, serve.call("POST", "/v1/jobs", {"kind": "reindex", "params": {
            "source": "kb.jsonl"}}).json()["id"])["status"] == "succeeded"  # fmt: skip
    finally:
        serve.stop()

    remount = subprocess.run(["mount", "-o", "remount,ro", str(tiny)], capture_output=True)
    assert remount.returncode == 0, remount.stderr
    try:
        serve.start()
        ready = serve.call("GET", "/readyz")
        assert ready.status_code == 503 and "not writable" in ready.json()["detail"], ready.text
        correction = serve.call("POST", "/v1/feedback", {"query_id": qid, "kind": "correction", "text": "5 days."})
        assert correction.status_code == 503 and correction.headers.get("Retry-After"), correction.text
        query = serve.call("POST", "/v1/query", {"question": "How long do refunds take?"})
        assert query.status_code in (200, 503), query.text
        serve.assert_alive()
    finally:
        serve.stop()
        subprocess.run(["mount", "-o", "remount,rw", str(tiny)], check=False)


def test_when_the_database_disk_fills_then_feedback_503_and_accepted_events_stay(tiny: Path, embedder: Any) -> None:
    """SQLite on a full filesystem: the next event is a 503 with Retry-After, the events accepted before are kept."""
    from fakes import FakeScrubber
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings
    from core.types import Document
    from flywheel.container import Container

    settings = Settings(data_dir=tiny / "data", auth={"enabled": True, "bootstrap_admin_key": ADMIN["X-API-Key"]},
                        store={"min_free_bytes": 0, "min_free_share": 0.0}, _env_file=None)  # fmt: skip
    container = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    container.index_manager.reindex("faq", [Document("refund", "Refunds take 14 days.")], embedder=embedder)
    with TestClient(create_app(container, warm_up=False)) as client:
        qid = client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).json()["query_id"]
        accepted = [
            client.post("/v1/feedback", json={"query_id": qid, "kind": "thumbs", "value": "up"}, headers=ADMIN)
            for _ in range(3)
        ]
        assert [r.status_code for r in accepted] == [201] * 3
        _fill(tiny, leave=0)
        text = "a long comment about the refund policy " * 2000
        full = client.post("/v1/feedback", json={"query_id": qid, "kind": "comment", "text": text[:8000]},
                           headers=ADMIN)  # fmt: skip
        statuses = [full.status_code]
        for _ in range(20):  # SQLite may still fit a few small pages; it must fail cleanly once it cannot
            if statuses[-1] == 503:
                break
            statuses.append(client.post("/v1/feedback", json={"query_id": qid, "kind": "comment", "text": text[:8000]},
                                        headers=ADMIN).status_code)  # fmt: skip
        assert statuses[-1] == 503 and set(statuses) <= {201, 503}, statuses
        (tiny / "filler.bin").unlink()
        listed = client.get("/v1/feedback", params={"limit": 100}, headers=ADMIN).json()
        assert {r.json()["id"] for r in accepted} <= {e["id"] for e in listed}
