"""flywheel.jobs: lifecycle, one exclusive job at a time (ConflictError with the running id), cancel, recovery."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from core.errors import ConflictError, InvalidInputError, NotEnoughDataError
from core.types import utcnow
from flywheel.jobs import STALE_AFTER_S, JobCancelled, JobContext, JobRunner, JobSkipped
from flywheel.state import JobStatus, StateStore

pytestmark = pytest.mark.unit


class Gate:
    """A handler that blocks until released, stepping so it can notice cancellation."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        ctx.step("waiting", progress=0.1)
        self.started.set()
        while not self.release.wait(0.02):
            ctx.check_cancelled()
        ctx.step("done", progress=0.9)
        return {"ok": True}


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def runner(sqlite_state: StateStore, gate: Gate) -> Any:
    def skip(ctx: JobContext) -> None:
        raise JobSkipped("skipped: not enough data (3 of 32)", {"have": 3})

    def too_little(ctx: JobContext) -> None:
        raise NotEnoughDataError("not enough pairs (1 of 32)", have=1, need=32)

    def boom(ctx: JobContext) -> None:
        raise RuntimeError("bug")

    handlers = {"cycle": gate, "reindex": gate, "eval": lambda ctx: {"p": ctx.params}, "curate": skip}
    handlers |= {"few": too_little, "boom": boom}
    r = JobRunner(sqlite_state, handlers)
    yield r
    gate.release.set()
    r.shutdown()


def test_when_job_succeeds_then_result_and_progress_recorded(runner: JobRunner) -> None:
    job = runner.submit("eval", {"candidate": "v2"})
    done = runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"p": {"candidate": "v2"}} and done.progress == 1.0


def test_when_second_cycle_requested_then_conflict_names_running_job(runner: JobRunner, gate: Gate) -> None:
    first = runner.submit("cycle")
    assert gate.started.wait(10)
    with pytest.raises(ConflictError) as err:
        runner.submit("cycle")
    assert err.value.detail["job_id"] == first.id
    with pytest.raises(ConflictError):
        runner.submit("reindex")  # also moves the alias: exclusive with cycles
    assert runner.submit("eval").kind == "eval"  # non-exclusive kinds still run
    gate.release.set()
    assert runner.wait(first.id, timeout=10).status is JobStatus.SUCCEEDED
    assert runner.wait(runner.submit("cycle").id, timeout=10).status is JobStatus.SUCCEEDED


def test_when_cancelled_then_running_job_stops_at_next_check(runner: JobRunner, gate: Gate) -> None:
    job = runner.submit("cycle")
    assert gate.started.wait(10)
    assert runner.cancel(job.id).cancel_requested
    done = runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.CANCELLED and done.step == "waiting"
    with pytest.raises(ConflictError):
        runner.cancel(job.id)


def test_reporter_maps_work_onto_the_job_range_throttles_and_stops_a_cancelled_job(
    sqlite_state: StateStore,
) -> None:
    job = sqlite_state.create_job("reindex", status=JobStatus.RUNNING)
    ctx = JobContext(job.id, {}, sqlite_state)
    report = ctx.reporter(0.2, 0.9, every_s=3600)
    report(1, 4)  # the first report always writes
    assert sqlite_state.get_job(job.id).progress == pytest.approx(0.2 + 0.7 / 4)
    beat = sqlite_state.get_job(job.id).heartbeat_at
    report(2, 4)  # throttled: nothing written
    assert sqlite_state.get_job(job.id).progress == pytest.approx(0.2 + 0.7 / 4)
    report(4, 4)  # the end always writes
    after = sqlite_state.get_job(job.id)
    assert after.progress == pytest.approx(0.9) and after.heartbeat_at is not None and after.heartbeat_at >= beat
    sqlite_state.update_job(job.id, cancel_requested=True)
    with pytest.raises(JobCancelled):
        ctx.reporter(0.0, 1.0)(1, 10)


def test_when_handler_skips_or_lacks_data_then_skipped_not_failed(runner: JobRunner) -> None:
    skipped = runner.wait(runner.submit("curate").id, timeout=10)
    assert skipped.status is JobStatus.SKIPPED and "not enough data (3 of 32)" in (skipped.error or "")
    few = runner.wait(runner.submit("few").id, timeout=10)
    assert few.status is JobStatus.SKIPPED and "1 of 32" in (few.error or "")


