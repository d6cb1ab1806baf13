"""The controller's CPU per Azure plan, alone, against shared load balancers already full.

    python bench/azure_plan_cpu.py [--existing 560] [--new 40] [--ports 2] [--nodes 20] [--reps 3]

Why: the scale bench's controller CPU per Service mixes the plan with the writes, the HTTP client
and the Kubernetes side, and identical runs on this shared 2-core machine differ by up to 30%, so a
planning cut of a few percent cannot be told from noise there. This fills the ARM emulator with
``--existing`` Services (applied through the provider, 10 at a time as the controller's workers do,
so that LB writes batch) and then times, with each thread's own CPU clock (``time.thread_time``), a
fresh provider's plans in one read round: ``--new`` Services that are on no load balancer yet (the
create path: placement, the Service's parts, the shared NSG rule) and every existing one (the
resync path: everything converged); each round's first plan, which reads and parses the load
balancers, is not timed. The reads are counted too (calls per plan must not change). The script
imports the checkout it sits in: to compare two versions, run each checkout's own copy
(``git archive REV | tar -x -C /tmp/old``, then ``.venv/bin/python /tmp/old/bench/azure_plan_cpu.py``).

Prints one JSON object: per path, the median over ``--reps`` of the CPU milliseconds per plan, the
plans that were not empty, and the cloud reads made.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "providers/azure/src")]

from lbprov_azure import AzureProvider  # noqa: E402
from lbprov_azure.sandbox import azure_sandbox  # noqa: E402
from lbprov_azure.testing import make_service, node_object  # noqa: E402

from lbprov.intent import IntentSettings, build_intent  # noqa: E402

CLUSTER = "bench"
CLUSTER_ID = "0e5f8a3c-1d2b-4c6e-9f70-123456789abc"


def _service(i: int, ports: int) -> dict[str, Any]:
    return make_service(
        f"svc-{i}",
        uid=f"{i:08x}-0000-4000-8000-000000000000",
        ports=[("TCP", 80 + k) for k in range(ports)],
    )


def _plans(
    provider: AzureProvider, services: list[dict[str, Any]], nodes: list[dict[str, Any]]
) -> tuple[float, int]:
    """(CPU ms per plan, plans not empty), all in one read round as a controller's resync.

    The round's first plan is not timed: it reads and parses the load balancers (several MB of
    JSON at 1,000 Services), a cost per round, not per plan. The collector runs before the timed
    plans, so that a collection of the parsed bodies does not land in one version's figures."""
    settings = IntentSettings(cluster=CLUSTER)
    intents = [build_intent(s, nodes, settings, provider) for s in services]
    changed = 0
    with provider.read_round():
        changed += not provider.plan(intents[0]).empty
        gc.collect()
        start = time.thread_time()
        for intent in intents[1:]:
            changed += not provider.plan(intent).empty
        spent = time.thread_time() - start
    return spent * 1000 / (len(intents) - 1), changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--existing", type=int, default=560)
    ap.add_argument("--new", type=int, default=40)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with azure_sandbox([f"node-{i}" for i in range(args.nodes)]) as sb:
        settings = {**sb.settings, "cluster_name": CLUSTER, "cluster_id": CLUSTER_ID}
        nodes = [node_object(n) for n in sb.nodes]
        writer = AzureProvider.from_settings(settings)
        intent_settings = IntentSettings(cluster=CLUSTER)
        existing = [_service(i, args.ports) for i in range(args.existing)]

        def ensure(svc: dict[str, Any]) -> None:
            intent = build_intent(svc, nodes, intent_settings, writer)
            writer.apply(writer.plan(intent))

        fill = time.perf_counter()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(ensure, existing))
        fill_s = time.perf_counter() - fill
        new = [_service(args.existing + i, args.ports) for i in range(args.new)]
        out: dict[str, Any] = {
            "existing": args.existing,
            "new": args.new,
            "ports": args.ports,
            "fill_seconds": round(fill_s, 1),
        }
        for path, services in (("create", new), ("resync", existing)):
            runs = []
            for _ in range(args.reps):
                fresh = AzureProvider.from_settings(settings)  # empty caches, as a new controller's
                ms, changed = _plans(fresh, services, nodes)
                reads = fresh.calls.stats.reads
                runs.append((ms, changed, reads))
            out[path] = {
                "cpu_ms_per_plan": round(statistics.median(r[0] for r in runs), 3),
                "cpu_ms_per_plan_all": [round(r[0], 3) for r in runs],
                "plans_not_empty": runs[0][1],
                "reads": runs[0][2],
            }
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
