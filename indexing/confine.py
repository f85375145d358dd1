"""Confinement of document sources: a (re)index may only read files under configured root folders.

Contract: :func:`confine_source` is the one check every reindex path calls (the API's ``POST /v1/jobs`` at submit
time, the CLI's ``flywheel reindex --source``, the scheduled reindex at run time). Built-in corpora
(``builtin:...``) are not files and always pass; a path is resolved (``..`` and every symlink followed) and must lie
under one of the roots; a folder must not hold a symlink whose target leaves the roots. Relative paths are taken
relative to the first root. Anything else is an :class:`core.errors.InvalidInputError` (422) naming the roots.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from core.errors import InvalidInputError

_MAX_WALK_ENTRIES = 200_000  # a folder larger than this is refused rather than walked for ever


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _refuse(message: str, roots: Sequence[Path]) -> InvalidInputError:
    return InvalidInputError(
        f"{message}; sources must lie under {', '.join(str(r) for r in roots)} (indexing.source_roots)",
        field="source",
        roots=[str(r) for r in roots],
    )


def _escaping_link(folder: Path, roots: Sequence[Path]) -> Path | None:
    """The first symlink under ``folder`` whose target lies outside ``roots`` (walked without following links)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in (*dirnames, *filenames):
            seen += 1
            entry = Path(dirpath) / name
            if entry.is_symlink() and not _under(Path(os.path.realpath(entry)), roots):
                return entry
        if seen > _MAX_WALK_ENTRIES:
            raise InvalidInputError(f"source folder {folder} holds more than {_MAX_WALK_ENTRIES} entries")
    return None


def confine_source(source: str, *, roots: Sequence[Path], always_allowed: Sequence[str] = ()) -> str:
    """Check that ``source`` may be read; return it (paths resolved to an absolute real path).

    Args:
        source: ``builtin:<name>`` or a file / folder path.
        roots: resolved root folders sources must lie under (``Settings.source_roots``).
        always_allowed: specs the operator configured themselves (``deploy.reindex_source``), allowed as given.
    Raises:
        InvalidInputError: the path (after resolving ``..`` and symlinks) is outside every root, or a folder holds
            a symlink that leads outside them.
    """
    if source.startswith("builtin:") or source in always_allowed:
        return source
    if "\x00" in source:
        raise InvalidInputError("source must not contain NUL characters", field="source")
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    if not real_roots:
        raise _refuse(f"no source roots are configured, so {source} cannot be read", real_roots)
    given = Path(source).expanduser()
    candidate = given if given.is_absolute() else real_roots[0] / given
    resolved = Path(os.path.realpath(candidate))
    if not _under(resolved, real_roots):
        raise _refuse(f"reindex source {source} resolves to {resolved}, outside the source roots", real_roots)
    if resolved.is_dir():
        link = _escaping_link(resolved, real_roots)
        if link is not None:
            message = f"source folder {source} holds a symlink leading outside the roots: {link}"
            raise _refuse(message, real_roots)
    return str(resolved)


__all__ = ["confine_source"]
