"""Compute API calls per operation of the GCP provider, measured against the local GCE emulator.

Prints JSON: reads and writes (by operation) to create a Service with P ports on N nodes (two
zones), to re-plan it with no change, to add one node, to delete it; and to re-plan 100 unchanged
Services, with and without a read round (``provider.read_round()``). Counts come from CloudCalls,
which sees every HTTP request the SDK sends (retries and operation polls included); the emulator's
own request log is reported beside them as a cross-check.

    python bench/gcp_calls.py [--ports P] [--nodes N] [--services 100] [--internal]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

from lbprov_gcp import GCPProvider

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, SandboxNode

CLUSTER = "bench"


def _stats(provider: GCPProvider, server: Any, *, detail: bool = True) -> dict[str, Any]:
    stats = provider.calls.reset()
    out: dict[str, Any] = {"reads": stats.reads, "writes": stats.writes}
    if detail:
        out["by_operation"] = stats.to_json()["by_operation"]
    out["emulator_saw"] = {"requests": len(server.requests), "mutating": len(server.mutating_requests())}
    server.clear_log()
    return out


def _service(name: str, ports: list[tuple[str, int, int]], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": str(uuid.uuid4()),
            "annotations": annotations,
        },
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": f"p{port}", "protocol": proto, "port": port, "nodePort": np}
                for proto, port, np in ports
            ],
        },
    }


def _nodes(nodes: list[SandboxNode]) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"name": n.name, "labels": {"topology.kubernetes.io/zone": n.zone}},
            "spec": {"providerID": n.provider_id},
            "status": {"addresses": [{"type": "InternalIP", "address": n.internal_ip}]},
        }
        for n in nodes
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--services", type=int, default=100)
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
            {**cloud.settings, "cluster_name": CLUSTER, "reads_per_second": 0, "writes_per_second": 0}
        )
        settings = IntentSettings(cluster=CLUSTER)
        nodes = list(cloud.nodes)

        def intent(svc: dict[str, Any]) -> Intent:
            return build_intent(svc, _nodes(nodes), settings, provider)

        svc = _service("web", [("TCP", 80 + i, 30000 + i) for i in range(args.ports)], annotations)
        server.clear_log()
        provider.calls.reset()
        provider.apply(provider.plan(intent(svc)))
        report["create"] = _stats(provider, server)

        assert provider.plan(intent(svc)).empty
        report["replan_no_change"] = _stats(provider, server)

        nodes.append(cloud.add_node(f"node-{args.nodes}"))
        provider.calls.reset()
        server.clear_log()
        provider.apply(provider.plan(intent(svc)))
        report["add_one_node"] = _stats(provider, server)

        provider.apply(provider.plan_delete(intent(svc).ref))
        report["delete_last_service"] = _stats(provider, server)

        many = [_service(f"s{i}", [("TCP", 80, 31000 + i)], annotations) for i in range(args.services)]
        intents = [intent(s) for s in many]
        with provider.read_round():
            for it in intents:
                provider.apply(provider.plan(it))
        report[f"create_{args.services}_in_a_read_round"] = _stats(provider, server, detail=False)
        changed = sum(not provider.plan(it).empty for it in intents)
        without = _stats(provider, server, detail=False)
        with provider.read_round():
            changed += sum(not provider.plan(it).empty for it in intents)
        with_round = _stats(provider, server)
        assert changed == 0, "re-plan of unchanged Services found changes"
        report[f"replan_{args.services}_unchanged"] = {
            "without_read_round": without,
            "reads_per_service_without_read_round": round(without["reads"] / args.services, 2),
            "with_read_round": with_round,
            "reads_per_service_with_read_round": round(with_round["reads"] / args.services, 2),
        }
        nodes.append(cloud.add_node(f"node-{args.nodes + 1}"))
        intents = [intent(s) for s in many]
        provider.calls.reset()
        with provider.read_round():
            for it in intents:
                plan = provider.plan(it)
                if not plan.empty:
                    provider.apply(plan)
        report[f"add_one_node_with_{args.services}_services"] = _stats(provider, server)
    report["seconds"] = round(time.monotonic() - started, 1)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
