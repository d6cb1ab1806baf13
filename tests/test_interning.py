"""lbprov.interning.compact and the informer's cache: one copy of each repeated name and value."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

from lbprov.interning import compact
from lbprov.kube.informer import trim

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "svc-00042",
        "namespace": "bench",
        "uid": "3f1c2a4e-8d3b-4c55-9b7e-0a1b2c3d4e5f",
        "resourceVersion": "123456",
        "creationTimestamp": "2026-11-30T09:00:00Z",
        "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
    },
    "spec": {
        "type": "LoadBalancer",
        "selector": {"app": "a42"},
        "ports": [{"name": "p0", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31234}],
        "clusterIP": "10.96.12.34",
        "clusterIPs": ["10.96.12.34"],
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "allocateLoadBalancerNodePorts": True,
        "internalTrafficPolicy": "Cluster",
    },
    "status": {
        "loadBalancer": {
            "ingress": [
                {"hostname": "a3f1c2a48d3b4c559b7e0a1b2c3d4e5f-0123456789abcdef.elb.us-east-1.amazonaws.com"}
            ]
        }
    },
}


def test_compact_keeps_the_value_and_shares_names_and_short_strings() -> None:
    one, two = (json.loads(json.dumps(SERVICE)) for _ in range(2))
    a, b = compact(one), compact(two)
    assert a == SERVICE and b == SERVICE
    assert a is not one and a["spec"] is not one["spec"]  # a copy: the parsed answer can go
    (ka, pa), (kb, pb) = (next(iter(x["spec"]["ports"][0].items())) for x in (a, b))
    assert ka is kb and pa is pb  # "name", "p0"
    assert a["spec"]["ports"][0]["protocol"] is b["spec"]["ports"][0]["protocol"]
    hostname = SERVICE["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert len(hostname) > 64
    assert (
        a["status"]["loadBalancer"]["ingress"][0]["hostname"]
        is not b["status"]["loadBalancer"]["ingress"][0]["hostname"]
    )
    assert compact(("x", ["y"], 1, None, True)) == ("x", ["y"], 1, None, True)


def _bytes_per_service(n: int = 500) -> int:
    text = json.dumps(SERVICE)
    gc.collect()
    tracemalloc.start()
    try:
        kept = [trim(json.loads(text), "services") for _ in range(n)]
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    return size // n


def test_the_informer_keeps_a_one_port_service_in_under_3000_bytes() -> None:
    """4,576 bytes each before interning (every Service its own "metadata", "TCP", ...)."""
    assert _bytes_per_service() < 3000


def test_compacted_lists_are_not_over_allocated() -> None:
    """json's parser and a comprehension both leave spare room at the end of a list (88 bytes for
    one item): a cached Service holds about five lists, 10,000 Services 50,000 (issue 14)."""
    import sys

    parsed = json.loads('{"finalizers": ["f"], "ports": [1, 2, 3]}')
    kept = compact(parsed)
    empty, pointer = sys.getsizeof([]), 8  # a list's header, and one slot per item
    assert sys.getsizeof(kept["finalizers"]) == empty + pointer < sys.getsizeof(parsed["finalizers"])
    assert sys.getsizeof(kept["ports"]) == empty + 3 * pointer
    assert kept == parsed and type(kept["ports"]) is list


def test_the_informer_keeps_a_one_port_service_in_under_2300_bytes() -> None:
    """2,383 bytes with interning alone; exact-size lists bring it to about 2,260."""
    assert _bytes_per_service() < 2300
