"""The work queue: dedup, one worker per key, backoff, delayed adds, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from lbprov.controller.queue import WorkQueue
from lbprov.testing import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_duplicate_adds_are_processed_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert q.get(timeout=0) == "a"
    assert q.get(timeout=0) == "b"
    assert q.get(timeout=0) is None


def test_key_readded_while_processing_is_not_handed_out_until_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")  # an update arrives while a worker holds the key
    q.add("a")
    assert q.get(timeout=0) is None, "a second worker must not get a key in flight"
    q.done("a")
    assert q.get(timeout=0) == "a", "the update seen during processing must be processed again"
    q.done("a")
    assert q.get(timeout=0) is None


def test_an_add_before_the_work_started_is_in_it_and_one_after_is_processed_again() -> None:
    """A worker waiting for a slot (lbprov.slots) holds its key between get() and started(): an
    event meanwhile is already in what the sync will read, so it queues nothing more (it used to
    make a second sync); an event after started() still makes one."""
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    assert q.processing() == ["a"] and q.running() == [], "handed out, not begun"
    q.add("a")  # the event while the worker waits for its slot
    q.started("a")
    assert q.running() == ["a"]
    q.done("a")
    assert q.get(timeout=0) is None, "the sync read the state the add was for"
    assert q.running() == [] and q.processing() == []

    q.add("a")
    assert q.get(timeout=0) == "a"
    q.started("a")
    q.add("a")  # the event after the sync began: it may have read the older state
    q.started("a")  # a second call changes nothing
    q.done("a")
    assert q.get(timeout=0) == "a", "an update during the work is processed again"


def test_key_never_processed_by_two_workers_at_once() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: dict[int, int] = {}
    overlaps: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := q.get()) is not None:
            with lock:
                active[key] = active.get(key, 0) + 1
                if active[key] > 1:
                    overlaps.append(key)
            time.sleep(0.001)
            with lock:
                active[key] -= 1
                processed.append(key)
            q.done(key)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for i in range(400):
        q.add(i % 5)
    wait_for(lambda: not (len(q) or q.in_flight()), 120, "the queue drained")
    q.shutdown()
    for t in threads:
        t.join(60)
    assert not overlaps
    assert set(processed) == {0, 1, 2, 3, 4}


def test_backoff_doubles_from_base_to_max_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(backoff_base=5, backoff_max=300)
    delays = [q.add_rate_limited("a") for _ in range(9)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert q.num_requeues("a") == 9
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == 5
    assert q.add_rate_limited("b") == 5, "backoff is per key"


def test_add_after_hands_out_the_key_when_due_and_earliest_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 30)  # later: ignored
    q.add_after("b", 5)
    assert q.get(timeout=0) is None
    clock.now += 5
    assert q.get(timeout=0) == "b"
    clock.now += 5
    assert q.get(timeout=0) == "a"
    q.done("a")
    clock.now += 30
    assert q.get(timeout=0) is None, "the superseded later add_after must not fire again"
    q.add_after("c", 20)
    q.add_after("c", 2)  # earlier: wins
    clock.now += 2
    assert q.get(timeout=0) == "c"


def test_blocking_get_wakes_up_for_a_delayed_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0.05)
    start = time.monotonic()
    # woken when the key is due, not at the end of its 60 s wait (a loaded machine may wake it
    # late, never 30 s late)
    assert q.get(timeout=60) == "a"
    assert time.monotonic() - start < 30


def test_shutdown_releases_waiting_workers_and_lets_in_flight_finish() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    assert q.get() == "a"
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(q.get()))
    q2: WorkQueue[str] = WorkQueue()
    blocked = threading.Thread(target=lambda: got.append(q2.get()))
    blocked.start()
    q.shutdown()
    q2.shutdown()
    waiter.start()
    waiter.join(60)  # bounds a hang only
    blocked.join(60)
    assert got == [None, None]
    q.add("c")  # ignored after shutdown
    assert q.in_flight() == 1
    assert not q.wait_idle(timeout=0.05)
    q.done("a")
    assert q.wait_idle(timeout=1)


def test_invalid_backoff_is_rejected() -> None:
    with pytest.raises(ValueError):
        WorkQueue(backoff_base=0)
    with pytest.raises(ValueError):
        WorkQueue(backoff_base=10, backoff_max=5)


def test_jitter_shortens_the_backoff_by_at_most_the_fraction() -> None:
    q: WorkQueue[str] = WorkQueue(backoff_base=10, backoff_max=100, jitter=0.5)
    delays = [q.add_rate_limited(f"k{i}") for i in range(50)]
    assert all(5 <= d <= 10 for d in delays)
    assert len(set(delays)) > 1, "keys failing together retry at different times"
    with pytest.raises(ValueError):
        WorkQueue(jitter=1.0)
