"""Request coalescing: concurrent callers' items are processed together in one batch call.

Whoever finds the worker idle becomes the leader and runs ``fn`` over everything pending (its own items and those
of callers that arrived meanwhile); the others wait and pick up their results. An idle system adds no latency (a lone
caller runs its batch at once); a busy one turns N single-item calls into a few batch calls (for Presidio, one spaCy
``pipe`` instead of N). ``fn`` is never run concurrently with itself, so it need not be thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``fn(items) -> results`` (same length, same order) over the items of concurrent :meth:`submit` calls."""

    def __init__(self, fn: Callable[[list[T]], list[R]], *, max_batch: int = 64) -> None:
        self._fn = fn
        self._max = max_batch
        self._cv = threading.Condition()
        self._pending: list[tuple[int, T]] = []
        self._results: dict[int, R | BaseException] = {}
        self._busy = False
        self._next = 0

    def submit(self, items: Sequence[T]) -> list[R]:
        """Results for ``items`` (blocking); re-raises the batch's exception if ``fn`` failed on it."""
        with self._cv:
            tickets = list(range(self._next, self._next + len(items)))
            self._next += len(items)
            self._pending.extend(zip(tickets, items, strict=True))
            while not all(t in self._results for t in tickets):
                if self._busy:
                    self._cv.wait()
                else:
                    self._lead()
            outcomes = [self._results.pop(t) for t in tickets]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes  # type: ignore[return-value]

    def _lead(self) -> None:
        """Run one batch of pending items with the condition released (called holding it)."""
        self._busy = True
        batch, self._pending = self._pending[: self._max], self._pending[self._max :]
        self._cv.release()
        try:
            outcomes: list[R | BaseException] = list(self._fn([item for _, item in batch]))
        except Exception as exc:  # delivered to every caller of the batch, re-raised there
            outcomes = [exc] * len(batch)
        finally:
            self._cv.acquire()
        self._results.update((t, o) for (t, _), o in zip(batch, outcomes, strict=True))
        self._busy = False
        self._cv.notify_all()
