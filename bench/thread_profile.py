"""cProfile of every thread of a process, cut into phases (the scale bench's ``--profile DIR``).

cProfile sees only the thread that enabled it, and the controller's work runs in its worker and
informer threads. So every thread started after :meth:`ThreadProfiles.install` gets a profiler of
its own (``threading.setprofile``: the hook runs first in the new thread and enables cProfile there,
which replaces the hook). A phase's figures are the difference of two snapshots of all profilers
(``Profile.snapshot_stats`` reads the counts without stopping them), written as a pstats file that
``python -m pstats FILE`` or ``pstats.Stats(FILE)`` reads. The timer is each thread's own CPU time (``time.thread_time``), so
the seconds are CPU seconds: time spent waiting (the bench's injected latency, an idle worker's
queue) counts as nothing; ``BENCH_PROFILE_CLOCK=wall`` makes it wall-clock seconds instead, so that
a worker's cumulative time shows where its wall time went (each thread's own time, summed over the
threads). A call still running at a snapshot is
counted when it returns, so a phase's file can hold a little of a neighbour's work.
"""

from __future__ import annotations

import cProfile
import marshal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

#: pstats' per-function entry: (primitive calls, calls, own seconds, cumulative seconds, callers).
Entry = tuple[int, int, float, float, dict[Any, tuple[int, int, float, float]]]
Stats = dict[tuple[str, int, str], Entry]


class ThreadProfiles:
    """One cProfile per thread; :meth:`dump` writes what all threads did since the last dump."""

    def __init__(self, clock: str = "cpu") -> None:
        #: "cpu": each thread's CPU time; "wall": wall-clock time, so that a worker's cumulative
        #: seconds show where it waited too (the injected latency, locks, the API server's answers)
        timers = {"cpu": time.thread_time, "wall": time.perf_counter}
        if clock not in timers:
            raise ValueError(f"BENCH_PROFILE_CLOCK={clock!r}: accepted values are cpu (default) and wall")
        self.timer = timers[clock]
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []
        self._base: Stats = {}
        self._local = threading.local()

    def install(self) -> None:
        """Profile the calling thread and every thread started from now on."""
        threading.setprofile(self._start_in_thread)
        self._enable_here()

    def _start_in_thread(self, frame: FrameType, event: str, arg: object) -> None:
        self._enable_here()  # replaces this hook in this thread

    def _enable_here(self) -> None:
        profile = cProfile.Profile(self.timer)
        with self._lock:
            self._profiles.append(profile)
        self._local.profile = profile
        profile.enable()

    def snapshot(self) -> Stats:
        """The counts of all threads so far, summed (the snapshot's own work is not profiled)."""
        here: cProfile.Profile | None = getattr(self._local, "profile", None)
        if here is not None:
            here.disable()
        try:
            with self._lock:
                profiles = list(self._profiles)
            total: Stats = {}
            for profile in profiles:
                profile.snapshot_stats()
                _add(total, profile.stats)  # type: ignore[attr-defined]
            return total
        finally:
            if here is not None:
                here.enable()

    def mark(self) -> None:
        """Start a phase: the next :meth:`dump` counts from here."""
        self._base = self.snapshot()

    def dump(self, path: Path) -> Path:
        """Write the phase since the last mark or dump to ``path`` (pstats format); start the next."""
        now = self.snapshot()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            marshal.dump(_subtract(now, self._base), f)
        self._base = now
        return path


def _add(total: Stats, stats: Stats) -> None:
    for func, (cc, nc, tt, ct, callers) in stats.items():
        if func not in total:
            total[func] = (cc, nc, tt, ct, dict(callers))
            continue
        tcc, tnc, ttt, tct, tcallers = total[func]
        for caller, counts in callers.items():
            old = tcallers.get(caller)
            tcallers[caller] = (
                counts if old is None else tuple(a + b for a, b in zip(old, counts, strict=True))
            )  # type: ignore[assignment]
        total[func] = (tcc + cc, tnc + nc, ttt + tt, tct + ct, tcallers)


def _subtract(now: Stats, base: Stats) -> Stats:
    out: Stats = {}
    for func, (cc, nc, tt, ct, callers) in now.items():
        bcc, bnc, btt, bct, bcallers = base.get(func, (0, 0, 0.0, 0.0, {}))
        if nc == bnc:
            continue  # not called in this phase
        diff_callers = {}
        for caller, counts in callers.items():
            old = bcallers.get(caller, (0, 0, 0.0, 0.0))
            delta = tuple(a - b for a, b in zip(counts, old, strict=True))
            if delta[1]:
                diff_callers[caller] = delta
        out[func] = (cc - bcc, nc - bnc, tt - btt, ct - bct, diff_callers)  # type: ignore[assignment]
    return out
