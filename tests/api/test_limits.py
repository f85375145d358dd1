"""Request limits and the contract surface: body size (413), filter size (422), rate limits (429 + Retry-After),
a slow request never blocks the event loop, offline docs, a full / read-only store (503, not ready, no death).

Real wiring (embedded store, SQLite, real MiniLM, the port-fake scrubber); limits are set small per test.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeScrubber
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.types import Document
from flywheel.container import Container
from indexing.stores import diskguard

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}
PROBLEM = "application/problem+json"
DOCS = [
    Document("refund", "Refunds are issued within 14 days. Send the receipt to billing.", {"category": "billing"}),
    Document("shipping", "Standard shipping takes three to five working days.", {"category": "orders"}),
]


def _settings(tmp_path: Any, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth={"enabled": True, "bootstrap_admin_key": "test-admin-key"},
        feedback={"fast_path": "immediate"},
        store={"min_free_bytes": 1024 * 1024, "min_free_share": 0.0},
        _env_file=None,
        **overrides,
    )


def _app(settings: Settings, embedder: Any) -> Any:
    container = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    container.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
    return create_app(container, warm_up=False)


@pytest.fixture
def client(tmp_path: Any, embedder: Any) -> Iterator[TestClient]:
    limits = {"max_body_bytes": 4096, "route_body_bytes": {"/v1/feedback:batch": 8192}, "max_filter_values": 8,
              "max_filter_keys": 3, "write_rate_per_s": 0.5, "write_burst": 5, "auth_fail_burst": 4}  # fmt: skip
    with TestClient(_app(_settings(tmp_path, limits=limits), embedder)) as test_client:
        yield test_client


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def test_when_body_over_route_limit_then_413_with_the_limit(client: TestClient) -> None:
    body = _problem(client.post("/v1/query", json={"question": "x" * 5000}, headers=ADMIN), 413)
    assert body["limit_bytes"] == 4096 and "4096" in body["detail"]
    chunked = client.post("/v1/query", content=iter([b'{"question": "', b"y" * 5000, b'"}']),
                          headers={**ADMIN, "content-type": "application/json"})  # fmt: skip
    assert _problem(chunked, 413)["limit_bytes"] == 4096
    batch = {"events": [{"query_id": "q", "kind": "comment", "text": "z" * 1000}] * 7}  # ~7.3 KB: the batch route's
    assert client.post("/v1/feedback:batch", json=batch, headers=ADMIN).status_code != 413  # own limit applies


@pytest.mark.parametrize(
    ("filters", "field", "limit"),
    [
        ({"category": [f"c{i}" for i in range(9)]}, "body.filters.category", 8),
        ({"a": 1, "b": 2, "c": 3, "d": 4}, "body.filters", 3),
    ],
)
def test_when_filter_too_big_then_422_naming_the_limit(
    client: TestClient, filters: dict[str, Any], field: str, limit: int
) -> None:
    body = _problem(client.post("/v1/query", json={"question": "refund", "filters": filters}, headers=ADMIN), 422)
    assert body["errors"][0]["field"] == field and body["limit"] == limit
    ok = client.post("/v1/query", json={"question": "refund", "filters": {"category": ["billing"] * 8}}, headers=ADMIN)
    assert ok.status_code == 200, ok.text


def test_when_writes_exceed_the_keys_rate_then_429_with_retry_after(client: TestClient) -> None:
    _, other = client.app.state.container.api_keys.create("agent", name="other")  # type: ignore[attr-defined]
    qid = client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).json()["query_id"]
    event = {"query_id": qid, "kind": "thumbs", "value": "up"}
    statuses = [client.post("/v1/feedback", json=event, headers=ADMIN).status_code for _ in range(7)]
    assert statuses[:5] == [201] * 5 and statuses[5:] == [429, 429]
    response = client.post("/v1/feedback", json=event, headers=ADMIN)
    body = _problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1 and body["retry_after_s"] > 0
    assert client.get("/v1/jobs", headers=ADMIN).status_code == 200  # reads are not limited
    assert client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).status_code == 200  # nor queries
    assert client.post("/v1/feedback", json=event, headers={"X-API-Key": other}).status_code == 201


def test_when_an_address_fails_auth_too_often_then_429_even_with_a_good_key(client: TestClient) -> None:
    for _ in range(4):
        _problem(client.get("/v1/jobs", headers={"X-API-Key": f"guess-{time.time()}"}), 401)
    response = client.get("/v1/jobs", headers=ADMIN)
    assert _problem(response, 429)["retry_after_s"] > 0 and "Retry-After" in response.headers
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_a_slow_request_does_not_block_the_event_loop(client: TestClient) -> None:
    """A query held for 2 s in a handler (a slow model) leaves /healthz and other queries answering at once."""
    container = client.app.state.container  # type: ignore[attr-defined]
    router = container.router
    release = threading.Event()
    real_answer = router.answer

    def slow_answer(question: str, **kwargs: Any) -> Any:
        if question == "slow":
            release.wait(2.0)
        return real_answer(question, **kwargs)

    router.answer = slow_answer
    try:
        slow = threading.Thread(target=lambda: client.post("/v1/query", json={"question": "slow"}, headers=ADMIN))
        slow.start()
        time.sleep(0.2)
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).status_code == 200
        assert time.perf_counter() - started < 1.0 and slow.is_alive()
    finally:
        release.set()
        router.answer = real_answer
    slow.join()


def test_docs_and_redoc_load_no_external_asset(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert not re.search(r"(src|href)=[\"']?https?://", html), html
        for asset in re.findall(r"(?:src|href)=[\"']?(/docs-assets/[^\"' >]+)", html):
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset
    assert "cdn.jsdelivr" not in client.get("/docs").text and "fonts.googleapis" not in client.get("/redoc").text


def test_openapi_documents_security_problems_and_query_links(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKeyHeader", "BearerAuth"}
    query = schema["paths"]["/v1/query"]["post"]
    assert query["security"] == [{"ApiKeyHeader": []}, {"BearerAuth": []}]
    for status in ("400", "401", "403", "404", "409", "413", "415", "422", "429", "503"):
        assert PROBLEM in query["responses"][status]["content"], status
    links = query["responses"]["200"]["links"]
    assert links["SubmitFeedback"]["requestBody"] == {"query_id": "$response.body#/query_id"}
    assert links["GetRecordedQuery"]["parameters"] == {"query_id": "$response.body#/query_id"}
    assert "security" not in schema["paths"]["/healthz"]["get"]


# ------------------------------------------------------------------------------------------ full / read-only disk
@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What every DiskGuard sees (fault injected at its ``statvfs`` probe): free bytes and the read-only flag."""
    import os

    state: dict[str, Any] = {"free": 10**10, "ro": False}
    real = os.statvfs

    class Fake:
        def __init__(self, path: Any) -> None:
            real(path)
            self.f_frsize, self.f_blocks = 4096, 10**10 // 4096
            self.f_bavail = state["free"] // 4096
            self.f_flag = os.ST_RDONLY if state["ro"] else 0

    monkeypatch.setattr(diskguard.os, "statvfs", Fake)
    return state


