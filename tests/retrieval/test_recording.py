"""QueryRecorder: scrub before persisting, off the response path, bounded, nothing lost on a clean shutdown."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

import pytest
from fakes import FakeQueryLog, FakeScrubber

from core.ports import ScrubResult
from core.types import QueryRecord
from retrieval.recording import QueryRecorder

pytestmark = pytest.mark.unit


class SlowLog(FakeQueryLog):
    """A query log whose writes take a while (a busy database) and that can be made to fail."""

    def __init__(self, *, delay_s: float = 0.0, fail_ids: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.fail_ids = fail_ids
        self.seen_text: list[str] = []

    def record_query(self, record: QueryRecord) -> None:
        time.sleep(self.delay_s)
        self.seen_text += [record.question, record.answer]
        if record.id in self.fail_ids:
            raise OSError("disk full")
        super().record_query(record)


def _record(i: int) -> QueryRecord:
    return QueryRecord(id=f"q{i}", question=f"I am jane{i}@example.com, where is my order?", answer="Today. [1]",
                       chunk_ids=[], doc_ids=[], scores=[], corpus="kb", index_version="kb__v1",
                       embedder_version="base", generator_version="extractive")  # fmt: skip


def test_when_submitted_then_only_scrubbed_text_is_persisted_after_flush() -> None:
    log = SlowLog(delay_s=0.01)
    recorder = QueryRecorder(log, FakeScrubber())
    started = time.perf_counter()
    for i in range(5):
        recorder.submit(_record(i))
    assert time.perf_counter() - started < 0.04  # submitting does not wait for the writes
    assert recorder.flush(timeout_s=10)
    assert sorted(log.records) == [f"q{i}" for i in range(5)]
    assert log.get_query("q3").question == "I am <EMAIL_ADDRESS>, where is my order?"
    assert not any("@example.com" in text for text in log.seen_text)
    recorder.submit(_record(7), scrub_answer=False)  # an extractive answer: passage text, kept as indexed
    assert recorder.flush(timeout_s=10)
    assert log.get_query("q7").answer == "Today. [1]" and "@" not in log.get_query("q7").question
    recorder.close()


def test_when_closed_then_every_acknowledged_record_is_persisted_and_later_ones_inline() -> None:
    log = SlowLog(delay_s=0.005)
    recorder = QueryRecorder(log, FakeScrubber(), max_pending=4)  # bounded: submit blocks, never drops
    threads = [threading.Thread(target=lambda k=k: [recorder.submit(_record(10 * k + i)) for i in range(10)])
               for k in range(3)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    recorder.close()  # idempotent
    assert len(log.records) == 30
    recorder.submit(_record(99))  # after close: written inline, still scrubbed
    assert log.get_query("q99").question.startswith("I am <EMAIL_ADDRESS>")


def test_when_a_write_fails_then_it_is_counted_and_the_writer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    log = SlowLog(fail_ids=frozenset({"q1"}))
    recorder = QueryRecorder(log, FakeScrubber())
    for i in range(3):
        recorder.submit(_record(i))
    assert recorder.flush(timeout_s=10)
    recorder.close()
    assert recorder.failed == 1 and sorted(log.records) == ["q0", "q2"]
    assert "query_id=q1" in caplog.text and "example.com" not in caplog.text


class CountingLog(FakeQueryLog):
    """A query log counting its transactions (``record_queries`` calls) and when each record arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[int] = []
        self.arrived: dict[str, float] = {}

    def record_queries(self, records: Sequence[QueryRecord]) -> None:
        self.transactions.append(len(records))
        self.arrived.update((r.id, time.monotonic()) for r in records)
        super().record_queries(records)


class CountingScrubber(FakeScrubber):
    """Counts batched scrub passes."""

    passes = 0

    def scrub_many(self, texts: Sequence[str]) -> list[ScrubResult]:
        self.passes += 1
        return super().scrub_many(texts)


def test_when_records_arrive_together_then_one_scrub_pass_and_one_transaction_per_batch() -> None:
    log, scrubber = CountingLog(), CountingScrubber()
    recorder = QueryRecorder(log, scrubber, max_batch=8, idle_s=0.05)
    for i in range(20):
        recorder.submit(_record(i))
    assert recorder.flush(timeout_s=10)
    recorder.close()
    assert sorted(log.records) == sorted(f"q{i}" for i in range(20))
    assert max(log.transactions) <= 8 and len(log.transactions) < 20 and scrubber.passes == len(log.transactions)
    assert all("@example.com" not in r.question for r in log.records.values())


def test_when_queries_keep_coming_then_the_writer_waits_for_a_gap_but_not_past_max_delay() -> None:
    log = CountingLog()
    recorder = QueryRecorder(log, FakeScrubber(), idle_s=5.0, max_delay_s=0.6)
    started = time.monotonic()
    for i in range(10):  # one query every 0.1 s: never a 5 s gap
        recorder.submit(_record(i))
        time.sleep(0.1)
    assert log.arrived, "the oldest record waited past max_delay_s: the writer must have started"
    first = min(log.arrived.values()) - started
    assert 0.6 <= first < 2.0  # not before max_delay_s (no gap, fewer than max_batch), soon after it
    recorder.submit(_record(99))
    waited = time.monotonic()
    assert recorder.flush(timeout_s=10) and time.monotonic() - waited < 1.0  # a reader does not wait 5 s for a gap
    assert "q99" in log.records
    recorder.close()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are a Linux feature")
def test_the_writer_thread_runs_at_a_lower_os_priority() -> None:
    recorder = QueryRecorder(FakeQueryLog(), FakeScrubber(), nice=5)
    recorder.submit(_record(1))
    assert recorder.flush(timeout_s=10)
    tid = recorder._thread.native_id
    assert tid is not None
    assert os.getpriority(os.PRIO_PROCESS, tid) == os.getpriority(os.PRIO_PROCESS, 0) + 5
    recorder.close()
