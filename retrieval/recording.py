"""Recording answered queries off the response path: scrub, then persist, on one background writer thread.

Contract: :meth:`QueryRecorder.submit` hands over a record holding the RAW question and answer; they live only in
this process' memory until the writer has scrubbed them with the ``PiiScrubber`` port, and only the scrubbed record
reaches the ``QueryLog``. The backlog is bounded (``max_pending``): when the writer falls behind, ``submit`` blocks,
so memory stays bounded and nothing is dropped. :meth:`flush` waits until every record submitted before the call is
persisted (readers that must see a query — feedback on it, ``GET /v1/queries/{id}`` — flush first; the writer starts
at once for them), and :meth:`close` drains the backlog before it returns, so a clean shutdown never loses an
acknowledged query. A record that fails to persist is logged by id (never its text) and counted in
:attr:`QueryRecorder.failed`.

Cost, and how it yields to the queries: the writer takes up to ``max_batch`` waiting records at once, scrubs their
texts in one batched pass (``PiiScrubber.scrub_many``: one spaCy ``pipe``, ~1.3 ms a question instead of ~3.6 ms
alone) and persists them in one transaction (``QueryLog.record_queries``: one commit, one fsync); a batch that fails
is retried record by record, so one bad record fails alone. Scrubbing is mostly Python (spaCy, Presidio's recognizers)
and holds the GIL that the request threads need, so the writer waits for a gap in the traffic — no record submitted
for ``idle_s`` — unless ``max_batch`` records wait, the oldest has waited ``max_delay_s``, a reader flushes, or the
recorder closes. Its thread also runs at a lower OS priority (``nice``, Linux). Under sustained full load the writer
still gets its share: a batch at least every ``max_delay_s``, and ``submit`` blocks once ``max_pending`` records wait.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time

from core.ports import PiiScrubber, QueryLog
from core.types import QueryRecord

logger = logging.getLogger(__name__)


class QueryRecorder:
    """Bounded background writer of query records (scrubbed before they are persisted).

    Args:
        query_log: where scrubbed records go.
        scrubber: PII scrubber applied to question and answer.
        max_pending: records waiting at most; ``submit`` blocks beyond it.
        max_batch: records scrubbed and committed together at most (this many waiting start a batch at once).
        idle_s: a gap in submissions this long (seconds) starts a batch.
        max_delay_s: a record waits at most about this long (seconds) before its batch starts.
        nice: how much lower than the process the writer thread's OS priority is (0: the same; Linux only).
    """

    def __init__(
        self,
        query_log: QueryLog,
        scrubber: PiiScrubber,
        *,
        max_pending: int = 1024,
        max_batch: int = 64,
        idle_s: float = 0.05,
        max_delay_s: float = 1.0,
        nice: int = 10,
    ) -> None:
        self.query_log = query_log
        self.scrubber = scrubber
        self.max_pending = max(1, max_pending)
        self.max_batch = max(1, max_batch)
        self.idle_s = idle_s
        self.max_delay_s = max_delay_s
        self.nice = nice
        self.failed = 0
        self._cv = threading.Condition()
        self._pending: collections.deque[tuple[QueryRecord, bool, float]] = collections.deque()
        self._last_submit = 0.0
        self._flushing = 0  # readers waiting in flush(): the writer must not wait for a gap
        self._submitted = 0
        self._written = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="query-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: QueryRecord, *, scrub_answer: bool = True) -> None:
        """Queue ``record`` (raw text) for scrubbing and persisting; after :meth:`close` it is written inline.

        ``scrub_answer=False`` when the answer is copied from indexed passages only (the extractive generator): that
        text is knowledge-base content already stored in the index, and the question is the only user-written text.
        """
        with self._cv:
            while not self._closed and len(self._pending) >= self.max_pending:
                self._cv.wait()
            if not self._closed:
                now = time.monotonic()
                self._pending.append((record, scrub_answer, now))
                self._last_submit = now
                self._submitted += 1
                if len(self._pending) in (1, self.max_batch):  # the writer sleeps without a deadline / must start
                    self._cv.notify_all()
                return
        self._write(record, scrub_answer)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every record submitted so far is persisted (or failed); False on timeout."""
        with self._cv:
            target = self._submitted
            self._flushing += 1
            self._cv.notify_all()
            try:
                return self._cv.wait_for(lambda: self._written >= target, timeout=timeout_s)
            finally:
                self._flushing -= 1

    def close(self) -> None:
        """Drain the backlog, stop the writer. Idempotent."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        self._thread.join()

    def _run(self) -> None:
        self._lower_priority()
        while True:
            with self._cv:
                wait = self._wait_s()
                while wait is None or wait > 0:
                    if wait is None and self._closed:
                        return
                    self._cv.wait(wait)
                    wait = self._wait_s()
                batch = [self._pending.popleft()[:2] for _ in range(min(self.max_batch, len(self._pending)))]
                self._cv.notify_all()  # room for blocked submitters
            self._write_batch(batch)
            with self._cv:
                self._written += len(batch)
                self._cv.notify_all()

    def _wait_s(self) -> float | None:
        """Seconds the writer should still wait before its next batch (0: now; ``None``: nothing is pending)."""
        if not self._pending:
            return None
        if self._closed or self._flushing or len(self._pending) >= self.max_batch:
            return 0.0
        now = time.monotonic()
        oldest = self._pending[0][2]
        return max(0.0, min(self._last_submit + self.idle_s - now, oldest + self.max_delay_s - now))

    def _lower_priority(self) -> None:
        """Run this (the writer) thread ``nice`` steps below the process; where the OS cannot, run as is."""
        if self.nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
        except OSError as exc:
            logger.debug("query recorder keeps its priority error=%s", type(exc).__name__)

    def _write_batch(self, batch: list[tuple[QueryRecord, bool]]) -> None:
        """Scrub every text of ``batch`` in one pass and persist it in one transaction; on any error, one by one."""
        if len(batch) == 1:
            self._write(*batch[0])
            return
        try:
            texts = [r.question for r, _ in batch] + [r.answer for r, scrub in batch if scrub]
            scrubbed = iter(result.text for result in self.scrubber.scrub_many(texts))
            questions = [next(scrubbed) for _ in batch]
            records = [
                dataclasses.replace(r, question=q, answer=next(scrubbed) if scrub else r.answer)
                for (r, scrub), q in zip(batch, questions, strict=True)
            ]
            self.query_log.record_queries(records)
        except Exception as exc:  # find the bad record: the others must still be persisted
            logger.warning("query batch not persisted, retrying one by one count=%d error=%s", len(batch),
                           type(exc).__name__)  # fmt: skip
            for item in batch:
                self._write(*item)

    def _write(self, record: QueryRecord, scrub_answer: bool = True) -> None:
        try:
            answer = self.scrubber.scrub(record.answer).text if scrub_answer else record.answer
            scrubbed = dataclasses.replace(record, question=self.scrubber.scrub(record.question).text, answer=answer)
            self.query_log.record_query(scrubbed)
        except Exception as exc:  # one bad record must not stop the writer; the id and error type, never text
            self.failed += 1
            logger.error("query record not persisted query_id=%s error=%s", record.id, type(exc).__name__)


__all__ = ["QueryRecorder"]
