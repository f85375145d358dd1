"""IndexManager: versions, alias swaps, incremental reindex, keep-K pruning, rollback, failure mid-reindex,
corrections (PassageIndex port). Most tests use the cheap HashingEmbedder fake; one uses the real MiniLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from core.ports import PassageIndex, VectorStore
from core.types import Document, FieldFilter, SearchFilter
from indexing.catalog import CATALOG_COLLECTION
from indexing.chunking import Chunker, chunk_id
from indexing.corrections import question_point_id
from indexing.manager import IndexManager, correction_document
from indexing.stores.edge import EdgeVectorStore
from indexing.stores.qdrant import QdrantVectorStore

pytestmark = pytest.mark.unit


def _docs(n: int = 6) -> list[Document]:
    topics = ["roof tiles", "building permit", "invoice payment", "window frames", "heat pump", "drainage"]
    return [
        Document(
            id=f"doc-{i}",
            text=f"The {topics[i % 6]} answer number {i}. "
            + " ".join(f"Detail {j} about {topics[i % 6]}." for j in range(i * 3)),
            metadata={"category": topics[i % 6].split()[0], "source": "document"},
        )
        for i in range(n)
    ]


@pytest.fixture(params=["edge", "qdrant-local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    made: VectorStore = (
        EdgeVectorStore(tmp_path / "v") if request.param == "edge" else QdrantVectorStore(path=":memory:")
    )
    yield made
    made.close()


@pytest.fixture
def manager(store: VectorStore, chunker: Chunker, hashing_embedder) -> IndexManager:
    return IndexManager(store, chunker=chunker, keep_versions=2, embedder=hashing_embedder)


def _texts(manager: IndexManager, corpus: str = "kb") -> dict[str, str]:
    return {p.id: p.payload["text"] for p in manager.store.scroll(manager.live_collection(corpus))}


def test_first_index_then_unchanged_reindex_embeds_nothing(manager: IndexManager, hashing_embedder) -> None:
    docs = _docs()
    first = manager.reindex("kb", docs, embedder=hashing_embedder)
    assert (first.collection, first.previous, first.swapped) == ("kb__v1", None, True)
    assert first.embedded == first.chunks == manager.store.count("kb") > len(docs)
    assert first.docs_new == len(docs)
    embedded_before = hashing_embedder.embedded
    again = manager.reindex("kb", docs, embedder=hashing_embedder)
    assert (again.collection, again.previous) == ("kb__v2", "kb__v1")
    assert again.embedded == 0 and hashing_embedder.embedded == embedded_before
    assert again.reused == first.chunks and again.docs_unchanged == len(docs)
    assert manager.live_collection("kb") == "kb__v2"
    assert _texts(manager) == {p.id: p.payload["text"] for p in manager.store.scroll("kb__v1")}


def test_changed_doc_replaced_deleted_removed_new_added(manager: IndexManager, hashing_embedder) -> None:
    docs = _docs()
    manager.reindex("kb", docs, embedder=hashing_embedder)
    old_chunks = [p.payload["doc_id"] for p in manager.store.scroll("kb")]
    changed = Document(id="doc-5", text="Completely new drainage text.", metadata=docs[5].metadata)
    added = Document(id="doc-new", text="A brand new document about gutters.")
    report = manager.reindex("kb", [*docs[1:5], changed, added], embedder=hashing_embedder)
    assert (report.docs_unchanged, report.docs_changed, report.docs_new, report.docs_deleted) == (4, 1, 1, 1)
    assert report.embedded == 2  # one chunk each for the changed and the new document
    texts = _texts(manager)
    doc_ids = {p.payload["doc_id"] for p in manager.store.scroll("kb")}
    assert doc_ids == {"doc-1", "doc-2", "doc-3", "doc-4", "doc-5", "doc-new"}
    assert texts[chunk_id("doc-5", 0)] == "Completely new drainage text."
    assert chunk_id("doc-5", 1) not in texts  # the old version had more chunks: none left behind
    assert report.deleted == old_chunks.count("doc-0") + old_chunks.count("doc-5")
    assert manager.store.count("kb") == report.reused + report.embedded


def test_keep_k_versions_and_rollback(manager: IndexManager, hashing_embedder) -> None:
    docs = _docs(3)
    for i in range(4):
        report = manager.reindex(
            "kb", [*docs, Document(id="changing", text=f"Revision {i}.")], embedder=hashing_embedder
        )
    assert report.pruned == ("kb__v1",)
    assert [v.name for v in manager.versions("kb")] == ["kb__v2", "kb__v3", "kb__v4"]  # live + keep_versions=2
    assert all(v.embedder_version == "hash-v1" and v.created_at is not None for v in manager.versions("kb"))
    assert manager.rollback("kb") == "kb__v3"
    assert _texts(manager)[chunk_id("changing", 0)] == "Revision 2."
    assert manager.rollback("kb") == "kb__v2"
    with pytest.raises(ConflictError, match="no previous version"):
        manager.rollback("kb")
    manager.swap_alias("kb", "kb__v4")
    assert manager.live_info("kb").name == "kb__v4"


class FailingSwapStore:
    """A VectorStore (fake at the port) that delegates to a real one but fails the next ``set_alias``."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.fail_next_swap = False

    def set_alias(self, alias: str, collection: str) -> None:
        if self.fail_next_swap:
            self.fail_next_swap = False
            raise StorageError("injected failure between write and swap")
        self.inner.set_alias(alias, collection)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_protected_versions_survive_pruning_without_taking_a_keep_slot(manager: IndexManager, hashing_embedder) -> None:
    docs = _docs(3)
    for i in range(4):  # v1..v4, v4 live
        manager.reindex("kb", [*docs, Document(id="changing", text=f"Revision {i}.")], embedder=hashing_embedder)
    for i in (5, 6):  # candidates built without a swap
        manager.build_version("kb", [*docs, Document(id="changing", text=f"Revision {i}.")], embedder=hashing_embedder)
    # unprotected, v2 and v3 would go (keep_versions=2 keeps v5, v6); protected v2 stays and v3 alone goes
    assert manager.prune("kb", protect={"kb__v2"}) == ["kb__v3"]
    assert {"kb__v2", "kb__v4", "kb__v5", "kb__v6"} == {n for n in manager.store.list_collections() if "kb__" in n}


