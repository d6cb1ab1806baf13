"""Cloud reads of the AWS provider's periodic resyncs, per resync, on the sandbox. Prints JSON.

    .venv/bin/python bench/resync_reads.py [--services 1000] [--resyncs 18]

N one-port Services are created, then ``--resyncs`` periodic resyncs run as the controller makes
them (one read round, marked by ``drift_check()``, every Service planned, applied when not empty).
Figures per resync: reads, reads per Service, deep checks (DescribeListeners: one per Service
deep-checked), and K (every Service deep-checked within K resyncs; the settings' default budget).
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections import Counter
from typing import Any

from common import make_service, print_json

from lbprov.intent import IntentSettings, build_intent
from lbprov.provider import load_provider
from lbprov.sandbox.demo import node_object


def service(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        **make_service(
            f"svc{i}",
            [("http", "TCP", 80, 30000 + i)],
            uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"resync-{i}")),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--resyncs", type=int, default=18)
    args = parser.parse_args()
    cls = load_provider("aws")
    with cls.sandbox(["node-1", "node-2", "node-3"]) as cloud:
        cluster = str(cloud.settings.get("cluster_name") or "sandbox")
        settings = {**cloud.settings, "cluster_name": cluster}
        nodes = [node_object(node) for node in cloud.nodes]
        services = [service(i) for i in range(args.services)]
        provider = cls.from_settings(settings)
        start = time.monotonic()
        for svc in services:
            provider.apply(provider.plan(build_intent(svc, nodes, IntentSettings(cluster), provider)))
        created = time.monotonic() - start
        k = provider.drift_check_periods
        rounds = []
        for _ in range(args.resyncs):
            provider.calls.reset()
            with provider.read_round() as rnd:
                rnd.drift_check()  # what the controller's periodic resync does
                changed = 0
                for svc in services:
                    plan = provider.plan(build_intent(svc, nodes, IntentSettings(cluster), provider))
                    if not plan.empty:
                        changed += 1
                        provider.apply(plan)
            ops: Counter[str] = Counter()
            for (op, _), n in provider.calls.reset().sent.items():
                ops[op] += n
            reads = sum(n for op, n in ops.items() if ":Describe" in op)
            rounds.append(
                {
                    "reads": reads,
                    "reads_per_service": round(reads / args.services, 3),
                    "deep_checks": ops["elbv2:DescribeListeners"],
                    "changed": changed,
                }
            )
        per = [r["reads_per_service"] for r in rounds]
        print_json(
            {
                "services": args.services,
                "k": k,
                "deep_check_bound": math.ceil(args.services / k),
                "create_seconds": round(created, 1),
                "reads_per_service": {
                    "min": min(per),
                    "max": max(per),
                    "mean": round(sum(per) / len(per), 3),
                },
                "resyncs": rounds,
            }
        )


if __name__ == "__main__":
    main()
