"""Crash-safe file writes shared by every store that keeps small files (datasets, registry, vector-store pointers).

:func:`atomic_write_text` writes a temp file in the same directory, fsyncs it and renames it over the target, so a
reader sees the old or the new content, never a partial one (and the old inode, with its bytes, is unlinked).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str, *, fsync_dir: bool = False) -> None:
    """Replace ``path`` with ``text`` atomically (temp, fsync, rename); ``fsync_dir``: also fsync the directory, so
    the rename itself survives a power loss (pointer files that must never go back to an older target)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync_dir:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


__all__ = ["atomic_write_text"]
