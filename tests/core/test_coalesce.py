"""Coalescer: concurrent callers share batch calls, results stay in order, errors reach every caller of the batch."""

from __future__ import annotations

import threading
import time

import pytest

from core.coalesce import Coalescer

pytestmark = pytest.mark.unit


def test_when_alone_then_one_call_with_own_items() -> None:
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * i for i in items]

    assert Coalescer(double).submit([1, 2, 3]) == [2, 4, 6]
    assert calls == [[1, 2, 3]]


def test_when_callers_overlap_then_they_share_batches_and_get_their_own_results() -> None:
    calls: list[list[int]] = []
    started = threading.Event()

    def slow_square(items: list[int]) -> list[int]:
        calls.append(list(items))
        started.set()
        time.sleep(0.05)
        return [i * i for i in items]

    coalescer: Coalescer[int, int] = Coalescer(slow_square)
    results: dict[int, list[int]] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, coalescer.submit([0])))
    first.start()
    started.wait()
    others = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, coalescer.submit([n, n + 100]))) for n in range(1, 9)
    ]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join()
    assert results == {n: [n * n, (n + 100) ** 2] if n else [0] for n in range(9)}
    assert len(calls) < 9  # the 8 late callers were merged into fewer batch calls


def test_when_batch_fails_then_its_callers_see_the_error_and_later_calls_work() -> None:
    def fragile(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return items

    coalescer: Coalescer[int, int] = Coalescer(fragile)
    with pytest.raises(ValueError, match="bad item"):
        coalescer.submit([1, -1])
    assert coalescer.submit([5]) == [5]


def test_when_a_big_batch_is_pending_then_a_short_caller_rides_in_the_next_round() -> None:
    calls: list[list[str]] = []
    started = threading.Event()
    release = threading.Event()

    def analyse(items: list[str]) -> list[int]:
        calls.append(list(items))
        started.set()
        release.wait(timeout=5)
        return [len(i) for i in items]

    coalescer: Coalescer[str, int] = Coalescer(analyse, max_batch=64, max_cost=100, cost=len)
    blocker = threading.Thread(target=lambda: coalescer.submit(["x"]))
    blocker.start()
    started.wait()  # the first round runs; now a big batch and then a short request queue up behind it
    big = threading.Thread(target=lambda: coalescer.submit(["b" * 60] * 10))
    big.start()
    time.sleep(0.05)
    short = threading.Thread(target=lambda: coalescer.submit(["short"]))
    short.start()
    time.sleep(0.05)
    release.set()
    for t in (blocker, big, short):
        t.join()
    # round 2 takes one long text and the short one (round-robin, within 100 characters), not the whole batch
    assert calls[1] == ["b" * 60, "short"]
    assert all(sum(map(len, c)) <= 100 or len(c) == 1 for c in calls)
    assert sum(len(c) for c in calls) == 12


def test_when_items_exceed_max_batch_then_rounds_split_and_results_stay_in_order() -> None:
    coalescer: Coalescer[int, int] = Coalescer(lambda items: [i + 1 for i in items], max_batch=3)
    assert coalescer.submit(list(range(10))) == list(range(1, 11))
