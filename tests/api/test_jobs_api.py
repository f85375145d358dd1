"""Loop endpoints through TestClient: jobs (202, 409 with the running job's id, cancel), cycles (+ HTML report),
lineage, admin gate override, roles. The job runner is the real one with test job kinds (blocking handlers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from flywheel.container import Container
from flywheel.jobs import JobContext, JobRunner
from flywheel.loop import job_param_checks

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}


class Blocking:
    """Job handler that runs until released (checking cancellation)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        ctx.step("work", progress=0.5)
        self.started.set()
        while not self.release.wait(0.02):
            ctx.check_cancelled()
        return {"done": True}


@pytest.fixture
def blocking() -> Blocking:
    return Blocking()


@pytest.fixture
def container(settings: Settings, blocking: Blocking) -> Iterator[Container]:
    c = Container(settings)
    handlers = {"cycle": blocking, "reindex": blocking, "curate": lambda ctx: {"ok": 1}, "eval": lambda ctx: {}}
    c.__dict__["job_runner"] = JobRunner(c.state_store, handlers, checks=job_param_checks(c))
    yield c
    blocking.release.set()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, warm_up=False)) as tc:
        yield tc


def _reader_key(client: TestClient) -> dict[str, str]:
    created = client.post("/v1/keys", json={"name": "r", "role": "reader"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


def test_second_cycle_is_409_naming_the_running_job(client: TestClient, blocking: Blocking) -> None:
    first = client.post("/v1/jobs", json={"kind": "cycle"}, headers=ADMIN)
    assert first.status_code == 202 and first.json()["status"] in ("queued", "running")
    assert blocking.started.wait(10)
    second = client.post("/v1/jobs", json={"kind": "cycle"}, headers=ADMIN)
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["job_id"] == first.json()["id"]
    running = client.get(f"/v1/jobs/{first.json()['id']}", headers=ADMIN).json()
    assert running["status"] == "running" and running["step"] == "work" and running["progress"] == 0.5


def test_cancel_stops_a_running_job(client: TestClient, container: Container, blocking: Blocking) -> None:
    job = client.post("/v1/jobs", json={"kind": "reindex"}, headers=ADMIN).json()
    assert blocking.started.wait(10)
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=ADMIN).status_code == 202
    assert container.job_runner.wait(job["id"], timeout=10).status.value == "cancelled"
    again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=ADMIN)
    assert again.status_code == 409


def test_bad_job_requests(client: TestClient) -> None:
    assert client.post("/v1/jobs", json={"kind": "bake"}, headers=ADMIN).status_code == 422
    assert client.post("/v1/jobs", json={"kind": "cycle", "extra": 1}, headers=ADMIN).status_code == 422
    assert client.get("/v1/jobs/nope", headers=ADMIN).status_code == 404
    assert client.post("/v1/jobs", json={"kind": "cycle"}).status_code == 401
    reader = _reader_key(client)
    assert client.post("/v1/jobs", json={"kind": "cycle"}, headers=reader).status_code == 403
    assert client.get("/v1/jobs", headers=reader).status_code == 200


BAD_PARAMS = [
    ("cycle", {"mode": "sideways"}, 422, "mode must be one of promote, canary, shadow"),
    ("cycle", {"mode": 3}, 422, "params.mode must be a non-empty string"),
    ("cycle", {"embedder": {"epochz": 3}}, 422, "unknown embedder training setting(s) epochz; valid: batch_size"),
    ("cycle", {"embedder": {"epochs": "three"}}, 422, "embedder training setting epochs must be int, got 'three'"),
    ("cycle", {"embedder": {"epochs": 0}}, 422, "epochs must be >= 1"),
    ("cycle", {"embedder": {"teacher": "/no/model"}}, 422, "teacher must be 'mpnet' or a sentence-transformers"),
    ("cycle", {"embedder": [1]}, 422, "params.embedder must be an object"),
    ("cycle", {"modes": "canary"}, 422, "unknown cycle job param(s) modes; valid: mode, embedder"),
    ("reindex", {"source": "/no/such.jsonl"}, 422, "outside the source roots"),
    ("reindex", {"source": "builtin:wiki"}, 422, "unknown built-in corpus 'wiki'"),
    ("curate", {"since": "yesterday"}, 422, "unknown curate job param(s) since; valid: none"),
    ("eval", {}, 422, "a candidate (cycle id or collection name) is required"),
    ("eval", {"candidate": "nope"}, 404, "no cycle or collection named 'nope'"),
]


@pytest.mark.parametrize(("kind", "params", "status", "detail"), BAD_PARAMS)
def test_bad_job_params_are_refused_at_submit_and_record_no_job(
    client: TestClient, container: Container, kind: str, params: dict[str, Any], status: int, detail: str
) -> None:
    refused = client.post("/v1/jobs", json={"kind": kind, "params": params}, headers=ADMIN)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert detail in refused.json()["detail"]
    assert container.state_store.list_jobs(limit=10) == []


def test_checked_params_are_stored_with_the_job(client: TestClient, blocking: Blocking) -> None:
    params = {"mode": "canary", "embedder": {"epochs": 1, "learning_rate": 1e-4}}
    job = client.post("/v1/jobs", json={"kind": "cycle", "params": params}, headers=ADMIN)
    assert job.status_code == 202, job.text
    assert job.json()["params"] == params
    blocking.release.set()


def test_cycles_report_lineage_and_override(client: TestClient, container: Container, tmp_path: Any) -> None:
    state = container.state_store
    cycle = state.create_cycle("faq")
    report = tmp_path / "r.html"
    report.write_text("<html><body>cycle report</body></html>", encoding="utf-8")
    verdict = {"passed": False, "reasons": ["mrr@10 CI includes 0"], "rows": [], "overridden_by": None,
               "override_reason": None}  # fmt: skip
    state.update_cycle(cycle.id, status="rejected", gate_verdict=verdict, report_path=str(report))
    listed = client.get("/v1/cycles", headers=ADMIN).json()
    assert [c["id"] for c in listed] == [cycle.id] and listed[0]["status"] == "rejected"
    assert client.get(f"/v1/cycles/{cycle.id}", headers=ADMIN).json()["gate_verdict"]["passed"] is False
    page = client.get(f"/v1/cycles/{cycle.id}/report", headers=ADMIN)
    assert (
        page.status_code == 200 and "cycle report" in page.text and page.headers["content-type"].startswith("text/html")
    )
    other = state.create_cycle("faq")
    assert client.get(f"/v1/cycles/{other.id}/report", headers=ADMIN).status_code == 404
    assert client.post(f"/v1/admin/cycles/{cycle.id}/override", json={"reason": ""}, headers=ADMIN).status_code == 422
    done = client.post(f"/v1/admin/cycles/{cycle.id}/override", json={"reason": "known flaky slice"}, headers=ADMIN)
    assert done.status_code == 200 and done.json()["passed"] is True
    assert state.get_cycle(cycle.id).gate_verdict["override_reason"] == "known flaky slice"
    container.lineage.link("dataset", "contrastive:v1", "model", "embedder:v1", relation="trained")
    lineage = client.get("/v1/lineage/model/embedder:v1", headers=ADMIN).json()
    assert lineage["upstream"][0]["id"] == "contrastive:v1"
    assert client.get("/v1/lineage/model/embedder:v9", headers=ADMIN).status_code == 404
    assert client.get("/v1/lineage/spaceship/x", headers=ADMIN).status_code == 422
