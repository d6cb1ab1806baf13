"""moto's CPU per request, by operation, for what the AWS provider sends on create and add_node.

    python bench/aws_moto_calls.py [--services 200] [--nodes 20] [--repeat 3]

Runs the sandbox (moto behind the strict layer, ``at_scale.py``'s fixes) twice, each in a process of
its own: with moto as shipped (``LBPROV_SANDBOX_STOCK_MOTO=1``: its Flask app, request parser and
response path, werkzeug's HTTP server) and with the sandbox's fast paths (``direct.py``,
``fast_parse.py``, ``fast_xml.py``, ``fast_picker.py``, cheroot with keep-alive). In each, the AWS provider creates ``--services`` one-port
NLB Services over ``--nodes`` nodes, then one node is added and every Service re-applied (one
``RegisterTargets`` each), each phase in one read round as the controller's batches. The CPU time of the server thread inside the WSGI app (the strict layer,
moto's dispatch, its backend and its serializer; not werkzeug's HTTP parsing before it) is summed per
``<service>:<Action>`` with ``time.thread_time``; ``all_server_threads`` is the process's CPU less
the client thread's per request (the HTTP server too: werkzeug's, or cheroot's with keep-alive), and
``client_per_request`` the provider's thread (botocore included). The best of ``--repeat`` runs per mode is kept
(CPU seconds hold on a loaded machine better than wall time, but not perfectly: the runs of the
two modes are interleaved, and a figure is only worth comparing with its pair).

Prints JSON: per mode and operation, requests and CPU milliseconds per request, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

HOT = (
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "elbv2:CreateTargetGroup",
    "elbv2:CreateLoadBalancer",
    "elbv2:CreateListener",
    "elbv2:RegisterTargets",
)


def _measure(services: int, nodes: int) -> dict[str, Any]:
    """One run in this process: CPU ms per request by operation."""
    from lbprov_aws import AWSProvider
    from lbprov_aws.sandbox.server import RequestRecorder
    from lbprov_aws.testing import Svc, node_objects

    from lbprov.intent import IntentSettings, build_intent

    cpu: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    inner = RequestRecorder.__call__

    def timed(self: RequestRecorder, environ: dict[str, Any], start_response: Any) -> Any:
        before = len(self.requests)
        started = time.thread_time()
        out = list(inner(self, environ, start_response))
        spent = time.thread_time() - started
        if len(self.requests) > before:
            op = self.requests[before]
            cpu[op] += spent
            count[op] += 1
        return out

    RequestRecorder.__call__ = timed  # type: ignore[method-assign]
    with AWSProvider.sandbox([f"node-{i}" for i in range(nodes)], cluster="bench") as cloud:
        provider = AWSProvider.from_settings({**cloud.settings, "cluster_id": "bench-cluster-id"})
        settings = IntentSettings(cluster="bench")
        svcs = [Svc(name=f"s{i}", ports=[(80, "TCP", 30000 + i)]) for i in range(services)]
        cpu.clear()
        count.clear()
        started = (time.process_time(), time.thread_time())
        for phase in ("create", "add_node"):
            if phase == "add_node":
                cloud.nodes.append(cloud.add_node(f"node-{nodes}"))
            with provider.read_round():  # as the controller plans a batch: the reads are shared
                for svc in svcs:
                    intent = build_intent(svc.to_k8s(), node_objects(cloud), settings, provider)
                    provider.apply(provider.plan(intent))
        client = time.thread_time() - started[1]
        others = time.process_time() - started[0] - client
    per_op = {
        op: {"requests": count[op], "cpu_ms": round(1000 * cpu[op] / count[op], 3)} for op in sorted(count)
    }
    requests = sum(count.values())
    return {
        **per_op,
        "all_server_threads": {"requests": requests, "cpu_ms": round(1000 * others / requests, 3)},
        "client_per_request": {"requests": requests, "cpu_ms": round(1000 * client / requests, 3)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.services, args.nodes)))
        return 0
    report: dict[str, Any] = {"services": args.services, "nodes": args.nodes, "load_average": os.getloadavg()}
    modes = (("stock_moto", "1"), ("fast_responses", "0"))
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _ in modes}
    for _ in range(args.repeat):  # interleaved, so that a change of the machine's load hits both
        for mode, stock in modes:
            env = {**os.environ, "LBPROV_SANDBOX_STOCK_MOTO": stock}
            out = subprocess.run(
                [sys.executable, __file__, "--child", f"--services={args.services}", f"--nodes={args.nodes}"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[mode].append(json.loads(out))
    best = {
        mode: {
            op: min((run[op] for run in done if op in run), key=lambda r: r["cpu_ms"])
            for op in sorted({op for run in done for op in run})
        }
        for mode, done in runs.items()
    }
    report.update(best)
    report["hot_cpu_ms_per_request"] = {
        op: {
            "stock_moto": best["stock_moto"][op]["cpu_ms"],
            "fast_responses": best["fast_responses"][op]["cpu_ms"],
            "ratio": round(best["fast_responses"][op]["cpu_ms"] / best["stock_moto"][op]["cpu_ms"], 2),
        }
        for op in (*HOT, "all_server_threads", "client_per_request")
        if op in best["stock_moto"] and op in best["fast_responses"]
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
