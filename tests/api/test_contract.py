"""Schemathesis over every operation of the OpenAPI schema, on SQLite and on PostgreSQL: 0 server errors, 0
undocumented statuses or content types, responses that match their schemas.

The app is the real one (embedded store with a small indexed corpus, real MiniLM, the port-fake scrubber); feedback
operations get a real ``query_id`` (and the recorded-query path one) in most cases, so they are exercised past the
"unknown query" 404. Positive and negative (schema-violating) cases; bounded to ``EXAMPLES`` per operation and mode.
Rate limits are raised so the run exercises the routes instead of collecting 429s (which are documented anyway).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeScrubber
from fastapi.testclient import TestClient
from pgschema import throwaway_pg_schema

from api.app import create_app
from core.settings import Settings
from core.types import Document
from flywheel.container import Container

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev requirement (requirements-dev.txt)")
from hypothesis import HealthCheck, Phase, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}
EXAMPLES = 8
DOCS = [
    Document("refund", "Refunds are issued within 14 days. Send the receipt to billing.", {"category": "billing"}),
    Document("password", "To reset your password, open Settings and choose Security.", {"category": "account"}),
    Document("shipping", "Standard shipping takes three to five working days.", {"category": "orders"}),
]
# What the contract allows the service to do, checked on every response.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "response_headers_conformance")  # fmt: skip


def _settings(tmp_path: Any, database_url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db={"url": database_url},
        auth={"enabled": True, "bootstrap_admin_key": "test-admin-key"},
        limits={"write_rate_per_s": 10_000, "write_burst": 10_000, "auth_fail_burst": 10_000},
        deploy={"reindex_cron": None, "canary_check_cron": None},
        _env_file=None,
    )


class _Run:
    """Calls every generated case through the app and tallies statuses and contract failures."""

    def __init__(self, client: TestClient, query_ids: list[str]) -> None:
        self.client = client
        self.query_ids = query_ids
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.calls = 0
        self.unsatisfiable = 0
        self.rng = random.Random(7)

    def _real_ids(self, case: Any) -> None:
        """Most cases get a real query id where the operation takes one (the rest keep the generated one)."""
        if self.rng.random() < 0.2:
            return
        qid = self.rng.choice(self.query_ids)
        if case.path_parameters and "query_id" in case.path_parameters:
            case.path_parameters["query_id"] = qid
        body = case.body
        if isinstance(body, dict) and "query_id" in body:
            body["query_id"] = qid
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            for event in body["events"]:
                if isinstance(event, dict) and "query_id" in event:
                    event["query_id"] = qid

    def call(self, case: Any) -> None:
        from schemathesis import checks

        self._real_ids(case)
        try:
            response = case.call(session=self.client, headers=ADMIN)
        except Exception as exc:
            self.failures.append(f"{case.method} {case.path} -> server error {type(exc).__name__}: {exc}"[:400])
            self.statuses[500] += 1
            return
        self.calls += 1
        self.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[getattr(checks, name) for name in CHECKS], headers=ADMIN)
        except (Exception, BaseExceptionGroup) as exc:
            self.failures.append(f"{case.method} {case.path} -> {response.status_code}: {str(exc)[:300]}")


def _run_all(client: TestClient, query_ids: list[str]) -> _Run:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    run = _Run(client, query_ids)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hsettings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                       derandomize=True, suppress_health_check=list(HealthCheck))  # fmt: skip
            def exercise(case: Any) -> None:
                run.call(case)

            try:
                exercise()
            except Unsatisfiable:  # negative mode of an operation with nothing to violate (no params, no body)
                run.unsatisfiable += 1
    return run


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A throw-away PostgreSQL schema as a URL whose search_path selects it."""
    with throwaway_pg_schema(postgres_url, prefix="contract_") as url:
        yield url


@contextlib.contextmanager
def _live(tmp_path: Any, embedder: Any, database_url: str | None) -> Iterator[tuple[TestClient, list[str]]]:
    settings = _settings(tmp_path, database_url)
    container = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    container.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
    with TestClient(create_app(container, warm_up=False), raise_server_exceptions=False) as client:
        query_ids = [
            client.post("/v1/query", json={"question": q}, headers=ADMIN).json()["query_id"]
            for q in ("refund time", "reset password", "shipping days")
        ]
        yield client, query_ids


def _check(run: _Run, backend: str, started: float) -> None:
    seconds = time.perf_counter() - started
    print(f"schemathesis backend={backend} calls={run.calls} statuses={dict(sorted(run.statuses.items()))} "
          f"server_errors={sum(n for s, n in run.statuses.items() if s >= 500 and s != 503)} "
          f"contract_failures={len(run.failures)} seconds={seconds:.1f}")  # fmt: skip
    assert run.failures == [], "\n".join(run.failures[:20])
    assert run.calls > 0 and 500 not in run.statuses


def test_schemathesis_sqlite(tmp_path: Any, embedder: Any) -> None:
    started = time.perf_counter()
    with _live(tmp_path, embedder, None) as (client, query_ids):
        _check(_run_all(client, query_ids), "sqlite", started)


@pytest.mark.postgres
def test_schemathesis_postgres(tmp_path: Any, embedder: Any, pg_url: str) -> None:
    started = time.perf_counter()
    with _live(tmp_path, embedder, pg_url) as (client, query_ids):
        _check(_run_all(client, query_ids), "postgres", started)
