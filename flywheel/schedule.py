"""The service's own scheduler: the nightly reindex on ``settings.deploy.reindex_cron`` and the canary check on
``settings.deploy.canary_check_cron`` (tasks built by :func:`flywheel.loop.make_scheduler`).

A daemon thread sleeps until the next cron time (croniter, UTC) and submits a ``reindex`` job through the job
runner, so the usual rules apply (one alias-moving job at a time; a busy slot skips that night with a log line).
For deployments that prefer an external scheduler, ``flywheel reindex`` does the same work once (e.g. from the
system cron) — disable the built-in one with ``FLYWHEEL_DEPLOY__REINDEX_CRON=`` (empty).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from core.errors import ConflictError, FlywheelError, InvalidInputError
from core.types import utcnow

logger = logging.getLogger(__name__)


def next_run(cron: str, after: datetime) -> datetime:
    """The first time matching ``cron`` strictly after ``after``. Raises ``InvalidInputError`` for a bad expression."""
    from croniter import croniter

    if not croniter.is_valid(cron):
        raise InvalidInputError(f"invalid cron expression {cron!r}", field="deploy.reindex_cron")
    result: datetime = croniter(cron, after).get_next(datetime)
    return result


class Scheduler:
    """Runs ``tasks`` (name -> (cron, callable)) on their cron schedules in one daemon thread.

    Args:
        tasks: task name -> (cron expression, zero-argument callable).
        clock: source of the current time (tests pass a fake).
    """

    def __init__(self, tasks: dict[str, tuple[str, Callable[[], object]]], *, clock: Callable[[], datetime] = utcnow):
        for cron, _fn in tasks.values():
            next_run(cron, clock())  # validate early
        self.tasks = dict(tasks)
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, now: datetime) -> dict[str, datetime]:
        """Next run time of each task after ``now``."""
        return {name: next_run(cron, now) for name, (cron, _fn) in self.tasks.items()}

    def run_pending(self, last: datetime, now: datetime) -> list[str]:
        """Run every task with a cron time in ``(last, now]``; returns the names run."""
        ran = []
        for name, (cron, fn) in self.tasks.items():
            if next_run(cron, last) <= now:
                try:
                    fn()
                    ran.append(name)
                except ConflictError as exc:
                    logger.warning(
                        "scheduled task skipped task=%s reason=busy job_id=%s", name, exc.detail.get("job_id")
                    )
                except FlywheelError as exc:
                    logger.error("scheduled task failed task=%s error=%s", name, type(exc).__name__)
        return ran

    def start(self, *, tick_s: float = 30.0) -> None:
        """Start the daemon thread (idempotent)."""
        if self._thread is not None or not self.tasks:
            return
        self._thread = threading.Thread(target=self._loop, args=(tick_s,), name="flywheel-scheduler", daemon=True)
        self._thread.start()
        logger.info("scheduler started tasks=%s", ",".join(sorted(self.tasks)))

    def stop(self) -> None:
        """Stop the thread (returns within one tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Alias of :meth:`stop` (container shutdown)."""
        self.stop()

    def _loop(self, tick_s: float) -> None:
        last = self.clock()
        while not self._stop.wait(tick_s):
            now = self.clock()
            self.run_pending(last, now)
            last = now
