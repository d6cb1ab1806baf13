"""``bench/scale.py``'s ideal time: the calls x latency, overlapped no more than the phase allows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from scale import phase_report  # noqa: E402


def calls(reads: int, writes: int) -> dict[str, Any]:
    return {
        "reads": reads,
        "writes": writes,
        "reads_by_operation": {},
        "writes_by_operation": {},
        "errors": 0,
        "retries": 0,
        "controller_log_counts": {},
        "controller_error_examples": [],
    }


ARGS = argparse.Namespace(services=1000, latency_ms=20)
CPU = {"controller": 0.1, "emulator": 0.1}


def test_a_phase_of_many_services_overlaps_its_calls_over_the_workers() -> None:
    report = phase_report(calls(5000, 1000), 12.0, CPU, {}, ARGS, 10)
    assert report["ideal_seconds"] == 12.0  # 6,000 calls x 20 ms / 10 workers
    assert report["time_over_ideal"] == 1.0


def test_a_node_sync_of_one_write_is_its_chain_of_round_trips_not_a_tenth_of_it() -> None:
    # a listing, the write, its poll and its final read depend on each other: 4 x 20 ms
    report = phase_report(calls(3, 1), 1.12, CPU, {}, ARGS, 10, delay=1.0, chains=1)
    assert report["ideal_seconds"] == 0.08
    assert report["time_over_ideal"] == 1.5
    # without ``chains`` the calls-only figure assumed ten at once
    assert phase_report(calls(3, 1), 1.12, CPU, {}, ARGS, 10, delay=1.0)["ideal_seconds"] == 0.01


def test_a_node_sync_of_many_writes_overlaps_them_over_the_workers() -> None:
    report = phase_report(calls(1, 1000), 3.0, CPU, {}, ARGS, 10, delay=1.0, chains=1000)
    assert report["ideal_seconds"] == 2.0  # 1,001 calls x 20 ms / 10


def test_a_node_sync_that_writes_nothing_is_one_chain() -> None:
    report = phase_report(calls(3, 0), 1.1, CPU, {}, ARGS, 10, delay=1.0, chains=0)
    assert report["ideal_seconds"] == 0.06
