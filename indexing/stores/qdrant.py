"""``VectorStore`` over qdrant-client: a Qdrant server (URL + API key) or local mode (``path=`` / ``":memory:"``).

Contract: real Qdrant collections (cosine distance) and real aliases switched with one
``update_collection_aliases`` call (delete + create in a single atomic request). Point ids are the chunk UUIDs.
Third-party errors are translated here, at the boundary: connection failures -> ``UpstreamUnavailableError``,
HTTP 404 / "not found" -> ``NotFoundError``, HTTP 409 / "already exists" -> ``ConflictError``, other HTTP 4xx ->
``InvalidInputError``, anything else -> ``StorageError``. Local mode must be closed explicitly (``close()``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import (
    ConflictError,
    FlywheelError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    UpstreamUnavailableError,
)
from core.types import FieldFilter, HybridParams, Point, ScoredPoint, SearchFilter, SparseVector
from indexing.stores._common import (
    SPARSE_VECTOR,
    batched,
    canonical_id,
    check_hybrid,
    check_name,
    fused_search,
    is_uuid,
    sparse_parts,
    validate_points,
    vector_list,
)
from indexing.stores.diskguard import DiskGuard, estimate_bytes

logger = logging.getLogger(__name__)

_WRITE_BATCH = 512


@contextlib.contextmanager
def _qdrant_errors(action: str, name: str) -> Iterator[None]:
    """Translate qdrant-client / httpx / local-mode errors into the project's error tree."""
    try:
        yield
    except FlywheelError:
        raise
    except UnexpectedResponse as exc:
        status = exc.status_code or 0
        if status == 404:
            raise NotFoundError(f"{action}: unknown collection or alias {name!r}", collection=name) from exc
        if status == 409:
            raise ConflictError(f"{action} {name!r}: conflict with the current state", collection=name) from exc
        if status in (502, 503, 504):
            raise UpstreamUnavailableError(f"qdrant unavailable during {action} ({status})") from exc
        if 400 <= status < 500:
            raise InvalidInputError(f"{action} {name!r} rejected by qdrant ({status})", collection=name) from exc
        raise StorageError(f"{action} {name!r} failed with HTTP {status}") from exc
    except (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError) as exc:
        raise UpstreamUnavailableError(f"qdrant unreachable during {action}: {type(exc).__name__}") from exc
    except (ValueError, KeyError, RuntimeError) as exc:  # local mode signals with plain exceptions
        message = str(exc)
        if "not found" in message.lower():
            raise NotFoundError(f"{action}: unknown collection or alias {name!r}", collection=name) from exc
        if "already exists" in message.lower():
            raise ConflictError(f"{action} {name!r}: already exists", collection=name) from exc
        if "closed" in message.lower():
            raise ConflictError("vector store is closed") from exc
        raise StorageError(f"{action} {name!r} failed: {message}") from exc


def _condition(field: FieldFilter) -> models.Condition:
    conditions: list[Any] = [
        models.FieldCondition(key=field.key, match=models.MatchValue(value=v)) for v in field.values
    ]
    return conditions[0] if len(conditions) == 1 else models.Filter(should=conditions)


def qdrant_filter(search_filter: SearchFilter | None) -> models.Filter | None:
    """Translate a ``SearchFilter`` into a qdrant ``models.Filter`` (each field: any of its values)."""
    if search_filter is None or not (search_filter.must or search_filter.must_not):
        return None
    return models.Filter(
        must=[_condition(f) for f in search_filter.must] or None,
        must_not=[_condition(f) for f in search_filter.must_not] or None,
    )


