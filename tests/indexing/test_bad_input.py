"""Bad input files: each is skipped and reported (count + reason), the rest indexed; ``strict`` aborts instead."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from indexing.loaders import load_paths

pytestmark = pytest.mark.unit

GOOD = "# Good page\n\nThis page is fine and must be indexed.\n"


def _write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _symlink_loop(root: Path) -> None:
    (root / "a.md").symlink_to(root / "b.md")
    (root / "b.md").symlink_to(root / "a.md")


def _outside_link(root: Path) -> None:
    outside = root.parent / f"{root.name}-outside.md"
    outside.write_text("# Secret\n\nOutside the source folder.\n")
    (root / "escape.md").symlink_to(outside)


BAD: list[tuple[str, Callable[[Path], object], str]] = [
    ("binary", lambda p: _write(p, "blob.txt", b"\x7fELF\x00\x00\x01binary"), "binary file"),
    ("empty", lambda p: _write(p, "empty.md", "  \n"), "empty"),
    ("broken-pdf", lambda p: _write(p, "manual.pdf", b"%PDF-1.4 not really a pdf"), "PDF"),
    ("broken-gzip", lambda p: _write(p, "page.html.gz", b"not gzip at all"), "gzip"),
    ("oversized", lambda p: _write(p, "big.txt", "word " * 400), "over the size limit"),
    ("oversized-gz", lambda p: _write(p, "big.txt.gz", gzip.compress(b"word " * 400)), "over the size limit"),
    ("symlink-loop", _symlink_loop, "symlink loop"),
    ("outside-root", _outside_link, "outside the source folder"),
]


@pytest.mark.parametrize(("make", "reason"), [(m, r) for _, m, r in BAD], ids=[i for i, _, _ in BAD])
def test_when_file_bad_then_skipped_and_reported_rest_indexed(tmp_path: Path, make, reason: str) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    _write(root, "good.md", GOOD)
    make(root)
    result = load_paths([root], max_file_bytes=1000)
    assert [d.id for d in result.documents] == ["good.md"]
    assert result.skipped, "a bad file must be reported, never dropped silently"
    assert any(reason in s.reason for s in result.skipped), result.skipped
    assert result.summary()["skipped"] == len(result.skipped)
    with pytest.raises(InvalidInputError, match="--strict"):
        load_paths([root], max_file_bytes=1000, strict=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_when_file_unreadable_then_skipped_with_os_reason(tmp_path: Path) -> None:
    _write(tmp_path, "good.md", GOOD)
    _write(tmp_path, "locked.md", GOOD).chmod(0)
    result = load_paths([tmp_path])
    assert [s.path.endswith("locked.md") for s in result.skipped] == [True]


def test_when_text_in_another_encoding_then_decoded_not_dropped(tmp_path: Path) -> None:
    text = "Caf\xe9 cr\xe8me: the r\xe9sum\xe9 of the na\xefve se\xf1or, d\xe9j\xe0 vu.\n" * 5
    _write(tmp_path, "latin1.txt", text.encode("latin-1"))
    _write(tmp_path, "utf16.txt", text.encode("utf-16"))
    result = load_paths([tmp_path])
    assert not result.skipped
    assert {d.id: d.text.split()[0] for d in result.documents} == {"latin1.txt": "Café", "utf16.txt": "Café"}


def test_when_path_missing_then_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_paths([tmp_path / "nope"])


def test_when_unsupported_file_given_explicitly_then_reported(tmp_path: Path) -> None:
    image = _write(tmp_path, "logo.png", b"\x89PNG")
    result = load_paths([image, _write(tmp_path, "good.md", GOOD)])
    assert [s.reason for s in result.skipped] == ["unsupported file type"]
    assert [d.id for d in result.documents] == ["good.md"]
