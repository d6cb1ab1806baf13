"""Markdown tables from ``bench/scale.py`` JSON reports (for issue notes and the README).

    python bench/scale.py ... > aws.json; python bench/scale_table.py aws.json [gcp.json ...]

One table per run: per phase the seconds, the ideal, time / ideal, reads and writes per Service, the
controller's and the emulator's CPU seconds, and the reads per Service by operation (largest first);
then the controller's RSS and the load balancers used. A report of ``--repeat N`` runs starts with
the medians (min-max) per phase over its runs.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def reads_by_operation(phase: dict[str, Any], services: int, top: int = 6) -> str:
    ops = sorted(phase["reads_by_operation"].items(), key=lambda kv: -kv[1])
    return ", ".join(f"{op} {n / services:.2f}" for op, n in ops[:top])


def table(report: dict[str, Any], run: dict[str, Any]) -> str:
    n = report["services"]
    lines = [
        f"**{report['provider']}**, {n} Services x {report['ports_per_service']} port(s), "
        f"{report['nodes']} nodes, {run['workers']} workers, {report['latency_ms']:g} ms per call",
        "",
        "| phase | seconds | ideal | time / ideal | reads / Service | writes / Service "
        "| controller CPU s | emulator CPU s | reads per Service by operation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in run["phases"].items():
        cpu = p["cpu_seconds"]
        lines.append(
            f"| {name} | {p['seconds']} | {p['ideal_seconds']} | {p['time_over_ideal']} "
            f"| {p['reads_per_service']} | {p['writes_per_service']} | {cpu['controller']} "
            f"| {cpu['emulator']} | {reads_by_operation(p, n)} |"
        )
    rss = run.get("controller_rss_mb", {})
    if "error" in run:  # cut short (bench/scale.py keeps what it measured until then)
        lines += ["", f"cut short: {run['error'][:300]}; controller RSS so far: {rss}"]
    else:
        lines += [
            "",
            f"controller RSS: {rss['after_startup']} MB after startup, {rss['peak']} MB peak, "
            f"{rss['steady_after_gc']} MB steady; load balancers: {run['load_balancers']}",
        ]
    if "services_a_fresh_plan_would_change" in run:  # --verify
        refused = run.get("services_a_fresh_plan_refuses") or []
        lines.append(
            f"verify: a fresh plan would change {run['services_a_fresh_plan_would_change']} Service(s) "
            f"and refuses {len(refused)}" + (f" ({'; '.join(refused[:3])})" if refused else "")
        )
    if run.get("drift_check_periods") and "resync" in run["phases"]:
        lines.append(
            f"resync: {run['phases']['resync']['reads_per_service']} reads per Service per period; "
            f"every Service deep-checked within K = {run['drift_check_periods']} periods"
        )
    return "\n".join(lines)


def _cell(summary: dict[str, Any], figure: str) -> str:
    """``median (min-max)`` of a figure, or a dash where no run had it."""
    s = summary.get(figure)
    if s is None:
        return "-"
    return f"{s['median']:g} ({s['min']:g}-{s['max']:g})"


def median_table(report: dict[str, Any], group: dict[str, Any]) -> str:
    """``--repeat``: per phase, the median (min-max) over the runs of one number of workers."""
    n = report["services"]
    cut = f", {group['runs_cut_short']} cut short" if group.get("runs_cut_short") else ""
    lines = [
        f"**{report['provider']}**, {n} Services x {report['ports_per_service']} port(s), "
        f"{report['nodes']} nodes, {group['workers']} workers, {report['latency_ms']:g} ms per call: "
        f"median (min-max) of {group['runs']} runs{cut}",
        "",
        "| phase | runs | seconds | ideal | time / ideal | controller CPU s | emulator CPU s "
        "| kube API + driver CPU s | reads | writes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in group["phases"].items():
        cells = [
            _cell(p, f)
            for f in (
                "seconds",
                "ideal_seconds",
                "time_over_ideal",
                "controller_cpu_seconds",
                "emulator_cpu_seconds",
                "kube_api_and_driver_cpu_seconds",
                "reads",
                "writes",
            )
        ]
        lines.append(f"| {name} | {p['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        for group in report.get("medians") or []:  # --repeat: the medians first
            print(median_table(report, group), end="\n\n")
        for run in report["runs"]:
            print(table(report, run), end="\n\n")
        if "workers_1_over_default_time" in report:
            print(f"time with 1 worker / default: {report['workers_1_over_default_time']}", end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