def test_failure_between_write_and_swap_keeps_alias_on_last_complete_version(
    tmp_path: Path, chunker: Chunker, hashing_embedder
) -> None:
    store = FailingSwapStore(EdgeVectorStore(tmp_path / "v"))
    manager = IndexManager(store, chunker=chunker, keep_versions=2)  # type: ignore[arg-type]
    try:
        manager.reindex("kb", _docs(), embedder=hashing_embedder)
        store.fail_next_swap = True
        with pytest.raises(StorageError, match="injected"):
            manager.reindex("kb", [*_docs(), Document(id="extra", text="More text.")], embedder=hashing_embedder)
        assert store.get_alias("kb") == "kb__v1"
        assert [c for c in store.list_collections() if c != CATALOG_COLLECTION] == ["kb__v1"]
        assert [v.name for v in manager.versions("kb")] == ["kb__v1"]
        assert store.search("kb", hashing_embedder.embed_queries(["roof tiles"])[0], top_k=1)
        assert manager.reindex("kb", _docs(), embedder=hashing_embedder).collection == "kb__v2"
    finally:
        store.inner.close()


def test_failure_while_embedding_drops_half_built_collection(
    manager: IndexManager, hashing_embedder, make_embedder
) -> None:
    manager.reindex("kb", _docs(), embedder=hashing_embedder)
    failing = make_embedder(fail_after=0)
    with pytest.raises(RuntimeError, match="injected"):
        manager.reindex("kb", [*_docs(), Document(id="extra", text="New.")], embedder=failing)
    assert manager.live_collection("kb") == "kb__v1"
    assert "kb__v2" not in manager.store.list_collections()