def test_when_store_read_only_then_correction_503_not_ready_and_queries_still_answer(
    tmp_path: Any, embedder: Any, disk: dict[str, Any]
) -> None:
    with TestClient(_app(_settings(tmp_path), embedder)) as client:
        qid = client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).json()["query_id"]
        assert client.get("/readyz").status_code == 200
        points = client.app.state.container.vector_store.count("faq")  # type: ignore[attr-defined]
        disk["ro"] = True
        # the event is accepted and kept (the database is writable); its index write is refused, not attempted
        accepted = client.post(
            "/v1/feedback", json={"query_id": qid, "kind": "correction", "text": "Refunds take 5 days."}, headers=ADMIN
        )
        assert accepted.status_code == 201, accepted.text
        pending = client.get("/v1/corrections", params={"state": "pending"}, headers=ADMIN).json()
        assert len(pending) == 1 and client.app.state.container.vector_store.count("faq") == points  # type: ignore
        response = client.post(f"/v1/corrections/{pending[0]['id']}/approve", headers=ADMIN)
        body = _problem(response, 503)
        assert response.headers["Retry-After"] == "60" and body["reason"] == "read-only"
        ready = _problem(client.get("/readyz"), 503)
        assert "vector store not writable" in ready["detail"] and "query log not writable" in ready["detail"]
        disk["ro"] = False
        assert client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).status_code == 200


def test_when_disk_nearly_full_then_reindex_job_fails_503_and_the_live_version_keeps_serving(
    tmp_path: Any, embedder: Any, disk: dict[str, Any]
) -> None:
    settings = _settings(tmp_path)
    (settings.data_dir / "sources").mkdir(parents=True)
    (settings.data_dir / "sources" / "kb.jsonl").write_text(
        "\n".join(f'{{"id": "refund{i}", "text": "Refund rule {i}: issued within {i} days."}}' for i in range(3))
        + '\n{"id": "refund", "text": "Refunds are issued within 14 days."}\n{"id": "shipping", "text": "Ships fast."}'
    )
    with TestClient(_app(settings, embedder)) as client:
        container = client.app.state.container  # type: ignore[attr-defined]
        live = container.vector_store.get_alias("faq")
        disk["free"] = 512 * 1024  # below the 1 MiB reserve
        job = client.post("/v1/jobs", json={"kind": "reindex", "params": {"source": "kb.jsonl"}}, headers=ADMIN)
        assert job.status_code == 202, job.text
        done = container.job_runner.wait(job.json()["id"], timeout=60)
        assert done.status.value == "failed" and "refused" in (done.error or "")
        assert container.vector_store.get_alias("faq") == live
        assert container.vector_store.list_collections() == sorted(["_flywheel_catalog", live])
        assert client.post("/v1/query", json={"question": "refund"}, headers=ADMIN).status_code == 200
        assert _problem(client.get("/readyz"), 503)["reasons"]
