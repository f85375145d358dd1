"""The one ``VectorStore`` contract suite (haystack style): every adapter subclasses :class:`VectorStoreContract`.

qdrant-client local mode stands in for a Qdrant server. ``TestCongruence`` runs the same calls on both adapters and
requires the same ids, order and scores.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.ports import VectorStore
from core.types import FieldFilter, HybridParams, Point, SearchFilter, SparseVector
from indexing.sparse import Bm25SparseEncoder
from indexing.stores.edge import EdgeVectorStore
from indexing.stores.qdrant import QdrantVectorStore

pytestmark = pytest.mark.unit

DIM = 8


def _pid(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"point-{i}"))


def _points(n: int = 40, *, seed: int = 0) -> list[Point]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    cats = ["billing", "permits", "roofing"]
    return [
        Point(
            id=_pid(i),
            vector=vectors[i].tolist(),
            payload={
                "text": f"passage {i}",
                "category": cats[i % 3],
                "rank": i % 5,
                "published": i % 2 == 0,
                "tags": ["a", "b"] if i % 4 == 0 else ["c"],
                "meta": {"nested": i},
            },
        )
        for i in range(n)
    ]


def _cosine_top(points: list[Point], query: np.ndarray, k: int) -> list[str]:
    if not points:
        return []
    mat = np.array([p.vector for p in points], dtype=np.float64)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    scores = mat @ (query / np.linalg.norm(query))
    return [points[i].id for i in np.argsort(-scores)[:k]]


_WORDS = ["roof", "permit", "tile", "gutter", "facade", "window", "insulation", "heating", "drain", "concrete", "beam"]
ENCODER = Bm25SparseEncoder()


def _hybrid_points(n: int = 60, *, seed: int = 3, vocabulary: int = 0) -> list[Point]:
    """Points with a text of common words, its BM25 sparse vector and a random dense vector; point 7 alone holds
    the identifier ``sqlstate-23505`` and point 8 alone ``core.autocrlf``."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        words = [_WORDS[j] for j in rng.integers(0, len(_WORDS), size=12)]
        words += [f"term{j}" for j in rng.integers(0, vocabulary, size=6)] if vocabulary else []
        words += ["sqlstate-23505"] if i == 7 else (["core.autocrlf"] if i == 8 else [])
        text = " ".join(words)
        points.append(
            Point(id=_pid(i), vector=rng.normal(size=DIM).tolist(), sparse=ENCODER.encode_document(text),
                  payload={"text": text, "category": ["a", "b"][i % 2]})
        )  # fmt: skip
    return points


HYBRID = HybridParams(sparse_weight=1.0, rrf_k=60, candidates=30, method="rrf")


