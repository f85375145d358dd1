"""The CLI's backend choice and the HTTP backend's error translation (no service needed: httpx's mock transport).

The live-service end of it is ``tests/flywheel/test_cli_remote.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import errors
from core.errors import (
    ConflictError,
    FlywheelError,
    ForbiddenError,
    GateFailedError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
    UpstreamUnavailableError,
)
from core.settings import Settings
from flywheel.cli import exit_code_for
from flywheel.client import address_path, client_key, read_address, remove_address, running_service, write_address
from flywheel.client_remote import RemoteBackend, error_from_response

BASE = "https://rag-flywheel.dev/problems/"


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)


@pytest.mark.parametrize(
    ("status", "slug", "error", "code"),
    [
        (422, "invalid-input", InvalidInputError, 2),
        (400, "malformed-json", InvalidInputError, 2),
        (404, "not-found", NotFoundError, 3),
        (409, "conflict", ConflictError, 4),
        (409, "gate-failed", GateFailedError, 7),
        (401, "unauthorized", UnauthorizedError, 5),
        (403, "forbidden", ForbiddenError, 5),
        (503, "upstream-unavailable", UpstreamUnavailableError, 6),
        (413, "payload-too-large", InvalidInputError, 2),
        (429, "rate-limited", UpstreamUnavailableError, 6),
        (404, None, NotFoundError, 3),  # a route the service does not have (older version): no problem type
        (500, "internal", FlywheelError, 1),
    ],
)
def test_when_the_service_answers_a_problem_then_the_same_error_and_exit_code(
    status: int, slug: str | None, error: type[FlywheelError], code: int
) -> None:
    body = {"type": BASE + slug if slug else "about:blank", "title": "t", "status": status, "detail": "what went wrong"}
    exc = error_from_response(httpx.Response(status, json=body))
    assert type(exc) is error and exit_code_for(exc) == code
    assert exc.message.startswith("what went wrong") or exc.message.startswith("the service failed")


_ERROR_ARGS: dict[str, dict[str, Any]] = {
    "NotEnoughDataError": {"have": 1, "need": 2}, "PayloadTooLargeError": {"limit_bytes": 10},
    "RateLimitedError": {"retry_after_s": 1.0}, "StorageUnavailableError": {"reason": "full"},
}  # fmt: skip


@pytest.mark.parametrize("name", [n for n in errors.__all__ if n.endswith("Error")])
def test_every_error_the_api_answers_comes_back_to_the_cli_as_the_same_kind(name: str) -> None:
    """One slug per error class (core.errors): what ``api.problems`` writes, the HTTP client reads back."""
    from api.problems import status_for

    raised = getattr(errors, name)("what went wrong", **_ERROR_ARGS.get(name, {}))
    status, slug = status_for(raised)
    assert slug == raised.slug or status == 500
    back = error_from_response(httpx.Response(status, json={"type": BASE + slug, "status": status, "detail": "x"}))
    expected = exit_code_for(raised) if status != 429 else 6  # 429 is "retry later" to a client, like an outage
    assert exit_code_for(back) == expected


def test_a_500_names_its_error_id_and_a_401_says_which_key_to_set() -> None:
    failed = error_from_response(httpx.Response(500, json={"type": BASE + "internal", "detail": "x", "error_id": "e1"}))
    assert "error_id e1" in failed.message
    unauthorized = error_from_response(httpx.Response(401, json={"type": BASE + "unauthorized", "detail": "unknown"}))
    assert "FLYWHEEL_API_KEY" in unauthorized.message


def test_the_remote_backend_sends_the_key_and_parses_times_back() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": "j1", "kind": "cycle", "status": "running", "step": None,
                                          "created_at": "2026-12-01T16:00:00Z"}])  # fmt: skip

    backend = RemoteBackend("http://svc:8000/", api_key="k-1", transport=httpx.MockTransport(handler))
    (job,) = backend.jobs(limit=3)
    assert seen[0].headers["x-api-key"] == "k-1" and seen[0].url.params["limit"] == "3"
    assert job["created_at"].isoformat() == "2026-12-01T16:00:00+00:00"


def test_when_the_service_cannot_be_reached_then_upstream_unavailable_naming_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backend = RemoteBackend("http://svc:8000", transport=httpx.MockTransport(refuse))
    with pytest.raises(UpstreamUnavailableError, match="cannot reach the flywheel service at http://svc:8000"):
        backend.versions()


def test_the_address_file_holds_no_key_and_only_its_writer_removes_it(tmp_path: Path) -> None:
    path = write_address(tmp_path, host="0.0.0.0", port=8123)
    record = json.loads(path.read_text())
    assert record["url"] == "http://127.0.0.1:8123" and record["pid"] == os.getpid()
    assert set(record) == {"url", "pid", "host", "port", "started_at"}
    path.write_text(json.dumps(record | {"pid": record["pid"] + 1}))  # a newer service's file
    remove_address(tmp_path)
    assert path.exists()
    path.write_text(json.dumps(record))
    remove_address(tmp_path)
    assert not path.exists() and read_address(tmp_path) is None


def test_flywheel_url_wins_and_no_address_file_means_in_process(tmp_path: Path) -> None:
    assert running_service(_settings(tmp_path)) is None
    assert running_service(_settings(tmp_path, url="http://kb:8000/")) == "http://kb:8000"


def test_when_the_recorded_process_is_gone_then_a_warning_and_the_file_is_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address_path(tmp_path).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 7}))
    assert running_service(_settings(tmp_path)) is None
    assert capsys.readouterr().err.startswith("warning: stale service address file")
    assert not address_path(tmp_path).exists()


def test_when_the_recorded_process_lives_but_nothing_answers_then_a_warning_and_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address_path(tmp_path).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid()}))
    assert running_service(_settings(tmp_path)) is None
    assert "does not answer at http://127.0.0.1:9" in capsys.readouterr().err
    assert address_path(tmp_path).exists()  # its process lives: not ours to remove


def test_the_client_key_is_flywheel_api_key_else_the_bootstrap_admin_key(tmp_path: Path) -> None:
    assert client_key(_settings(tmp_path)) is None
    assert client_key(_settings(tmp_path, auth={"bootstrap_admin_key": "boot-key"})) == "boot-key"
    assert client_key(_settings(tmp_path, auth={"bootstrap_admin_key": "boot-key"}, api_key="mine")) == "mine"
