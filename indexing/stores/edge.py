"""Embedded vector store on qdrant-edge (Qdrant's Rust engine in-process): the default ``VectorStore``.

Layout under ``path``::

    collections/{name}/shard/            one EdgeShard per collection version (segments + WAL)
    collections/{name}/collection.json   {"name", "dim"}; written last, so a half-created collection is ignored
    collections/{name}/.lock             flock held while this process has the shard open
    aliases/{alias}.json                 {"collection": name}; replaced atomically (temp, fsync, rename, fsync dir)

Contract: readers resolve an alias by reading its pointer file on every call, so a swap made by another
``EdgeVectorStore`` (or process) is seen at once and a crash never leaves a half-written pointer. A shard can be open
in one process only (qdrant-edge locks its WAL; we take an ``flock`` first so a second process fails cleanly with
``ConflictError`` instead of touching the files). qdrant-edge 0.9 cannot match boolean payload values, so top-level
booleans are mirrored as strings under the hidden payload key ``__bools__`` and filters on booleans use the mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from core.errors import ConflictError, InvalidInputError, NotFoundError, StorageError, StorageUnavailableError
from core.files import atomic_write_text
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
from indexing.stores.diskguard import DiskGuard, is_storage_exhausted
from indexing.stores.diskguard import write_errors as _os_write_errors

logger = logging.getLogger(__name__)

_BOOLS = "__bools__"
_WRITE_BATCH = 1024
_CREATE_BYTES = 4 * 1024 * 1024  # an empty shard: config, first segment, WAL head


@contextlib.contextmanager
def _edge_errors(action: str, name: str) -> Iterator[None]:
    """Translate qdrant-edge's bare exceptions into the project's error tree."""
    try:
        yield
    except (InvalidInputError, NotFoundError, ConflictError, StorageUnavailableError):
        raise
    except Exception as exc:  # qdrant-edge raises plain Exception for every failure
        message = str(exc)
        exhausted = is_storage_exhausted(message)
        if exhausted:
            raise StorageUnavailableError(f"{action} {name}: {message}", reason=exhausted, retry_after_s=60) from exc
        if "dimension" in message.lower():
            raise InvalidInputError(f"{action} {name}: {message}", field="vector") from exc
        if "invalid json path" in message.lower():
            raise InvalidInputError(f"{action} {name}: invalid filter key", field="filter") from exc
        if "WouldBlock" in message:
            raise ConflictError(f"collection {name} is open in another process") from exc
        raise StorageError(f"{action} {name} failed: {message}") from exc


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so readers see the old or the new file, never a partial one: temp, fsync, rename, fsync dir."""
    atomic_write_text(path, json.dumps(data), fsync_dir=True)


def _shadow_bools(payload: dict[str, Any]) -> dict[str, Any]:
    bools = {key: ("true" if value else "false") for key, value in payload.items() if isinstance(value, bool)}
    return {**payload, _BOOLS: bools} if bools else payload


def _public_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (payload or {}).items() if key != _BOOLS}


def _condition(field: FieldFilter) -> Any:
    """One ``FieldFilter`` -> an edge condition matching any of its values."""
    conditions: list[Any] = []
    for value in field.values:
        if isinstance(value, bool):
            key = f"{_BOOLS}.{field.key}"
            conditions.append(qe.FieldCondition(key=key, match=qe.MatchValue(value="true" if value else "false")))
        else:
            conditions.append(qe.FieldCondition(key=field.key, match=qe.MatchValue(value=value)))
    return conditions[0] if len(conditions) == 1 else qe.Filter(should=conditions)


def edge_filter(search_filter: SearchFilter | None) -> qe.Filter | None:
    """Translate a ``SearchFilter`` (must / must_not field filters) into a qdrant-edge ``Filter``."""
    if search_filter is None or not (search_filter.must or search_filter.must_not):
        return None
    return qe.Filter(
        must=[_condition(f) for f in search_filter.must] or None,
        must_not=[_condition(f) for f in search_filter.must_not] or None,
    )


class _OpenShard:
    """An open shard with its dimension and the process lock that guards it."""

    def __init__(self, shard: qe.EdgeShard, dim: int, lock_fd: int, *, sparse: bool = False) -> None:
        self.shard = shard
        self.dim = dim
        self.sparse = sparse
        self.lock_fd = lock_fd
        self.write_lock = threading.Lock()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.shard.close()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


