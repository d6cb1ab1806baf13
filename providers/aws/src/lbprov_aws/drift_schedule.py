"""Which Services a periodic resync deep-checks: a sweep over them in hash order.

Why: a resync plans most Services from the details remembered from their last deep check
(observe.py ``Reader._details``) and deep-checks only some, so that it costs about
``resync_read_budget`` reads per Service (settings.py). Choosing them by a fixed slot per Service
(a hash of the UID mod K) met that budget only on average: the number of Services in a slot varies
(0.41-0.69 reads per Service per resync at 300 Services; issue 14). Instead each periodic resync
deep-checks the next ``ceil(N / K)`` Services after a cursor, in the order of a hash of their key
(N: the Services the round's listing sees, its roster), and moves the cursor past them.

What this guarantees (pinned by tests/test_drift_schedule.py):

* Bound: a periodic resync deep-checks at most ``ceil(N / K)`` of its roster (N >= 1).
* Coverage: a Service in the roster of K consecutive periodic resyncs in which no Service was
  added is deep-checked in one of them (the cursor passes ``K * ceil(N / K) >= N`` positions;
  a Service removed only shortens the way). A Service added ahead of another in the sweep delays
  it by one position: with A added during the sweep, at most ``ceil(A / ceil(N / K))`` more
  resyncs. The order is by hash, not by rank, so additions never move a Service's place.
* A Service new to the process (a create, or every Service after a restart) has nothing
  remembered, so its first plan reads everything whatever the schedule; the cursor lives in the
  process and starts again at the beginning of the sweep after a restart.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections.abc import Iterable


def sweep_key(key: str) -> tuple[int, str]:
    """A Service's place in the sweep: stable across restarts and independent of the others."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"), key


class DriftSchedule:
    """The sweep's cursor, kept by the provider's reader across its rounds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The place of the last Service deep-checked (None: the sweep starts at the beginning).
        self._cursor: tuple[int, str] | None = None

    def next_due(self, roster: Iterable[str], k: int) -> frozenset[str]:
        """The keys of ``roster`` deep-checked by this periodic resync: the ``ceil(N / k)`` next
        after the cursor in the sweep (wrapping around), which the cursor then passes."""
        places = sorted({sweep_key(key) for key in roster})
        if not places:
            return frozenset()
        count = math.ceil(len(places) / max(1, k))
        with self._lock:
            start = 0 if self._cursor is None else bisect.bisect_right(places, self._cursor)
            chosen = [places[(start + i) % len(places)] for i in range(count)]
            self._cursor = chosen[-1]
        return frozenset(key for _, key in chosen)
