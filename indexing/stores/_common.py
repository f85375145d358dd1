"""Helpers shared by the vector-store adapters: id and vector validation, name checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import numpy as np

from core.errors import InvalidInputError
from core.types import Point

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