class VectorStoreContract:
    """Behaviour every ``VectorStore`` adapter must show. Subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def hybrid(self, store: VectorStore) -> list[Point]:
        points = _hybrid_points()
        store.create_collection("hy__v1", dim=DIM, sparse=True)
        store.upsert("hy__v1", points)
        store.set_alias("hy", "hy__v1")
        return points

    def test_has_sparse_only_when_created_with_it(self, store: VectorStore, hybrid: list[Point]) -> None:
        store.create_collection("kb__v1", dim=DIM)
        assert store.has_sparse("hy") and store.has_sparse("hy__v1")
        assert not store.has_sparse("kb__v1")
        with pytest.raises(InvalidInputError):
            store.hybrid_search("kb__v1", [0.1] * DIM, ENCODER.encode_query("roof"), top_k=3, params=HYBRID)

    def test_hybrid_finds_the_identifier_dense_misses(self, store: VectorStore, hybrid: list[Point]) -> None:
        query = (-np.asarray(hybrid[7].vector)).tolist()  # the dense ranking puts point 7 last
        assert hybrid[7].id not in [h.id for h in store.search("hy", query, top_k=10)]
        for question in ("what does SQLSTATE 23505 mean", "sqlstate-23505"):
            hits = store.hybrid_search("hy", query, ENCODER.encode_query(question), top_k=3, params=HYBRID)
            assert hybrid[7].id in [h.id for h in hits]
        hits = store.hybrid_search("hy", query, ENCODER.encode_query("core.autocrlf"), top_k=1,
                                   params=HybridParams(sparse_weight=3.0))  # fmt: skip
        assert hits[0].id == hybrid[8].id

    def test_zero_sparse_weight_is_the_dense_ranking(self, store: VectorStore, hybrid: list[Point]) -> None:
        query = np.random.default_rng(1).normal(size=DIM).tolist()
        dense = store.search("hy", query, top_k=8)
        fused = store.hybrid_search("hy", query, ENCODER.encode_query("roof permit"), top_k=8,
                                    params=HybridParams(sparse_weight=0.0))  # fmt: skip
        assert [h.id for h in fused] == [h.id for h in dense]

    def test_idf_weighs_rare_terms_over_common_ones(self, store: VectorStore, hybrid: list[Point]) -> None:
        query = np.zeros(DIM).tolist()
        query[0] = 1.0
        sparse_only = HybridParams(sparse_weight=1000.0, candidates=60)
        hits = store.hybrid_search("hy", query, ENCODER.encode_query("roof 23505"), top_k=1, params=sparse_only)
        assert hits[0].id == hybrid[7].id  # "roof" is in most passages, "23505" in one

    def test_hybrid_search_applies_filters(self, store: VectorStore, hybrid: list[Point]) -> None:
        only_a = SearchFilter(must=(FieldFilter("category", ("a",)),))
        hits = store.hybrid_search("hy", hybrid[7].vector, ENCODER.encode_query("23505"), top_k=10, params=HYBRID,
                                   filter=only_a)  # fmt: skip
        assert hits and all(h.payload["category"] == "a" for h in hits)
        assert hybrid[7].id not in [h.id for h in hits]  # point 7 is in category "b"

    def test_sparse_vectors_round_trip_and_a_dense_only_point_is_allowed(
        self, store: VectorStore, hybrid: list[Point]
    ) -> None:
        got = store.retrieve("hy", [hybrid[3].id], with_vectors=True)[0]
        assert got.sparse is not None and list(got.sparse.indices) == list(hybrid[3].sparse.indices)  # type: ignore[union-attr]
        np.testing.assert_allclose(got.sparse.values, hybrid[3].sparse.values, rtol=1e-5)  # type: ignore[union-attr]
        store.upsert("hy", [Point(id=_pid(999), vector=[1.0] * DIM, payload={"text": "no keywords"})])
        assert store.count("hy") == len(hybrid) + 1
        with pytest.raises(InvalidInputError):
            store.upsert("hy", [Point(id=_pid(998), vector=[1.0] * DIM, payload={},
                                      sparse=SparseVector(indices=(1, 1), values=(1.0, 2.0)))])  # fmt: skip

    @pytest.fixture
    def filled(self, store: VectorStore) -> list[Point]:
        points = _points()
        store.create_collection("kb__v1", dim=DIM)
        store.upsert("kb__v1", points)
        return points

    def test_implements_the_port(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        assert store.healthy()

    def test_create_list_exists_count(self, store: VectorStore, filled: list[Point]) -> None:
        store.create_collection("kb__v2", dim=DIM)
        assert store.list_collections()[-2:] == ["kb__v1", "kb__v2"]
        assert store.collection_exists("kb__v1")
        assert not store.collection_exists("nope")
        assert store.count("kb__v1") == len(filled)
        assert store.count("kb__v2") == 0

    def test_when_collection_exists_then_create_conflicts(self, store: VectorStore, filled: list[Point]) -> None:
        with pytest.raises(ConflictError):
            store.create_collection("kb__v1", dim=DIM)

    @pytest.mark.parametrize("call", ["count", "search", "upsert", "retrieve", "drop", "scroll"])
    def test_when_collection_unknown_then_not_found(self, store: VectorStore, call: str) -> None:
        calls = {
            "count": lambda: store.count("missing"),
            "search": lambda: store.search("missing", [1.0] * DIM, top_k=3),
            "upsert": lambda: store.upsert("missing", _points(1)),
            "retrieve": lambda: store.retrieve("missing", [_pid(0)]),
            "drop": lambda: store.drop_collection("missing"),
            "scroll": lambda: list(store.scroll("missing")),
        }
        with pytest.raises(NotFoundError):
            calls[call]()

    def test_retrieve_round_trips_payload_in_request_order(self, store: VectorStore, filled: list[Point]) -> None:
        ids = [_pid(5), _pid(2), str(uuid.uuid4()), "not-a-uuid"]
        got = store.retrieve("kb__v1", ids)
        assert [p.id for p in got] == [_pid(5), _pid(2)]
        assert got[0].payload == filled[5].payload
        assert list(got[0].vector) == []

    def test_retrieve_with_vectors_returns_unit_vectors(self, store: VectorStore, filled: list[Point]) -> None:
        (point,) = store.retrieve("kb__v1", [_pid(3)], with_vectors=True)
        expected = np.asarray(filled[3].vector) / np.linalg.norm(filled[3].vector)
        np.testing.assert_allclose(point.vector, expected, atol=1e-5)

    def test_upsert_replaces_by_id_and_delete_ignores_missing(self, store: VectorStore, filled: list[Point]) -> None:
        store.upsert("kb__v1", [Point(id=_pid(0), vector=[1.0] * DIM, payload={"text": "new"})])
        assert store.count("kb__v1") == len(filled)
        assert store.retrieve("kb__v1", [_pid(0)])[0].payload == {"text": "new"}
        store.delete("kb__v1", [_pid(0), _pid(1), str(uuid.uuid4()), "junk"])
        assert store.count("kb__v1") == len(filled) - 2

    @pytest.mark.parametrize(
        ("point", "field"),
        [
            (Point(id="doc-1", vector=[1.0] * DIM, payload={}), "id"),
            (Point(id=_pid(99), vector=[1.0] * (DIM - 1), payload={}), "vector"),
            (Point(id=_pid(99), vector=[float("nan")] * DIM, payload={}), "vector"),
        ],
    )
    def test_when_point_invalid_then_invalid_input(
        self, store: VectorStore, filled: list[Point], point: Point, field: str
    ) -> None:
        with pytest.raises(InvalidInputError) as info:
            store.upsert("kb__v1", [point])
        assert info.value.detail["field"] == field
        assert store.count("kb__v1") == len(filled)

    def test_search_ranks_by_cosine(self, store: VectorStore, filled: list[Point]) -> None:
        query = np.random.default_rng(7).normal(size=DIM)
        hits = store.search("kb__v1", query.tolist(), top_k=5)
        assert [h.id for h in hits] == _cosine_top(filled, query, 5)
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
        assert -1.0 <= hits[-1].score <= hits[0].score <= 1.0 + 1e-6
        assert hits[0].payload["text"].startswith("passage")

    def test_search_exact_match_scores_one(self, store: VectorStore, filled: list[Point]) -> None:
        hits = store.search("kb__v1", filled[4].vector, top_k=1)
        assert hits[0].id == _pid(4)
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)

    @pytest.mark.parametrize(
        ("search_filter", "predicate"),
        [
            (SearchFilter(must=(FieldFilter("category", ("billing",)),)), lambda p: p["category"] == "billing"),
            (
                SearchFilter(must=(FieldFilter("category", ("billing", "roofing")),)),
                lambda p: p["category"] in {"billing", "roofing"},
            ),
            (SearchFilter(must_not=(FieldFilter("category", ("billing",)),)), lambda p: p["category"] != "billing"),
            (SearchFilter(must=(FieldFilter("rank", (2,)),)), lambda p: p["rank"] == 2),
            (SearchFilter(must=(FieldFilter("published", (True,)),)), lambda p: p["published"] is True),
            (SearchFilter(must_not=(FieldFilter("published", (True,)),)), lambda p: p["published"] is False),
            (SearchFilter(must=(FieldFilter("tags", ("a",)),)), lambda p: "a" in p["tags"]),
            (
                SearchFilter(
                    must=(FieldFilter("category", ("permits",)), FieldFilter("rank", (1, 3))),
                ),
                lambda p: p["category"] == "permits" and p["rank"] in {1, 3},
            ),
            (SearchFilter(must=(FieldFilter("missing_key", ("x",)),)), lambda p: False),
        ],
    )
    def test_search_filters_on_payload(
        self, store: VectorStore, filled: list[Point], search_filter: SearchFilter, predicate
    ) -> None:
        query = np.random.default_rng(3).normal(size=DIM)
        hits = store.search("kb__v1", query.tolist(), top_k=len(filled), filter=search_filter)
        expected = [p for p in filled if predicate(p.payload)]
        assert sorted(h.id for h in hits) == sorted(p.id for p in expected)
        assert [h.id for h in hits[:3]] == _cosine_top(expected, query, 3)

    def test_search_rejects_bad_top_k_and_dimension(self, store: VectorStore, filled: list[Point]) -> None:
        with pytest.raises(InvalidInputError):
            store.search("kb__v1", [1.0] * DIM, top_k=0)
        with pytest.raises(InvalidInputError):
            store.search("kb__v1", [1.0] * (DIM + 1), top_k=3)

    def test_scroll_yields_every_point_once(self, store: VectorStore, filled: list[Point]) -> None:
        got = list(store.scroll("kb__v1", batch_size=7, with_vectors=True))
        assert sorted(p.id for p in got) == sorted(p.id for p in filled)
        assert all(len(p.vector) == DIM for p in got)

    def test_alias_resolves_and_swaps(self, store: VectorStore, filled: list[Point]) -> None:
        assert store.get_alias("kb") is None
        store.set_alias("kb", "kb__v1")
        assert store.get_alias("kb") == "kb__v1"
        assert store.count("kb") == len(filled)
        store.create_collection("kb__v2", dim=DIM)
        store.upsert("kb__v2", _points(3, seed=1))
        store.set_alias("kb", "kb__v2")
        assert store.list_aliases() == {"kb": "kb__v2"}
        assert store.count("kb") == 3
        assert len(store.search("kb", [1.0] * DIM, top_k=10)) == 3
        assert not store.collection_exists("kb")
        assert "kb" not in store.list_collections()

    def test_alias_errors(self, store: VectorStore, filled: list[Point]) -> None:
        with pytest.raises(NotFoundError):
            store.set_alias("kb", "kb__v9")
        store.set_alias("kb", "kb__v1")
        with pytest.raises(ConflictError):
            store.drop_collection("kb__v1")
        with pytest.raises(ConflictError):
            store.create_collection("kb", dim=DIM)
        with pytest.raises(ConflictError):
            store.set_alias("kb__v1", "kb__v1")
        assert store.count("kb") == len(filled)

    def test_drop_collection_removes_it(self, store: VectorStore, filled: list[Point]) -> None:
        store.drop_collection("kb__v1")
        assert not store.collection_exists("kb__v1")
        store.create_collection("kb__v1", dim=DIM)
        assert store.count("kb__v1") == 0

    def test_close_is_idempotent(self, store: VectorStore) -> None:
        store.close()
        store.close()


class TestEdgeVectorStore(VectorStoreContract):
    """qdrant-edge adapter."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EdgeVectorStore]:
        store = EdgeVectorStore(tmp_path / "edge")
        yield store
        store.close()

    def test_alias_survives_reopen_and_is_seen_by_other_instances(self, tmp_path: Path) -> None:
        first = EdgeVectorStore(tmp_path / "edge")
        first.create_collection("kb__v1", dim=DIM)
        first.upsert("kb__v1", _points(5))
        first.set_alias("kb", "kb__v1")
        first.close()
        second = EdgeVectorStore(tmp_path / "edge")
        try:
            assert second.get_alias("kb") == "kb__v1"
            assert second.count("kb") == 5
            with pytest.raises(ConflictError):  # the shard is held by `second`; a third opener is refused cleanly
                EdgeVectorStore(tmp_path / "edge").count("kb")
        finally:
            second.close()

    def test_optimize_then_hnsw_and_exact_search_agree(self, store: EdgeVectorStore, filled: list[Point]) -> None:
        assert isinstance(store.optimize("kb__v1"), bool)
        query = np.random.default_rng(5).normal(size=DIM).tolist()
        approx = store.search("kb__v1", query, top_k=5)
        exact = store.search("kb__v1", query, top_k=5, exact=True)
        assert [h.id for h in approx] == [h.id for h in exact]

    def test_half_created_collection_is_invisible(self, tmp_path: Path) -> None:
        store = EdgeVectorStore(tmp_path / "edge")
        (tmp_path / "edge" / "collections" / "kb__v3").mkdir(parents=True)  # crash before collection.json
        try:
            assert store.list_collections() == []
            store.create_collection("kb__v3", dim=DIM)
            assert store.list_collections() == ["kb__v3"]
        finally:
            store.close()


