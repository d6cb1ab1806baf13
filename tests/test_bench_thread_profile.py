"""``bench/thread_profile.py``: CPU seconds by default, wall-clock seconds with the "wall" clock."""

from __future__ import annotations

import marshal
import sys
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from thread_profile import ThreadProfiles  # noqa: E402


def waits_a_while() -> None:
    time.sleep(0.2)  # the profiled work itself: a thread waiting, as a worker waits on a cloud call


def profiled_wait(clock: str, tmp_path: Path) -> float:
    """Cumulative seconds of :func:`waits_a_while` run in a thread started after install."""
    profiles = ThreadProfiles(clock)
    profiles.install()
    try:
        profiles.mark()
        worker = threading.Thread(target=waits_a_while)
        worker.start()
        worker.join()
        path = profiles.dump(tmp_path / f"{clock}.pstats")
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)
    with path.open("rb") as f:
        stats = marshal.load(f)
    [entry] = [v for (_, _, name), v in stats.items() if name == "waits_a_while"]
    return float(entry[3])


def test_the_wall_clock_counts_a_threads_waits_and_the_cpu_clock_does_not(tmp_path: Path) -> None:
    assert profiled_wait("wall", tmp_path) >= 0.19
    assert profiled_wait("cpu", tmp_path) < 0.1


def test_an_unknown_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="BENCH_PROFILE_CLOCK='gpu': accepted values are cpu"):
        ThreadProfiles("gpu")
