"""ARM API calls per operation of the Azure provider, measured against the local ARM emulator.

Prints JSON: reads and writes (by operation) to create a Service with P ports on N nodes, to
re-plan it with no change, to add one node, to delete it; the same for a dual-stack Service
(create, re-plan, delete); a re-plan of 100 unchanged Services with
and without a read round (``provider.read_round()``); and the shared load balancer under load: 50
Services created at once by 10 workers (LB PUTs, total writes, seconds), next to the same 50 created
one at a time as upstream does (with ``--lb-put-latency`` seconds added by the emulator to every
load-balancer PUT, to model ARM's slow LB operations). With ``--ceiling-nodes N``: as many 2-port
Services as Azure's limits allow on N nodes (300 rules per NIC across load balancers, one slot of
load balancers per node at most), created 10 at a time, and what the next one gets. Counts come from CloudCalls, which sees every request the SDK sends
(long-operation polls and retries included).

    python bench/azure_calls.py [--ports P] [--nodes N] [--services 100] [--concurrent 50] [--workers 10]
                                [--ceiling-nodes 6]
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import (
    assert_unchanged,
    calls_parser,
    make_node,
    make_service,
    measure,
    per_service,
    print_json,
    replan_unchanged,
    seconds_since,
)
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded
from lbprov_azure.sandbox import Fault, azure_sandbox

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent

#: The cluster identity the bench's providers run with (the controller reads the kube-system UID).
CLUSTER_ID = "b3e7c4a0-0000-4000-8000-0000000be7c4"


class Services:
    """Service objects in the API's JSON shape, with NodePorts unique across the run."""

    def __init__(self) -> None:
        self.next_port = 30000

    def make(self, name: str, ports: int, uid: str | None = None) -> dict[str, Any]:
        first, self.next_port = self.next_port, self.next_port + ports
        return make_service(name, [(f"p{i}", "TCP", 80 + i, first + i) for i in range(ports)], uid=uid)


def main(argv: list[str] | None = None) -> int:
    parser = calls_parser(__doc__)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument(
        "--lb-put-latency",
        type=float,
        default=0.2,
        help="seconds the emulator takes per load-balancer PUT in the load figures (ARM takes ~20 s; "
        "0 = none)",
    )
    parser.add_argument(
        "--ceiling-nodes",
        type=int,
        default=0,
        help="also fill a cluster of this many nodes with 2-port Services up to Azure's limits (0 = skip)",
    )
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "provider": "azure",
        "emulator": "lbprov_azure.sandbox (ARM over HTTPS, long operations polled)",
        "ports": args.ports,
        "nodes": args.nodes,
    }
    started = time.monotonic()
    factory = Services()
    with azure_sandbox([f"node-{i}" for i in range(args.nodes)]) as cloud:
        state = cloud.extra["state"]

        def provider_for(cluster: str) -> AzureProvider:
            return AzureProvider.from_settings(
                {**cloud.settings, "cluster_name": cluster, "cluster_id": CLUSTER_ID}
            )

        provider = provider_for("bench")
        nodes = [make_node(n) for n in cloud.nodes]

        def intent(
            prov: AzureProvider, svc: dict[str, Any], node_list: list[dict[str, Any]] | None = None
        ) -> Intent:
            return build_intent(
                svc, node_list or nodes, IntentSettings(cluster=prov.settings.cluster_name), prov
            )

        calls = provider.calls
        svc = factory.make("one", args.ports)
        report["create"] = measure(calls, lambda: provider.apply(provider.plan(intent(provider, svc))))
        report["replan_no_change"] = measure(
            calls, lambda: assert_unchanged(provider, [intent(provider, svc)])
        )

        nodes = [*nodes, make_node(cloud.add_node(f"node-{args.nodes}"))]
        report["add_one_node"] = measure(calls, lambda: provider.apply(provider.plan(intent(provider, svc))))

        one = intent(provider, svc)
        report["delete"] = measure(calls, lambda: provider.apply(provider.plan_delete(one.ref)))

        # -- a dual-stack Service (spec.ipFamilies IPv4, IPv6): a frontend and public IP per family --
        dual = factory.make("dual", args.ports)
        dual["spec"].update(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack")
        report["dual_stack_create"] = measure(
            calls, lambda: provider.apply(provider.plan(intent(provider, dual)))
        )
        report["dual_stack_replan_no_change"] = measure(
            calls, lambda: assert_unchanged(provider, [intent(provider, dual)])
        )
        two = intent(provider, dual)
        report["dual_stack_delete"] = measure(calls, lambda: provider.apply(provider.plan_delete(two.ref)))

        # -- re-plan of many unchanged Services --------------------------------------------------
        many = [intent(provider, factory.make(f"s{i}", 1)) for i in range(args.services)]
        with provider.read_round(), ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda it: provider.apply(provider.plan(it)), many))
        replan = replan_unchanged(provider, many)
        replan["reads_per_service_with_read_round"] = per_service(replan["with_read_round"], args.services)
        report[f"replan_{args.services}_unchanged"] = replan
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda it: provider.apply(provider.plan_delete(it.ref)), many))

        # -- the shared LB under load ------------------------------------------------------------
        def load(cluster: str, workers: int) -> dict[str, Any]:
            prov = provider_for(cluster)
            state.clear_faults()
            if args.lb_put_latency:
                state.inject(
                    Fault(
                        method="PUT", path=r"/loadbalancers/", status=0, latency=args.lb_put_latency, times=-1
                    )
                )
            intents = [intent(prov, factory.make(f"c{i}", 1)) for i in range(args.concurrent)]
            puts_before = state.count("PUT", rf"/loadbalancers/{cluster}$")
            t0 = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                ingresses = list(pool.map(lambda it: prov.apply(prov.plan(it)), intents))
            seconds = time.monotonic() - t0
            assert all(i and i[0].ip for i in ingresses)
            lb = state.get("loadBalancers", "lbprov-sandbox", cluster)
            frontends = len(lb["properties"]["frontendIPConfigurations"])
            rules = len(lb["properties"]["loadBalancingRules"])
            assert frontends == rules == args.concurrent, "lost update on the shared load balancer"
            stats = prov.calls.reset()
            out = {
                "services": args.concurrent,
                "workers": workers,
                "lb_puts": state.count("PUT", rf"/loadbalancers/{cluster}$") - puts_before,
                "lb_412_conflicts": prov.writer(cluster).stats.conflicts,
                "writes": stats.writes,
                "reads": stats.reads,
                "seconds": round(seconds, 2),
                "emulated_seconds_per_lb_put": args.lb_put_latency,
                "frontends_on_lb": frontends,
                "rules_on_lb": rules,
            }
            state.clear_faults()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda it: prov.apply(prov.plan_delete(it.ref)), intents))
            assert state.get("loadBalancers", "lbprov-sandbox", cluster) is None
            return out

        report[f"concurrent_{args.concurrent}_services"] = load("load", args.workers)
        report[f"serial_{args.concurrent}_services_one_at_a_time"] = load("serial", 1)
    if args.ceiling_nodes:
        report[f"ceiling_{args.ceiling_nodes}_nodes"] = ceiling(args.ceiling_nodes, args.workers)
    report["seconds"] = seconds_since(started)
    print_json(report)
    return 0


