"""AWS API calls per operation of the AWS provider, measured against the moto sandbox.

Prints JSON: reads and writes (by operation) to create a Service with P ports on N nodes, to
re-plan it with no change, to add one node, to delete it; and to re-plan 100 unchanged Services,
with and without a read round (``provider.read_round()``). Counts come from CloudCalls, which sees
every request the SDK sends (retries included).

    python bench/aws_calls.py [--ports P] [--nodes N] [--services 100] [--kind nlb|classic]
                              [--nlb-security-groups on|off]

``--nlb-security-groups off`` measures the older model (NodePort rules on the node groups), as
every NLB was made before issue 10's security groups; ``node_security_group_rules_for_services``
counts the lbprov rules in the node group after creating the Services, measured.
"""

from __future__ import annotations

import random
import time
from typing import Any

from common import (
    assert_unchanged,
    calls_parser,
    measure,
    per_service,
    print_json,
    replan_unchanged,
    seconds_since,
)
from lbprov_aws import AWSProvider
from lbprov_aws.diff.node_rules import RuleConfig, merge, render, service_points
from lbprov_aws.testing import Svc, node_objects

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, ServiceRef


def main(argv: list[str] | None = None) -> int:
    parser = calls_parser(__doc__)
    parser.add_argument("--kind", choices=["nlb", "classic"], default="nlb")
    parser.add_argument("--nlb-security-groups", choices=["on", "off"], default="on")
    args = parser.parse_args(argv)
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": args.kind}
    report: dict[str, Any] = {
        "provider": "aws",
        "emulator": "moto",
        "kind": args.kind,
        "ports": args.ports,
        "nodes": args.nodes,
        "nlb_security_groups": args.nlb_security_groups,
    }
    started = time.monotonic()
    with AWSProvider.sandbox([f"node-{i}" for i in range(args.nodes)], cluster="bench") as cloud:
        # With a cluster identity, as the controller runs (it enables the sweep of orphaned rules).
        provider = AWSProvider.from_settings(
            {
                **cloud.settings,
                "cluster_id": "bench-cluster-id",
                "nlb_security_groups": args.nlb_security_groups == "on",
            }
        )
        settings = IntentSettings(cluster="bench")

        def intent(svc: Svc) -> Intent:
            return build_intent(svc.to_k8s(), node_objects(cloud), settings, provider)

        svc = Svc(ports=[(80 + i, "TCP", 30000 + i) for i in range(args.ports)], annotations=annotations)
        calls = provider.calls
        report["create"] = measure(calls, lambda: provider.apply(provider.plan(intent(svc))))
        report["replan_no_change"] = measure(calls, lambda: assert_unchanged(provider, [intent(svc)]))

        cloud.nodes.append(cloud.add_node(f"node-{args.nodes}"))
        report["add_one_node"] = measure(calls, lambda: provider.apply(provider.plan(intent(svc))))

        ref = ServiceRef(svc.namespace, svc.name, svc.uid)
        report["delete"] = measure(calls, lambda: provider.apply(provider.plan_delete(ref)))

        many = [
            Svc(name=f"s{i}", ports=[(80, "TCP", 31000 + i)], annotations=annotations)
            for i in range(args.services)
        ]
        intents = [intent(s) for s in many]
        with provider.read_round():
            for it in intents:
                provider.apply(provider.plan(it))
        replan = replan_unchanged(provider, intents)
        replan["reads_per_service_with_read_round"] = per_service(replan["with_read_round"], args.services)
        report[f"replan_{args.services}_unchanged"] = replan
        rules = [
            p
            for p in cloud.extra["sandbox"]
            .client("ec2")
            .describe_security_groups(GroupIds=[cloud.extra["node_security_group_id"]])["SecurityGroups"][0][
                "IpPermissions"
            ]
        ]
        report["node_security_group_rules_for_services"] = sum(
            1
            for p in rules
            for e in p.get("IpRanges", []) + p.get("UserIdGroupPairs", [])
            if str(e.get("Description", "")).startswith("lbprov.io/")
        )
        # Each Service's random NodePort is allocated by the API server; the bench's are contiguous
        # (31000+i), which the older model merges: see the random-NodePort figures below.
        report["node_security_group_rules_for_services_note"] = (
            "measured in the node group after creating the Services (contiguous NodePorts)"
        )
    # NLB: the rules with NodePorts allocated at random (as the API server does), computed per mode.
    if args.kind != "nlb":
        report["seconds"] = seconds_since(started)
        print_json(report)
        return 0
    # Computed (not measured) for random NodePorts, from the older model's pure rule functions; the
    # security-group model needs 3 rules per node group whatever the count (measured above).
    for count in sorted({args.services, 1000}):
        for cidrs in (1, 10):
            rng = random.Random(7)
            points = set()
            for i, port in enumerate(rng.sample(range(30000, 32768), count)):
                points |= service_points(
                    ports=[("TCP", port)],
                    health_ports=[port],
                    source_ranges=["0.0.0.0/0"] if cidrs == 1 else [f"10.{i % cidrs}.0.0/16"],
                    vpc_cidrs=["10.0.0.0/16"],
                )
            report[f"node_security_group_rules_if_node_ports_random_{count}_services_{cidrs}_cidrs"] = {
                "lbprov_ports": len(merge(points)),
                "lbprov_auto_budget_50": len(render(points, RuleConfig(mode="auto", budget=50))),
                "lbprov_nodeport_range": len(render(points, RuleConfig(mode="nodeport-range"))),
                "lbprov_nlb_security_groups": 3,
                **({"upstream_one_rule_per_service_port": count} if cidrs == 1 else {}),
            }
    report["seconds"] = seconds_since(started)
    print_json(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
