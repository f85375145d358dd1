"""ApiKeyService (hashing, roles, revocation, bootstrap) and the ``flywheel keys`` / ``flywheel curate`` commands."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fakes import FakeScrubber
from typer.testing import CliRunner

from core.errors import ConflictError, ForbiddenError, InvalidInputError, UnauthorizedError
from core.settings import Settings
from core.types import FeedbackEvent, FeedbackKind
from feedback.auth import ApiKeyService, hash_key
from feedback.store import Role, SqlStore
from flywheel.cli import app
from flywheel.container import Container

runner = CliRunner()


@pytest.fixture
def service(tmp_path: Path) -> Any:
    store = SqlStore(f"sqlite:///{tmp_path / 'keys.db'}")
    yield ApiKeyService(store), store
    store.close()


@pytest.mark.unit
def test_when_key_created_then_only_its_hash_is_stored_and_it_verifies(service: Any) -> None:
    keys, store = service
    record, raw = keys.create("agent", name="bot")
    principal = keys.verify(raw)
    assert (principal.key_id, principal.role, principal.name) == (record.id, Role.AGENT, "bot")
    with store.engine.connect() as conn:
        stored = " ".join(str(r) for r in conn.execute(sa.text("SELECT * FROM fb_api_keys")))
    assert raw not in stored and hash_key(raw) in stored


class CountingKeyStore(SqlStore):
    """The real store, counting key look-ups (how often a verify reached the database)."""

    lookups = 0

    def find_api_key(self, key_hash: str) -> Any:
        self.lookups += 1
        return super().find_api_key(key_hash)


@pytest.mark.unit
def test_when_a_key_is_verified_again_within_the_ttl_then_no_database_read_and_revoke_applies_at_once(
    tmp_path: Path,
) -> None:
    store = CountingKeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    keys = ApiKeyService(store, cache_ttl_s=60.0)
    record, raw = keys.create("agent", name="bot")
    assert keys.cached(raw) is None  # never verified yet
    first = keys.verify(raw)
    assert [keys.verify(raw) for _ in range(5)] == [first] * 5 and keys.cached(raw) == first
    assert store.lookups == 1
    keys.revoke(record.id)
    assert keys.cached(raw) is None
    with pytest.raises(UnauthorizedError, match="revoked"):
        keys.verify(raw)
    with pytest.raises(UnauthorizedError, match="unknown"):  # unknown keys are looked up every time, never cached
        keys.verify("fwk_unknown")
    with pytest.raises(UnauthorizedError, match="unknown"):
        keys.verify("fwk_unknown")
    assert store.lookups == 4
    store.close()


@pytest.mark.unit
def test_when_the_ttl_is_zero_or_past_then_every_verify_reads_the_database(tmp_path: Path) -> None:
    store = CountingKeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    _, raw = ApiKeyService(store).create("agent", name="bot")
    uncached = ApiKeyService(store, cache_ttl_s=0.0)
    uncached.verify(raw)
    uncached.verify(raw)
    assert store.lookups == 2 and uncached.cached(raw) is None
    short = ApiKeyService(store, cache_ttl_s=0.05)
    short.verify(raw)
    time.sleep(0.06)
    assert short.cached(raw) is None
    short.verify(raw)
    assert store.lookups == 4
    store.close()


@pytest.mark.unit
@pytest.mark.parametrize(("raw", "message"), [(None, "missing"), ("", "missing"), ("fwk_unknown", "unknown")])
def test_when_key_missing_or_unknown_then_unauthorized(service: Any, raw: str | None, message: str) -> None:
    with pytest.raises(UnauthorizedError, match=message):
        service[0].verify(raw)


@pytest.mark.unit
def test_when_key_revoked_then_unauthorized_and_second_revoke_conflicts(service: Any) -> None:
    keys, _ = service
    record, raw = keys.create(Role.READER, name="r")
    keys.revoke(record.id)
    with pytest.raises(UnauthorizedError, match="revoked"):
        keys.verify(raw)
    with pytest.raises(ConflictError):
        keys.revoke(record.id)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("role", "needs", "allowed"),
    [
        ("agent", "agent", True),
        ("reader", "agent", False),
        ("agent", "reader", False),
        ("admin", "agent", True),
        ("admin", "reader", True),
        ("reader", "reader", True),
    ],
)
def test_when_role_checked_then_admin_passes_everything(service: Any, role: str, needs: str, allowed: bool) -> None:
    keys, _ = service
    principal = keys.verify(keys.create(role, name="x")[1])
    assert principal.has_role(needs) is allowed
    if not allowed:
        with pytest.raises(ForbiddenError, match=f"needs the {needs} role"):
            principal.require(needs)


@pytest.mark.unit
def test_when_bootstrap_key_configured_then_stored_once_as_admin(service: Any) -> None:
    keys, _ = service
    assert keys.bootstrap_admin("test-admin-key") is not None
    assert keys.bootstrap_admin("test-admin-key") is None
    assert keys.verify("test-admin-key").role == Role.ADMIN
    with pytest.raises(InvalidInputError):
        keys.bootstrap_admin("short")
    with pytest.raises(InvalidInputError, match="unknown role"):
        keys.create("boss", name="x")


@pytest.fixture
def container(settings: Settings, embedder: Any, passage_index: Any) -> Any:
    built = Container(
        settings, overrides={"embedder": embedder, "scrubber": FakeScrubber(), "passage_index": passage_index}
    )
    yield built
    built.close()


@pytest.mark.integration
def test_when_keys_commands_run_then_key_is_created_listed_and_revoked(container: Container) -> None:
    created = runner.invoke(app, ["keys", "create", "--role", "agent", "--name", "cli-bot", "--json"], obj=container)
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert container.api_keys.verify(key["key"]).role == Role.AGENT
    listed = runner.invoke(app, ["keys", "list"], obj=container)
    assert key["id"] in listed.output and key["key"] not in listed.output
    assert runner.invoke(app, ["keys", "revoke", key["id"]], obj=container).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "nope"], obj=container).exit_code == 3
    bad = runner.invoke(app, ["keys", "create", "--role", "boss"], obj=container)
    assert bad.exit_code == 2 and "unknown role" in bad.output


@pytest.mark.integration
def test_when_curate_runs_then_too_few_events_exit_2_and_enough_events_write_datasets(
    container: Container, make_query: Any
) -> None:
    few = runner.invoke(app, ["curate"], obj=container)
    assert few.exit_code == 2 and "needs at least 10" in few.output
    store = container.feedback_store
    for i, (question, chunk) in enumerate([("How do I reset my password?", "c1"), ("When is billing run?", "c2")] * 6):
        q = make_query(question=question, chunk_ids=[chunk, "c3"], user_id=f"u{i}")
        store.record_query(q)
        event = FeedbackEvent(uuid.uuid4().hex, q.id, FeedbackKind.THUMBS, {"value": "up"}, user_id=f"u{i}")
        store.add_events([event], idempotency_keys=[None])
    done = runner.invoke(app, ["curate", "--json", "--holdout-share", "0.01"], obj=container)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["written"]["contrastive"] == 1 and report["events"] == 12
    assert (Path(container.settings.datasets_dir) / "contrastive" / "v1" / "manifest.json").is_file()
