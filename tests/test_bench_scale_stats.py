"""``bench/scale_stats.py``: the medians of repeated ``bench/scale.py`` runs, and their table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from scale_stats import medians, spread  # noqa: E402
from scale_table import median_table  # noqa: E402


def phase(seconds: float, ratio: float | None, controller: float, reads: int = 10) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "ideal_seconds": 2.0,
        "time_over_ideal": ratio,
        "reads": reads,
        "writes": 50,
        "cpu_seconds": {"controller": controller, "emulator": 1.0, "kube_api_and_driver": 0.5},
    }


def test_spread_is_the_median_with_min_and_max() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert spread([4.0, 1.0, 2.0, 3.0]) == {"median": 2.5, "min": 1.0, "max": 4.0}
    assert spread([]) is None


def test_medians_per_workers_and_phase_over_the_runs_that_finished_it() -> None:
    runs = [
        {"workers": 10, "phases": {"create": phase(3.0, 1.5, 2.0), "resync": phase(1.0, 0.5, 0.3)}},
        {"workers": 1, "phases": {"create": phase(20.0, 1.0, 2.5)}},
        {"workers": 10, "phases": {"create": phase(5.0, 2.5, 4.0), "resync": phase(2.0, 1.0, 0.1)}},
        # cut short after create: counts for create only
        {"workers": 10, "phases": {"create": phase(4.0, 2.0, 3.0, reads=12)}, "error": "timed out"},
    ]
    ten, one = medians(runs)
    assert (ten["workers"], ten["runs"], ten["runs_cut_short"]) == (10, 3, 1)
    assert (one["workers"], one["runs"], one["runs_cut_short"]) == (1, 1, 0)
    assert list(ten["phases"]) == ["create", "resync"]
    create, resync = ten["phases"]["create"], ten["phases"]["resync"]
    assert create["runs"] == 3 and resync["runs"] == 2
    assert create["seconds"] == {"median": 4.0, "min": 3.0, "max": 5.0}
    assert create["time_over_ideal"] == {"median": 2.0, "min": 1.5, "max": 2.5}
    assert create["controller_cpu_seconds"] == {"median": 3.0, "min": 2.0, "max": 4.0}
    assert create["emulator_cpu_seconds"]["median"] == 1.0
    assert create["reads"] == {"median": 10.0, "min": 10.0, "max": 12.0}
    assert resync["seconds"] == {"median": 1.5, "min": 1.0, "max": 2.0}
    assert one["phases"]["create"]["seconds"] == {"median": 20.0, "min": 20.0, "max": 20.0}


def test_a_figure_no_run_has_is_left_out() -> None:
    [group] = medians([{"workers": 10, "phases": {"add_node": phase(1.0, None, 0.2)}}] * 2)
    assert "time_over_ideal" not in group["phases"]["add_node"]
    assert group["phases"]["add_node"]["seconds"]["median"] == 1.0


def test_the_median_table_shows_median_min_and_max_per_phase() -> None:
    runs = [{"workers": 10, "phases": {"create": phase(s, s / 2, 1.0)}} for s in (3.0, 5.0, 4.0)]
    report = {"provider": "gcp", "services": 300, "ports_per_service": 1, "nodes": 20, "latency_ms": 20.0}
    text = median_table(report, medians(runs)[0])
    assert "median (min-max) of 3 runs" in text
    assert "| create | 3 | 4 (3-5) | 2 (2-2) | 2 (1.5-2.5) | 1 (1-1) |" in text


@pytest.mark.e2e
def test_repeat_makes_n_runs_and_reports_their_medians() -> None:
    args = ("--provider", "gcp", "--services", "2", "--nodes", "2", "--phases", "create", "--repeat", "2")
    out = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert [r["workers"] for r in report["runs"]] == [10, 10]
    [group] = report["medians"]
    assert group["runs"] == 2 and group["phases"]["create"]["runs"] == 2
    seconds = [r["phases"]["create"]["seconds"] for r in report["runs"]]
    assert group["phases"]["create"]["seconds"] == {
        "median": round(sum(seconds) / 2, 3),
        "min": min(seconds),
        "max": max(seconds),
    }
