"""Medians over repeated ``bench/scale.py`` runs (``--repeat N``).

On this 2-core machine identical runs differ by up to 30% in wall time and in CPU seconds (issue
14), as much as some of the gaps the bench is asked to show: one run per code says little. With
``--repeat N`` every run starts its three processes afresh and this module sums them up, per
number of workers and per phase: the median, min and max of the figures that vary from run to run
(time, time / ideal, each process's CPU seconds, the calls). Runs cut short count only for the
phases they finished; ``runs`` says how many runs each phase's figures come from.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

#: The phase figures summed up, as (name in the summary, path into a run's phase report).
FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("seconds", ("seconds",)),
    ("ideal_seconds", ("ideal_seconds",)),
    ("time_over_ideal", ("time_over_ideal",)),
    ("controller_cpu_seconds", ("cpu_seconds", "controller")),
    ("emulator_cpu_seconds", ("cpu_seconds", "emulator")),
    ("kube_api_and_driver_cpu_seconds", ("cpu_seconds", "kube_api_and_driver")),
    ("reads", ("reads",)),
    ("writes", ("writes",)),
)


def spread(values: Iterable[float]) -> dict[str, float] | None:
    """``{"median", "min", "max"}`` of the values; None when there are none."""
    xs = sorted(values)
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 3), "min": xs[0], "max": xs[-1]}


def _figure(phase: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = phase
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def phase_summary(phases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One phase over several runs: how many runs, then each figure's spread (a figure no run
    has, such as ``time_over_ideal`` of a phase without calls, is left out)."""
    out: dict[str, Any] = {"runs": len(phases)}
    for name, path in FIGURES:
        values = [v for v in (_figure(p, path) for p in phases) if v is not None]
        summary = spread(values)
        if summary is not None:
            out[name] = summary
    return out


def medians(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per number of workers (in the order the runs came), per phase (in run order): the spread
    of each figure over the runs that finished the phase."""
    by_workers: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_workers.setdefault(int(run["workers"]), []).append(run)
    out = []
    for workers, group in by_workers.items():
        names: list[str] = []
        for run in group:
            names += [n for n in run.get("phases", {}) if n not in names]
        out.append(
            {
                "workers": workers,
                "runs": len(group),
                "runs_cut_short": sum(1 for r in group if "error" in r),
                "phases": {
                    name: phase_summary([r["phases"][name] for r in group if name in r.get("phases", {})])
                    for name in names
                },
            }
        )
    return out
