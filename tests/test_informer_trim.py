"""The informer keeps only what the controller reads (``lbprov.kube.informer.trim``): the
controller's reads give the same answers on trimmed objects as on whole ones, and the cache of a
running informer holds trimmed objects."""

from __future__ import annotations

import copy
import json
from typing import Any

from lbprov.controller.manager import needs_sync
from lbprov.controller.service import has_finalizer, ingress_of, service_key
from lbprov.intent import IntentSettings, build_intent, node_exclusion_reason, service_ref
from lbprov.kube.client import KubeClient
from lbprov.kube.informer import LAST_APPLIED, Informer, trim
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for

MANAGED_FIELDS = [
    {
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}}}, "f:spec": {"f:ports": {".": {}}}},
    }
]


def fat_service(**changes: Any) -> dict[str, Any]:
    """A Service as a real API server returns it after ``kubectl apply``: much more than is read."""
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "0b5a0d7e-0000-4000-8000-000000000001",
            "resourceVersion": "41",
            "generation": 3,
            "creationTimestamp": "2026-11-30T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {
                "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8",
                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                LAST_APPLIED: json.dumps({"kind": "Service", "spec": {"ports": [{"port": 80}] * 50}}),
            },
            "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "x"}],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31080}],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
        },
        "status": {
            "loadBalancer": {"ingress": [{"hostname": "web.elb.example", "ipMode": "VIP"}]},
            "conditions": [{"type": "LoadBalancerPortsError", "status": "False"}],
        },
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = svc
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return svc


def fat_node(name: str, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "labels": {"topology.kubernetes.io/zone": "eu-west-1a", "kubernetes.io/hostname": name},
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed": "1",
            },
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {"providerID": f"aws:///eu-west-1a/i-{name}", "podCIDR": "10.1.0.0/24"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.7"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-30T00:00:00Z"}],
            "images": [
                {"names": [f"registry.example/image-{i}:v1"], "sizeBytes": 1000 + i} for i in range(50)
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.0"},
            "capacity": {"cpu": "2", "memory": "8Gi"},
        },
    }
    for key, value in extra.items():
        section, _, field = key.partition("__")
        node[section][field] = value
    return node


NODES = [
    fat_node("a"),
    fat_node(
        "excluded", metadata__labels={"node.kubernetes.io/exclude-from-external-load-balancers": "true"}
    ),
    fat_node("draining", spec__taints=[{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]),
    fat_node("going", metadata__deletionTimestamp="2026-11-30T00:00:01Z"),
    fat_node("unregistered", spec__providerID=""),
]


def test_trim_without_interning_keeps_the_same_value_and_packs_to_the_same_text() -> None:
    from lbprov.kube.informer import pack

    for obj, kind in [(fat_service(), "services"), *((n, "nodes") for n in NODES)]:
        plain, interned = trim(obj, kind, intern=False), trim(obj, kind)
        assert plain == interned
        assert pack(plain) == pack(interned) == json.dumps(interned, separators=(",", ":"))


def test_trim_keeps_what_the_reconciler_reads_of_a_service() -> None:
    svc = fat_service()
    small = trim(svc, "services")
    settings = IntentSettings(cluster="prod")
    nodes = [trim(n, "nodes") for n in NODES]
    assert build_intent(small, nodes, settings) == build_intent(svc, NODES, settings)
    assert service_ref(small) == service_ref(svc)
    assert service_key(small) == service_key(svc) == "shop/web"
    assert has_finalizer(small) and ingress_of(small) == ingress_of(svc) == [{"hostname": "web.elb.example"}]
    # What an Event's involvedObject and a finalizer patch (optimistic concurrency) need.
    for field in ("name", "namespace", "uid", "resourceVersion"):
        assert small["metadata"][field] == svc["metadata"][field]
    assert (small["apiVersion"], small["kind"]) == ("v1", "Service")
    # The annotations a provider validates are all there; kubectl's copy of the object is not.
    assert small["metadata"]["annotations"] == {
        k: v for k, v in svc["metadata"]["annotations"].items() if k != LAST_APPLIED
    }
    for dropped in ("managedFields", "ownerReferences", "creationTimestamp", "generation"):
        assert dropped not in small["metadata"]
    assert "conditions" not in small["status"]
    assert len(json.dumps(small)) < len(json.dumps(svc)) / 2


def test_trim_keeps_what_node_eligibility_and_targets_read() -> None:
    for node in NODES:
        small = trim(node, "nodes")
        assert node_exclusion_reason(small) == node_exclusion_reason(node), node["metadata"]["name"]
        assert "images" not in small["status"] and "annotations" not in small["metadata"]
    assert [node_exclusion_reason(trim(n, "nodes")) is None for n in NODES] == [
        True,
        False,
        False,
        False,
        False,
    ]


def test_requeue_decisions_are_the_same_on_trimmed_services() -> None:
    old = fat_service()
    changed = [
        fat_service(spec__ports=[{"name": "http", "protocol": "TCP", "port": 81, "nodePort": 31081}]),
        fat_service(metadata__annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "external"}),
        fat_service(metadata__deletionTimestamp="2026-11-30T00:00:02Z"),
        fat_service(metadata__finalizers=[]),
        fat_service(status__loadBalancer={"ingress": [{"ip": "192.0.2.1"}]}),  # status only: no requeue
        fat_service(metadata__managedFields=[]),  # bookkeeping only: no requeue
    ]
    for new in changed:
        assert needs_sync(trim(old, "services"), trim(new, "services")) == needs_sync(old, new)


