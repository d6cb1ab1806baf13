"""Scale benchmark of the controller: N Services over M nodes, AWS provider on the moto sandbox.

    python bench/scale.py [--services 200] [--nodes 10] [--workers 10] [--latency-ms 20]

The sandbox Kubernetes API server and moto run in this process; the controller runs in a child
process (this same script with ``--child``), so that its peak RSS is its own and the API and cloud
traffic all goes over HTTP, as in a cluster. Every cloud request the controller sends is delayed by
``--latency-ms`` (a CloudCalls listener sleeping on each request as it is sent: what the controller
would wait for a real cloud's round trip). The provider's client-side rate limits are off, as in the
sandbox settings, so the figures measure the controller, not the token bucket.

Phases (JSON on stdout):

NodePorts are allocated by the API server at random by default, as in a real cluster
(``--node-ports contiguous`` gives Service i NodePort 30000+i instead). With random ports the AWS
provider's exact node security group rules cannot aggregate, so its default ``auto`` rule mode
switches the busiest (protocol, CIDR) to the whole NodePort range to stay under AWS's (and moto's)
60 rules per group; contiguous ports aggregate into a few exact ranges.

1. ``create``: the N Services exist before the controller starts; time from the controller being
   ready (caches synced) until every Service has its ingress; cloud calls (reads/writes, by
   operation) and sandbox API requests (by verb) made by the controller meanwhile.
2. ``add_node``: one node is added (instance + Node); time and cloud writes until the controller is
   idle again after the debounced node sync, then a check that every target group has the new node.
3. ``resync``: a resync with nothing changed: time and cloud calls (must be zero writes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

NAMESPACE = "bench"


# -- child: the controller ------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """VmHWM (peak resident set) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(args: argparse.Namespace) -> int:
    from lbprov.cloudcalls import CallEvent
    from lbprov.controller.manager import Controller, ControllerConfig
    from lbprov.kube.client import KubeClient
    from lbprov.observability import Metrics, setup_logging
    from lbprov.provider import load_provider

    setup_logging(logging.WARNING)
    settings = json.loads(os.environ["BENCH_PROVIDER_SETTINGS"])
    provider = load_provider("aws").from_settings(settings)
    latency = args.latency_ms / 1000.0

    def delay(event: CallEvent) -> None:
        if event.result == "sent" and latency > 0:
            time.sleep(latency)

    provider.calls.listeners.append(delay)
    kube = KubeClient.for_url(args.api)
    config = ControllerConfig(
        cluster=settings["cluster_name"],
        default_provider="aws",
        workers=args.workers,
        resync_period=3600,
        node_debounce=args.node_debounce,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
    )
    controller = Controller(kube, {"aws": provider}, config, metrics=Metrics())
    t0 = time.monotonic()
    provider.calls.reset()
    controller.start()

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def stats() -> dict[str, Any]:
        s = provider.calls.reset()
        return {
            "reads": s.reads,
            "writes": s.writes,
            "by_operation": {f"{op}": n for (op, _), n in sorted(s.sent.items())},
            "errors": sum(s.errors.values()),
            "retries": sum(s.retries.values()),
        }

    def wait_idle(settle: float = 0.3) -> None:
        """Idle = nothing queued or in flight, continuously for ``settle`` seconds."""
        quiet_since: float | None = None
        while True:
            if controller.idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.01)

    reply({"event": "started", "startup_seconds": round(time.monotonic() - t0, 3)})
    mark = time.monotonic()
    triggers = controller.node_sync.triggers
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            reply({"event": "stats", **stats(), "peak_rss_mb": peak_rss_mb()})
        elif cmd == "mark":
            provider.calls.reset()
            mark, triggers = time.monotonic(), controller.node_sync.triggers
            reply({"event": "marked"})
        elif cmd == "wait-node-sync":
            while controller.node_sync.triggers <= triggers:
                time.sleep(0.01)
            wait_idle()
            reply({"event": "node-synced", "seconds": round(time.monotonic() - mark, 3), **stats()})
        elif cmd == "resync":
            provider.calls.reset()
            start = time.monotonic()
            n = controller.resync()
            wait_idle()
            reply(
                {"event": "resynced", "services": n, "seconds": round(time.monotonic() - start, 3), **stats()}
            )
        elif cmd == "quit":
            break
    controller.stop()
    reply({"event": "stopped", "peak_rss_mb": peak_rss_mb()})
    return 0


# -- parent: sandbox API + moto + the measurements -------------------------------------------------


class Child:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1
        )

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdout is not None
        result: dict[str, Any] = {}

        def reader() -> None:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if line:
                result.update(json.loads(line))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            raise RuntimeError(
                f"controller process gave no answer within {timeout}s (exit {self.proc.poll()})"
            )
        return result


