"""Request coalescing: concurrent callers' items are processed together in one batch call.

Whoever finds the worker idle becomes the leader and runs ``fn`` over everything pending (its own items and those
of callers that arrived meanwhile); the others wait and pick up their results. An idle system adds no latency (a lone
caller runs its batch at once); a busy one turns N single-item calls into a few batch calls (for Presidio, one spaCy
``pipe`` instead of N). ``fn`` is never run concurrently with itself, so it need not be thread-safe.

Fairness: a round takes pending items round-robin across callers (one item of each waiting caller in turn, in
arrival order) and stops at ``max_batch`` items or ``max_cost`` (e.g. characters), so one caller with a large batch
of long texts cannot make a short request wait for all of it: the short one rides in the next round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``fn(items) -> results`` (same length, same order) over the items of concurrent :meth:`submit` calls.

    Args:
        fn: the batch function.
        max_batch: items per round at most.
        max_cost: a round's summed ``cost`` at most (a round always takes at least one item); ``None``: no bound.
        cost: an item's cost (e.g. ``len`` of a text); default 1 per item.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        *,
        max_batch: int = 64,
        max_cost: int | None = None,
        cost: Callable[[T], int] | None = None,
    ) -> None:
        self._fn = fn
        self._max = max_batch
        self._max_cost = max_cost
        self._cost = cost or (lambda _item: 1)
        self._cv = threading.Condition()
        self._pending: list[tuple[int, int, T]] = []  # (ticket, caller, item)
        self._callers = 0
        self._results: dict[int, R | BaseException] = {}
        self._busy = False
        self._next = 0

    def submit(self, items: Sequence[T]) -> list[R]:
        """Results for ``items`` (blocking); re-raises the batch's exception if ``fn`` failed on it."""
        with self._cv:
            tickets = list(range(self._next, self._next + len(items)))
            self._next += len(items)
            caller = self._callers
            self._callers += 1
            self._pending.extend((t, caller, item) for t, item in zip(tickets, items, strict=True))
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
        batch = self._take()
        self._cv.release()
        try:
            outcomes: list[R | BaseException] = list(self._fn([item for _, _, item in batch]))
        except Exception as exc:  # delivered to every caller of the batch, re-raised there
            outcomes = [exc] * len(batch)
        finally:
            self._cv.acquire()
        self._results.update((t, o) for (t, _, _), o in zip(batch, outcomes, strict=True))
        self._busy = False
        self._cv.notify_all()

    def _take(self) -> list[tuple[int, int, T]]:
        """This round's items, round-robin across callers within ``max_batch`` / ``max_cost``; the rest stay."""
        queues: dict[int, list[tuple[int, int, T]]] = {}
        for entry in self._pending:  # callers in arrival order, each caller's items in order
            queues.setdefault(entry[1], []).append(entry)
        taken: list[tuple[int, int, T]] = []
        spent = 0
        while queues and len(taken) < self._max:
            for caller in list(queues):
                entry = queues[caller][0]
                cost = self._cost(entry[2])
                if taken and self._max_cost is not None and spent + cost > self._max_cost:
                    queues.clear()  # budget spent: this round is full
                    break
                taken.append(queues[caller].pop(0))
                spent += cost
                if not queues[caller]:
                    del queues[caller]
                if len(taken) >= self._max:
                    break
        chosen = {entry[0] for entry in taken}
        self._pending = [entry for entry in self._pending if entry[0] not in chosen]
        return taken
