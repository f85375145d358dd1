"""``GET /v1/models`` and ``flywheel models``: registered versions with status, parent, dataset and metrics; filters;
404 for an unknown version, 422 for an unknown kind or status, 403 for an agent key; the CLI's table, JSON and
usage errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from core.settings import Settings
from core.types import ModelKind
from customization.registry import DatasetRef
from flywheel.cli import app
from flywheel.container import Container

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "test-admin-key"}


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = Container(settings)
    for n in range(2):
        with c.registry.staging(ModelKind.EMBEDDER) as work:
            (work / "model").mkdir()
            (work / "model" / "weights.txt").write_text(f"embedder {n}")
            c.registry.register(
                ModelKind.EMBEDDER, work / "model", parent="v1" if n else None,
                datasets=[DatasetRef("contrastive", n + 1, f"hash{n}", ("alice",))], config={"epochs": 3}, seed=42,
                metrics={"rows": 100 * (n + 1), "steps": 10, "train_seconds": 12.5},
            )  # fmt: skip
    c.registry.activate(ModelKind.EMBEDDER, "v2")
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, warm_up=False)) as tc:
        yield tc


def test_models_are_listed_with_status_lineage_and_metrics_and_filter(client: TestClient) -> None:
    listed = client.get("/v1/models", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [(m["kind"], m["version"], m["status"]) for m in rows] == [
        ("embedder", "v1", "candidate"), ("embedder", "v2", "active"),
    ]  # fmt: skip
    v2 = rows[1]
    assert (v2["parent"], v2["dataset_version"], v2["provenance_hash"], v2["seed"]) == (
        "v1",
        "contrastive/v2",
        "hash1",
        42,
    )
    assert v2["metrics"]["rows"] == 200 and v2["config"] == {"epochs": 3}
    assert "path" not in v2 and "alice" not in listed.text  # no filesystem paths, no users
    active = client.get("/v1/models", params={"kind": "embedder", "status": "active"}, headers=ADMIN).json()
    assert [m["version"] for m in active] == ["v2"]
    assert client.get("/v1/models", params={"kind": "reranker"}, headers=ADMIN).json() == []
    one = client.get("/v1/models/embedder/v1", headers=ADMIN)
    assert one.status_code == 200 and one.json()["status"] == "candidate"


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/models/embedder/v9", {}, 404),
        ("/v1/models/embedder/latest", {}, 404),
        ("/v1/models/tokenizer/v1", {}, 422),
        ("/v1/models", {"kind": "tokenizer"}, 422),
        ("/v1/models", {"status": "archived"}, 422),
    ],
)
def test_when_the_model_or_filter_is_unknown_then_a_problem(
    client: TestClient, path: str, params: dict[str, str], status: int
) -> None:
    response = client.get(path, params=params, headers=ADMIN)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_agent_key_may_not_list_models(client: TestClient) -> None:
    created = client.post("/v1/keys", json={"name": "a", "role": "agent"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert client.get("/v1/models", headers={"X-API-Key": created.json()["key"]}).status_code == 403


def test_models_command_lists_versions_as_json_and_table_and_refuses_an_unknown_kind(container: Container) -> None:
    runner = CliRunner()
    as_json = runner.invoke(app, ["models", "--json"], obj=container)
    assert as_json.exit_code == 0, as_json.output
    assert [(m["version"], m["status"]) for m in json.loads(as_json.stdout)] == [("v1", "candidate"), ("v2", "active")]
    table = runner.invoke(app, ["models", "--status", "active"], obj=container)
    assert table.exit_code == 0 and "active" in table.stdout and "candidate" not in table.stdout
    bad = runner.invoke(app, ["models", "--kind", "tokenizer"], obj=container)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: kind must be one of embedder")


def test_the_models_table_fits_80_columns_without_cutting_a_column(container: Container) -> None:
    with container.registry.staging(ModelKind.GENERATOR_ADAPTER) as work:
        (work / "adapter").mkdir()
        (work / "adapter" / "weights.txt").write_text("adapter")
        container.registry.register(
            ModelKind.GENERATOR_ADAPTER, work / "adapter", datasets=[DatasetRef("sft", 12, "h", ())],
            metrics={"examples": 12345, "train_seconds": 1234.5},
        )  # fmt: skip
    table = CliRunner().invoke(app, ["models"], obj=container, env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in table.stdout  # nothing cut: kinds, statuses, datasets and times are whole
    for whole in ("embedder", "generator", "candidate", "active", "contrastive/v2", "sft/v12", "12345", "1234"):
        assert whole in table.stdout, whole
