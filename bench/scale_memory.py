"""Controller memory at scale: peak RSS and bytes per Service, on any provider's sandbox.

    python bench/scale_memory.py [--provider aws] [--sizes 100,400] [--nodes 3] [--kubectl-applied]
                                 [--no-trim] [--target 10000]

For each size N, ``bench/scale.py``'s run with no injected latency (a no-latency emulator in its own
process; what is measured is the controller process alone): N Services created and converged, then
one resync (every Service re-planned in one read round, the periodic steady-state work), then a
restart: a fresh controller process on the N converged Services (every leader failover or upgrade:
its informers list every object and its initial sync plans every Service with nothing remembered
yet). The controller's RSS is read from ``/proc/<pid>/status``: ``VmRSS`` after startup (imports +
informer caches synced, before any cloud work), ``VmHWM`` (peak) at the end, ``VmRSS`` after
``gc.collect()``; ``restart_rss_mb`` gives the same three figures of the restarted process (its
peak is the one a user meets on every failover), ``restart_writes`` must be 0. With
``--tracemalloc``, ``restart_controller_allocations`` is what the restarted process still holds
after its initial sync and ``gc.collect()``, by source line (tracing costs memory: RSS figures of
such a run are not comparable).

The AWS cloud is moto behind the strict layer, with the sandbox's fixes of moto's scans over every
resource (``lbprov_aws/sandbox/at_scale.py``: without them a security group listing at 10,000 NLB
Services costs moto about 20 minutes). The 10,000-Service run, as the image runs the controller
(``MALLOC_ARENA_MAX=2``)::

    python bench/scale_memory.py --sizes 10000 --malloc-arena-max 2 --service-node-port-range 30000-45000

(10,000 one-port Services need more NodePorts than the default range's 2,768; add a smaller size,
e.g. ``--sizes 2000,10000``, for a bytes-per-Service slope). A restart that outlives the controller's
read round (``MAX_ROUND_SECONDS``, 120 s: at 10,000 Services, on a loaded machine) lists the account
once more per round: ``restart_reads_by_operation``'s ``elbv2:DescribeLoadBalancers`` is 25 pages
(400 load balancers each) per listing, one listing per round. Before 823d001 the plans between two
rounds listed it once more, at the same time as the new round (the 200 MB restart peaks of
issue 14). ``--no-malloc-trim`` turns off the
controller's ``malloc_trim`` when a batch ends (``lbprov/heap.py``), to compare: it lowers the
steady state after a batch, not the peak.

Growth per Service is the slope between the smallest and the largest size (bytes per Service), for
the startup figure (the informer cache and what the imports do not explain), the peak and the
steady state; ``extrapolated_peak_mb_at_target`` = peak at the largest size + slope x (target - N):
an extrapolation, labelled so, for when the target does not fit in the time. Each point's
``bytes_per_service_over_startup`` is the growth over that run's own RSS after startup divided by
its N: a single size's figure (at small N, the imports' first-use growth dominates it).
``--kubectl-applied``
makes the objects as large as a real cluster's (see ``scale.py``); ``--no-trim`` turns off the
informer's trimming of cached objects, to show what it saves.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from common import print_json
from scale import header, parser, run


def over_startup(rss: dict[str, float], restart: dict[str, float], n: int) -> dict[str, int]:
    """Growth per Service at one size, over the process's own RSS after startup (imports and the
    synced informer caches): what a single-size run shows of the growth (issue 14 asks for bytes per
    Service); the slope between two sizes (``bytes_per_service``) leaves the startup out better."""

    def per(mb: float, base: float) -> int:
        return round((mb - base) * 2**20 / n)

    return {
        "peak_after_create": per(rss["peak_after_create"], rss["after_startup"]),
        "peak": per(rss["peak"], rss["after_startup"]),
        "steady_after_gc": per(rss["steady_after_gc"], rss["after_startup"]),
        "restart_peak": per(restart["peak"], restart["after_startup"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = parser()
    p.description = (__doc__ or "").splitlines()[0]
    p.add_argument("--sizes", default="100,400", help="comma-separated numbers of Services (default 100,400)")
    p.add_argument("--target", type=int, default=10_000, help="extrapolate the peak to this many Services")
    p.set_defaults(latency_ms=0.0, nodes=3)
    args = p.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    report: dict[str, Any] = {**header(args), "services": sizes, "no_trim": args.no_trim}
    report["kubectl_applied"] = args.kubectl_applied
    points = []
    for n in sizes:
        args.services = n
        started = time.monotonic()
        out = run(args, args.workers, phases=("create", "resync", "restart"))
        if (
            "error" in out or "restart" not in out["phases"]
        ):  # cut short: say so, with the memory seen until then
            points.append(
                {
                    "services": n,
                    "error": out.get("error", "no restart phase"),
                    "rss_mb": out.get("controller_rss_mb"),
                    "phases": out["phases"],
                }
            )
            continue
        rss = out["controller_rss_mb"]
        restart = out["phases"]["restart"]
        points.append(
            {
                "services": n,
                "wall_seconds": round(time.monotonic() - started, 1),
                "rss_mb": rss,
                "bytes_per_service_over_startup": over_startup(rss, restart["controller_rss_mb"], n),
                "controller_cpu_seconds": out["cpu_seconds_total"]["controller"],
                "create_reads_per_service": out["phases"]["create"]["reads_per_service"],
                "resync_reads_per_service": out["phases"]["resync"]["reads_per_service"],
                "restart_rss_mb": restart["controller_rss_mb"],
                "restart_seconds": restart["seconds"],
                "restart_startup_seconds": restart["startup_seconds"],
                "restart_reads_per_service": restart["reads_per_service"],
                "restart_reads_by_operation": restart["reads_by_operation"],
                "restart_writes": restart["writes"],
                "restart_kube_api_writes": restart["kube_api_writes"],
                "restart_controller_cpu_seconds": restart["cpu_seconds"]["controller"],
                "create_reads_by_operation": out["phases"]["create"]["reads_by_operation"],
                "controller_cpu_ms_per_service": {
                    phase: out["phases"][phase]["controller_cpu_ms_per_service"] for phase in out["phases"]
                },
                "emulator_cpu_seconds": {
                    phase: out["phases"][phase]["cpu_seconds"]["emulator"] for phase in out["phases"]
                },
                **({"controller_allocations": out["controller_allocations"]} if args.tracemalloc else {}),
                **(
                    {"restart_controller_allocations": restart["controller_allocations"]}
                    if args.tracemalloc
                    else {}
                ),
            }
        )
    report["points"] = points
    measured = [p for p in points if "error" not in p]
    if len(measured) >= 2:
        lo, hi = measured[0], measured[-1]
        dn = hi["services"] - lo["services"]

        def slope(key: str, rss: str = "rss_mb") -> int:
            return round((hi[rss][key] - lo[rss][key]) * 1024 * 1024 / dn)

        growth = {key: slope(key) for key in ("after_startup", "peak", "steady_after_gc")}
        growth["restart_peak"] = slope("peak", "restart_rss_mb")
        report["bytes_per_service"] = growth
        report["extrapolated_peak_mb_at_target"] = {
            "services": args.target,
            "peak_mb": round(
                hi["rss_mb"]["peak"] + growth["peak"] * (args.target - hi["services"]) / 2**20, 1
            ),
            "restart_peak_mb": round(
                hi["restart_rss_mb"]["peak"]
                + growth["restart_peak"] * (args.target - hi["services"]) / 2**20,
                1,
            ),
            "note": "extrapolated linearly from the largest measured size, not measured",
        }
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