def test_trim_does_not_change_its_input() -> None:
    svc, node = fat_service(), NODES[0]
    before = copy.deepcopy((svc, node))
    trim(svc, "services")
    trim(node, "nodes")
    assert (svc, node) == before


def test_the_informer_cache_holds_trimmed_objects() -> None:
    with KubeAPIServer() as server:
        client = KubeClient.for_url(server.url)
        client.create_namespace("shop")
        body = fat_service()
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            body["metadata"].pop(key)  # the server assigns these
        body.pop("status")
        client.create_service("shop", body)
        inf = Informer(client, "services", namespace="shop", backoff_initial=0.05)
        inf.start()
        try:
            assert inf.wait_synced(10)
            cached = inf.get("shop/web")
            assert cached is not None
            assert LAST_APPLIED not in cached["metadata"]["annotations"]
            assert "ownerReferences" not in cached["metadata"]
            assert cached["spec"]["ports"][0]["port"] == 80
            # A live update (through the watch) is trimmed too.
            client.patch_service("shop", "web", {"metadata": {"annotations": {LAST_APPLIED: "{}", "x": "1"}}})
            wait_for(
                lambda: (
                    (inf.get("shop/web") or {}).get("metadata", {}).get("annotations", {}).get("x") == "1"
                ),
                10,
                "the informer to see the patch",
                interval=0.02,
            )
            assert LAST_APPLIED not in inf.get("shop/web")["metadata"]["annotations"]  # type: ignore[index]
        finally:
            inf.stop()


def test_services_are_cached_packed_and_each_get_is_a_fresh_copy() -> None:
    """Memory at 10,000 Services (issue 14): a Service is cached as its trimmed object's compact
    JSON (a third of the bytes of the interned dicts), decoded on each get into a copy the caller
    may change; Nodes (every sync reads all of them) stay objects."""
    import sys

    from lbprov.interning import compact
    from lbprov.kube.informer import pack, unpack

    with KubeAPIServer() as server:
        client = KubeClient.for_url(server.url)
        client.create_namespace("shop")
        body = fat_service()
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            body["metadata"].pop(key)
        body.pop("status")
        client.create_service("shop", body)
        node_body = fat_node("n1")
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            node_body["metadata"].pop(key, None)
        client.create_node(node_body)
        services = Informer(client, "services", namespace="shop", backoff_initial=0.05)
        nodes = Informer(client, "nodes", backoff_initial=0.05)
        services.start()
        nodes.start()
        try:
            assert services.wait_synced(10) and nodes.wait_synced(10)
            (stored,) = services._cache.values()
            assert isinstance(stored, str)
            first = services.get("shop/web")
            assert first is not None and unpack(stored) == first == trim(first, "services")
            first["spec"]["ports"].clear()  # the caller's copy: the cache is not changed
            again = services.get("shop/web")
            assert again is not None and again["spec"]["ports"][0]["port"] == 80
            assert services.list() == [again] and services.keys() == ["shop/web"]
            kept = compact(again)
            assert sys.getsizeof(pack(again)) * 2 < _deep_bytes(kept), "packed is under half the bytes"
            (node,) = nodes._cache.values()
            assert isinstance(node, dict) and nodes.get(node["metadata"]["name"]) is node
        finally:
            services.stop()
            nodes.stop()


def _deep_bytes(obj: Any, seen: set[int] | None = None) -> int:
    import sys

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_bytes(k, seen) + _deep_bytes(v, seen) for k, v in obj.items())
    elif isinstance(obj, list):
        size += sum(_deep_bytes(v, seen) for v in obj)
    return size


def test_a_list_packs_each_service_as_it_arrives() -> None:
    """A (re)list of 10,000 Services must not hold them all as objects before packing (~23 MB,
    issue 14): what the list call returns holds no object, the cache holds each packed, and the
    handlers still get every Service (decoded in turn)."""
    added: list[dict[str, Any]] = []
    returned: list[Any] = []

    class Client:
        host = "fake"

        def list_services(self, namespace: str | None, *, transform: Any) -> tuple[list[Any], str]:
            items = [transform(fat_service(metadata__name=f"s{i}")) for i in range(3)]
            returned.extend(items)
            return items, "7"

    inf = Informer(Client(), "services", on_add=added.append)  # type: ignore[arg-type]
    inf._relist()
    assert all(item == {} for item in returned), "the list keeps nothing of its own"
    assert sorted(inf.keys()) == ["shop/s0", "shop/s1", "shop/s2"]
    assert all(isinstance(v, str) for v in inf._cache.values())
    assert [a["metadata"]["name"] for a in added] == ["s0", "s1", "s2"]
    assert added[0] == trim(fat_service(metadata__name="s0"), "services")
