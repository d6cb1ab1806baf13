"""Cloud reads of ``lbprov plan`` over many Services, per provider, on the sandboxes. Prints JSON.

    .venv/bin/python bench/plan_calls.py [--services 20]

For each provider: N Services converged as the controller leaves them, then the plan run exactly as
``lbprov plan`` makes it (read-only provider, inside the provider's read round), and the same plans
made one by one without the round, for comparison. Figures: reads, writes (must be 0), refused
writes (must be 0), mutating requests seen by the emulator during the plans (must be 0), seconds.
"""

from __future__ import annotations

import argparse
import time
import uuid
from contextlib import nullcontext
from typing import Any

from common import make_service, print_json

from lbprov.cli.plan import plan_all, read_round
from lbprov.intent import IntentSettings, build_intent
from lbprov.provider import load_provider
from lbprov.sandbox.demo import node_object


def service(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        **make_service(
            f"svc{i}",
            [("http", "TCP", 80, 30000 + 2 * i), ("https", "TCP", 443, 30001 + 2 * i)],
            uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{i}")),
        ),
    }


def measure(name: str, n: int) -> dict[str, Any]:
    cls = load_provider(name)
    with cls.sandbox(["node-1", "node-2", "node-3"]) as cloud:
        cluster = str(cloud.settings.get("cluster_name") or "sandbox")
        settings = {**cloud.settings, "cluster_name": cluster}
        nodes = [node_object(node) for node in cloud.nodes]
        services = [service(i) for i in range(n)]
        writer = cls.from_settings(settings)
        for svc in services:
            writer.apply(writer.plan(build_intent(svc, nodes, IntentSettings(cluster), writer)))
        out: dict[str, Any] = {"services": n, "ports_per_service": 2, "nodes": len(nodes)}
        for label, batched in (("plan_run", True), ("one_by_one", False)):
            reader = cls.from_settings(settings, read_only=True)
            before = len(cloud.mutating_requests())
            start = time.monotonic()
            with read_round(reader) if batched else nullcontext():
                results = plan_all(reader, [(s, "ensure") for s in services], nodes, cluster)
            seconds = time.monotonic() - start
            stats = reader.calls.stats
            assert all(r.plan is not None and r.plan.empty for r in results), [r.error for r in results]
            out[label] = {
                "reads": stats.reads,
                "reads_per_service": round(stats.reads / n, 2),
                "writes": stats.writes,
                "refused_writes": sum(stats.refused.values()),
                "emulator_mutations": len(cloud.mutating_requests()) - before,
                "seconds": round(seconds, 2),
            }
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--provider", action="append", choices=("aws", "gcp", "azure"))
    args = parser.parse_args()
    report = {name: measure(name, args.services) for name in args.provider or ("aws", "gcp", "azure")}
    print_json(report)


if __name__ == "__main__":
    main()