def ceiling(node_count: int, workers: int) -> dict[str, Any]:
    """2-port Services, ``workers`` at a time, until the provider refuses one (Azure's limits)."""
    factory = Services()
    with azure_sandbox([f"node-{i}" for i in range(node_count)]) as cloud:
        state = cloud.extra["state"]
        prov = AzureProvider.from_settings(
            {**cloud.settings, "cluster_name": "full", "cluster_id": CLUSTER_ID}
        )
        nodes = [make_node(n) for n in cloud.nodes]

        def ensure(svc: dict[str, Any]) -> str | None:
            it = build_intent(svc, nodes, IntentSettings(cluster="full"), prov)
            for _ in range(3):  # a plan that raced another onto a full slot is refused by ARM: re-plan
                try:
                    prov.apply(prov.plan(it))
                    return None
                except CapacityExceeded as exc:
                    return str(exc)
                except Exception as exc:  # counted, then re-planned on fresh data
                    retried.append(type(exc).__name__)
            return "gave up after 3 attempts"

        retried: list[str] = []
        placed = 0
        refusal: str | None = None
        t0 = time.monotonic()
        with prov.read_round(), ThreadPoolExecutor(workers) as pool:
            while refusal is None:
                batch = [factory.make(f"s{placed + i}", 2) for i in range(workers)]
                results = list(pool.map(ensure, batch))
                placed += sum(1 for r in results if r is None)
                refusal = next((r for r in results if r is not None), None)
        seconds = time.monotonic() - t0
        stats = prov.calls.reset()
        lbs = [lb for lb in state.resources["loadBalancers"].values() if lb["name"].startswith("full")]
        return {
            "nodes": node_count,
            "services_placed": placed,
            "rules": sum(len(lb["properties"]["loadBalancingRules"]) for lb in lbs),
            "load_balancers": sorted(lb["name"] for lb in lbs),
            "lb_puts": state.count("PUT", r"/loadbalancers/full"),
            "writes": stats.writes,
            "reads": stats.reads,
            "replanned_after_a_refused_write": len(retried),
            "seconds": round(seconds, 2),
            "next_service_gets": refusal,
        }


if __name__ == "__main__":
    raise SystemExit(main())
