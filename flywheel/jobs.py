"""Background jobs inside the service: a small thread pool, one exclusive job at a time, cooperative cancellation.

A job is a row in ``fw_jobs`` (see :mod:`flywheel.state`) plus a handler ``fn(ctx) -> dict`` registered per kind.
Exclusive kinds (``cycle`` and ``reindex`` — both move the live alias) never run concurrently: submitting one while
another is queued or running raises ``ConflictError`` carrying the running job's id (HTTP 409).

Cancellation is cooperative: ``cancel()`` sets a flag; the handler calls ``ctx.check_cancelled()`` between steps
and stops with :class:`JobCancelled`, after which the job is ``cancelled``. Handlers update ``step`` / ``progress``
through the context, which also refreshes the heartbeat.

Liveness: while a job runs, a heartbeat thread refreshes its ``heartbeat_at`` every :data:`HEARTBEAT_S` seconds,
whatever the handler is doing; a job whose heartbeat is :data:`STALE_AFTER_S` old has no live process.

Crash recovery (documented choice): on start-up :meth:`JobRunner.recover` marks every job left ``queued`` or
``running`` by a killed process as ``failed`` ("interrupted"), and a CLI run first reaps running jobs whose heartbeat
is stale; the cycle that job was driving is abandoned cleanly by :mod:`flywheel.cycle` (candidate collection dropped,
live alias and active models untouched), and the next cycle starts fresh from the already-curated data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from core.errors import ConflictError, FlywheelError, InvalidInputError, NotEnoughDataError
from core.ports import ProgressCallback
from core.types import utcnow
from flywheel.state import ACTIVE_JOB_STATUSES, JobRecord, JobStatus, StateStore

logger = logging.getLogger(__name__)

HEARTBEAT_S = 10.0  # a running job's heartbeat is refreshed this often
STALE_AFTER_S = 6 * HEARTBEAT_S  # a running job whose heartbeat is this old has no live process

EXCLUSIVE_KINDS = frozenset({"cycle", "reindex"})


class JobCancelled(Exception):
    """Raised inside a handler by :meth:`JobContext.check_cancelled` when cancellation was requested."""


class JobSkipped(Exception):
    """Raised by a handler that decided there is nothing to do (e.g. not enough data); ``result`` is stored."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = dict(result or {})


