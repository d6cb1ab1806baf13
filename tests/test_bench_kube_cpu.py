"""``bench/kube_cpu.py``: the Kubernetes side of a create, alone, with the same requests every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_kube_cpu_bench_reports_cpu_per_service_and_the_requests_of_each_service() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "kube_cpu.py"), "--services", "6", "--nodes", "3", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    [run] = json.loads(out.stdout)["runs"]
    assert run["services"] == 6 and run["controller_cpu_ms_per_service"] > 0
    # one finalizer patch, one status patch and two events per Service; nothing re-queued
    assert {k: v for k, v in run["api_requests"].items() if k != "create services"} == {
        "list services": 1,
        "watch services": 1,
        "patch services": 6,
        "patch services/status": 6,
        "create events": 12,
    }
    assert run["items_calls"]["sync"] == 6
    assert set(run["items_ms_per_service"]) >= {"finalizer_patch", "status_patch", "event_posts", "sync"}
