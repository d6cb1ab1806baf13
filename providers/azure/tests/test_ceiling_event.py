"""What a Service beyond Azure's limits gets: the reconciler's Warning event naming the limit."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded
from lbprov_azure.testing import MemoryKube


def test_the_service_beyond_the_ceiling_gets_an_event_naming_the_limit(sandbox, cluster, make_service, nodes):
    provider = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "max_load_balancers": 1}
    )
    full = make_service("full", ports=[("TCP", p) for p in range(1000, 1300)])  # 300 rules: the slot is full
    more = make_service("more")
    kube = MemoryKube([full, more])
    reconciler = kube.reconciler(provider, nodes, cluster)
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
