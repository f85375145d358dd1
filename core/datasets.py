"""Versioned, immutable datasets on disk: ``{root}/{kind}/v{n}/rows.jsonl`` + ``manifest.json``.

Written by curation (feedback), read by customization and evals — the on-disk format is their shared contract.
A version is written into a temporary directory and renamed into place, so a crash never leaves a half-written
version; existing versions are never overwritten (``ConflictError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.files import atomic_write_text
from core.types import (
    ContrastivePair,
    DatasetKind,
    DatasetManifest,
    EvalCase,
    RelevanceExample,
    SftExample,
)

ROW_TYPES: dict[DatasetKind, type] = {
    DatasetKind.CONTRASTIVE: ContrastivePair,
    DatasetKind.SFT: SftExample,
    DatasetKind.EVAL: EvalCase,
    DatasetKind.RELEVANCE: RelevanceExample,
}

T = TypeVar("T")


def provenance_hash(event_ids: Iterable[str]) -> str:
    """sha256 of the sorted, de-duplicated event ids behind a dataset."""
    return hashlib.sha256("\n".join(sorted(set(event_ids))).encode()).hexdigest()


def _to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _to_json(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_json(v) for v in obj]
    return obj


class DatasetRepository:
    """Reads and writes dataset versions under ``root`` (``settings.datasets_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self, kind: DatasetKind) -> list[int]:
        """Existing versions of ``kind``, ascending."""
        base = self.root / kind.value
        if not base.is_dir():
            return []
        return sorted(int(p.name[1:]) for p in base.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit())

    def latest(self, kind: DatasetKind) -> int | None:
        """Newest version of ``kind`` or ``None``."""
        versions = self.versions(kind)
        return versions[-1] if versions else None

    def write(
        self,
        kind: DatasetKind,
        rows: Sequence[Any],
        *,
        event_ids: Iterable[str] = (),
        user_ids: Iterable[str] = (),
        stats: dict[str, Any] | None = None,
    ) -> DatasetManifest:
        """Write ``rows`` as the next version of ``kind``; returns its manifest. Atomic (temp dir + rename)."""
        events = sorted(set(event_ids))
        version = (self.latest(kind) or 0) + 1
        manifest = DatasetManifest(
            kind=kind,
            version=version,
            rows=len(rows),
            provenance_hash=provenance_hash(events),
            event_ids=events,
            user_ids=sorted(set(user_ids)),
            stats=dict(stats or {}),
        )
        base = self.root / kind.value
        base.mkdir(parents=True, exist_ok=True)
        target = base / f"v{version}"
        if target.exists():
            raise ConflictError(f"dataset {kind.value} v{version} already exists", kind=kind.value, version=version)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=base))
        try:
            with open(tmp / "rows.jsonl", "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(_to_json(row), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            (tmp / "manifest.json").write_text(json.dumps(_to_json(manifest), indent=2), encoding="utf-8")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    def manifest(self, kind: DatasetKind, version: int) -> DatasetManifest:
        """Manifest of a version. Raises ``NotFoundError``."""
        path = self.root / kind.value / f"v{version}" / "manifest.json"
        if not path.is_file():
            raise NotFoundError(f"dataset {kind.value} v{version} does not exist", kind=kind.value, version=version)
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["kind"] = DatasetKind(raw["kind"])
        raw["created_at"] = datetime.fromisoformat(raw["created_at"])
        return DatasetManifest(**raw)

    def redact(self, kind: DatasetKind, version: int, *, provenance: set[str], user_ids: set[str]) -> int:
        """Remove a deleted user's rows from a version (see :func:`redact_version`); returns rows removed."""
        return redact_version(self, kind, version, provenance=provenance, user_ids=user_ids)

    def read(self, kind: DatasetKind, version: int | None = None) -> list[Any]:
        """Rows of a version (default: latest) as their dataclass type. Raises ``NotFoundError``."""
        if version is None:
            version = self.latest(kind)
            if version is None:
                raise NotFoundError(f"no {kind.value} dataset has been curated yet", kind=kind.value)
        self.manifest(kind, version)
        row_type = ROW_TYPES.get(kind)
        rows: list[Any] = []
        path = self.root / kind.value / f"v{version}" / "rows.jsonl"
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    rows.append(row_type(**data) if row_type else data)
                except (json.JSONDecodeError, TypeError) as exc:
                    raise InvalidInputError(f"{path}: line {lineno} is not a valid {kind.value} row: {exc}") from exc
        return rows


def _redact_rows(path: Path, provenance: set[str]) -> tuple[list[str], int]:
    """Lines of ``rows.jsonl`` whose provenance avoids ``provenance``, and how many lines were dropped."""
    kept: list[str] = []
    dropped = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if provenance.intersection(row.get("provenance") or ()):
                dropped += 1
            else:
                kept.append(line if line.endswith("\n") else line + "\n")
    return kept, dropped


def redact_version(repo: DatasetRepository, kind: DatasetKind, version: int, *, provenance: set[str],
                   user_ids: set[str]) -> int:  # fmt: skip
    """Deletion's exception to immutability: drop the rows of ``{kind}/v{version}`` whose provenance (event ids, or
    ``q:{query_id}``) is in ``provenance``, and those ids / ``user_ids`` from the manifest. Returns rows dropped.

    Atomic per file; a version without such rows or ids is left untouched.
    """
    manifest = repo.manifest(kind, version)
    base = repo.root / kind.value / f"v{version}"
    kept, dropped = _redact_rows(base / "rows.jsonl", provenance)
    events = [e for e in manifest.event_ids if e not in provenance]
    users = [u for u in manifest.user_ids if u not in user_ids]
    if not dropped and len(events) == len(manifest.event_ids) and len(users) == len(manifest.user_ids):
        return 0
    atomic_write_text(base / "rows.jsonl", "".join(kept))
    redacted = dataclasses.replace(
        manifest, rows=len(kept), event_ids=events, user_ids=users, provenance_hash=provenance_hash(events)
    )
    atomic_write_text(base / "manifest.json", json.dumps(_to_json(redacted), indent=2))
    return dropped
