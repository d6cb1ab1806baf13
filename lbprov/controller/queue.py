"""A small rate-limited work queue, after client-go's ``workqueue``.

Why hand-written: no maintained Python library gives the four properties a controller needs
together, and the whole thing is ~150 lines:

* **deduplication** -- a key waiting in the queue is held once, however often it is added;
* **one worker per key** -- a key being processed is not handed to a second worker; if it is added
  again meanwhile, it is processed once more after :meth:`WorkQueue.done` (so no update is lost);
* **per-key exponential backoff** -- :meth:`WorkQueue.add_rate_limited` delays a failing key by
  ``base * 2**failures`` up to ``max`` (5 s -> 300 s by default, as upstream's service controller),
  optionally shortened by a random ``jitter`` fraction;
  :meth:`WorkQueue.forget` resets it after a success;
* **delayed adds** -- :meth:`WorkQueue.add_after` (the earliest pending time wins);
* **shutdown** -- :meth:`WorkQueue.shutdown` makes :meth:`WorkQueue.get` return ``None`` at once, so
  workers stop taking new work; items already handed out are finished by their workers.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_BACKOFF_BASE = 5.0
DEFAULT_BACKOFF_MAX = 300.0


class WorkQueue(Generic[K]):
    """Deduplicating work queue with per-key backoff and delayed adds. Thread-safe."""

    def __init__(
        self,
        *,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        jitter: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("backoff: need 0 < base <= max")
        if not 0 <= jitter < 1:
            raise ValueError("jitter: need 0 <= jitter < 1")
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.jitter = jitter
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # waiting to be processed (in _queue, or re-added while processing)
        self._processing: set[K] = set()
        self._started: set[K] = set()  # handed out and begun (see started()); a subset of _processing
        self._waiting: dict[K, float] = {}  # key -> due time of its pending add_after
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutting_down = False

    # -- adding ----------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` now (no-op if it is already waiting, or the queue is shutting down)."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending add_after of the key wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            due = self._clock() + delay
            current = self._waiting.get(key)
            if current is not None and current <= due:
                return
            self._waiting[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify_all()  # a waiting get() may need to wake up earlier

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` after its backoff (which then doubles); returns the delay used.

        With ``jitter`` j the delay is drawn from [(1-j)*d, d]: keys that failed together (say, on a
        shared cloud resource) do not all retry in the same instant and collide again.
        """
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = self.backoff(failures)
        if self.jitter:
            delay *= 1 - random.uniform(0, self.jitter)
        self.add_after(key, delay)
        return delay

    def backoff(self, failures: int) -> float:
        """The delay after ``failures`` previous failures: base * 2**failures, capped at max."""
        if failures >= 64:
            return self.backoff_max
        return float(min(self.backoff_base * (2**failures), self.backoff_max))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (call after it was processed successfully)."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # -- taking ----------------------------------------------------------------------------------

    def _promote_due_locked(self) -> float | None:
        """Move due delayed keys to the queue; return seconds until the next one, if any."""
        now = self._clock()
        while self._heap:
            due, _, key = self._heap[0]
            if self._waiting.get(key) != due:  # superseded by an earlier add_after
                heapq.heappop(self._heap)
                continue
            if due > now:
                return due - now
            heapq.heappop(self._heap)
            del self._waiting[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process, marking it in-flight; ``None`` on shutdown or timeout.

        Every key returned must be handed back with :meth:`done`.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                next_due = self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                wait = next_due
                if deadline is not None:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)

    def started(self, key: K) -> None:
        """The work on ``key`` (handed out by :meth:`get`) begins now. An add of ``key`` between
        :meth:`get` and now is dropped: the work reads the key's state as it is now, which already
        holds what the add was for (an informer updates its cache before it calls its handlers). A
        controller whose worker waits for a slot after :meth:`get` (lbprov.slots) otherwise synced
        a Service twice for one event that came while it waited. Adds from now on count as before."""
        with self._cond:
            if key in self._processing and key not in self._started:
                self._started.add(key)
                self._dirty.discard(key)

    def done(self, key: K) -> None:
        """Mark ``key`` processed; if it was added again meanwhile, queue it once more."""
        with self._cond:
            self._processing.discard(key)
            self._started.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()
            elif not self._processing:
                self._cond.notify_all()  # wake wait_idle()

    # -- lifecycle / introspection ---------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out work: :meth:`get` returns ``None`` from now on. In-flight keys finish."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no key is in flight; True if that happened before ``timeout``."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while self._processing:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            return True

    def __len__(self) -> int:
        """Queue depth: keys ready to be processed (delayed keys not counted)."""
        with self._cond:
            return len(self._queue)

    def pending_delayed(self) -> int:
        with self._cond:
            return len(self._waiting)

    def in_flight(self) -> int:
        with self._cond:
            return len(self._processing)

    def processing(self) -> list[K]:
        """The keys handed out by :meth:`get` and not yet :meth:`done`."""
        with self._cond:
            return list(self._processing)

    def running(self) -> list[K]:
        """The keys whose work has :meth:`started` and is not :meth:`done` (a key handed out but
        still waiting to start has read nothing yet)."""
        with self._cond:
            return list(self._started)
