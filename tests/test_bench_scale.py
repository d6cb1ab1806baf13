"""``bench/scale.py`` runs on every provider's sandbox and prints the documented JSON keys.

No figure is asserted beyond what correctness requires (every Service converged, the resync with
nothing changed writes nothing, a fresh plan of every Service is empty): speed and memory are the
bench's output, never a test's pass criterion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from scale import PHASE_KEYS, PHASES, RUN_KEYS  # noqa: E402


def run_bench(*args: str, script: str = "scale.py") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_scale_bench_prints_every_phase_for_each_provider(provider: str, tmp_path: Path) -> None:
    extra = ["--compare-workers"] if provider == "azure" else []
    report = run_bench(
        "--provider",
        provider,
        "--services",
        "3",
        "--nodes",
        "2",
        "--verify",
        "--node-debounce",
        "0.2",
        *extra,
    )
    assert report["provider"] == provider and report["services"] == 3
    assert len(report["runs"]) == (2 if extra else 1)
    for run in report["runs"]:
        assert set(RUN_KEYS) <= set(run)
        assert tuple(run["phases"]) == PHASES
        for name, phase in run["phases"].items():
            assert set(PHASE_KEYS) <= set(phase), name
            assert set(phase["cpu_seconds"]) == {"controller", "emulator", "kube_api_and_driver"}
            assert phase["reads"] == sum(phase["reads_by_operation"].values())
            assert phase["writes"] == sum(phase["writes_by_operation"].values())
        assert run["phases"]["create"]["writes"] > 0
        assert run["phases"]["add_node"]["writes"] > 0, "the new node was registered somewhere"
        assert run["phases"]["resync"]["writes"] == 0, "a resync with nothing changed writes nothing"
        assert run["services_a_fresh_plan_would_change"] == 0
        assert run["load_balancers"] >= 1
        assert run["controller_rss_mb"]["peak"] >= run["controller_rss_mb"]["after_startup"] > 0
    if extra:
        assert [r["workers"] for r in report["runs"]] == [10, 1]
        assert set(report["workers_1_over_default_time"]) == set(PHASES)
    # The markdown tables for notes render every run and phase.
    (tmp_path / "report.json").write_text(json.dumps(report))
    table = subprocess.run(
        [sys.executable, str(BENCH / "scale_table.py"), str(tmp_path / "report.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table.count("| create |") == len(report["runs"]) and "| resync |" in table


@pytest.mark.e2e
def test_scale_bench_one_more_reports_the_event_of_the_service_past_azures_limits() -> None:
    """One node holds 300 rules: two 150-port Services fill it, the third gets the capacity event."""
    report = run_bench(
        *("--provider", "azure", "--services", "2", "--nodes", "1", "--ports", "150"),
        *("--one-more", "--phases", "create"),
    )
    run = report["runs"][0]
    assert tuple(run["phases"]) == ("create",)
    extra = run["one_more"]
    assert extra["service"] == "svc-00002" and not extra["ingress"] and extra["writes"] == 0
    assert [e["reason"] for e in extra["warning_events"]] == ["SyncLoadBalancerFailed"]
    assert (
        "no load balancer of the cluster can take Service bench/svc-00002 (150 rules)"
        in (extra["warning_events"][0]["message"])
    )


@pytest.mark.e2e
def test_scale_memory_bench_reports_growth_per_service() -> None:
    report = run_bench("--sizes", "1,3", "--nodes", "2", "--node-debounce", "0.2", script="scale_memory.py")
    assert [p["services"] for p in report["points"]] == [1, 3]
    assert report["latency_ms"] == 0
    for point in report["points"]:
        assert point["rss_mb"]["peak"] >= point["rss_mb"]["after_startup"] > 0
        assert point["restart_rss_mb"]["peak"] >= point["restart_rss_mb"]["after_startup"] > 0
        assert point["restart_writes"] == 0 and point["restart_kube_api_writes"] == 0
        assert point["restart_reads_per_service"] > 0
    assert set(report["bytes_per_service"]) == {"after_startup", "peak", "steady_after_gc", "restart_peak"}
    assert report["extrapolated_peak_mb_at_target"]["services"] == 10_000
    assert isinstance(report["extrapolated_peak_mb_at_target"]["restart_peak_mb"], float)  # 1 -> 3: noise


def test_informer_memory_bench_shows_what_the_trim_saves() -> None:
    report = run_bench("--services", "20", "--nodes", "3", script="informer_memory.py")
    for kind in ("services", "nodes"):
        assert 0 < report[kind]["trimmed_bytes_per_object"] < report[kind]["whole_bytes_per_object"], kind


def test_phases_parse_in_run_order_and_restart_is_opt_in() -> None:
    from scale import parse_phases, parser

    assert parse_phases(parser().parse_args([]).phases) == PHASES == ("create", "add_node", "resync")
    assert parse_phases("restart,create") == ("create", "restart")
    assert parse_phases("create,add_node,resync,restart") == (*PHASES, "restart")
    with pytest.raises(SystemExit, match=r"--phases: unknown phase.*restrat"):
        parse_phases("create,restrat")


@pytest.mark.e2e
def test_a_restarted_controller_on_a_converged_cluster_writes_nothing() -> None:
    report = run_bench(
        *("--provider", "aws", "--services", "3", "--nodes", "2", "--phases", "create,restart", "--verify")
    )
    run = report["runs"][0]
    assert tuple(run["phases"]) == ("create", "restart")
    restart = run["phases"]["restart"]
    assert set(PHASE_KEYS) <= set(restart)
    assert restart["reads"] > 0, "the fresh controller read the cloud to plan every Service"
    assert restart["writes"] == 0 and restart["kube_api_writes"] == 0, restart
    assert restart["converged_writes_nothing"] is True
    assert restart["api_requests_by_verb"].get("list", 0) >= 2  # its own informers' initial lists
    assert restart["cpu_seconds"]["controller"] > 0
    rss = restart["controller_rss_mb"]
    assert rss["peak"] >= rss["after_startup"] > 0 and rss["steady_after_gc"] > 0
    assert run["services_a_fresh_plan_would_change"] == 0


def test_the_phase_timeout_grows_with_services_per_worker() -> None:
    from scale import parser, phase_timeout

    args = parser().parse_args(["--services", "1000"])
    assert phase_timeout(args, 10) == pytest.approx(1640)  # 600 + 1000 x (1 + 20 x 0.02 / 10)
    assert phase_timeout(args, 1) == pytest.approx(2000)  # 600 + 1000 x (1 + 20 x 0.02)
    assert phase_timeout(parser().parse_args(["--services", "1000", "--timeout", "30"]), 1) == 30


@pytest.mark.e2e
def test_a_run_cut_short_keeps_its_figures_and_the_other_run() -> None:
    # 2 s per cloud call: no Service can have its ingress when the zero timeout is checked.
    report = run_bench(
        *("--provider", "aws", "--services", "2", "--nodes", "2", "--latency-ms", "2000"),
        *("--timeout", "0", "--compare-workers"),
    )
    assert [r["workers"] for r in report["runs"]] == [10, 1]
    for cut in report["runs"]:
        assert "got ingress within" in cut["error"]
        assert cut["phases"] == {}
        assert cut["controller_rss_mb"]["peak_so_far"] > 0
    assert report["workers_1_over_default_time"] == {}


def test_the_controllers_requests_leave_out_the_drivers_lists_watch_and_node_create() -> None:
    from scale import NAMESPACE, controller_requests

    from lbprov.sandbox.kube_api import RecordedRequest

    def req(verb: str, resource: str, namespace: str | None, sub: str = "") -> RecordedRequest:
        return RecordedRequest(verb, "", resource, sub, namespace)

    driver = [
        req("list", "services", NAMESPACE),
        req("watch", "services", NAMESPACE),
        req("create", "nodes", None),
    ]
    controller = [
        req("watch", "services", None),
        req("patch", "services", NAMESPACE),
        req("patch", "services", NAMESPACE, "status"),
        req("create", "events", NAMESPACE),
    ]
    assert controller_requests(driver + controller) == {"create": 1, "patch": 2, "watch": 1}