class QdrantVectorStore:
    """``VectorStore`` on qdrant-client.

    Args:
        url: Qdrant server URL (``http://host:6333``). Exactly one of ``url`` and ``path``.
        api_key: server API key.
        path: local-mode directory, or ``":memory:"`` for an in-memory local instance.
        timeout_s: request timeout for the server.
        check_compatibility: ask the server for its version at start-up (a warning on mismatch).
        min_free_bytes / min_free_share: local mode on a directory: free-space reserve guarded before writes
            (:mod:`indexing.stores.diskguard`); a server guards its own disk.
    Raises:
        InvalidInputError: neither or both of ``url`` / ``path``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        path: Path | str | None = None,
        timeout_s: float = 10.0,
        check_compatibility: bool = True,
        min_free_bytes: int = 0,
        min_free_share: float = 0.0,
    ) -> None:
        if (url is None) == (path is None):
            raise InvalidInputError("give exactly one of url (Qdrant server) and path (local mode)", field="url")
        with _qdrant_errors("connect", str(url or path)):
            if url is not None:
                self.client = QdrantClient(
                    url=url,
                    api_key=api_key,
                    timeout=int(max(1, timeout_s)),
                    check_compatibility=check_compatibility,
                )
            elif str(path) == ":memory:":
                self.client = QdrantClient(location=":memory:")
            else:
                Path(path).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
                self.client = QdrantClient(path=str(path))
        self.local = url is None
        on_disk = path is not None and str(path) != ":memory:"
        self._disk_guard = (
            DiskGuard(Path(path), min_free_bytes=min_free_bytes, min_free_share=min_free_share)  # type: ignore[arg-type]
            if on_disk
            else None
        )
        self._dims: dict[str, int] = {}
        self._sparse: dict[str, bool] = {}
        self._closed = False

    # ------------------------------------------------------------------------------------------------ collections
    def create_collection(self, name: str, *, dim: int, sparse: bool = False) -> None:
        """Create an empty cosine collection (``sparse``: plus the IDF keyword index). ``ConflictError`` if the name
        exists (as a collection or alias)."""
        check_name(name)
        if dim < 1:
            raise InvalidInputError(f"dimension must be positive, got {dim}", field="dim")
        if self.collection_exists(name) or name in self.list_aliases():
            raise ConflictError(f"collection {name!r} already exists", collection=name)
        self._check_disk(f"create collection {name}")
        with _qdrant_errors("create", name):
            self.client.create_collection(
                name,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                sparse_vectors_config=(
                    {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)} if sparse else None
                ),
            )
        self._dims[name] = dim
        self._sparse[name] = sparse
        logger.info("collection created name=%s dim=%d", name, dim)

    def drop_collection(self, name: str) -> None:
        """Delete a collection. ``ConflictError`` if an alias targets it, ``NotFoundError`` if unknown."""
        if not self.collection_exists(name):
            raise NotFoundError(f"unknown collection {name!r}", collection=name)
        aliases = sorted(alias for alias, target in self.list_aliases().items() if target == name)
        if aliases:
            raise ConflictError(f"collection {name!r} is the target of alias(es) {aliases}", collection=name)
        with _qdrant_errors("drop", name):
            self.client.delete_collection(name)
        self._dims.pop(name, None)
        self._sparse.pop(name, None)
        logger.info("collection dropped name=%s", name)

    def list_collections(self) -> list[str]:
        """Names of all physical collections, sorted."""
        with _qdrant_errors("list", "*"):
            return sorted(c.name for c in self.client.get_collections().collections)

    def collection_exists(self, name: str) -> bool:
        """Whether a physical collection ``name`` exists (aliases excluded)."""
        return name in self.list_collections()

    def _resolve(self, name: str) -> str:
        if self.collection_exists(name):
            return name
        target = self.get_alias(name)
        if target is None:
            raise NotFoundError(f"unknown collection or alias {name!r}", collection=name)
        return target

    def _dim(self, name: str) -> int:
        target = self._resolve(name)
        if target not in self._dims:
            self._load_params(target)
        return self._dims[target]

    def _load_params(self, target: str) -> None:
        with _qdrant_errors("info", target):
            params = self.client.get_collection(target).config.params
        self._dims[target] = int(params.vectors.size)  # type: ignore[union-attr]
        self._sparse[target] = SPARSE_VECTOR in (params.sparse_vectors or {})

    def has_sparse(self, name: str) -> bool:
        """Whether the collection (or the alias' target) was created with the keyword index."""
        target = self._resolve(name)
        if target not in self._sparse:
            self._load_params(target)
        return self._sparse[target]

    # ------------------------------------------------------------------------------------------------ points
    def count(self, name: str) -> int:
        """Exact number of points in a collection (or an alias' target)."""
        target = self._resolve(name)
        with _qdrant_errors("count", name):
            return int(self.client.count(target, exact=True).count)

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id (``wait=True``: durable and visible on return)."""
        target = self._resolve(name)
        rows = validate_points(points, dim=self._dim(target))
        hybrid = self.has_sparse(target)
        sparse = [point.sparse for point in points]
        vectors = [_qdrant_vector(row[1], keyword, hybrid=hybrid) for row, keyword in zip(rows, sparse, strict=True)]
        with _qdrant_errors("upsert", name):
            for batch in batched(list(zip(rows, vectors, strict=True)), _WRITE_BATCH):
                need = estimate_bytes(points=len(batch), dim=len(batch[0][0][1]))
                self._check_disk(f"upsert {name}", need_bytes=need)
                structs = [
                    models.PointStruct(id=pid, vector=vector, payload=payload) for (pid, _, payload), vector in batch
                ]
                self.client.upsert(target, points=structs, wait=True)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Remove points by id; missing ids are ignored."""
        target = self._resolve(name)
        valid: list[Any] = [canonical_id(i) for i in ids if is_uuid(i)]
        if valid:
            with _qdrant_errors("delete", name):
                self.client.delete(target, points_selector=models.PointIdsList(points=valid), wait=True)

    def search(
        self, name: str, vector: Sequence[float], *, top_k: int, filter: SearchFilter | None = None
    ) -> list[ScoredPoint]:
        """Top-``top_k`` points by cosine similarity, best first, optionally filtered on payload."""
        if top_k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {top_k}", field="top_k")
        target = self._resolve(name)
        query = vector_list(vector, dim=self._dim(target))
        with _qdrant_errors("search", name):
            response = self.client.query_points(
                target, query=query, limit=top_k, query_filter=qdrant_filter(filter), with_payload=True
            )
        return [ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in response.points]

    def hybrid_search(
        self,
        name: str,
        vector: Sequence[float],
        sparse: SparseVector,
        *,
        top_k: int,
        params: HybridParams,
        filter: SearchFilter | None = None,
    ) -> list[ScoredPoint]:
        """Fusion (:func:`rrf_fuse`, ``params.method``) of the dense and the IDF-weighted sparse (BM25) rankings."""
        target = self._resolve(name)
        check_hybrid(top_k, params, has_sparse=self.has_sparse(target), name=name)

        def keyword(parts: tuple[list[int], list[float]], limit: int) -> list[ScoredPoint]:
            query = models.SparseVector(indices=parts[0], values=parts[1])
            with _qdrant_errors("search", name):
                response = self.client.query_points(
                    target, query=query, using=SPARSE_VECTOR, limit=limit, query_filter=qdrant_filter(filter),
                    with_payload=True,
                )  # fmt: skip
            return [ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}))
                    for p in response.points]  # fmt: skip

        dense = lambda limit: self.search(name, vector, top_k=limit, filter=filter)  # noqa: E731
        return fused_search(dense, keyword, sparse, top_k=top_k, params=params)

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[Point]:
        """Points by id in request order; missing or non-UUID ids are skipped."""
        target = self._resolve(name)
        wanted = list(dict.fromkeys(canonical_id(i) for i in ids if is_uuid(i)))
        if not wanted:
            return []
        with _qdrant_errors("retrieve", name):
            records = self.client.retrieve(target, ids=wanted, with_payload=True, with_vectors=with_vectors)
        by_id = {str(r.id): _to_point(r, with_vectors=with_vectors) for r in records}
        return [by_id[i] for i in wanted if i in by_id]

    def scroll(self, name: str, *, with_vectors: bool = False, batch_size: int = 256) -> Iterator[Point]:
        """Iterate over every point of a collection."""
        target = self._resolve(name)
        offset: Any = None
        while True:
            with _qdrant_errors("scroll", name):
                records, offset = self.client.scroll(
                    target, limit=batch_size, offset=offset, with_payload=True, with_vectors=with_vectors
                )
            yield from (_to_point(r, with_vectors=with_vectors) for r in records)
            if offset is None or not records:
                return

    # ------------------------------------------------------------------------------------------------ aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` with one atomic ``update_collection_aliases`` call."""
        check_name(alias, what="alias")
        if not self.collection_exists(collection):
            raise NotFoundError(f"unknown collection {collection!r}", collection=collection)
        if self.collection_exists(alias):
            raise ConflictError(f"alias {alias!r} would shadow a collection of the same name", alias=alias)
        self._check_disk(f"set alias {alias}")
        operations: list[Any] = []
        if alias in self.list_aliases():
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        operations.append(
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))
        )
        with _qdrant_errors("set_alias", alias):
            self.client.update_collection_aliases(change_aliases_operations=operations)
        logger.info("alias set alias=%s collection=%s", alias, collection)

    def get_alias(self, alias: str) -> str | None:
        """The collection ``alias`` points to, or ``None``."""
        return self.list_aliases().get(alias)

    def list_aliases(self) -> dict[str, str]:
        """All aliases -> their target collection."""
        with _qdrant_errors("list_aliases", "*"):
            aliases = self.client.get_aliases().aliases
        return {a.alias_name: a.collection_name for a in aliases}

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (missing alias ignored)."""
        if alias in self.list_aliases():
            operation = models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            with _qdrant_errors("delete_alias", alias):
                self.client.update_collection_aliases(change_aliases_operations=[operation])

    # ------------------------------------------------------------------------------------------------ lifecycle
    def _check_disk(self, action: str, *, need_bytes: int = 0) -> None:
        if self._disk_guard is not None:
            self._disk_guard.check(action, need_bytes=need_bytes)

    def write_problem(self) -> str | None:
        """Why writes are refused now (local mode: read-only or nearly full directory); ``None``: writable."""
        if self._closed:
            return "vector store is closed"
        return self._disk_guard.problem() if self._disk_guard is not None else None

    def healthy(self) -> bool:
        """Whether the server (or local instance) answers a cheap call."""
        if self._closed:
            return False
        try:
            self.client.get_collections()
        except Exception:  # any failure means "not ready"; the reason is logged, not raised
            logger.warning("qdrant health check failed", exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Close the client (local mode releases its lock and avoids the ``__del__`` traceback). Idempotent."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self.client.close()


def _qdrant_vector(dense: list[float], keyword: SparseVector | None, *, hybrid: bool) -> Any:
    """The point's vector: the dense list, or ``{"": dense, "bm25": keyword}`` in a hybrid collection."""
    if not hybrid:
        return dense
    parts = sparse_parts(keyword)
    if parts is None:
        return {"": dense}
    return {"": dense, SPARSE_VECTOR: models.SparseVector(indices=parts[0], values=parts[1])}


def _to_point(record: Any, *, with_vectors: bool) -> Point:
    vector = record.vector if with_vectors and record.vector is not None else []
    sparse = None
    if isinstance(vector, dict):  # the unnamed dense vector plus, in a hybrid collection, the keyword vector
        keyword = vector.get(SPARSE_VECTOR)
        if keyword is not None:
            sparse = SparseVector(indices=tuple(keyword.indices), values=tuple(float(v) for v in keyword.values))
        vector = vector.get("", next((v for v in vector.values() if isinstance(v, list)), []))
    return Point(id=str(record.id), vector=list(vector), payload=dict(record.payload or {}), sparse=sparse)


__all__ = ["QdrantVectorStore", "qdrant_filter"]