class EdgeVectorStore:
    """``VectorStore`` on qdrant-edge: one shard directory per collection, aliases as pointer files.

    Args:
        path: store directory (created if missing).
        hnsw_ef: HNSW beam width at query time (higher: better recall, slower).
        hnsw_m: HNSW graph degree used when segments are optimised.
        ef_construct: HNSW build beam width.
        min_free_bytes / min_free_share: free-space reserve of the store's filesystem; a write that would go below
            it (or any write on a read-only filesystem) raises ``StorageUnavailableError`` before touching a file
            (:mod:`indexing.stores.diskguard`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        hnsw_ef: int = 256,
        hnsw_m: int = 16,
        ef_construct: int = 128,
        min_free_bytes: int = 0,
        min_free_share: float = 0.0,
    ) -> None:
        self.root = Path(path)
        self.disk_guard = DiskGuard(self.root, min_free_bytes=min_free_bytes, min_free_share=min_free_share)
        self.hnsw_ef = hnsw_ef
        self._hnsw = qe.HnswIndexConfig(m=hnsw_m, ef_construct=ef_construct, full_scan_threshold=10_000)
        try:
            (self.root / "collections").mkdir(parents=True, exist_ok=True)
            (self.root / "aliases").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create vector store directory {self.root}: {exc.strerror}") from exc
        self._open: dict[str, _OpenShard] = {}
        self._lock = threading.RLock()
        self._closed = False

    # ------------------------------------------------------------------------------------------------ names
    def _dir(self, name: str) -> Path:
        return self.root / "collections" / check_name(name)

    def _alias_file(self, alias: str) -> Path:
        return self.root / "aliases" / f"{check_name(alias, what='alias')}.json"

    def collection_exists(self, name: str) -> bool:
        """Whether a complete physical collection ``name`` exists (aliases are not collections)."""
        return (self._dir(name) / "collection.json").is_file()

    def list_collections(self) -> list[str]:
        """Names of all complete collections, sorted."""
        base = self.root / "collections"
        return sorted(p.name for p in base.iterdir() if (p / "collection.json").is_file())

    def _resolve(self, name: str) -> str:
        if self.collection_exists(name):
            return name
        target = self.get_alias(name)
        if target is None or not self.collection_exists(target):
            raise NotFoundError(f"unknown collection or alias {name!r}", collection=name)
        return target

    # ------------------------------------------------------------------------------------------------ shards
    def _lock_dir(self, name: str) -> int:
        fd = os.open(self._dir(name) / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ConflictError(f"collection {name} is open in another process", collection=name) from exc
        return fd

    def _shard(self, name: str) -> _OpenShard:
        """The open shard of ``name`` (a collection or alias), loading it on first use."""
        if self._closed:
            raise ConflictError("vector store is closed")
        target = self._resolve(name)
        with self._lock:
            handle = self._open.get(target)
            if handle is None:
                meta = json.loads((self._dir(target) / "collection.json").read_text())
                dim = int(meta["dim"])
                fd = self._lock_dir(target)
                try:
                    with _edge_errors("open", target):
                        shard = qe.EdgeShard.load(str(self._dir(target) / "shard"))
                except BaseException:
                    os.close(fd)
                    raise
                handle = self._open[target] = _OpenShard(shard, dim, fd, sparse=bool(meta.get("sparse")))
            return handle

    def create_collection(self, name: str, *, dim: int, sparse: bool = False) -> None:
        """Create an empty cosine collection of ``dim`` dimensions (``sparse``: plus the IDF keyword index).
        ``ConflictError`` if it (or an alias) exists."""
        if dim < 1:
            raise InvalidInputError(f"dimension must be positive, got {dim}", field="dim")
        if self.collection_exists(name) or self._alias_file(name).exists():
            raise ConflictError(f"collection {name!r} already exists", collection=name)
        directory = self._dir(name)
        self.disk_guard.check(f"create collection {name}", need_bytes=_CREATE_BYTES)
        with self._lock:
            shutil.rmtree(directory, ignore_errors=True)  # leftovers of a crashed create (no collection.json)
            try:
                self._create_shard(name, directory, dim=dim, sparse=sparse)
            except BaseException:
                self._remove_half_created(name, directory)
                raise
        logger.info("collection created name=%s dim=%d", name, dim)

    def _create_shard(self, name: str, directory: Path, *, dim: int, sparse: bool) -> None:
        directory.mkdir(parents=True)
        fd = self._lock_dir(name)
        vectors = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
        sparse_config = {SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)} if sparse else None
        config = qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse_config, hnsw_config=self._hnsw)
        try:
            with _edge_errors("create", name), _os_write_errors(f"create {name}", directory):
                shard = qe.EdgeShard.create(str(directory / "shard"), config)
        except BaseException:
            os.close(fd)
            raise
        self._open[name] = _OpenShard(shard, dim, fd, sparse=sparse)
        with _os_write_errors(f"create {name}", directory):
            _write_json_atomic(directory / "collection.json", {"name": name, "dim": dim, "sparse": sparse})

    def _remove_half_created(self, name: str, directory: Path) -> None:
        """A failed create leaves no directory behind (the disk may be full: deleting still works)."""
        handle = self._open.pop(name, None)
        if handle is not None:
            handle.close()
        shutil.rmtree(directory, ignore_errors=True)
        logger.warning("half-created collection removed name=%s", name)

    def write_problem(self) -> str | None:
        """Why writes are refused now (read-only or nearly full filesystem, closed store); ``None``: writable."""
        if self._closed:
            return "vector store is closed"
        return self.disk_guard.problem()

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its files. ``ConflictError`` if aliased, ``NotFoundError`` if unknown."""
        if not self.collection_exists(name):
            raise NotFoundError(f"unknown collection {name!r}", collection=name)
        aliases = sorted(alias for alias, target in self.list_aliases().items() if target == name)
        if aliases:
            raise ConflictError(f"collection {name!r} is the target of alias(es) {aliases}", collection=name)
        with self._lock:
            handle = self._open.pop(name, None)
            if handle is not None:
                handle.close()
            (self._dir(name) / "collection.json").unlink(missing_ok=True)  # invisible first, then remove
            shutil.rmtree(self._dir(name), ignore_errors=True)
        logger.info("collection dropped name=%s", name)

    # ------------------------------------------------------------------------------------------------ points
    def count(self, name: str) -> int:
        """Number of points in a collection (or an alias' target)."""
        handle = self._shard(name)
        with _edge_errors("count", name):
            return int(handle.shard.count(qe.CountRequest(exact=True)))

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id, then flush to disk (durable on return)."""
        handle = self._shard(name)
        rows = validate_points(points, dim=handle.dim)
        sparse = [point.sparse for point in points]
        hybrid = handle.sparse
        vectors = [_edge_vector(row[1], keyword, hybrid=hybrid) for row, keyword in zip(rows, sparse, strict=True)]
        with handle.write_lock, _edge_errors("upsert", name):
            for batch in batched(list(zip(rows, vectors, strict=True)), _WRITE_BATCH):
                self.disk_guard.check_rows(f"upsert {name}", [row for row, _ in batch])
                edge_points = [qe.Point(pid, vector, _shadow_bools(payload)) for (pid, _, payload), vector in batch]
                handle.shard.update(qe.UpdateOperation.upsert_points(edge_points))
            handle.shard.flush()

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Remove points by id; missing (or non-UUID, hence never stored) ids are ignored."""
        handle = self._shard(name)
        valid: list[Any] = [canonical_id(i) for i in ids if is_uuid(i)]
        if not valid:
            return
        self.disk_guard.check(f"delete from {name}", need_bytes=len(valid) * 64)
        with handle.write_lock, _edge_errors("delete", name):
            handle.shard.update(qe.UpdateOperation.delete_points(valid))
            handle.shard.flush()

    def optimize(self, name: str) -> bool:
        """Run the segment optimisers (builds HNSW for large segments); blocking. True if anything changed."""
        handle = self._shard(name)
        self.disk_guard.check(f"optimize {name}", need_bytes=self.count(name) * handle.dim * 4)
        with handle.write_lock, _edge_errors("optimize", name):
            changed = bool(handle.shard.optimize())
            handle.shard.flush()
        return changed

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        top_k: int,
        filter: SearchFilter | None = None,
        exact: bool = False,
    ) -> list[ScoredPoint]:
        """Top-``top_k`` points by cosine similarity, best first. ``exact=True`` forces a full scan (no HNSW)."""
        if top_k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {top_k}", field="top_k")
        return self._dense(self._shard(name), name, vector, top_k=top_k, filter=filter, exact=exact)

    def _dense(
        self, handle: _OpenShard, name: str, vector: Sequence[float], *, top_k: int, filter: SearchFilter | None,
        exact: bool = False, with_payload: bool = True,
    ) -> list[ScoredPoint]:  # fmt: skip
        with _edge_errors("search", name):
            request = qe.SearchRequest(
                query=qe.Query.Nearest(vector_list(vector, dim=handle.dim)),
                limit=top_k,
                filter=edge_filter(filter),
                params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, top_k), exact=exact),
                with_payload=with_payload,
                with_vector=False,
            )
            hits = handle.shard.search(request)
        return [ScoredPoint(id=str(h.id), score=float(h.score), payload=_public_payload(h.payload)) for h in hits]

    def has_sparse(self, name: str) -> bool:
        """Whether the collection (or the alias' target) was created with the keyword index."""
        return self._shard(name).sparse

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
        """Fusion (:func:`rrf_fuse`, ``params.method``) of the dense and the IDF-weighted sparse (BM25) rankings.

        The candidate rankings carry ids and scores only; payloads are read for the ``top_k`` fused hits alone (each
        payload crosses from the engine into Python objects under the GIL: 2 x ``candidates`` of them cost more than
        the searches). A fused hit deleted in between is left out."""
        handle = self._shard(name)
        check_hybrid(top_k, params, has_sparse=handle.sparse, name=name)

        def keyword(parts: tuple[list[int], list[float]], limit: int) -> list[ScoredPoint]:
            request = qe.QueryRequest(
                limit=limit,
                query=qe.Query.Nearest(qe.SparseVector(*parts), using=SPARSE_VECTOR),
                filter=edge_filter(filter),
                with_payload=False,
                with_vector=False,
            )
            with _edge_errors("search", name):
                hits = handle.shard.query(request)
            return [ScoredPoint(id=str(h.id), score=float(h.score), payload={}) for h in hits]

        def dense(limit: int) -> list[ScoredPoint]:
            return self._dense(handle, name, vector, top_k=limit, filter=filter, with_payload=False)

        fused = fused_search(dense, keyword, sparse, top_k=top_k, params=params)
        with _edge_errors("retrieve", name):
            records = handle.shard.retrieve([h.id for h in fused], with_payload=True, with_vector=False)
        payloads = {str(r.id): _public_payload(r.payload) for r in records}
        return [ScoredPoint(id=h.id, score=h.score, payload=payloads[h.id]) for h in fused if h.id in payloads]

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[Point]:
        """Points by id in request order; missing or non-UUID ids are skipped."""
        handle = self._shard(name)
        wanted: list[Any] = list(dict.fromkeys(canonical_id(i) for i in ids if is_uuid(i)))
        if not wanted:
            return []
        with _edge_errors("retrieve", name):
            records = handle.shard.retrieve(wanted, with_payload=True, with_vector=with_vectors)
        by_id = {str(r.id): _to_point(r, with_vectors=with_vectors) for r in records}
        return [by_id[i] for i in wanted if i in by_id]

    def scroll(self, name: str, *, with_vectors: bool = False, batch_size: int = 256) -> Iterator[Point]:
        """Iterate over every point (id order)."""
        handle = self._shard(name)
        offset: Any = None
        while True:
            request = qe.ScrollRequest(offset=offset, limit=batch_size, with_payload=True, with_vector=with_vectors)
            with _edge_errors("scroll", name):
                records, offset = handle.shard.scroll(request)
            yield from (_to_point(r, with_vectors=with_vectors) for r in records)
            if offset is None or not records:
                return

    # ------------------------------------------------------------------------------------------------ aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` by atomically replacing its pointer file."""
        if not self.collection_exists(collection):
            raise NotFoundError(f"unknown collection {collection!r}", collection=collection)
        if self.collection_exists(alias):
            raise ConflictError(f"alias {alias!r} would shadow a collection of the same name", alias=alias)
        self.disk_guard.check(f"set alias {alias}")
        with _os_write_errors(f"set alias {alias}", self.root):
            _write_json_atomic(self._alias_file(alias), {"collection": collection})
        logger.info("alias set alias=%s collection=%s", alias, collection)

    def get_alias(self, alias: str) -> str | None:
        """The collection ``alias`` points to, or ``None`` (read from disk on every call)."""
        try:
            return str(json.loads(self._alias_file(alias).read_text(encoding="utf-8"))["collection"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            raise StorageError(f"alias file of {alias!r} is unreadable: {exc}") from exc

    def list_aliases(self) -> dict[str, str]:
        """All aliases -> their target collection."""
        files = sorted((self.root / "aliases").glob("*.json"))
        return {f.stem: target for f in files if (target := self.get_alias(f.stem)) is not None}

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (missing alias ignored)."""
        self._alias_file(alias).unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------------ lifecycle
    def healthy(self) -> bool:
        """Whether the store directory is usable."""
        return not self._closed and os.access(self.root / "collections", os.W_OK)

    def close(self) -> None:
        """Close every open shard and release its lock. Idempotent."""
        with self._lock:
            for handle in self._open.values():
                handle.close()
            self._open.clear()
            self._closed = True


def _edge_vector(dense: list[float], keyword: SparseVector | None, *, hybrid: bool) -> Any:
    """The edge vector of a point: the dense list, or ``{"": dense, "bm25": keyword}`` in a hybrid collection."""
    if not hybrid:
        return dense
    parts = sparse_parts(keyword)
    return {"": dense, SPARSE_VECTOR: qe.SparseVector(*parts)} if parts else {"": dense}


def _to_point(record: Any, *, with_vectors: bool) -> Point:
    raw = record.vector if with_vectors and record.vector is not None else []
    sparse = None
    if isinstance(raw, dict):  # hybrid collection: {"": dense, "bm25": SparseVector}
        keyword = raw.get(SPARSE_VECTOR)
        if keyword is not None:
            sparse = SparseVector(indices=tuple(keyword.indices), values=tuple(float(v) for v in keyword.values))
        raw = raw.get("", [])
    return Point(id=str(record.id), vector=list(raw), payload=_public_payload(record.payload), sparse=sparse)


__all__ = ["EdgeVectorStore", "edge_filter"]
