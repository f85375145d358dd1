"""A full or read-only disk refuses writes with ``StorageUnavailableError`` instead of killing the process.

Two layers: faults injected at the store's write call and at ``statvfs`` (always run), and a real tiny tmpfs that
fills up (root only: skipped with the reason where mounting is not possible). Without the guard, qdrant-edge writes
into mmapped files and the process dies with SIGBUS (exit 135) when the filesystem fills.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import StorageUnavailableError
from core.types import Document, Point
from indexing.chunking import Chunker
from indexing.manager import IndexManager
from indexing.stores import diskguard
from indexing.stores.diskguard import DiskGuard
from indexing.stores.edge import EdgeVectorStore

REPO = Path(__file__).resolve().parents[2]


def _points(n: int, dim: int = 32) -> list[Point]:
    rng = np.random.default_rng(0)
    return [Point(id=str(uuid.uuid4()), vector=rng.random(dim).tolist(), payload={"text": "x" * 200}) for _ in range(n)]


def _docs(n: int) -> list[Document]:
    return [Document(f"d{i}", f"answer {i} about refunds and shipping number {i}") for i in range(n)]


class _FakeStatvfs:
    """``os.statvfs`` result with chosen free blocks / read-only flag (fault injection at the guard's probe)."""

    def __init__(self, *, free_bytes: int, total_bytes: int = 10**10, read_only: bool = False) -> None:
        self.f_frsize = 4096
        self.f_bavail = free_bytes // 4096
        self.f_blocks = total_bytes // 4096
        self.f_flag = os.ST_RDONLY if read_only else 0


@pytest.fixture
def low_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Switchable fake filesystem state seen by every DiskGuard (``state['free']``, ``state['ro']``)."""
    state: dict[str, Any] = {"free": 10**10, "ro": False}
    real = os.statvfs

    def fake(path: Any) -> Any:
        real(path)  # the path must still exist
        return _FakeStatvfs(free_bytes=state["free"], read_only=state["ro"])

    monkeypatch.setattr(diskguard.os, "statvfs", fake)
    yield state


@pytest.mark.unit
def test_guard_reserve_is_the_larger_of_bytes_and_share(tmp_path: Path, low_disk: dict[str, Any]) -> None:
    low_disk["free"] = 300 * 2**20
    assert DiskGuard(tmp_path, min_free_bytes=100 * 2**20).problem() is None
    assert "nearly full" in (DiskGuard(tmp_path, min_free_bytes=400 * 2**20).problem() or "")
    assert "nearly full" in (DiskGuard(tmp_path, min_free_share=0.05).problem() or "")  # 5% of 10 GB = 500 MB
    assert "nearly full" in (DiskGuard(tmp_path, min_free_bytes=100 * 2**20).problem(need_bytes=80 * 2**20) or "")
    low_disk["ro"] = True
    with pytest.raises(StorageUnavailableError) as info:
        DiskGuard(tmp_path).check("upsert")
    assert info.value.reason == "read-only" and info.value.retry_after_s


@pytest.mark.integration
def test_when_disk_low_then_upsert_refused_and_reads_still_work(tmp_path: Path, low_disk: dict[str, Any]) -> None:
    store = EdgeVectorStore(tmp_path / "v", min_free_bytes=64 * 2**20)
    store.create_collection("c__v1", dim=32)
    store.upsert("c__v1", _points(10))
    low_disk["free"] = 64 * 2**20 + 2**19  # above the reserve, but not with a 1024-point batch on top
    with pytest.raises(StorageUnavailableError) as info:
        store.upsert("c__v1", _points(2000))
    assert info.value.reason == "full" and "reserve" not in info.value.message
    assert store.count("c__v1") == 10
    assert len(store.search("c__v1", _points(1)[0].vector, top_k=3)) == 3
    assert store.write_problem() is None  # small writes still fit above the reserve
    low_disk["free"] = 60 * 2**20
    assert "nearly full" in (store.write_problem() or "")
    store.close()


@pytest.mark.integration
def test_when_disk_full_then_create_leaves_no_directory(tmp_path: Path, low_disk: dict[str, Any]) -> None:
    store = EdgeVectorStore(tmp_path / "v", min_free_bytes=64 * 2**20)
    low_disk["free"] = 10 * 2**20
    with pytest.raises(StorageUnavailableError):
        store.create_collection("c__v1", dim=32)
    assert list((tmp_path / "v" / "collections").iterdir()) == []
    store.close()


@pytest.mark.integration
def test_when_shard_write_fails_with_enospc_then_translated_and_no_half_build_left(
    tmp_path: Path, chunker: Chunker, hashing_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injected at the store's write call: qdrant-edge's bare ``Exception`` for a full disk."""
    store = EdgeVectorStore(tmp_path / "v")
    manager = IndexManager(store, chunker=chunker)
    manager.reindex("kb", _docs(5), embedder=hashing_embedder)
    real_upsert = EdgeVectorStore.upsert

    def failing_upsert(self: EdgeVectorStore, name: str, points: Any) -> None:
        if name == "kb__v2":
            with diskguard.write_errors("upsert", self.root):
                raise OSError(28, "No space left on device")
        real_upsert(self, name, points)

    monkeypatch.setattr(EdgeVectorStore, "upsert", failing_upsert)
    with pytest.raises(StorageUnavailableError):
        manager.reindex("kb", _docs(8), embedder=hashing_embedder)
    assert store.get_alias("kb") == "kb__v1" and "kb__v2" not in store.list_collections()
    assert not (tmp_path / "v" / "collections" / "kb__v2").exists()
    store.close()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Service internal error: No space left on device (os error 28)", "full"),
        ("failed to write: Read-only file system (os error 30)", "read-only"),
        ("dimension mismatch", None),
    ],
)
def test_edge_error_messages_for_full_and_read_only_disks_are_recognised(message: str, reason: str | None) -> None:
    assert diskguard.is_storage_exhausted(message) == reason


