"""What a Service beyond Azure's limits gets: the reconciler's Warning event naming the limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded

from lbprov.controller.service import ServiceReconciler


class MemoryKube:
    """Just enough of the controller's Kubernetes API: Services by key, merge patches, events."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = {
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": copy.deepcopy(s) for s in services
        }
        self.events: list[tuple[str, str, str]] = []

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.services.get(f"{namespace}/{name}"))

    def _merge(self, target: dict[str, Any], patch: dict[str, Any]) -> None:
        for k, v in patch.items():
            if v is None:
                target.pop(k, None)
            elif isinstance(v, dict) and isinstance(target.get(k), dict):
                self._merge(target[k], v)
            else:
                target[k] = copy.deepcopy(v)

    def patch_service(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        svc = self.services[f"{namespace}/{name}"]
        self._merge(svc, patch)
        return copy.deepcopy(svc)

    def patch_service_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.patch_service(namespace, name, patch)

    def create_event(
        self, obj: dict[str, Any], *, type: str, reason: str, message: str, component: str = ""
    ) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))


def test_the_service_beyond_the_ceiling_gets_an_event_naming_the_limit(sandbox, cluster, make_service, nodes):
    provider = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "max_load_balancers": 1}
    )
    full = make_service("full", ports=[("TCP", p) for p in range(1000, 1300)])  # 300 rules: the slot is full
    more = make_service("more")
    kube = MemoryKube([full, more])
    reconciler = ServiceReconciler(
        kube,
        get_service=lambda key: kube.get_service(*key.split("/", 1)),
        list_nodes=lambda: nodes,
        providers={"azure": provider},
        cluster=cluster,
        default_provider="azure",
    )
    reconciler.sync("default/full")
    with pytest.raises(CapacityExceeded):
        reconciler.sync("default/more")
    warnings = [(r, m) for name, r, m in kube.events if name == "more" and r == "SyncLoadBalancerFailed"]
    assert warnings, kube.events
    assert "no load balancer of the cluster can take Service default/more (1 rules)" in warnings[0][1]
    assert "max_load_balancers=1" in warnings[0][1]
    assert (
        not (kube.get_service("default", "more").get("status") or {}).get("loadBalancer", {}).get("ingress")
    )
    kube.services["default/full"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    reconciler.sync("default/full")
