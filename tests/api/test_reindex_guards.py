"""Reindex sources are confined to ``indexing.source_roots`` (422 otherwise, incl. ``..`` and escaping symlinks),
and a (re)index that would drop most of the live corpus needs ``allow_shrink`` (``indexing.max_drop_share``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeScrubber, HashingEmbedder
from fastapi.testclient import TestClient

from api.app import create_app
from core.errors import InvalidInputError
from core.settings import Settings
from core.types import Document
from flywheel.container import Container
from indexing.confine import confine_source
from indexing.manager import IndexManager

ADMIN = {"X-API-Key": "test-admin-key"}


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    root = tmp_path / "sources"
    (root / "kb").mkdir(parents=True)
    (root / "kb" / "a.md").write_text("# A\n\nRefunds take 14 days.\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.md").write_text("# Secret\n")
    return [root]


@pytest.mark.unit
@pytest.mark.parametrize(
    "source",
    ["/etc", "/etc/passwd", "../outside", "kb/../../outside", "/", "link-out", "kb-with-link", "file-link.md"],
)
def test_when_source_outside_the_roots_then_invalid_input(roots: list[Path], tmp_path: Path, source: str) -> None:
    root = roots[0]
    os.symlink(tmp_path / "outside", root / "link-out")
    (root / "kb-with-link").mkdir()
    os.symlink(tmp_path / "outside" / "secret.md", root / "kb-with-link" / "secret.md")
    os.symlink(tmp_path / "outside" / "secret.md", root / "file-link.md")
    with pytest.raises(InvalidInputError) as info:
        confine_source(source, roots=roots)
    assert str(root) in info.value.message and info.value.detail["field"] == "source"


@pytest.mark.unit
def test_sources_under_the_roots_resolve(roots: list[Path], tmp_path: Path) -> None:
    root = roots[0]
    os.symlink(root / "kb", root / "alias")  # a link that stays inside is fine
    assert confine_source("kb", roots=roots) == str(root / "kb")
    assert confine_source(str(root / "kb" / "a.md"), roots=roots) == str(root / "kb" / "a.md")
    assert confine_source("alias", roots=roots) == str(root / "kb")
    assert confine_source("builtin:faq", roots=roots) == "builtin:faq"
    assert confine_source("/srv/configured", roots=roots, always_allowed=["/srv/configured"]) == "/srv/configured"


@pytest.mark.integration
def test_when_api_reindex_source_escapes_then_422_and_no_job(settings: Settings, tmp_path: Path) -> None:
    container = Container(settings.model_copy(update={"indexing": settings.indexing.model_copy(
        update={"source_roots": []})}))  # fmt: skip
    (settings.data_dir / "sources" / "kb").mkdir(parents=True)
    (settings.data_dir / "sources" / "kb" / "a.md").write_text("# A\n\nRefunds take 14 days.\n")
    with TestClient(create_app(container, warm_up=False)) as client:
        for source in ("/etc", "../../etc", str(settings.data_dir)):
            refused = client.post("/v1/jobs", json={"kind": "reindex", "params": {"source": source}}, headers=ADMIN)
            assert refused.status_code == 422, refused.text
            assert "outside the source roots" in refused.json()["detail"]
        assert container.state_store.list_jobs(limit=10) == []
        bad_flag = {"kind": "reindex", "params": {"source": "kb", "allow_shrink": "yes"}}
        assert client.post("/v1/jobs", json=bad_flag, headers=ADMIN).status_code == 422
        accepted = client.post("/v1/jobs", json={"kind": "reindex", "params": {"source": "kb"}}, headers=ADMIN)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["params"]["source"] == str((settings.data_dir / "sources" / "kb").resolve())
        container.job_runner.wait(accepted.json()["id"], timeout=120)


def _docs(n: int) -> list[Document]:
    return [Document(f"d{i}", f"answer {i} about refunds, number {i}") for i in range(n)]


@pytest.mark.integration
def test_when_a_build_drops_most_of_the_live_corpus_then_refused_unless_allowed(tmp_path: Path) -> None:
    from indexing.chunking import Chunker
    from indexing.stores.edge import EdgeVectorStore

    hashing_embedder = HashingEmbedder()
    store = EdgeVectorStore(tmp_path / "v")
    manager = IndexManager(store, chunker=Chunker(chunk_size=128, chunk_overlap=8), max_drop_share=0.5)
    manager.reindex("kb", _docs(10), embedder=hashing_embedder)
    manager.reindex("kb", _docs(5), embedder=hashing_embedder)  # drops exactly half: allowed
    with pytest.raises(InvalidInputError) as info:
        manager.reindex("kb", [Document("etc", "root:x:0:0"), *_docs(2)], embedder=hashing_embedder)
    assert "allow_shrink" in info.value.message and info.value.detail["dropped"] == 3
    assert store.get_alias("kb") == "kb__v2" and "kb__v3" not in store.list_collections()
    report = manager.reindex("kb", [Document("etc", "root:x:0:0")], embedder=hashing_embedder, allow_shrink=True)
    assert store.get_alias("kb") == report.collection and store.count("kb") == 1
    store.close()


@pytest.mark.integration
def test_reindex_job_with_a_shrinking_source_fails_and_keeps_the_live_version(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    container = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    container.index_manager.reindex("faq", _docs(6), embedder=embedder)
    (tmp_path / "small.jsonl").write_text('{"id": "d0", "text": "answer 0 about refunds, number 0"}\n')
    live = container.vector_store.get_alias("faq")
    job = container.job_runner.submit("reindex", {"source": str(tmp_path / "small.jsonl")})
    done = container.job_runner.wait(job.id, timeout=120)
    assert done.status.value == "failed" and "indexing.max_drop_share" in (done.error or "")
    assert container.vector_store.get_alias("faq") == live
    job = container.job_runner.submit("reindex", {"source": str(tmp_path / "small.jsonl"), "allow_shrink": True})
    assert container.job_runner.wait(job.id, timeout=120).status.value == "succeeded"
    assert container.vector_store.count("faq") == 1
    container.close()
