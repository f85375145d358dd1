"""Recording answered queries off the response path: scrub, then persist, on one background writer thread.

Contract: :meth:`QueryRecorder.submit` hands over a record holding the RAW question and answer; they live only in
this process' memory until the writer has scrubbed them with the ``PiiScrubber`` port, and only the scrubbed record
reaches the ``QueryLog``. The queue is bounded (``max_pending``): when the writer falls behind, ``submit`` blocks, so
memory stays bounded and nothing is dropped. :meth:`flush` waits until every record submitted before the call is
persisted (readers that must see a query — feedback on it, ``GET /v1/queries/{id}`` — flush first), and
:meth:`close` drains the queue before it returns, so a clean shutdown never loses an acknowledged query. A record that
fails to persist is logged by id (never its text) and counted in :attr:`QueryRecorder.failed`.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading

from core.ports import PiiScrubber, QueryLog
from core.types import QueryRecord

logger = logging.getLogger(__name__)

_STOP = object()


class QueryRecorder:
    """Bounded background writer of query records (scrubbed before they are persisted).

    Args:
        query_log: where scrubbed records go.
        scrubber: PII scrubber applied to question and answer.
        max_pending: records waiting at most; ``submit`` blocks beyond it.
    """

    def __init__(self, query_log: QueryLog, scrubber: PiiScrubber, *, max_pending: int = 1024) -> None:
        self.query_log = query_log
        self.scrubber = scrubber
        self.failed = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._done = threading.Condition()
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
        item = (record, scrub_answer)
        with self._done:
            if self._closed:
                closed = True
            else:
                closed = False
                self._submitted += 1
        if closed:
            self._write(*item)
            return
        self._queue.put(item)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every record submitted so far is persisted (or failed); False on timeout."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._written >= target, timeout=timeout_s)

    def close(self) -> None:
        """Drain the queue, stop the writer. Idempotent."""
        with self._done:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, tuple)
            self._write(*item)
            with self._done:
                self._written += 1
                self._done.notify_all()

    def _write(self, record: QueryRecord, scrub_answer: bool = True) -> None:
        try:
            answer = self.scrubber.scrub(record.answer).text if scrub_answer else record.answer
            scrubbed = dataclasses.replace(record, question=self.scrubber.scrub(record.question).text, answer=answer)
            self.query_log.record_query(scrubbed)
        except Exception as exc:  # one bad record must not stop the writer; the id and error type, never text
            self.failed += 1
            logger.error("query record not persisted query_id=%s error=%s", record.id, type(exc).__name__)


__all__ = ["QueryRecorder"]
