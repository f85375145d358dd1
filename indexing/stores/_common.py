"""Helpers shared by the vector-store adapters: id and vector validation, name checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence

import numpy as np

from core.errors import InvalidInputError
from core.types import HybridParams, Point, ScoredPoint, SparseVector

#: Name of the keyword (sparse) vector in collections created with ``sparse=True``; the dense vector is unnamed.
SPARSE_VECTOR = "bm25"

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, *, what: str = "collection") -> str:
    """Validate a collection / alias name (letters, digits, ``_ . -``; no path separators). Returns it."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise InvalidInputError(f"invalid {what} name {name!r}", field=what)
    return name


def canonical_id(point_id: object) -> str:
    """Canonical UUID string of a point id. Raises ``InvalidInputError`` for anything that is not a UUID."""
    try:
        return str(point_id if isinstance(point_id, uuid.UUID) else uuid.UUID(str(point_id)))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"point id {point_id!r} is not a UUID string", field="id") from exc


def is_uuid(point_id: object) -> bool:
    """Whether ``point_id`` parses as a UUID."""
    try:
        canonical_id(point_id)
    except InvalidInputError:
        return False
    return True


def vector_list(vector: Sequence[float] | np.ndarray, *, dim: int) -> list[float]:
    """A finite float list of length ``dim``; raises ``InvalidInputError`` otherwise."""
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise InvalidInputError(f"vector has {arr.shape[0]} dimensions, collection expects {dim}", field="vector")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("vector holds NaN or infinite values", field="vector")
    return arr.tolist()


def validate_points(points: Sequence[Point], *, dim: int) -> list[tuple[str, list[float], dict]]:
    """Canonical ``(id, vector, payload)`` triples; raises ``InvalidInputError`` for a bad id, vector or payload.

    Vectors are checked in one vectorised pass (shape and finiteness), then converted to lists in one call.
    """
    if not points:
        return []
    for point in points:
        if not isinstance(point.payload, dict):
            raise InvalidInputError(f"payload of point {point.id!r} must be a dict", field="payload")
    ids = [canonical_id(point.id) for point in points]
    try:
        matrix = np.asarray([np.asarray(p.vector, dtype=np.float32).reshape(-1) for p in points], dtype=np.float32)
    except ValueError as exc:  # ragged: some vector has another length
        bad = next(p for p in points if np.asarray(p.vector).size != dim)
        raise InvalidInputError(
            f"vector of point {bad.id!r} has {np.asarray(bad.vector).size} dimensions, collection expects {dim}",
            field="vector",
        ) from exc
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        got = matrix.shape[1] if matrix.ndim == 2 else 0
        raise InvalidInputError(f"vector has {got} dimensions, collection expects {dim}", field="vector")
    if not np.isfinite(matrix).all():
        raise InvalidInputError("vector holds NaN or infinite values", field="vector")
    return list(zip(ids, matrix.tolist(), (p.payload for p in points), strict=True))


def batched(items: Sequence, size: int) -> list[Sequence]:
    """Consecutive slices of at most ``size`` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def sparse_parts(sparse: SparseVector | None) -> tuple[list[int], list[float]] | None:
    """``(indices, values)`` lists of a non-empty sparse vector, else ``None``; ``InvalidInputError`` when malformed."""
    if sparse is None or not sparse.indices:
        return None
    indices = [int(i) for i in sparse.indices]
    values = [float(v) for v in sparse.values]
    if len(set(indices)) != len(indices) or not all(0 <= i < 2**32 for i in indices):
        raise InvalidInputError("sparse indices must be distinct uint32 values", field="sparse")
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("sparse vector holds NaN or infinite values", field="sparse")
    return indices, values


def check_hybrid(top_k: int, params: HybridParams, *, has_sparse: bool, name: str) -> None:
    """Validate a hybrid search's arguments (``InvalidInputError``)."""
    if top_k < 1:
        raise InvalidInputError(f"top_k must be >= 1, got {top_k}", field="top_k")
    if not has_sparse:
        raise InvalidInputError(f"collection {name!r} has no keyword index; rebuild it in hybrid mode", field="mode")
    if params.sparse_weight < 0 or params.rrf_k < 1 or params.candidates < 1:
        raise InvalidInputError("hybrid params need sparse_weight >= 0, rrf_k >= 1, candidates >= 1", field="fusion")


def fused_search(
    dense: Callable[[int], list[ScoredPoint]],
    keyword: Callable[[tuple[list[int], list[float]], int], list[ScoredPoint]],
    sparse: SparseVector,
    *,
    top_k: int,
    params: HybridParams,
) -> list[ScoredPoint]:
    """A hybrid search from an adapter's two searches: ``dense(limit)`` and ``keyword((indices, values), limit)``.

    Dense only when the query has no keyword or the weight is 0; else both rankings over ``params.candidates`` (at
    least ``top_k``) fused by :func:`rrf_fuse`. The adapters call it after :func:`check_hybrid`.
    """
    parts = sparse_parts(sparse)
    if parts is None or params.sparse_weight == 0:
        return dense(top_k)
    limit = max(params.candidates, top_k)
    return rrf_fuse(dense(limit), keyword(parts, limit), top_k=top_k, params=params)


def rrf_fuse(
    dense: Sequence[ScoredPoint], sparse: Sequence[ScoredPoint], *, top_k: int, params: HybridParams
) -> list[ScoredPoint]:
    """Fuse the two rankings as ``params.method`` says (see :class:`~core.types.HybridParams`); best first.

    Done here, not by the engine, because qdrant-edge 0.9 ignores RRF weights: both adapters fuse the same way.
    Equal scores (to 5 decimals) share a rank, so engines that order ties differently fuse alike; ties of the fused
    score are broken by the dense rank, the sparse rank, then the id.
    """
    if params.method not in ("rrf", "score"):
        raise InvalidInputError(f"unknown fusion method {params.method!r}; expected rrf or score", field="fusion")
    entries: dict[str, list] = {}
    for weight, hits, slot in ((1.0, dense, 1), (params.sparse_weight, sparse, 2)):
        parts = _normalised(hits, dense=slot == 1) if params.method == "score" else None
        for n, (rank, hit) in enumerate(zip(_tied_ranks(hits), hits, strict=True)):
            entry = entries.setdefault(hit.id, [0.0, len(dense) + 1, len(sparse) + 1, hit.payload])
            entry[0] += weight * (parts[n] if parts is not None else 1.0 / (params.rrf_k + rank))
            entry[slot] = rank
    ordered = sorted(entries.items(), key=lambda item: (-round(item[1][0], 9), item[1][1], item[1][2], item[0]))
    return [ScoredPoint(id=pid, score=float(e[0]), payload=e[3]) for pid, e in ordered[:top_k]]


def _normalised(hits: Sequence[ScoredPoint], *, dense: bool) -> list[float]:
    """Scores mapped to [0, 1]: dense min-max over the candidates, sparse (BM25, >= 0) divided by the best."""
    scores = [h.score for h in hits]
    if not scores:
        return []
    low = min(scores) if dense else 0.0
    span = max(scores) - low
    return [(s - low) / span if span > 0 else 1.0 for s in scores]


def _tied_ranks(hits: Sequence[ScoredPoint]) -> list[int]:
    """Competition ranks (1, 2, 2, 4 ...) of hits sorted best first; scores equal to 5 decimals tie."""
    ranks: list[int] = []
    for position, hit in enumerate(hits, start=1):
        tied = ranks and round(hit.score, 5) == round(hits[position - 2].score, 5)
        ranks.append(ranks[-1] if tied else position)
    return ranks
