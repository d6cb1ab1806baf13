"""Bytes per cached Service and Node, whole and as the informer keeps them (``informer.trim``).

    python bench/informer_memory.py [--services 2000] [--nodes 50]

Creates the objects in the sandbox Kubernetes API as a real cluster holds them (``scale.py
--kubectl-applied``: Services with kubectl's last-applied-configuration annotation, Nodes with
images, conditions and nodeInfo), lists them through ``KubeClient`` as the informer does, and
measures with ``tracemalloc`` the Python memory of the listed objects and of their trimmed copies
(strings included: the trim interns names and short values, lbprov.interning).
The sandbox API server does not add ``managedFields``; a real one does (typically 0.5-2 KB per
object), and the trim drops them too, so the saving in a real cluster is larger than shown here.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from typing import Any

from common import NAMESPACE, print_json
from scale import make_services, node_body

from lbprov.kube.client import KubeClient
from lbprov.kube.informer import trim
from lbprov.model import SandboxNode
from lbprov.sandbox.kube_api import KubeAPIServer


def held_bytes(make: Any) -> tuple[int, Any]:
    """Bytes still allocated after ``make()`` returns (its result is kept alive)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = make()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--nodes", type=int, default=50)
    args = p.parse_args(argv)
    # More Services than the NodePort range holds (2,768) need allocateLoadBalancerNodePorts: false.
    node_ports = "random" if args.services <= 2000 else "none"
    opts = argparse.Namespace(services=args.services, ports=1, node_ports=node_ports, kubectl_applied=True)
    report: dict[str, Any] = {
        "services": args.services,
        "nodes": args.nodes,
        "kubectl_applied": True,
        "node_ports": node_ports,
    }
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        kube.create_namespace(NAMESPACE)
        for i in range(args.nodes):
            node = SandboxNode(
                f"node-{i}", f"aws:///eu-west-1a/i-{i:017x}", f"10.0.{i // 250}.{i % 250}", "eu-west-1a"
            )
            kube.create_node(node_body(node, True))
        make_services(kube, opts)
        for kind, count, lister in (
            ("services", args.services, lambda: kube.list_services(NAMESPACE)[0]),
            ("nodes", args.nodes, lambda: kube.list_nodes()[0]),
        ):
            # Each figure is what a fresh list leaves alive: the objects as listed, and what the
            # informer caches of them (the listed ones are freed as soon as they are trimmed). Both
            # count the strings (deep copies of objects listed before tracing would share them,
            # and hide what interning saves).
            whole_bytes, listed = held_bytes(lister)
            trimmed_bytes, _ = held_bytes(lambda lister=lister, kind=kind: [trim(o, kind) for o in lister()])
            # A watch event carries one object, parsed alone: its keys are not shared with the
            # other objects' as one list answer's are (json shares a document's repeated keys).
            # After the controller patched every status, the cache holds objects from events.
            texts = [json.dumps(o) for o in listed]
            del listed
            event_bytes, _ = held_bytes(
                lambda texts=texts, kind=kind: [trim(json.loads(t), kind) for t in texts]
            )
            report[kind] = {
                "whole_bytes_per_object": round(whole_bytes / count),
                "trimmed_bytes_per_object": round(trimmed_bytes / count),
                "trimmed_bytes_per_object_from_watch_events": round(event_bytes / count),
            }
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
