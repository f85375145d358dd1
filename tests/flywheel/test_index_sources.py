"""``flywheel index PATH [PATH ...]``: real documentation files, bad files skipped and listed, ``--strict`` aborts;
the reindex job's result lists skipped files; the API's citations carry title, section and source link."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeScrubber
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from core.settings import Settings
from flywheel.cli import app
from flywheel.container import Container

pytestmark = pytest.mark.integration
runner = CliRunner()

PAGE = """<html><head><title>git-push(1)</title></head><body>
<div class="navheader"><table><tr><td><a href="a.html">Prev</a></td>
<td><a href="b.html">Next</a></td></tr></table></div>
<h2>OPTIONS</h2><p>--force-with-lease protects the remote ref: the push is refused
unless the remote ref still points at the commit you expect.</p>
<div id="footer">Last updated 2024-05-31</div></body></html>"""


@pytest.fixture
def container(settings: Settings, embedder: Any) -> Iterator[Container]:
    settings.indexing.source_base_url = "https://docs.example.com/git/"
    built = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    yield built
    built.close()


@pytest.fixture
def trees(tmp_path: Path) -> list[Path]:
    html, notes = tmp_path / "html", tmp_path / "notes"
    html.mkdir()
    notes.mkdir()
    (html / "git-push.html.gz").write_bytes(gzip.compress(PAGE.encode()))
    (html / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (notes / "autocrlf.md").write_text("# Line endings\n\nSet core.autocrlf to input\non Linux.\n")
    (notes / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    return [html, notes]


def _run(container: Container, *args: str) -> Any:
    return runner.invoke(app, list(args), obj=container)


def test_when_index_several_paths_with_bad_files_then_rest_indexed_and_skipped_listed(
    container: Container, trees: list[Path]
) -> None:
    result = _run(container, "index", *map(str, trees), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["documents"] == 2 and report["skipped"] == 2
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped_files"]}
    assert set(reasons) == {"broken.pdf", "blob.txt"} and reasons["blob.txt"] == "binary file"
    assert "skipped " in result.stderr and "broken.pdf" in result.stderr
    texts = [p.payload["text"] for p in container.vector_store.scroll(report["collection"], with_vectors=False)]
    assert not any("Prev" in t or "Next" in t or "Last updated" in t for t in texts)


def test_when_strict_and_a_file_is_bad_then_exit_2_naming_it(container: Container, trees: list[Path]) -> None:
    result = _run(container, "index", *map(str, trees), "--strict")
    assert result.exit_code == 2
    assert "broken.pdf" in result.stderr and "--strict" in result.stderr


def test_reindex_job_result_lists_skipped_files(container: Container, trees: list[Path]) -> None:
    assert _run(container, "index", str(trees[1])).exit_code == 0
    result = _run(container, "reindex", "--source", str(trees[1]), "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["result"]["skipped"] == 1
    assert job["result"]["skipped_files"] == [{"path": str(trees[1] / "blob.txt"), "reason": "binary file"}]


def test_api_citations_carry_title_section_and_link(container: Container, trees: list[Path]) -> None:
    assert _run(container, "index", *map(str, trees)).exit_code == 0
    with TestClient(create_app(container)) as client:
        response = client.post(
            "/v1/query", json={"question": "what does --force-with-lease do?", "top_k": 2},
            headers={"X-API-Key": "test-admin-key"},
        )  # fmt: skip
    assert response.status_code == 200, response.text
    top = response.json()["citations"][0]
    assert top["doc_id"] == "html/git-push.html.gz"
    assert (top["title"], top["section"]) == ("git-push(1)", "OPTIONS")
    assert top["link"] == "https://docs.example.com/git/html/git-push.html.gz"


def test_when_index_would_drop_most_of_the_live_corpus_then_refused_unless_allow_shrink(
    container: Container, tmp_path: Path
) -> None:
    full, small = tmp_path / "full.jsonl", tmp_path / "small.jsonl"
    rows = [{"id": f"d{i}", "text": f"answer {i} about topic {i}"} for i in range(8)]
    full.write_text("".join(json.dumps(row) + "\n" for row in rows))
    small.write_text(json.dumps({"id": "etc", "text": "root:x:0:0"}) + "\n")
    assert _run(container, "index", str(full), "--jsonl").exit_code == 0
    live = container.vector_store.get_alias(container.settings.indexing.corpus)

    refused = _run(container, "index", str(small), "--jsonl")
    assert refused.exit_code == 2 and "allow_shrink" in refused.output  # the wrong folder does not replace the corpus
    assert container.vector_store.get_alias(container.settings.indexing.corpus) == live

    allowed = _run(container, "index", str(small), "--jsonl", "--allow-shrink")
    assert allowed.exit_code == 0, allowed.output
    assert container.vector_store.get_alias(container.settings.indexing.corpus) != live
