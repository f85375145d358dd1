"""Which process does the CLI's work: the running service (over HTTP) or the CLI itself (in-process).

``flywheel serve`` owns the embedded store and the state database of its data dir. While it runs it keeps an
*address file* ``{data_dir}/service.json`` (``url``, ``pid``, ``host``, ``port``, ``started_at``; written once the
server listens, removed at a clean shutdown). It holds no key: a client authenticates with ``FLYWHEEL_API_KEY``
(setting ``api_key``), else the bootstrap admin key of its own settings (``auth.bootstrap_admin_key``).

:func:`select_backend` picks, in this order:

1. ``FLYWHEEL_URL`` (setting ``url``) set: a :class:`~flywheel.client_remote.RemoteBackend` for that service;
2. an address file whose process is alive and answers ``/healthz``: a ``RemoteBackend`` for it;
3. otherwise a :class:`LocalBackend` (the operations layer in this process). A stale address file (process gone,
   or nothing listening) is reported with one ``warning:`` line on stderr and removed when its process is gone.

Both backends expose the methods of :class:`flywheel.operations.Operations` plus :meth:`finish_job` and
:meth:`prepare_jobs`, and raise the same :mod:`core.errors`, so a command prints the same thing and exits with the same
code either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.files import atomic_write_text
from flywheel.operations import Operations, job_dict

if TYPE_CHECKING:
    from core.settings import Settings
    from flywheel.container import Container

logger = logging.getLogger(__name__)

ADDRESS_FILE = "service.json"


class Backend(Protocol):
    """What the CLI commands call (``flywheel.operations.Operations``'s use cases, in- or out-of-process)."""

    remote: bool

    def versions(self, corpus: str | None = None) -> dict[str, Any]: ...
    def models(self, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]: ...
    def jobs(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...
    def job(self, job_id: str) -> dict[str, Any]: ...
    def lineage(self, kind: str, node_id: str, *, depth: int = 8) -> dict[str, Any]: ...
    def prepare_jobs(self) -> None: ...
    def submit_job(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def cancel_job(self, job_id: str) -> dict[str, Any]: ...
    def finish_job(self, job_id: str) -> dict[str, Any]: ...
    def promote(
        self, candidate: str | None = None, *, force: bool = False, reason: str | None = None, actor: str
    ) -> dict[str, Any]: ...
    def rollback(self, *, reason: str = "manual rollback") -> dict[str, Any]: ...
    def create_key(self, role: str, *, name: str) -> dict[str, Any]: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    def query(
        self, question: str, *, top_k: int, filters: dict[str, Any] | None = None, corpus: str | None = None,
        user_id: str | None = None, tenant: str | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip
    def curate(
        self, *, corpus: str | None = None, holdout_share: float | None = None, seed: int | None = None
    ) -> dict[str, Any]: ...


class LocalBackend(Operations):
    """The operations layer in the CLI's own process (no service runs for the data dir)."""

    remote = False

    def prepare_jobs(self) -> None:
        """Before running a job here: mark jobs whose process is gone failed, sweep dead training runs' staging."""
        from flywheel.jobs import STALE_AFTER_S

        self.container.job_runner.recover(stale_after_s=STALE_AFTER_S)  # a live service may own the other jobs
        self.container.registry.sweep_staging()  # a live training run in another process holds its lock

    def finish_job(self, job_id: str) -> dict[str, Any]:
        """Wait for the job's worker thread to end; the job's final state."""
        return job_dict(self.container.job_runner.wait(job_id))


# ---------------------------------------------------------------------------------------------------- address file
def address_path(data_dir: Path) -> Path:
    """Where a service for ``data_dir`` records its address."""
    return data_dir / ADDRESS_FILE


def write_address(data_dir: Path, *, host: str, port: int) -> Path:
    """Record this process as the service of ``data_dir`` (atomically: temp file + rename). No secrets inside."""
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    url_host = f"[{connect_host}]" if ":" in connect_host else connect_host
    record = {"url": f"http://{url_host}:{port}", "pid": os.getpid(), "host": host, "port": port,
              "started_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    path = address_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record) + "\n")
    logger.info("service address recorded path=%s port=%d pid=%d", path, port, record["pid"])
    return path


def remove_address(data_dir: Path) -> None:
    """Remove the address file if this process wrote it (a newer service's file is left alone)."""
    path = address_path(data_dir)
    record = read_address(data_dir)
    if record is not None and record.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_address(data_dir: Path) -> dict[str, Any] | None:
    """The recorded service address, or None when there is none (or it is unreadable)."""
    try:
        record = json.loads(address_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("url"), str) else None


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _answers(url: str, *, timeout_s: float = 3.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def serve_announced(config: Any, *, data_dir: Path) -> None:
    """Run uvicorn with ``config`` (a ``uvicorn.Config``), recording the address once it listens and removing the
    record before it stops (and on any exit of this function)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        """uvicorn's server, announcing itself in the data dir while it listens."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            bound = [s.getsockname() for srv in getattr(self, "servers", []) for s in (srv.sockets or ())]
            if self.started and bound:
                write_address(data_dir, host=self.config.host, port=int(bound[0][1]))

        async def shutdown(self, sockets: Any = None) -> None:
            remove_address(data_dir)
            await super().shutdown(sockets=sockets)

    try:
        AnnouncingServer(config).run()
    finally:
        remove_address(data_dir)


# ---------------------------------------------------------------------------------------------------- selection
def _warn(message: str) -> None:
    import typer

    typer.echo(f"warning: {message}", err=True)


def client_key(settings: Settings) -> str | None:
    """The key the CLI sends: ``FLYWHEEL_API_KEY``, else the bootstrap admin key of its settings, else none."""
    secret = settings.api_key or settings.auth.bootstrap_admin_key
    return secret.get_secret_value() if secret is not None else None


def running_service(settings: Settings) -> str | None:
    """The URL of the service to use: ``FLYWHEEL_URL``, else a live one recorded in the data dir, else None."""
    if settings.url:
        return settings.url.rstrip("/")
    record = read_address(settings.data_dir)
    if record is None:
        return None
    url = str(record["url"])
    if not _pid_alive(record.get("pid")):
        _warn(f"stale service address file {address_path(settings.data_dir)} (process {record.get('pid')} is gone); "
              "running in-process")  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            address_path(settings.data_dir).unlink()
        return None
    if not _answers(url):
        _warn(f"the service recorded in {address_path(settings.data_dir)} does not answer at {url}; running in-process")
        return None
    return url


def select_backend(settings: Settings, container_factory: Any) -> Backend:
    """The backend for this CLI run (see the module docstring); ``container_factory()`` builds the local one."""
    url = running_service(settings)
    if url is not None:
        from flywheel.client_remote import RemoteBackend

        logger.info("using the service url=%s", url)
        return RemoteBackend(url, api_key=client_key(settings))
    container: Container = container_factory()
    return LocalBackend(container)


__all__ = ["ADDRESS_FILE", "Backend", "LocalBackend", "address_path", "client_key", "read_address",
           "remove_address", "running_service", "select_backend", "serve_announced", "write_address"]  # fmt: skip
