"""Query API through TestClient on a real container (embedded store, SQLite feedback store, real MiniLM).

The PII scrubber is the port fake (Presidio has its own tests); everything else is the real wiring.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fakes import EchoGenerator, FakeScrubber
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import require_role
from core.settings import Settings
from core.types import Answer, Citation, Document
from flywheel.container import Container

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}
PROBLEM = "application/problem+json"
DOCS = [
    Document("refund", "Refunds are issued within 14 days. Send the receipt to billing.", {"category": "billing"}),
    Document("password", "To reset your password, open Settings and choose Security.", {"category": "account"}),
    Document("shipping", "Standard shipping takes three to five working days.", {"category": "orders"}),
]


class ExplodingGenerator:
    """Generator port fake raising an unexpected (non-project) error."""

    version = "boom"

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        raise RuntimeError("secret internal detail")


def _container(settings: Settings, embedder: Any, **overrides: Any) -> Container:
    return Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber(), **overrides})


def _indexed(settings: Settings, embedder: Any, **overrides: Any) -> Container:
    container = _container(settings, embedder, **overrides)
    container.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
    return container


@pytest.fixture
def indexed(settings: Settings, embedder: Any) -> Container:
    """A fresh indexed container (for tests that change it)."""
    return _indexed(settings, embedder)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[TestClient]:
    """One app over one indexed container for the read-only tests of this module (same settings as ``settings``)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api") / "data",
        auth={"enabled": True, "bootstrap_admin_key": "test-admin-key"},
        _env_file=None,
    )
    with TestClient(create_app(_indexed(settings, embedder))) as test_client:
        yield test_client


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def test_query_returns_cited_answer_and_record(client: TestClient) -> None:
    response = client.post("/v1/query", json={"question": "When is my refund issued? mail me at a@b.co"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["citations"][0]["doc_id"] == "refund"
    assert set(body["citations"][0]) == {"chunk_id", "doc_id", "text", "score", "title", "section", "link"}
    assert "[1]" in body["answer"]
    assert (body["index_version"], body["embedder_version"]) == ("faq__v1", "base")
    assert (body["generator_version"], body["arm"]) == ("extractive", "current")

    record = client.get(f"/v1/queries/{body['query_id']}", headers=ADMIN)
    assert record.status_code == 200, record.text
    stored = record.json()
    assert stored["question"] == "When is my refund issued? mail me at <EMAIL_ADDRESS>"
    assert stored["chunk_ids"] == [c["chunk_id"] for c in body["citations"]]


def test_filters_and_top_k_applied(client: TestClient) -> None:
    payload = {"question": "how long does it take", "top_k": 2, "filters": {"category": ["orders", "billing"]}}
    body = client.post("/v1/query", json=payload, headers=ADMIN).json()
    assert {c["doc_id"] for c in body["citations"]} == {"shipping", "refund"}


BAD_QUERIES = [
    ("empty question", {"question": ""}, 422, "body.question"),
    ("whitespace question", {"question": "  \t\n "}, 422, "question"),
    ("oversized question", {"question": "x" * 2001}, 422, "question"),
    ("missing question", {"top_k": 3}, 422, "body.question"),
    ("top_k zero", {"question": "refund", "top_k": 0}, 422, "body.top_k"),
    ("top_k 51", {"question": "refund", "top_k": 51}, 422, "body.top_k"),
    ("top_k not int", {"question": "refund", "top_k": "five"}, 422, "body.top_k"),
    ("filters not object", {"question": "refund", "filters": "category=billing"}, 422, "body.filters"),
    ("filter value object", {"question": "refund", "filters": {"category": {"a": 1}}}, 422, "body.filters.category"),
    ("filter value float", {"question": "refund", "filters": {"score": 0.5}}, 422, "body.filters.score"),
    ("filter empty list", {"question": "refund", "filters": {"category": []}}, 422, "filters.category"),
    ("unknown field", {"question": "refund", "topk": 3}, 422, "body.topk"),
]


@pytest.mark.parametrize(("case", "payload", "status", "field"), BAD_QUERIES, ids=[c[0] for c in BAD_QUERIES])
def test_when_query_bad_then_problem_names_field(
    client: TestClient, case: str, payload: dict[str, Any], status: int, field: str
) -> None:
    body = _problem(client.post("/v1/query", json=payload, headers=ADMIN), status)
    fields = [e["field"] for e in body["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert body["instance"] == "/v1/query"


def test_oversized_question_message_is_precise(client: TestClient) -> None:
    body = _problem(client.post("/v1/query", json={"question": "y" * 2001}, headers=ADMIN), 422)
    assert body["detail"] == "question is 2001 characters long; the limit is 2000"


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status"),
    [
        ("wrong content type", {"content": b'{"question": "refund"}', "headers": {"content-type": "text/plain"}}, 415),
        ("form body", {"data": {"question": "refund"}}, 415),
        ("malformed json", {"content": b'{"question": ', "headers": {"content-type": "application/json"}}, 400),
        ("json not object", {"json": ["refund"]}, 422),
    ],
)
def test_when_body_unusable_then_4xx_problem(
    client: TestClient, case: str, request_kwargs: dict[str, Any], status: int
) -> None:
    headers = {**ADMIN, **request_kwargs.pop("headers", {})}
    _problem(client.post("/v1/query", headers=headers, **request_kwargs), status)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/queries/does-not-exist", 404),
        ("GET", "/v1/nothing-here", 404),
        ("GET", "/v1/query", 405),
        ("DELETE", "/healthz", 405),
    ],
)
def test_unknown_things_are_problem_json(client: TestClient, method: str, path: str, status: int) -> None:
    _problem(client.request(method, path, headers=ADMIN), status)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "wrong"}, 401), ({"Authorization": "Bearer wrong"}, 401)],
)
def test_when_key_missing_or_unknown_then_401(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = client.post("/v1/query", json={"question": "refund"}, headers=headers)
    _problem(response, status)
    assert "WWW-Authenticate" in response.headers


def test_bearer_key_accepted_and_role_checked(indexed: Container) -> None:
    _, reader_key = indexed.api_keys.create("reader", name="reader")
    app = create_app(indexed, warm_up=False)

    @app.get("/test-admin-only", dependencies=[require_role("admin")])
    def admin_only() -> dict[str, str]:
        return {"ok": "yes"}

    with TestClient(app) as client:
        ok = client.post("/v1/query", json={"question": "refund"}, headers={"Authorization": f"Bearer {reader_key}"})
        assert ok.status_code == 200, ok.text
        body = _problem(client.get("/test-admin-only", headers={"X-API-Key": reader_key}), 403)
        assert "reader" in body["detail"]
        assert client.get("/test-admin-only", headers=ADMIN).json() == {"ok": "yes"}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "corpus": "faq"}
    assert client.get("/docs").status_code == 200
    assert "/v1/query" in client.get("/openapi.json").json()["paths"]


