"""Write guard of a store on a local filesystem: refuse a write that would fill the disk or hit a read-only mount.

Why: qdrant-edge (and SQLite's shared memory) mmap their files. A write into a page the filesystem cannot back
(disk full) raises SIGBUS and kills the whole process with no log line; a read-only remount fails the write as well.
So every write path asks :meth:`DiskGuard.check` first, with an estimate of the bytes it is about to add, and gets a
:class:`core.errors.StorageUnavailableError` (503 + ``Retry-After``) while there is still a reserve left —
``max(min_free_bytes, min_free_share * filesystem size)``. Reads are never guarded.

:func:`write_errors` translates the ``OSError`` of a write that raced past the check (``ENOSPC``, ``EDQUOT``,
``EROFS``) into the same error.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import StorageUnavailableError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 60.0
# qdrant-edge writes each point to its WAL and to a segment (plus payload indexes): budget ~3x the raw bytes.
WRITE_AMPLIFICATION = 3
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class DiskStatus:
    """Free space and writability of the filesystem holding a path."""

    free_bytes: int
    total_bytes: int
    read_only: bool


def disk_status(path: Path) -> DiskStatus:
    """``statvfs`` of the nearest existing ancestor of ``path`` (``read_only``: mounted ro or not writable to us)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    read_only = bool(st.f_flag & os.ST_RDONLY) or not os.access(probe, os.W_OK)
    return DiskStatus(free_bytes=st.f_bavail * st.f_frsize, total_bytes=st.f_blocks * st.f_frsize, read_only=read_only)


class DiskGuard:
    """Refuses writes under ``path`` while its filesystem is read-only or below the free-space reserve.

    Args:
        path: a directory on the guarded filesystem (the store's root).
        min_free_bytes: free bytes that must remain after a write.
        min_free_share: the same reserve as a share of the filesystem size; the larger applies.
    """

    def __init__(self, path: Path | str, *, min_free_bytes: int = 0, min_free_share: float = 0.0) -> None:
        self.path = Path(path)
        self.min_free_bytes = max(0, int(min_free_bytes))
        self.min_free_share = max(0.0, float(min_free_share))

    def reserve_bytes(self, status: DiskStatus) -> int:
        """The reserve that must stay free on a filesystem of ``status.total_bytes``."""
        return max(self.min_free_bytes, int(self.min_free_share * status.total_bytes))

    def problem(self, need_bytes: int = 0) -> str | None:
        """Why a write of ``need_bytes`` must not happen now (``None``: it may)."""
        try:
            status = disk_status(self.path)
        except OSError as exc:
            return f"store directory {self.path} cannot be examined: {exc.strerror}"
        if status.read_only:
            return f"store directory {self.path} is read-only"
        reserve = self.reserve_bytes(status)
        if status.free_bytes - need_bytes * WRITE_AMPLIFICATION < reserve:
            return (
                f"store filesystem of {self.path} is nearly full: {status.free_bytes} bytes free, "
                f"{reserve} must stay free, the write needs ~{need_bytes * WRITE_AMPLIFICATION}"
            )
        return None

    def check(self, action: str, *, need_bytes: int = 0) -> None:
        """Raise :class:`StorageUnavailableError` if ``action`` (adding ~``need_bytes``) must not write now."""
        reason = self.problem(need_bytes)
        if reason is None:
            return
        kind = "read-only" if "read-only" in reason else "full"
        logger.warning("write refused action=%s reason=%s path=%s", action, kind, self.path)
        raise StorageUnavailableError(f"{action} refused: {reason}", reason=kind, retry_after_s=RETRY_AFTER_S)

    def check_rows(self, action: str, rows: Sequence[tuple[str, list[float], dict[str, Any]]]) -> None:
        """:meth:`check` for a write of ``(id, vector, payload)`` rows (size estimated from vectors and payloads)."""
        payload_bytes = sum(len(repr(payload)) for _, _, payload in rows)
        dim = len(rows[0][1]) if rows else 0
        self.check(action, need_bytes=estimate_bytes(points=len(rows), dim=dim, payload_bytes=payload_bytes))


def estimate_bytes(*, points: int, dim: int, payload_bytes: int = 0) -> int:
    """Rough on-disk size of ``points`` vectors of ``dim`` float32 plus their payload bytes."""
    return points * dim * 4 + payload_bytes


@contextlib.contextmanager
def write_errors(action: str, path: Path) -> Iterator[None]:
    """Translate a write's ``ENOSPC`` / ``EDQUOT`` / ``EROFS`` ``OSError`` into :class:`StorageUnavailableError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise StorageUnavailableError(f"{action} failed: no space left under {path}", reason="full") from exc
        if exc.errno == errno.EROFS:
            raise StorageUnavailableError(f"{action} failed: {path} is read-only", reason="read-only") from exc
        raise


def is_storage_exhausted(message: str) -> str | None:
    """``"full"`` / ``"read-only"`` when a third-party error message says the disk is full or read-only."""
    lowered = message.lower()
    if "no space left" in lowered or "disk is full" in lowered or "quota exceeded" in lowered:
        return "full"
    if "read-only file system" in lowered or "readonly" in lowered:
        return "read-only"
    return None


__all__ = ["DiskGuard", "DiskStatus", "disk_status", "estimate_bytes", "is_storage_exhausted", "write_errors"]