class TestQdrantLocalVectorStore(VectorStoreContract):
    """qdrant-client adapter in local mode (the Qdrant server's stand-in)."""

    @pytest.fixture
    def store(self) -> Iterator[QdrantVectorStore]:
        store = QdrantVectorStore(path=":memory:")
        yield store
        store.close()

    def test_persistent_local_mode_reopens(self, tmp_path: Path) -> None:
        store = QdrantVectorStore(path=tmp_path / "qdrant")
        store.create_collection("kb__v1", dim=DIM)
        store.upsert("kb__v1", _points(4))
        store.set_alias("kb", "kb__v1")
        store.close()
        again = QdrantVectorStore(path=tmp_path / "qdrant")
        try:
            assert again.get_alias("kb") == "kb__v1"
            assert again.count("kb") == 4
        finally:
            again.close()

    def test_when_server_unreachable_then_upstream_unavailable(self) -> None:
        from core.errors import UpstreamUnavailableError

        store = QdrantVectorStore("http://127.0.0.1:9", timeout_s=1, check_compatibility=False)
        try:
            assert not store.healthy()
            with pytest.raises(UpstreamUnavailableError):
                store.list_collections()
        finally:
            store.close()

    def test_when_neither_url_nor_path_then_invalid(self) -> None:
        with pytest.raises(InvalidInputError):
            QdrantVectorStore()