def test_build_reports_progress_per_batch_and_a_raising_callback_drops_the_half_build(
    manager: IndexManager, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexing.building

    monkeypatch.setattr(indexing.building, "EMBED_BATCH", 4)
    seen: list[tuple[int, int]] = []
    report = manager.build_version(
        "kb", _docs(), embedder=hashing_embedder, on_progress=lambda d, t: seen.append((d, t))
    )
    total = report.embedded
    assert seen == [(min(done, total), total) for done in range(4, total + 4, 4)]

    class Cancelled(Exception):
        pass

    def cancel_after_first(done: int, total: int) -> None:
        if done > 4:
            raise Cancelled

    other = [Document(id=d.id, text=d.text + " Revised.", metadata=d.metadata) for d in _docs()]
    with pytest.raises(Cancelled):
        manager.build_version("kb", other, embedder=hashing_embedder, on_progress=cancel_after_first)
    assert manager.store.list_collections().count("kb__v2") == 0 and manager.store.collection_exists("kb__v1")


def test_crashed_half_build_is_ignored_refused_and_pruned(manager: IndexManager, hashing_embedder) -> None:
    manager.reindex("kb", _docs(), embedder=hashing_embedder)
    manager.store.create_collection("kb__v2", dim=hashing_embedder.dim)  # a crash left it without a catalog entry
    with pytest.raises(ConflictError, match="incomplete"):
        manager.swap_alias("kb", "kb__v2")
    assert [v.name for v in manager.versions("kb")] == ["kb__v1"]
    report = manager.reindex("kb", _docs(), embedder=hashing_embedder)
    assert report.collection == "kb__v3" and "kb__v2" in report.pruned
    assert "kb__v2" not in manager.store.list_collections()


def test_build_version_with_new_embedder_reembeds_without_swap(
    manager: IndexManager, hashing_embedder, make_embedder
) -> None:
    first = manager.reindex("kb", _docs(), embedder=hashing_embedder)
    candidate = make_embedder(version="hash-v2", dim=16)
    report = manager.build_version("kb", _docs(), embedder=candidate)
    assert (report.swapped, report.reused, report.embedded) == (False, 0, first.chunks)
    assert manager.live_collection("kb") == "kb__v1"
    manager.swap_alias("kb", report.collection)
    assert manager.live_info("kb").embedder_version == "hash-v2"
    assert manager.live_info("kb").dim == 16


def test_corrections_are_live_at_once_survive_reindex_when_passed_back_and_revoke(
    manager: IndexManager, hashing_embedder
) -> None:
    assert isinstance(manager, PassageIndex)
    manager.reindex("kb", _docs(), embedder=hashing_embedder)
    meta = {"question": "How do I pay?"}
    cid = manager.upsert_correction("kb", correction_id="c1", query_id="q1", text="Pay by bank transfer.", meta=meta)
    passage = manager.get_passages("kb", [cid, "not-a-uuid", chunk_id("nope", 0)])
    assert list(passage) == [cid]
    assert passage[cid].text == "Pay by bank transfer."
    assert (
        passage[cid].metadata | {"source": "correction", "correction_id": "c1", "query_id": "q1"}
        == passage[cid].metadata
    )
    only_corrections = SearchFilter(must=(FieldFilter("source", ("correction",)),))
    hits = manager.store.search(
        "kb", hashing_embedder.embed_queries(["bank transfer"])[0], top_k=3, filter=only_corrections
    )
    assert [h.payload.get("alias_of", h.id) for h in hits] == [cid, cid]  # the passage and its question point
    question_point = question_point_id("correction:c1")
    assert manager.store.retrieve("kb", [question_point])[0].payload["alias_of"] == cid
    # Passed back in as a Document: reused (not re-embedded) by the next reindex.
    doc = correction_document(correction_id="c1", query_id="q1", text="Pay by bank transfer.", meta=meta)
    report = manager.reindex("kb", [*_docs(), doc], embedder=hashing_embedder)
    assert report.embedded == 0 and cid in manager.get_passages("kb", [cid])
    # Not passed back: gone after the next reindex.
    manager.reindex("kb", _docs(), embedder=hashing_embedder)
    assert manager.get_passages("kb", [cid]) == {}
    cid = manager.upsert_correction("kb", correction_id="c1", query_id="q1", text="Pay by card.", meta=meta)
    manager.revoke_correction("kb", "c1")
    assert manager.get_passages("kb", [cid, question_point]) == {}  # both points gone at once
    with pytest.raises(NotFoundError):
        manager.revoke_correction("kb", "c1")


def test_correction_guards(
    manager: IndexManager, store: VectorStore, chunker: Chunker, hashing_embedder, make_embedder
) -> None:
    with pytest.raises(NotFoundError):
        manager.upsert_correction("kb", correction_id="c", query_id="q", text="x", meta={})
    manager.reindex("kb", _docs(2), embedder=hashing_embedder)
    with pytest.raises(InvalidInputError):
        manager.upsert_correction("kb", correction_id="c", query_id="q", text="  ", meta={})
    with pytest.raises(InvalidInputError):
        manager.upsert_correction("kb", correction_id="c", query_id="q", text="x", meta={"doc_id": "evil"})
    with pytest.raises(ConflictError, match="no embedder"):
        IndexManager(store, chunker=chunker).upsert_correction("kb", correction_id="c", query_id="q", text="x", meta={})
    other = IndexManager(store, chunker=chunker, embedder=make_embedder(version="other"))
    with pytest.raises(ConflictError, match="built by embedder"):
        other.upsert_correction("kb", correction_id="c", query_id="q", text="x", meta={})


@pytest.mark.parametrize("corpus", ["", "Faq", "a__b", "../x", "_flywheel_catalog", "x" * 64])
def test_when_corpus_name_invalid_then_invalid_input(manager: IndexManager, hashing_embedder, corpus: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid corpus name"):
        manager.reindex(corpus, _docs(1), embedder=hashing_embedder)


def test_unknown_corpus_and_duplicate_ids(manager: IndexManager, hashing_embedder) -> None:
    with pytest.raises(NotFoundError, match="unknown corpus"):
        manager.live_collection("nothing")
    with pytest.raises(NotFoundError):
        manager.get_passages("nothing", [chunk_id("a", 0)])
    assert manager.versions("nothing") == []
    with pytest.raises(InvalidInputError, match="duplicate document id"):
        manager.reindex("kb", [Document(id="a", text="x"), Document(id="a", text="y")], embedder=hashing_embedder)
    with pytest.raises(InvalidInputError, match="no documents"):
        manager.reindex("kb", [], embedder=hashing_embedder)
    assert manager.store.get_alias("kb") is None


@pytest.mark.integration
def test_real_minilm_reindex_and_search(tmp_path: Path, embedder, chunker: Chunker) -> None:
    from indexing.loaders import load_builtin_faq

    docs = load_builtin_faq()[:40]
    store = EdgeVectorStore(tmp_path / "v")
    try:
        manager = IndexManager(store, chunker=Chunker(256, 16), keep_versions=1, embedder=embedder)
        report = manager.reindex("faq", docs, embedder=embedder)
        assert report.embedded == report.chunks >= len(docs)
        assert manager.reindex("faq", docs, embedder=embedder).embedded == 0
        target = docs[7]
        query = embedder.embed_queries([target.metadata["question"]])[0]
        hits = store.search("faq", query.tolist(), top_k=3)
        assert target.id in {h.payload["doc_id"] for h in hits}
        assert manager.live_info("faq").embedder_version == "base"
    finally:
        store.close()