def test_when_handler_crashes_then_failed_with_generic_error(runner: JobRunner) -> None:
    done = runner.wait(runner.submit("boom").id, timeout=10)
    assert done.status is JobStatus.FAILED and done.error == "internal error: RuntimeError"


def test_when_unknown_kind_then_invalid_input(runner: JobRunner) -> None:
    with pytest.raises(InvalidInputError, match="unknown job kind"):
        runner.submit("bake")


def test_when_params_fail_their_check_then_refused_before_any_job_is_recorded(sqlite_state: StateStore) -> None:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        if "mode" in params and params["mode"] != "canary":
            raise InvalidInputError("mode must be canary", field="params.mode")
        return {**params, "checked": True}

    runner = JobRunner(sqlite_state, {"cycle": lambda ctx: dict(ctx.params)}, checks={"cycle": check})
    with pytest.raises(InvalidInputError, match="mode must be canary"):
        runner.submit("cycle", {"mode": "sideways"})
    assert sqlite_state.list_jobs(limit=10) == []  # nothing recorded, no slot taken
    done = runner.wait(runner.submit("cycle", {"mode": "canary"}).id, timeout=10)
    assert done.params == {"mode": "canary", "checked": True} and done.result == done.params
    runner.shutdown()


def test_a_running_job_keeps_its_heartbeat_fresh_between_steps_so_a_threshold_reap_leaves_it_alone(
    sqlite_state: StateStore,
) -> None:
    started, release = threading.Event(), threading.Event()

    def silent(ctx: JobContext) -> dict[str, Any]:  # a long step that reports nothing
        started.set()
        release.wait(10)
        return {}

    runner = JobRunner(sqlite_state, {"cycle": silent}, heartbeat_s=0.05)
    job = runner.submit("cycle")
    assert started.wait(10)
    first = sqlite_state.get_job(job.id).heartbeat_at
    time.sleep(1.5)  # longer than the threshold below: without the heartbeat thread the job would look dead
    beat = sqlite_state.get_job(job.id).heartbeat_at
    assert first is not None and beat is not None and beat > first
    other = JobRunner(sqlite_state, {"cycle": silent})  # e.g. a CLI process next to the service
    assert other.recover(stale_after_s=1.0) == []
    release.set()
    assert runner.wait(job.id, timeout=10).status is JobStatus.SUCCEEDED
    runner.shutdown()


def test_a_threshold_reap_takes_running_jobs_with_a_stale_heartbeat_but_never_queued_ones(
    sqlite_state: StateStore,
) -> None:
    dead = sqlite_state.create_job("cycle", status=JobStatus.RUNNING)
    sqlite_state.update_job(dead.id, heartbeat_at=utcnow() - timedelta(seconds=STALE_AFTER_S + 1))
    waiting = sqlite_state.create_job("eval")  # queued in a live service, waiting for a worker
    sqlite_state.update_job(waiting.id, heartbeat_at=utcnow() - timedelta(seconds=STALE_AFTER_S + 1))
    cli = JobRunner(sqlite_state, {"cycle": lambda ctx: {}, "eval": lambda ctx: {}})
    with pytest.raises(ConflictError, match=r"heartbeat \d+ s ago"):
        cli.submit("cycle")
    assert cli.recover(stale_after_s=STALE_AFTER_S) == [dead.id]
    assert sqlite_state.get_job(waiting.id).status is JobStatus.QUEUED
    assert cli.recover() == [waiting.id]  # a service's own start-up reaps everything it did not start
    cli.shutdown()


def test_when_process_died_mid_job_then_recover_marks_failed_and_frees_the_slot(sqlite_state: StateStore) -> None:
    orphan = sqlite_state.create_job("cycle", status=JobStatus.RUNNING)
    fresh = JobRunner(sqlite_state, {"cycle": lambda ctx: {}})
    with pytest.raises(ConflictError):
        fresh.submit("cycle")
    assert fresh.recover(stale_after_s=3600) == []  # heartbeat is recent: a live process may own it
    assert fresh.recover() == [orphan.id]
    assert sqlite_state.get_job(orphan.id).status is JobStatus.FAILED
    assert fresh.wait(fresh.submit("cycle").id, timeout=10).status is JobStatus.SUCCEEDED
    fresh.shutdown()
