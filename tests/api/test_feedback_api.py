"""Feedback, consent, correction and key endpoints through TestClient on a real container.

Real wiring: embedded vector store with a tiny indexed corpus, real MiniLM, real Presidio scrubber, SQLite feedback
store, fast path ``immediate`` (a correction reaches the live index at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.types import Document
from flywheel.container import Container

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}
PROBLEM = "application/problem+json"
DOCS = [
    Document("refund", "Refunds are issued within 14 days. Send the receipt to billing.", {"category": "billing"}),
    Document("password", "To reset your password, open Settings and choose Security.", {"category": "account"}),
    Document("shipping", "Standard shipping takes three to five working days.", {"category": "orders"}),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[TestClient]:
    """One app over one indexed container (real scrubber, immediate fast path, small limits)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fbapi") / "data",
        auth={"enabled": True, "bootstrap_admin_key": "test-admin-key"},
        feedback={"fast_path": "immediate", "max_text_chars": 300, "max_batch": 5},
        _env_file=None,
    )
    container = Container(settings, overrides={"embedder": embedder})
    container.index_manager.reindex(settings.indexing.corpus, DOCS, embedder=embedder)
    with TestClient(create_app(container, warm_up=False)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(client: TestClient) -> dict[str, dict[str, str]]:
    """Agent and reader keys created through the API by the bootstrap admin."""
    out = {}
    for role in ("agent", "reader"):
        response = client.post("/v1/keys", json={"role": role, "name": f"test-{role}"}, headers=ADMIN)
        assert response.status_code == 201, response.text
        out[role] = {"X-API-Key": response.json()["key"]}
    return out


def _ask(client: TestClient, headers: dict[str, str], question: str = "How long do refunds take?", **extra: Any) -> Any:
    response = client.post("/v1/query", json={"question": question, **extra}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def _count(client: TestClient) -> int:
    return len(client.get("/v1/feedback", params={"limit": 1000}, headers=ADMIN).json())


def test_when_no_key_then_401_and_wrong_role_then_403(client: TestClient, keys: dict) -> None:
    query = _ask(client, keys["agent"])
    body = {"query_id": query["query_id"], "kind": "used"}
    assert _problem(client.post("/v1/feedback", json=body), 401)["title"] == "Unauthorized"
    _problem(client.post("/v1/feedback", json=body, headers=keys["reader"]), 403)
    _problem(client.get("/v1/feedback", headers=keys["agent"]), 403)
    _problem(client.delete("/v1/users/u1/data", headers=keys["agent"]), 403)
    _problem(client.post("/v1/keys", json={"role": "admin", "name": "x"}, headers=keys["agent"]), 403)


KINDS = [
    {"kind": "thumbs", "value": "up"},
    {"kind": "stars", "value": 4},
    {"kind": "comment", "text": "Mail me at jane.doe@example.com please"},
    {"kind": "issue", "text": "Outdated policy"},
    {"kind": "used"},
    {"kind": "copied"},
    {"kind": "edited", "text": "Refunds are issued within two weeks."},
    {"kind": "abandoned"},
    {"kind": "regenerated"},
    {"kind": "dwell", "seconds": 3.5},
    {"kind": "missing_knowledge", "text": "Refund policy for gift cards"},
]


@pytest.mark.parametrize("event", KINDS, ids=[k["kind"] for k in KINDS])
def test_when_event_valid_then_201_and_listed_scrubbed(client: TestClient, keys: dict, event: dict) -> None:
    query = _ask(client, keys["agent"], user_id="u-kinds")
    response = client.post("/v1/feedback", json={"query_id": query["query_id"], "user_id": "u-kinds", **event},
                           headers=keys["agent"])  # fmt: skip
    assert response.status_code == 201, response.text
    listed = client.get("/v1/feedback", params={"query_id": query["query_id"]}, headers=keys["reader"]).json()
    assert [e["id"] for e in listed] == [response.json()["id"]] and listed[0]["kind"] == event["kind"]
    assert "jane.doe@example.com" not in str(listed)


def test_when_relevance_and_preference_then_references_are_checked(client: TestClient, keys: dict) -> None:
    a, b = _ask(client, keys["agent"]), _ask(client, keys["agent"])
    chunk = a["citations"][0]["chunk_id"]
    ok = client.post("/v1/feedback", json={"query_id": a["query_id"], "kind": "relevance", "relevant": [chunk]},
                     headers=keys["agent"])  # fmt: skip
    assert ok.status_code == 201
    pref = {"query_id": a["query_id"], "kind": "preference", "other_query_id": b["query_id"], "strength": "clear"}
    assert client.post("/v1/feedback", json=pref, headers=keys["agent"]).status_code == 201
    bad = client.post("/v1/feedback", json={"query_id": a["query_id"], "kind": "relevance", "relevant": ["no-such"]},
                      headers=keys["agent"])  # fmt: skip
    assert "no-such" in _problem(bad, 422)["detail"]


BAD_INPUT = [
    ("unknown query_id", {"query_id": "nope", "kind": "used"}, 404, "'nope' does not exist"),
    ("wrong kind/field combination", {"kind": "thumbs", "value": "up", "text": "hi"}, 422, "text"),
    ("stars above 5", {"kind": "stars", "value": 6}, 422, "less than or equal to 5"),
    ("stars below 1", {"kind": "stars", "value": 0}, 422, "greater than or equal to 1"),
    ("oversized text", {"kind": "comment", "text": "x" * 301}, 422, "limit is 300"),
    ("unknown kind", {"kind": "telepathy"}, 422, "kind"),
    ("missing field", {"kind": "correction"}, 422, "text"),
    ("bad strength", {"kind": "preference", "other_query_id": "q", "strength": "huge"}, 422, "strength"),
]


@pytest.mark.parametrize(("name", "body", "status", "message"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_when_input_bad_then_problem_and_nothing_stored(
    client: TestClient, keys: dict, name: str, body: dict, status: int, message: str
) -> None:
    query = _ask(client, keys["agent"])
    before = _count(client)
    response = client.post("/v1/feedback", json={"query_id": query["query_id"], **body}, headers=keys["agent"])
    problem = _problem(response, status)
    assert message in problem["detail"] + str(problem.get("errors")), problem
    assert _count(client) == before


def test_when_content_type_not_json_then_415_and_nothing_stored(client: TestClient, keys: dict) -> None:
    before = _count(client)
    response = client.post(
        "/v1/feedback", content=b"kind=used", headers={**keys["agent"], "Content-Type": "text/plain"}
    )
    _problem(response, 415)
    assert _count(client) == before


def test_when_batch_has_bad_items_then_422_lists_every_index_and_nothing_stored(client: TestClient, keys: dict) -> None:
    qid = _ask(client, keys["agent"])["query_id"]
    before = _count(client)
    events = [
        {"query_id": qid, "kind": "used"},
        {"query_id": qid, "kind": "stars", "value": 9},
        {"query_id": "missing", "kind": "used"},
        {"query_id": qid, "kind": "comment", "text": "y" * 400},
    ]
    every_bad = _problem(client.post("/v1/feedback:batch", json={"events": events}, headers=keys["agent"]), 422)
    # a schema error (1) does not hide the unknown query (2) nor the over-long text (3): every bad item is listed
    assert [(e["index"], e["field"]) for e in every_bad["errors"]] == [(1, "value"), (2, "query_id"), (3, "data.text")]
    assert "3 of 4 events are invalid (indexes 1, 2, 3)" in every_bad["detail"]
    intake_bad = _problem(
        client.post("/v1/feedback:batch", json={"events": [events[0], events[2], events[3]]}, headers=keys["agent"]),
        422,
    )
    assert [e["index"] for e in intake_bad["errors"]] == [1, 2]
    too_many = client.post("/v1/feedback:batch", json={"events": [events[0]] * 6}, headers=keys["agent"])
    assert "at most 5" in _problem(too_many, 422)["detail"]
    _problem(client.post("/v1/feedback:batch", json={"events": []}, headers=keys["agent"]), 422)
    assert _count(client) == before
    ok = client.post("/v1/feedback:batch", json={"events": [events[0], events[0]]}, headers=keys["agent"])
    assert ok.status_code == 201 and ok.json()["created"] == 2 and _count(client) == before + 2


def test_when_idempotency_key_repeats_then_same_id_and_stored_once(client: TestClient, keys: dict) -> None:
    qid = _ask(client, keys["agent"])["query_id"]
    headers = {**keys["agent"], "Idempotency-Key": "retry-abc"}
    first = client.post("/v1/feedback", json={"query_id": qid, "kind": "thumbs", "value": "down"}, headers=headers)
    second = client.post("/v1/feedback", json={"query_id": qid, "kind": "thumbs", "value": "down"}, headers=headers)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert len(client.get("/v1/feedback", params={"query_id": qid}, headers=ADMIN).json()) == 1


def test_when_correction_given_then_next_agent_gets_it_and_revoke_removes_it(client: TestClient, keys: dict) -> None:
    question = "Can I get a refund on a gift card?"
    qid = _ask(client, keys["agent"], question)["query_id"]
    text = "Unused gift vouchers are refundable within 30 days."
    correction = client.post("/v1/feedback", json={"query_id": qid, "kind": "correction", "text": text,
                                                   "user_id": "agent-7"}, headers=keys["agent"])  # fmt: skip
    cid = correction.json()["id"]
    listed = client.get("/v1/corrections", params={"state": "applied"}, headers=keys["reader"]).json()
    entry = next(c for c in listed if c["id"] == cid)  # one screen: the text, the question, who proposed it
    assert (entry["text"], entry["question"], entry["state"]) == (text, question, "applied")
    assert entry["proposed_by"]  # who proposed it (as stored: pseudonymous)
    assert _ask(client, keys["agent"], question)["citations"][0]["text"] == text  # top citation for its question
    _problem(client.post(f"/v1/corrections/{cid}/approve", headers=ADMIN), 409)
    _problem(client.post(f"/v1/corrections/{cid}/revoke", headers=keys["agent"]), 403)
    assert client.post(f"/v1/corrections/{cid}/revoke", headers=ADMIN).json()["state"] == "revoked"
    assert text not in [c["text"] for c in _ask(client, keys["agent"], question)["citations"]]
    _problem(client.post("/v1/corrections/nope/revoke", headers=ADMIN), 404)


def test_when_user_opts_out_and_is_deleted_then_data_goes(client: TestClient, keys: dict) -> None:
    qid = _ask(client, keys["agent"], user_id="u-gone")["query_id"]
    client.post("/v1/feedback", json={"query_id": qid, "kind": "used", "user_id": "u-gone"}, headers=keys["agent"])
    _problem(client.post("/v1/users/u-gone/opt-out", headers=keys["agent"]), 403)  # agents cannot speak for users
    _problem(client.post("/v1/users/u-gone/opt-in", headers=keys["agent"]), 403)
    out = client.post("/v1/users/u-gone/opt-out", headers=ADMIN).json()
    assert out["opted_out"] is True and out["opted_out_at"] and out["user_id"] == "u-gone"
    assert client.post("/v1/users/u-gone/opt-in", headers=ADMIN).json()["opted_out"] is False
    report = client.delete("/v1/users/u-gone/data", headers=ADMIN).json()
    assert (report["events_deleted"], report["queries_deleted"]) == (1, 1)
    assert report["datasets"] == [] and report["models"] == []
    _problem(client.get(f"/v1/queries/{qid}", headers=ADMIN), 404)


def test_when_key_revoked_then_it_gets_401(client: TestClient) -> None:
    created = client.post("/v1/keys", json={"role": "reader", "name": "temp"}, headers=ADMIN).json()
    reader = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/feedback", headers=reader).status_code == 200
    assert client.delete(f"/v1/keys/{created['id']}", headers=ADMIN).json()["revoked_at"]
    assert "revoked" in _problem(client.get("/v1/feedback", headers=reader), 401)["detail"]
    _problem(client.delete(f"/v1/keys/{created['id']}", headers=ADMIN), 409)
    _problem(client.delete("/v1/keys/nope", headers=ADMIN), 404)
    _problem(client.post("/v1/keys", json={"role": "boss", "name": "x"}, headers=ADMIN), 422)
    assert created["id"] in [k["id"] for k in client.get("/v1/keys", headers=ADMIN).json()]


def _feedback_metric(client: TestClient, kind: str) -> float:
    text = client.get("/metrics", headers=ADMIN).text
    series = f'flywheel_feedback_events_total{{kind="{kind}"}} '
    found = [line for line in text.splitlines() if line.startswith(series)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_the_feedback_metric_counts_stored_events_never_idempotent_replays(client: TestClient, keys: dict) -> None:
    qid = _ask(client, keys["agent"])["query_id"]
    before = _feedback_metric(client, "copied")
    headers = {**keys["agent"], "Idempotency-Key": "metric-replay"}
    for _ in range(3):  # one event stored, two replays
        assert client.post("/v1/feedback", json={"query_id": qid, "kind": "copied"}, headers=headers).status_code == 201
    batch = {"events": [{"query_id": qid, "kind": "copied"}, {"query_id": qid, "kind": "copied"}]}
    for _ in range(2):  # two stored, then the same two replayed
        response = client.post("/v1/feedback:batch", json=batch, headers={**keys["agent"], "Idempotency-Key": "mb"})
        assert response.status_code == 201
    assert _feedback_metric(client, "copied") - before == 3
