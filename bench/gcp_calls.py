"""Compute API calls per operation of the GCP provider, measured against the local GCE emulator.

Prints JSON: reads and writes (by operation) to create a Service with P ports on N nodes (two
zones), to re-plan it with no change, to add one node, to delete it; and to re-plan 100 unchanged
Services, with and without a read round (``provider.read_round()``). Counts come from CloudCalls,
which sees every HTTP request the SDK sends (retries and operation polls included); the emulator's
own request log is reported beside them as a cross-check.

    python bench/gcp_calls.py [--ports P] [--nodes N] [--services 100] [--internal]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common import (
    assert_unchanged,
    calls_parser,
    make_nodes,
    make_service,
    measure,
    per_service,
    print_json,
    replan_unchanged,
    seconds_since,
)
from lbprov_gcp import GCPProvider

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent

CLUSTER = "bench"
#: The cluster identity (kube-system UID) and upstream cluster ID a real run would read from the cluster.
CLUSTER_ID = "be0c0000-0000-4000-8000-000000000001"
GCE_CLUSTER_ID = "be0c000000000001"


def _measure(
    provider: GCPProvider, server: Any, fn: Callable[[], object], *, detail: bool = True
) -> dict[str, Any]:
    """Cloud calls made by ``fn()``, and the requests the emulator saw meanwhile."""
    server.clear_log()
    out = measure(provider.calls, fn, detail=detail)
    out["emulator_saw"] = {"requests": len(server.requests), "mutating": len(server.mutating_requests())}
    server.clear_log()
    return out


def _ports(count: int) -> list[tuple[str, str, int, int]]:
    return [(f"p{80 + i}", "TCP", 80 + i, 30000 + i) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = calls_parser(__doc__)
    parser.add_argument("--internal", action="store_true", help="internal load balancers")
    args = parser.parse_args(argv)
    annotations = {"networking.gke.io/load-balancer-type": "Internal"} if args.internal else {}
    report: dict[str, Any] = {
        "provider": "gcp",
        "emulator": "lbprov_gcp.sandbox",
        "scheme": "internal" if args.internal else "external",
        "ports": args.ports,
        "nodes": args.nodes,
    }
    started = time.monotonic()
    with GCPProvider.sandbox([f"node-{i}" for i in range(args.nodes)]) as cloud:
        server = cloud.extra["server"]
        # Client-side rate limits off: this counts calls, it does not time them.
        provider = GCPProvider.from_settings(
            {
                **cloud.settings,
                "cluster_name": CLUSTER,
                "cluster_id": CLUSTER_ID,
                "gce_cluster_id": GCE_CLUSTER_ID,
                "reads_per_second": 0,
                "writes_per_second": 0,
            }
        )
        settings = IntentSettings(cluster=CLUSTER)
        nodes = list(cloud.nodes)

        def intent(svc: dict[str, Any]) -> Intent:
            return build_intent(svc, make_nodes(nodes), settings, provider)

        def step(fn: Callable[[], object], *, detail: bool = True) -> dict[str, Any]:
            return _measure(provider, server, fn, detail=detail)

        def create_all(intents: list[Intent]) -> None:
            with provider.read_round():
                for it in intents:
                    provider.apply(provider.plan(it))

        def converge_all(intents: list[Intent]) -> None:
            with provider.read_round():
                for it in intents:
                    plan = provider.plan(it)
                    if not plan.empty:
                        provider.apply(plan)

        svc = make_service("web", _ports(args.ports), annotations)
        report["create"] = step(lambda: provider.apply(provider.plan(intent(svc))))
        report["replan_no_change"] = step(lambda: assert_unchanged(provider, [intent(svc)]))

        nodes.append(cloud.add_node(f"node-{args.nodes}"))
        report["add_one_node"] = step(lambda: provider.apply(provider.plan(intent(svc))))

        ref = intent(svc).ref
        report["delete_last_service"] = step(lambda: provider.apply(provider.plan_delete(ref)))

        many = [
            make_service(f"s{i}", [("p80", "TCP", 80, 31000 + i)], annotations) for i in range(args.services)
        ]
        intents = [intent(s) for s in many]
        report[f"create_{args.services}_in_a_read_round"] = step(lambda: create_all(intents), detail=False)
        replan = replan_unchanged(provider, intents, step)
        report[f"replan_{args.services}_unchanged"] = {
            "without_read_round": replan["without_read_round"],
            "reads_per_service_without_read_round": per_service(replan["without_read_round"], args.services),
            "with_read_round": replan["with_read_round"],
            "reads_per_service_with_read_round": per_service(replan["with_read_round"], args.services),
        }
        nodes.append(cloud.add_node(f"node-{args.nodes + 1}"))
        intents = [intent(s) for s in many]
        report[f"add_one_node_with_{args.services}_services"] = step(lambda: converge_all(intents))
    report["seconds"] = seconds_since(started)
    print_json(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
