"""Core: settings validation, domain helpers, error tree, offline guard, dataset versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import errors
from core.datasets import DatasetRepository
from core.errors import InvalidInputError, NotFoundError
from core.runtime import ensure_offline
from core.settings import Settings
from core.types import (
    ContrastivePair,
    DatasetKind,
    SearchFilter,
    collection_name,
    content_hash,
    parse_collection_name,
)

pytestmark = pytest.mark.unit


def test_when_guard_runs_then_offline_variables_are_set() -> None:
    ensure_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["RAGAS_DO_NOT_TRACK"] == "true"
    assert os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] == ""
    assert Path(os.environ["TIKTOKEN_CACHE_DIR"]).is_dir()
    assert "NLTK_DATA" not in os.environ or os.environ["NLTK_DATA"]


def test_when_env_has_nested_values_then_settings_read_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLYWHEEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLYWHEEL_STORE__KIND", "qdrant")
    monkeypatch.setenv("FLYWHEEL_STORE__URL", "http://localhost:6333")
    monkeypatch.setenv("FLYWHEEL_INDEXING__CHUNK_SIZE", "256")
    s = Settings(_env_file=None)
    assert s.data_dir == tmp_path.resolve()
    assert s.store.kind == "qdrant" and s.store.url == "http://localhost:6333"
    assert s.indexing.chunk_size == 256
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'flywheel.db'}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"indexing": {"chunk_size": 64, "chunk_overlap": 64}},
        {"store": {"kind": "edge", "url": "http://x"}},
        {"generator": {"kind": "openai"}},
        {"indexing": {"corpus": "Bad Name!"}},
        {"retrieval": {"default_top_k": 0}},
    ],
)
def test_when_settings_break_an_invariant_then_validation_fails(overrides: dict) -> None:
    with pytest.raises(ValueError):
        Settings(_env_file=None, **overrides)


def test_when_collection_name_round_trips_then_parts_match() -> None:
    assert collection_name("faq", 3) == "faq__v3"
    assert parse_collection_name("faq__v3") == ("faq", 3)
    assert parse_collection_name("my__corpus__v12") == ("my__corpus", 12)
    assert parse_collection_name("faq") is None
    assert parse_collection_name("faq__vx") is None


def test_when_text_or_metadata_change_then_content_hash_changes() -> None:
    base = content_hash("a", {"x": 1})
    assert base == content_hash("a", {"x": 1})
    assert base != content_hash("b", {"x": 1})
    assert base != content_hash("a", {"x": 2})


@pytest.mark.parametrize(
    ("filters", "error"),
    [({"": "x"}, "non-empty"), ({"k": []}, "empty list"), ({"k": {"a": 1}}, "strings"), ({"k": 1.5}, "strings")],
)
def test_when_filters_are_malformed_then_invalid_input(filters: dict, error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        SearchFilter.from_mapping(filters)


def test_when_filters_are_valid_then_they_become_field_filters() -> None:
    f = SearchFilter.from_mapping({"category": "billing", "lang": ["en", "sv"]})
    assert f is not None
    assert [(c.key, c.values) for c in f.must] == [("category", ("billing",)), ("lang", ("en", "sv"))]
    assert SearchFilter.from_mapping({}) is None


def test_error_tree_roots_and_builtin_bases() -> None:
    for name in errors.__all__:
        member = getattr(errors, name)
        if name.endswith("_SLUG"):  # problem types without an error class
            assert isinstance(member, str) and member
            continue
        assert issubclass(member, errors.FlywheelError)
        assert member.slug and member.slug.islower()
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)
    e = errors.NotEnoughDataError("too few", have=3, need=32)
    assert (e.have, e.need, e.detail["need"]) == (3, 32, 32)
    assert errors.UpstreamUnavailableError("down", retry_after_s=5).retry_after_s == 5


def test_when_dataset_written_then_versions_are_immutable_and_readable(tmp_path: Path) -> None:
    repo = DatasetRepository(tmp_path)
    rows = [ContrastivePair(query="q", positive="p", negatives=["n"], provenance=["e1", "e2"])]
    m1 = repo.write(DatasetKind.CONTRASTIVE, rows, event_ids=["e2", "e1"], user_ids=["u1"])
    m2 = repo.write(DatasetKind.CONTRASTIVE, rows + rows, event_ids=["e1"])
    assert (m1.version, m2.version) == (1, 2)
    assert repo.versions(DatasetKind.CONTRASTIVE) == [1, 2]
    assert repo.read(DatasetKind.CONTRASTIVE, 1) == rows
    assert len(repo.read(DatasetKind.CONTRASTIVE)) == 2
    manifest = repo.manifest(DatasetKind.CONTRASTIVE, 1)
    assert manifest.event_ids == ["e1", "e2"] and manifest.user_ids == ["u1"]
    assert manifest.provenance_hash != m2.provenance_hash
    with pytest.raises(NotFoundError):
        repo.read(DatasetKind.SFT)
    with pytest.raises(NotFoundError):
        repo.manifest(DatasetKind.CONTRASTIVE, 9)
    assert not [p for p in (tmp_path / "contrastive").iterdir() if p.name.startswith(".")]
