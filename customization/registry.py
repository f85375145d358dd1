"""Model registry: immutable model versions on disk with manifests, plus an atomic "active" pointer per kind.

Layout under ``root`` (``settings.models_dir``)::

    {root}/{kind}/{version}/manifest.json   ModelVersion fields + the datasets (and their users) behind the model
    {root}/{kind}/{version}/model/          the artifacts (sentence-transformers dir, peft adapter, cross-encoder)
    {root}/{kind}/state.json                {"active": ..., "history": [...], "retired": [...]} (atomic replace)
    {root}/{kind}/.staging-*/               work dirs of running trainings (never listed, removed on failure)
    {root}/{kind}/.staging-*.lock           held by the training process; a dir whose lock is free is swept

Contract: a version is built in a staging directory and renamed into place in one step, so a crashed training run
leaves nothing half-written; versions are never overwritten (a new one gets the next number). Lifecycle changes
(activate / retire / rollback) touch only ``state.json``; the manifest, the source of truth for model -> dataset
(and dataset -> users), never changes after registration.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.files import atomic_write_text
from core.types import Metadata, ModelKind, ModelStatus, ModelVersion, utcnow

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"

MANIFEST = "manifest.json"
STATE = "state.json"
ARTIFACTS = "model"


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset version a model was trained on: kind, version, provenance hash and the users whose events it holds."""

    kind: str
    version: int
    provenance_hash: str
    user_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in the manifest."""
        return {
            "kind": self.kind,
            "version": self.version,
            "provenance_hash": self.provenance_hash,
            "user_ids": sorted(self.user_ids),
        }


@dataclass(slots=True)
class _State:
    active: str | None = None
    history: list[str] = field(default_factory=list)  # previously active versions, oldest first
    retired: list[str] = field(default_factory=list)


def _atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def _version_number(name: str) -> int | None:
    return int(name[1:]) if name[:1] == "v" and name[1:].isdigit() else None


class ModelRegistry:
    """Versions of embedders, generator adapters and rerankers under ``root``. Thread- and process-safe writes."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def staging(self, kind: ModelKind) -> Iterator[Path]:
        """Yield an empty work directory (same filesystem as the registry) for a training run's artifacts.

        The directory is removed when the block exits, whether it was registered (moved away) or not: an exception
        in the block therefore leaves nothing behind. A process killed inside the block cannot remove it; it holds
        an exclusive lock on ``{work}.lock`` (next to it) while alive, which the OS drops on death: that is how
        :meth:`sweep_staging` tells such leftovers from a training run still going on in another process.
        """
        base = self._kind_dir(kind)
        base.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
        lock = _owner_lock(work)
        with open(lock, "a") as owner:
            fcntl.flock(owner, fcntl.LOCK_EX)
            try:
                yield work
            finally:
                shutil.rmtree(work, ignore_errors=True)
                lock.unlink(missing_ok=True)

    def sweep_staging(self) -> builtins.list[str]:
        """Remove the staging directories of training runs whose process died (a kill mid-training); returns their
        paths. A directory whose owner lock is held belongs to a live run and is left alone."""
        removed = []
        for kind in ModelKind:
            base = self._kind_dir(kind)
            for work in sorted(base.glob(f"{STAGING_PREFIX}*")) if base.is_dir() else []:
                if not work.is_dir():
                    continue
                lock = _owner_lock(work)
                just_made = not lock.exists() and time.time() - work.stat().st_mtime < 60  # lock not taken yet
                if not just_made and not _owned(lock):
                    shutil.rmtree(work, ignore_errors=True)
                    lock.unlink(missing_ok=True)
                    removed.append(str(work))
        if removed:
            logger.warning("staging dirs of dead training runs removed count=%d", len(removed))
        return removed

    def register(
        self,
        kind: ModelKind,
        artifacts: Path,
        *,
        parent: str | None = None,
        datasets: Sequence[DatasetRef] = (),
        config: Metadata | None = None,
        seed: int | None = None,
        metrics: Metadata | None = None,
    ) -> ModelVersion:
        """Move ``artifacts`` (a directory, e.g. from :meth:`staging`) into a new candidate version; return it.

        The first dataset is the model's ``dataset_version`` / ``provenance_hash``. Raises ``InvalidInputError``
        when ``artifacts`` is not a non-empty directory.
        """
        artifacts = Path(artifacts)
        if not artifacts.is_dir() or not any(artifacts.iterdir()):
            raise InvalidInputError(f"model artifacts directory is missing or empty: {artifacts}", field="artifacts")
        base = self._kind_dir(kind)
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".register-", dir=base))
        try:
            shutil.move(str(artifacts), tmp / ARTIFACTS)
            return self._commit(kind, tmp, parent=parent, datasets=datasets, config=config, seed=seed, metrics=metrics)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit(self, kind: ModelKind, tmp: Path, *, datasets: Sequence[DatasetRef], **meta: Any) -> ModelVersion:
        for _attempt in range(100):
            version = f"v{self._next_number(kind)}"
            manifest = self._manifest_json(kind, version, datasets=datasets, **meta)
            _atomic_write_json(tmp / MANIFEST, manifest)
            target = self._kind_dir(kind) / version
            try:
                os.mkdir(target)  # claims the name atomically; a concurrent writer gets FileExistsError
            except FileExistsError:
                continue
            os.rename(tmp, target)  # replaces the empty directory we just claimed
            logger.info("model registered kind=%s version=%s datasets=%d", kind.value, version, len(datasets))
            return self.get(kind, version)
        raise ConflictError(f"could not allocate a new {kind.value} version", kind=kind.value)

    def _manifest_json(
        self,
        kind: ModelKind,
        version: str,
        *,
        datasets: Sequence[DatasetRef],
        parent: str | None,
        config: Metadata | None,
        seed: int | None,
        metrics: Metadata | None,
    ) -> dict[str, Any]:
        first = datasets[0] if datasets else None
        return {
            "kind": kind.value,
            "version": version,
            "parent": parent,
            "dataset_version": f"{first.kind}/v{first.version}" if first else None,
            "provenance_hash": first.provenance_hash if first else None,
            "datasets": [d.to_json() for d in datasets],
            "user_ids": sorted({u for d in datasets for u in d.user_ids}),
            "config": dict(config or {}),
            "seed": seed,
            "metrics": dict(metrics or {}),
            "created_at": utcnow().isoformat(),
        }

    # ------------------------------------------------------------------------------------------------ reading
    def get(self, kind: ModelKind, version: str) -> ModelVersion:
        """A registered version with its current status. Raises ``NotFoundError``."""
        raw = self._read_manifest(kind, version)
        return self._to_model_version(kind, raw, self._read_state(kind))

    def list(self, kind: ModelKind | None = None, *, status: ModelStatus | None = None) -> builtins.list[ModelVersion]:
        """Registered versions of ``kind`` (``None``: every kind, in :class:`ModelKind` order), oldest first,
        optionally only those with ``status``."""
        out = []
        for k in [kind] if kind is not None else builtins.list(ModelKind):
            state = self._read_state(k)
            out += [self._to_model_version(k, self._read_manifest(k, v), state) for v in self._versions(k)]
        return [m for m in out if status is None or m.status == status]

    def active(self, kind: ModelKind) -> ModelVersion | None:
        """The active version of ``kind``, or ``None`` when the packaged base model is in use."""
        state = self._read_state(kind)
        return self.get(kind, state.active) if state.active else None

    def dataset_refs(self, kind: ModelKind, version: str) -> builtins.list[DatasetRef]:
        """The datasets (with their users) a version was trained on, from its manifest."""
        raw = self._read_manifest(kind, version)
        return [
            DatasetRef(d["kind"], int(d["version"]), d["provenance_hash"], tuple(d.get("user_ids", ())))
            for d in raw.get("datasets", [])
        ]

    def models_for_user(self, user_id: str) -> builtins.list[ModelVersion]:
        """Every registered model (any kind, any status) whose training data held events of ``user_id``."""
        found: builtins.list[ModelVersion] = []
        for kind in ModelKind:
            state = self._read_state(kind)
            for version in self._versions(kind):
                raw = self._read_manifest(kind, version)
                if user_id in raw.get("user_ids", []):
                    found.append(self._to_model_version(kind, raw, state))
        return found

    # ---------------------------------------------------------------------------------------------- lifecycle
    def activate(self, kind: ModelKind, version: str) -> ModelVersion:
        """Make ``version`` the active one (atomic pointer swap); the previous active is kept for :meth:`rollback`.

        Raises ``NotFoundError`` for an unknown version, ``ConflictError`` for a retired one.
        """
        self._read_manifest(kind, version)
        with self._locked_state(kind) as state:
            if version in state.retired:
                raise ConflictError(f"{kind.value} {version} is retired and cannot be activated", version=version)
            if state.active != version:
                if state.active:
                    state.history.append(state.active)
                state.history = [v for v in state.history if v != version]
                state.active = version
        logger.info("model activated kind=%s version=%s", kind.value, version)
        return self.get(kind, version)

    def rollback(self, kind: ModelKind) -> ModelVersion | None:
        """Re-activate the previously active version (``None``: back to the base model). Returns the new active."""
        with self._locked_state(kind) as state:
            previous = state.history.pop() if state.history else None
            state.active = previous
        logger.info("model rolled back kind=%s active=%s", kind.value, previous)
        return self.get(kind, previous) if previous else None

    def deactivate(self, kind: ModelKind) -> None:
        """Go back to the packaged base model for ``kind`` (the current active is kept in the rollback history)."""
        with self._locked_state(kind) as state:
            if state.active:
                state.history.append(state.active)
            state.active = None

    def retire(self, kind: ModelKind, version: str) -> ModelVersion:
        """Mark a version retired (artifacts stay on disk). Raises ``ConflictError`` for the active version."""
        self._read_manifest(kind, version)
        with self._locked_state(kind) as state:
            if state.active == version:
                raise ConflictError(f"{kind.value} {version} is active; activate another version first")
            if version not in state.retired:
                state.retired.append(version)
            state.history = [v for v in state.history if v != version]
        return self.get(kind, version)

    def discard(self, kind: ModelKind, version: str) -> None:
        """Delete a version that never served (a failed or cancelled cycle's candidate): its directory and any
        mention in the rollback history. Raises ``ConflictError`` for the active version, ``NotFoundError`` for an
        unknown one."""
        self._read_manifest(kind, version)
        with self._locked_state(kind) as state:
            if state.active == version:
                raise ConflictError(f"{kind.value} {version} is active; it cannot be discarded")
            state.retired = [v for v in state.retired if v != version]
            state.history = [v for v in state.history if v != version]
            shutil.rmtree(self._kind_dir(kind) / str(version))
        logger.info("model version discarded kind=%s version=%s", ModelKind(kind).value, version)

    # -------------------------------------------------------------------------------------------- internals
    def _kind_dir(self, kind: ModelKind) -> Path:
        return self.root / ModelKind(kind).value

    def _versions(self, kind: ModelKind) -> builtins.list[str]:
        base = self._kind_dir(kind)
        if not base.is_dir():
            return []
        numbered = [(n, p.name) for p in base.iterdir() if (n := _version_number(p.name)) is not None]
        return [name for _, name in sorted(numbered) if (base / name / MANIFEST).is_file()]

    def _next_number(self, kind: ModelKind) -> int:
        base = self._kind_dir(kind)
        numbers = [n for p in base.iterdir() if (n := _version_number(p.name)) is not None]
        return max(numbers, default=0) + 1

    def _read_manifest(self, kind: ModelKind, version: str) -> dict[str, Any]:
        path = self._kind_dir(kind) / str(version) / MANIFEST
        if _version_number(str(version)) is None or not path.is_file():
            raise NotFoundError(f"{ModelKind(kind).value} version {version!r} does not exist", version=version)
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"corrupt model manifest: {path}: {exc}") from exc
        return raw

    def _to_model_version(self, kind: ModelKind, raw: dict[str, Any], state: _State) -> ModelVersion:
        version = raw["version"]
        if state.active == version:
            status = ModelStatus.ACTIVE
        elif version in state.retired:
            status = ModelStatus.RETIRED
        else:
            status = ModelStatus.CANDIDATE
        return ModelVersion(
            kind=ModelKind(kind),
            version=version,
            path=str(self._kind_dir(kind) / version / ARTIFACTS),
            status=status,
            parent=raw.get("parent"),
            dataset_version=raw.get("dataset_version"),
            provenance_hash=raw.get("provenance_hash"),
            config=raw.get("config", {}),
            seed=raw.get("seed"),
            metrics=raw.get("metrics", {}),
            created_at=datetime.fromisoformat(raw["created_at"]),
        )

    def _read_state(self, kind: ModelKind) -> _State:
        path = self._kind_dir(kind) / STATE
        if not path.is_file():
            return _State()
        raw = json.loads(path.read_text(encoding="utf-8"))
        return _State(
            active=raw.get("active"), history=list(raw.get("history", [])), retired=list(raw.get("retired", []))
        )

    @contextlib.contextmanager
    def _locked_state(self, kind: ModelKind) -> Iterator[_State]:
        base = self._kind_dir(kind)
        base.mkdir(parents=True, exist_ok=True)
        with open(base / ".state.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read_state(kind)
                yield state
                data = {"active": state.active, "history": state.history, "retired": state.retired}
                _atomic_write_json(base / STATE, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _owner_lock(work: Path) -> Path:
    return work.with_name(work.name + ".lock")


def _owned(lock_path: Path) -> bool:
    """Whether a live process holds the exclusive lock on ``lock_path`` (a missing file: no owner)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


__all__ = ["DatasetRef", "ModelRegistry"]