class TestCongruence:
    """Both adapters, same data and calls: same ids, same order, same scores (within float tolerance)."""

    FILTERS = [
        None,
        SearchFilter(must=(FieldFilter("category", ("permits",)),)),
        SearchFilter(must=(FieldFilter("rank", (0, 4)),), must_not=(FieldFilter("published", (False,)),)),
        SearchFilter(must_not=(FieldFilter("tags", ("c",)),)),
    ]

    def test_same_results_on_both_adapters(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(11)
        centers = rng.normal(size=(5, DIM))
        points = [
            Point(id=p.id, vector=(centers[i % 5] + 0.3 * rng.normal(size=DIM)).tolist(), payload=p.payload)
            for i, p in enumerate(_points(300, seed=2))
        ]
        stores = [EdgeVectorStore(tmp_path / "edge"), QdrantVectorStore(path=":memory:")]
        try:
            for store in stores:
                store.create_collection("kb__v1", dim=DIM)
                store.upsert("kb__v1", points)
                store.set_alias("kb", "kb__v1")
            for q in range(8):
                query = (centers[q % 5] + 0.3 * rng.normal(size=DIM)).tolist()
                for search_filter in self.FILTERS:
                    edge, local = (s.search("kb", query, top_k=10, filter=search_filter) for s in stores)
                    assert [h.id for h in edge] == [h.id for h in local]
                    np.testing.assert_allclose([h.score for h in edge], [h.score for h in local], atol=1e-4)
                    assert [h.payload for h in edge] == [h.payload for h in local]
            assert stores[0].count("kb") == stores[1].count("kb") == 300
        finally:
            for store in stores:
                store.close()

    def test_same_hybrid_results_on_both_adapters(self, tmp_path: Path) -> None:
        points = _hybrid_points(200, seed=9, vocabulary=400)
        stores = [EdgeVectorStore(tmp_path / "edge"), QdrantVectorStore(path=":memory:")]
        rng = np.random.default_rng(4)
        try:
            for store in stores:
                store.create_collection("hy__v1", dim=DIM, sparse=True)
                store.upsert("hy__v1", points)
            for q, text in enumerate(["roof term3 term77", "sqlstate 23505", "gutter term12 term300", "core.autocrlf"]):
                query = rng.normal(size=DIM).tolist()
                cases = [(1.0, None, "rrf"), (0.3, self.FILTERS[0], "rrf"), (0.5, None, "score"), (2.0, None, "score")]
                for weight, search_filter, method in cases:  # 200 candidates: no tie at a cutoff
                    params = HybridParams(sparse_weight=weight, rrf_k=10 + q, candidates=200, method=method)
                    edge, local = (
                        s.hybrid_search("hy__v1", query, ENCODER.encode_query(text), top_k=10, params=params,
                                        filter=search_filter)
                        for s in stores
                    )  # fmt: skip
                    assert [h.id for h in edge] == [h.id for h in local]
                    np.testing.assert_allclose([h.score for h in edge], [h.score for h in local], atol=1e-6)
        finally:
            for store in stores:
                store.close()
