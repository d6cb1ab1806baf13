"""AWS API calls per operation of the AWS provider, measured against the moto sandbox.

Prints JSON: reads and writes (by operation) to create a Service with P ports on N nodes, to
re-plan it with no change, to add one node, to delete it; and to re-plan 100 unchanged Services,
with and without a read round (``provider.read_round()``). Counts come from CloudCalls, which sees
every request the SDK sends (retries included).

    python bench/aws_calls.py [--ports P] [--nodes N] [--services 100] [--kind nlb|classic]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from lbprov_aws import AWSProvider
from lbprov_aws.sgrules import RuleConfig, merge, render, service_points
from lbprov_aws.testing import Svc, node_objects

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, ServiceRef


def _stats(provider: AWSProvider, *, detail: bool = True) -> dict[str, Any]:
    stats = provider.calls.reset()
    out: dict[str, Any] = {"reads": stats.reads, "writes": stats.writes}
    if detail:
        out["by_operation"] = stats.to_json()["by_operation"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--kind", choices=["nlb", "classic"], default="nlb")
    args = parser.parse_args(argv)
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": args.kind}
    report: dict[str, Any] = {
        "provider": "aws",
        "emulator": "moto",
        "kind": args.kind,
        "ports": args.ports,
        "nodes": args.nodes,
    }
    started = time.monotonic()
    with AWSProvider.sandbox([f"node-{i}" for i in range(args.nodes)], cluster="bench") as cloud:
        provider = AWSProvider.from_settings(cloud.settings)
        settings = IntentSettings(cluster="bench")

        def intent(svc: Svc) -> Intent:
            return build_intent(svc.to_k8s(), node_objects(cloud), settings, provider)

        svc = Svc(ports=[(80 + i, "TCP", 30000 + i) for i in range(args.ports)], annotations=annotations)
        provider.calls.reset()
        provider.apply(provider.plan(intent(svc)))
        report["create"] = _stats(provider)

        plan = provider.plan(intent(svc))
        assert plan.empty
        report["replan_no_change"] = _stats(provider)

        cloud.nodes.append(cloud.add_node(f"node-{args.nodes}"))
        provider.calls.reset()
        provider.apply(provider.plan(intent(svc)))
        report["add_one_node"] = _stats(provider)

        provider.apply(provider.plan_delete(ServiceRef(svc.namespace, svc.name, svc.uid)))
        report["delete"] = _stats(provider)

        many = [
            Svc(name=f"s{i}", ports=[(80, "TCP", 31000 + i)], annotations=annotations)
            for i in range(args.services)
        ]
        intents = [intent(s) for s in many]
        with provider.read_round():
            for it in intents:
                provider.apply(provider.plan(it))
        provider.calls.reset()
        changed = sum(not provider.plan(it).empty for it in intents)
        without = _stats(provider, detail=False)
        with provider.read_round():
            changed += sum(not provider.plan(it).empty for it in intents)
        with_round = _stats(provider)
        assert changed == 0, "re-plan of unchanged Services found changes"
        report[f"replan_{args.services}_unchanged"] = {
            "without_read_round": without,
            "with_read_round": with_round,
            "reads_per_service_with_read_round": round(with_round["reads"] / args.services, 2),
        }
        rules = [
            p
            for p in cloud.extra["sandbox"]
            .client("ec2")
            .describe_security_groups(GroupIds=[cloud.extra["node_security_group_id"]])["SecurityGroups"][0][
                "IpPermissions"
            ]
        ]
        report["node_security_group_rules_for_services"] = sum(
            len(p.get("IpRanges", [])) + len(p.get("UserIdGroupPairs", [])) for p in rules
        )
    # NLB: the rules with NodePorts allocated at random (as the API server does), computed per mode.
    if args.kind != "nlb":
        report["seconds"] = round(time.monotonic() - started, 1)
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    rng = random.Random(7)
    node_ports = rng.sample(range(30000, 32768), args.services)
    points = set()
    for port in node_ports:
        points |= service_points(
            ports=[("TCP", port)], health_ports=[port], source_ranges=["0.0.0.0/0"], vpc_cidrs=["10.0.0.0/16"]
        )
    report["node_security_group_rules_if_node_ports_random"] = {
        "lbprov_ports": len(merge(points)),
        "lbprov_auto_budget_50": len(render(points, RuleConfig(mode="auto", budget=50))),
        "lbprov_nodeport_range": len(render(points, RuleConfig(mode="nodeport-range"))),
        "upstream_one_rule_per_service_port": args.services,
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