@pytest.mark.integration
def test_when_read_only_then_correction_refused_before_any_write(
    tmp_path: Path, chunker: Chunker, hashing_embedder: Any, low_disk: dict[str, Any]
) -> None:
    store = EdgeVectorStore(tmp_path / "v")
    manager = IndexManager(store, chunker=chunker, embedder=hashing_embedder)
    manager.reindex("kb", _docs(3), embedder=hashing_embedder)
    low_disk["ro"] = True
    with pytest.raises(StorageUnavailableError) as info:
        manager.upsert_correction("kb", correction_id="c1", query_id="q1", text="Refunds take 5 days.", meta={})
    assert info.value.reason == "read-only"
    assert store.count("kb") == 3 and "read-only" in (store.write_problem() or "")
    store.close()


# ---------------------------------------------------------------------------------------------- real filesystem
def _mount_tmpfs(target: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``target``; returns the reason when that is not possible."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True)
    return None if done.returncode == 0 else f"mount failed: {done.stderr.decode(errors='replace').strip()}"


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs (skipped with the reason when it cannot be mounted)."""
    target = tmp_path / "tiny"
    reason = _mount_tmpfs(target, "48m")
    if reason:
        pytest.skip(f"real full-disk test not possible here: {reason}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


_FILL = textwrap.dedent(
    """
    import sys, uuid, numpy as np
    from core.errors import StorageUnavailableError
    from core.types import Point
    from indexing.stores.edge import EdgeVectorStore
    store = EdgeVectorStore(sys.argv[1], min_free_bytes=int(sys.argv[2]))
    store.create_collection("c__v1", dim=384)
    rng = np.random.default_rng(0)
    try:
        for i in range(200):
            pts = [Point(id=str(uuid.uuid4()), vector=rng.random(384).tolist(), payload={"text": "x" * 500})
                   for _ in range(512)]
            store.upsert("c__v1", pts)
    except StorageUnavailableError as exc:
        print("refused", exc.reason, store.count("c__v1"), flush=True)
        store.close()
        sys.exit(0)
    print("never refused", flush=True)
    """
)


@pytest.mark.integration
def test_real_tmpfs_fills_and_the_process_survives(tiny_fs: Path) -> None:
    """Writing until the 48 MiB filesystem fills: refused at the reserve, exit 0 (without the guard: SIGBUS, 135)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _FILL, str(tiny_fs / "v"), str(8 * 2**20)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.startswith("refused full"), done.stdout
    assert int(done.stdout.split()[2]) > 0