def test_when_nothing_indexed_then_not_ready_and_query_404(settings: Settings, embedder: Any) -> None:
    with TestClient(create_app(_container(settings, embedder))) as client:
        response = client.get("/readyz")
        body = _problem(response, 503)
        assert "alias missing" in body["detail"]
        assert response.headers["Retry-After"] == "5"
        missing = _problem(client.post("/v1/query", json={"question": "refund"}, headers=ADMIN), 404)
        assert "unknown corpus 'faq'" in missing["detail"]


def test_when_generator_down_then_503_with_retry_after(indexed: Container) -> None:
    indexed.__dict__["generator"] = EchoGenerator(fail=True)
    indexed.__dict__.pop("query_service", None)
    indexed.__dict__.pop("router", None)
    with TestClient(create_app(indexed)) as client:
        response = client.post("/v1/query", json={"question": "refund"}, headers=ADMIN)
        body = _problem(response, 503)
        assert response.headers["Retry-After"] == "3"
        assert body["retry_after_s"] == 2.5


def test_when_unexpected_error_then_generic_500_with_error_id(settings: Settings, embedder: Any) -> None:
    app: FastAPI = create_app(_indexed(settings, embedder, generator=ExplodingGenerator()))
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _problem(client.post("/v1/query", json={"question": "refund"}, headers=ADMIN), 500)
        assert len(body["error_id"]) == 32
        assert "secret" not in str(body)


def test_when_query_log_unreachable_then_not_ready(settings: Settings, embedder: Any) -> None:
    broken = settings.model_copy(
        update={"db": settings.db.model_copy(update={"url": "postgresql+psycopg://x@127.0.0.1:9/x"})}
    )
    with TestClient(create_app(_container(broken, embedder))) as client:
        body = _problem(client.get("/readyz"), 503)
        assert "query path not built" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_metrics_count_requests_by_route_queries_by_arm_feedback_by_kind_and_show_what_is_live(
    indexed: Container,
) -> None:
    with TestClient(create_app(indexed)) as fresh:
        reader = fresh.post("/v1/keys", json={"name": "prom", "role": "reader"}, headers=ADMIN).json()["key"]
        answered = fresh.post("/v1/query", json={"question": "How long do refunds take?"}, headers=ADMIN).json()
        assert fresh.get(f"/v1/queries/{answered['query_id']}", headers=ADMIN).status_code == 200
        assert fresh.get("/v1/queries/nope", headers=ADMIN).status_code == 404
        feedback = {"query_id": answered["query_id"], "kind": "thumbs", "value": "up"}
        assert fresh.post("/v1/feedback", json=feedback, headers=ADMIN).status_code == 201
        assert fresh.get("/metrics").status_code == 401  # like every other read: a key is needed
        scraped = fresh.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    # the route template, never the raw id: one series for both look-ups
    assert 'flywheel_http_requests_total{method="GET",route="/v1/queries/{query_id}",status="200"} 1.0' in text
    assert 'flywheel_http_requests_total{method="GET",route="/v1/queries/{query_id}",status="404"} 1.0' in text
    assert answered["query_id"] not in text
    assert 'flywheel_http_request_duration_seconds_count{method="POST",route="/v1/query"} 1.0' in text
    assert 'flywheel_queries_total{arm="current"} 1.0' in text
    assert 'flywheel_feedback_events_total{kind="thumbs"} 1.0' in text
    live = indexed.vector_store.get_alias(indexed.settings.indexing.corpus)
    assert f'collection="{live}"' in text and 'embedder="base"' in text
    assert "flywheel_canary_share 0.0" in text