def parent(args: argparse.Namespace) -> dict[str, Any]:
    from lbprov_aws.sandbox import MotoSandbox

    from lbprov.controller.service import ingress_of
    from lbprov.kube.client import KubeClient
    from lbprov.sandbox.demo import node_object
    from lbprov.sandbox.kube_api import KubeAPIServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    box = MotoSandbox()
    cluster = "bench"
    cloud = box.seed([f"node-{i}" for i in range(args.nodes)], cluster=cluster)
    out: dict[str, Any] = {
        "services": args.services,
        "nodes": args.nodes,
        "workers": args.workers,
        "latency_ms": args.latency_ms,
        "ports_per_service": 1,
        "node_ports": args.node_ports,
        "manage_node_security_group": not args.no_node_sg,
        "backoff_seconds": [args.backoff_base, args.backoff_max],
    }
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        kube.create_namespace(NAMESPACE)
        for node in cloud.nodes:
            kube.create_node(node_object(node))
        for i in range(args.services):
            kube.create_service(
                NAMESPACE,
                {
                    "metadata": {"name": f"svc-{i:04d}"},
                    "spec": {
                        "type": "LoadBalancer",
                        "selector": {"app": f"a{i}"},
                        "ports": [
                            {
                                "name": "http",
                                "protocol": "TCP",
                                "port": 80,
                                "targetPort": 8080,
                                **({"nodePort": 30000 + i} if args.node_ports == "contiguous" else {}),
                            }
                        ],
                    },
                },
            )
        settings = dict(cloud.settings)
        if args.no_node_sg:
            settings["manage_node_security_group"] = False
        env = dict(os.environ, BENCH_PROVIDER_SETTINGS=json.dumps(settings))
        argv = [
            sys.executable,
            __file__,
            "--child",
            "--api",
            api.url,
            "--workers",
            str(args.workers),
            "--latency-ms",
            str(args.latency_ms),
            "--node-debounce",
            str(args.node_debounce),
            "--backoff-base",
            str(args.backoff_base),
            "--backoff-max",
            str(args.backoff_max),
        ]
        api.clear_requests()
        child_proc = Child(argv, env)
        try:
            started = child_proc.read(120)
            t0 = time.monotonic()
            out["controller_startup_seconds"] = started["startup_seconds"]

            def ready_count() -> int:
                items, _ = kube.list_services(NAMESPACE)
                return sum(1 for s in items if ingress_of(s))

            deadline = t0 + args.timeout
            while (n := ready_count()) < args.services:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {n}/{args.services} Services got ingress within {args.timeout}s"
                    )
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            # Our own polling (list services in the bench namespace) is not the controller's.
            requests = [r for r in api.requests if not (r.verb == "list" and r.namespace == NAMESPACE)]
            child_proc.send("stats")
            calls = child_proc.read()
            out["create"] = {
                "seconds_until_all_ingress": round(elapsed, 2),
                "services_per_second": round(args.services / elapsed, 1),
                "cloud_reads": calls["reads"],
                "cloud_writes": calls["writes"],
                "cloud_errors": calls["errors"],
                "cloud_calls_by_operation": calls["by_operation"],
                "api_requests": len(requests),
                "api_requests_by_verb": dict(Counter(r.verb for r in requests)),
                "controller_peak_rss_mb": calls["peak_rss_mb"],
            }

            # Phase 2: one node added.
            child_proc.send("mark")
            child_proc.read()
            new = cloud.add_node(f"node-{args.nodes}")
            kube.create_node(node_object(new))
            child_proc.send("wait-node-sync")
            synced = child_proc.read()
            instance = new.provider_id.rsplit("/", 1)[-1]
            elbv2 = box.client("elbv2")
            tgs = [
                tg
                for page in elbv2.get_paginator("describe_target_groups").paginate()
                for tg in page["TargetGroups"]
            ]
            missing = 0
            for tg in tgs:
                health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
                if instance not in {h["Target"]["Id"] for h in health["TargetHealthDescriptions"]}:
                    missing += 1
            out["add_node"] = {
                "seconds_until_idle": synced["seconds"],
                "debounce_seconds": args.node_debounce,
                "cloud_reads": synced["reads"],
                "cloud_writes": synced["writes"],
                "cloud_writes_by_operation": {
                    k: v
                    for k, v in synced["by_operation"].items()
                    if not k.split(":")[-1].startswith(("Describe", "Get"))
                },
                "target_groups": len(tgs),
                "target_groups_missing_the_node": missing,
            }

            # Phase 3: resync with nothing changed.
            child_proc.send("resync")
            resynced = child_proc.read()
            out["resync_unchanged"] = {
                "services": resynced["services"],
                "seconds": resynced["seconds"],
                "cloud_reads": resynced["reads"],
                "cloud_writes": resynced["writes"],
                "cloud_calls_by_operation": resynced["by_operation"],
            }
            child_proc.send("quit")
            stopped = child_proc.read(60)
            out["controller_peak_rss_mb"] = stopped["peak_rss_mb"]
            child_proc.proc.wait(30)
        finally:
            if child_proc.proc.poll() is None:
                child_proc.proc.kill()
    box.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=200, help="number of LoadBalancer Services (default 200)")
    p.add_argument("--nodes", type=int, default=10, help="number of nodes (default 10)")
    p.add_argument("--workers", type=int, default=10, help="controller workers (default 10)")
    p.add_argument(
        "--latency-ms", type=float, default=20.0, help="added latency per cloud request (default 20)"
    )
    p.add_argument("--node-debounce", type=float, default=1.0, help="node sync debounce, seconds (default 1)")
    p.add_argument(
        "--backoff-base", type=float, default=5.0, help="first retry delay (default 5, as lbprov run)"
    )
    p.add_argument("--backoff-max", type=float, default=300.0, help="retry delay cap (default 300)")
    p.add_argument(
        "--node-ports",
        choices=("contiguous", "random"),
        default="random",
        help="random: the API server allocates, as in a real cluster (default); contiguous: Service i "
        "gets NodePort 30000+i, so exact node security group rules aggregate into a few ranges",
    )
    p.add_argument(
        "--no-node-sg",
        action="store_true",
        help="do not manage node security group rules (AWS setting manage_node_security_group=false)",
    )
    p.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    result = parent(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    tempfile.tempdir = None
    sys.exit(main())