@dataclass
class JobContext:
    """Handed to a handler: report steps and progress, check for cancellation."""

    job_id: str
    params: dict[str, Any]
    state: StateStore

    def step(self, name: str, *, progress: float | None = None) -> None:
        """Record the current step (and optionally progress 0..1); refreshes the heartbeat. Checks cancellation."""
        values: dict[str, Any] = {"step": name, "heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, float(progress)))
        self.state.update_job(self.job_id, **values)
        logger.info("job step job_id=%s step=%s", self.job_id, name)
        self.check_cancelled()

    def progress(self, value: float) -> None:
        """Record progress 0..1 and the heartbeat."""
        self.state.update_job(self.job_id, progress=max(0.0, min(1.0, float(value))), heartbeat_at=utcnow())

    def reporter(self, start: float, end: float, *, every_s: float = 2.0) -> ProgressCallback:
        """A :class:`~core.ports.ProgressCallback` for one piece of work inside this job: ``(done, total)`` maps onto
        job progress ``start..end``. It writes progress (and the heartbeat) at most every ``every_s`` seconds and at
        the end, and raises :class:`JobCancelled` there once cancellation was requested, so a long embed or training
        run shows how far it got and stops soon after a cancel instead of at the next step."""
        last = [float("-inf")]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < every_s and done < total:
                return
            last[0] = now
            share = min(1.0, done / total) if total > 0 else 1.0
            self.progress(start + (end - start) * share)
            self.check_cancelled()

        return report

    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self.state.get_job(self.job_id).cancel_requested

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if cancellation was requested."""
        if self.cancelled():
            raise JobCancelled(self.job_id)


Handler = Callable[[JobContext], dict[str, Any] | None]
ParamsCheck = Callable[[dict[str, Any]], dict[str, Any]]


class JobRunner:
    """Runs registered job kinds on a thread pool and records their lifecycle in the state store.

    Args:
        state: the loop state store.
        handlers: job kind -> handler.
        checks: job kind -> check of its params, run before the job is recorded: returns the params to store or
            raises ``InvalidInputError`` / ``NotFoundError``, so a bad request is refused at submit time (HTTP 4xx)
            instead of becoming a job that fails later. Kinds without a check take their params as given.
        max_workers: pool size (exclusive kinds still run one at a time).
    """

    def __init__(
        self,
        state: StateStore,
        handlers: dict[str, Handler],
        *,
        checks: dict[str, ParamsCheck] | None = None,
        max_workers: int = 2,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.state = state
        self.heartbeat_s = heartbeat_s
        self.handlers = dict(handlers)
        self.checks = dict(checks or {})
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flywheel-job")
        self._lock = threading.Lock()
        self._futures: dict[str, Future[None]] = {}

    @property
    def kinds(self) -> list[str]:
        """Registered job kinds."""
        return sorted(self.handlers)

    def recover(self, *, stale_after_s: float = 0.0) -> list[str]:
        """Mark jobs left queued/running by a dead process as failed; returns their ids.

        The service calls it once at start-up with ``stale_after_s=0`` (nothing of its own can be running yet); the
        CLI passes :data:`STALE_AFTER_S` so that it only reaps running jobs whose heartbeat stopped that long ago
        (a queued job may be waiting for a live service's worker; the service's own restart reaps those).
        """
        now = utcnow()
        statuses = tuple(ACTIVE_JOB_STATUSES) if stale_after_s <= 0 else (JobStatus.RUNNING,)
        stale = [
            job
            for job in self.state.list_jobs(statuses=statuses, limit=1000)
            if job.id not in self._futures
            and (now - (job.heartbeat_at or job.updated_at or now)).total_seconds() >= stale_after_s
        ]
        for job in stale:
            self.state.update_job(job.id, status=JobStatus.FAILED, error="interrupted: the process stopped mid-job")
            logger.warning("job interrupted job_id=%s kind=%s step=%s", job.id, job.kind, job.step)
        return [job.id for job in stale]

    def submit(self, kind: str, params: dict[str, Any] | None = None) -> JobRecord:
        """Queue a job and start it in the background. Raises ``InvalidInputError`` (unknown kind, bad params),
        ``NotFoundError`` (params naming something that does not exist) or ``ConflictError`` (an exclusive job is
        already queued or running; ``job_id`` names it)."""
        job = self._create(kind, params)
        self._futures[job.id] = self._pool.submit(self._execute, job.id)
        return job

    def _create(self, kind: str, params: dict[str, Any] | None) -> JobRecord:
        if kind not in self.handlers:
            raise InvalidInputError(f"unknown job kind {kind!r}; expected one of {self.kinds}", field="kind")
        params = self.check_params(kind, params)
        with self._lock:
            if kind in EXCLUSIVE_KINDS:
                self._refuse_if_busy()
            return self.state.create_job(kind, params)

    def check_params(self, kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """``params`` as the kind's check returns them (raising on bad input); as given for a kind without one."""
        given = dict(params or {})
        check = self.checks.get(kind)
        return check(given) if check is not None else given

    def _refuse_if_busy(self) -> None:
        for job in self.state.list_jobs(statuses=tuple(ACTIVE_JOB_STATUSES), limit=100):
            if job.kind in EXCLUSIVE_KINDS:
                beat = job.heartbeat_at or job.updated_at
                age = f" (heartbeat {(utcnow() - beat).total_seconds():.0f} s ago)" if beat else ""
                raise ConflictError(
                    f"a {job.kind} job is already {job.status.value}: {job.id}{age}", job_id=job.id, kind=job.kind
                )

    def cancel(self, job_id: str) -> JobRecord:
        """Request cancellation. A queued job is cancelled at once; a running one at its next step or progress report.
        Raises ``NotFoundError``, or ``ConflictError`` when the job already finished."""
        job = self.state.get_job(job_id)
        if job.status not in ACTIVE_JOB_STATUSES:
            raise ConflictError(f"job {job_id} already finished ({job.status.value})", job_id=job_id)
        self.state.update_job(job_id, cancel_requested=True)
        future = self._futures.get(job_id)
        if job.status is JobStatus.QUEUED and future is not None and future.cancel():
            self.state.update_job(job_id, status=JobStatus.CANCELLED, error="cancelled before start")
        return self.state.get_job(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until a submitted job finishes (tests, CLI); returns its final record."""
        future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout=timeout)
        return self.state.get_job(job_id)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop accepting jobs; running ones are asked to cancel when ``wait`` is false."""
        if not wait:
            for job_id, future in self._futures.items():
                if not future.done():
                    self.state.update_job(job_id, cancel_requested=True)
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def close(self) -> None:
        """Shut down without waiting; running jobs are asked to cancel (container shutdown)."""
        self.shutdown(wait=False)

    def _execute(self, job_id: str) -> None:
        job = self.state.get_job(job_id)
        if job.cancel_requested:
            self.state.update_job(job_id, status=JobStatus.CANCELLED, error="cancelled before start")
            return
        self.state.update_job(job_id, status=JobStatus.RUNNING, heartbeat_at=utcnow())
        ctx = JobContext(job_id=job_id, params=dict(job.params), state=self.state)
        logger.info("job start job_id=%s kind=%s", job_id, job.kind)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job_id, stop), name="flywheel-heartbeat", daemon=True)
        beat.start()
        try:
            self._run_handler(job, ctx)
        finally:
            stop.set()
            beat.join(timeout=self.heartbeat_s + 5)

    def _beat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            try:
                self.state.update_job(job_id, heartbeat_at=utcnow())
            except Exception:  # a missed beat is not fatal; the next one retries
                logger.warning("job heartbeat failed job_id=%s", job_id, exc_info=True)

    def _run_handler(self, job: JobRecord, ctx: JobContext) -> None:
        job_id = job.id
        try:
            result = self.handlers[job.kind](ctx) or {}
        except JobCancelled:
            self._finish(job_id, JobStatus.CANCELLED, error="cancelled by request")
        except JobSkipped as skip:
            self._finish(job_id, JobStatus.SKIPPED, error=skip.reason, result=skip.result)
        except NotEnoughDataError as exc:
            self._finish(job_id, JobStatus.SKIPPED, error=f"skipped: {exc.message}")
        except FlywheelError as exc:
            self._finish(job_id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc.message}")
        except Exception as exc:  # a handler bug must not kill the worker thread; recorded, logged with traceback
            logger.exception("job crashed job_id=%s kind=%s", job_id, job.kind)
            self._finish(job_id, JobStatus.FAILED, error=f"internal error: {type(exc).__name__}")
        else:
            self._finish(job_id, JobStatus.SUCCEEDED, result=result, progress=1.0)

    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> None:
        self.state.update_job(job_id, status=status, heartbeat_at=utcnow(), **values)
        logger.info("job end job_id=%s status=%s", job_id, status.value)
