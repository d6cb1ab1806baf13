"""lbprov next to an AKS cluster's own load balancer (``kubernetes``): never a second public (or
internal) load balancer for a node that one already load-balances to, AKS's rules counted toward each
node's 300, and AKS's load balancer taken over when lbprov runs under its name.

ARM: a NIC IP configuration is in the backend pools of at most one public and one internal load
balancer (the emulator enforces it, see ``test_emulator_limits.py``); AKS keeps every node in the
outbound-only pool ``aksOutboundBackendPool`` of its public load balancer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded, ForeignPoolConflict
from lbprov_azure.sandbox import ArmState
from lbprov_azure.testing import SANDBOX_RG, converge, lb_of, make_service, upstream_service

from lbprov.model import Intent

INTERNAL = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}


class Env(NamedTuple):
    """The fixtures these tests take, in one (unpacked at the top of each test)."""

    state: ArmState
    provider: AzureProvider
    cluster: str
    nodes: list[dict[str, Any]]
    intent_for: Callable[..., Intent]


@pytest.fixture
def env(
    state: ArmState,
    provider: AzureProvider,
    cluster: str,
    nodes: list[dict[str, Any]],
    intent_for: Callable[..., Intent],
) -> Env:
    return Env(state, provider, cluster, nodes, intent_for)


def aks_lb(
    state: ArmState, provider: AzureProvider, name: str, nodes: list[dict[str, Any]], *, services: int
) -> None:
    """AKS's public load balancer ``name`` over ``nodes``: its outbound set-up, and ``services``
    Services that AKS's own cloud-provider-azure reconciled on it."""
    for i in range(max(services, 1)):
        svc = make_service(f"aks-{i}", namespace="aks")
        upstream_service(state, provider, svc, nodes, nsg=None, cluster=name, aks_outbound=True)
    if not services:  # outbound only: AKS's load balancer before any Service
        lb = lb_of(state, name)
        assert lb is not None
        props = lb["properties"]
        keep = {"outbound"}
        body = {
            "location": lb["location"],
            "sku": lb["sku"],
            "properties": {
                "frontendIPConfigurations": [
                    f for f in props["frontendIPConfigurations"] if f["name"] in keep
                ],
                "backendAddressPools": props["backendAddressPools"],
                "outboundRules": props["outboundRules"],
            },
        }
        state.put("loadBalancers", SANDBOX_RG, name, body)


def test_a_public_service_is_refused_where_aks_public_lb_load_balances_to_the_nodes(env: Env) -> None:
    state, provider, cluster, nodes, intent_for = env
    aks_lb(state, provider, f"{cluster}-aks", nodes, services=1)
    writes = len(state.mutating_requests())
    with pytest.raises(ForeignPoolConflict, match=rf"'{cluster}-aks'.*set cluster_name to its name"):
        provider.plan(intent_for(make_service("web")))
    assert len(state.mutating_requests()) == writes
    # an internal Service may use the same nodes (one public and one internal load balancer)
    converge(provider, intent_for(make_service("db", annotations=INTERNAL)))


def test_a_public_service_is_fine_next_to_aks_outbound_only_lb(env: Env) -> None:
    state, provider, cluster, nodes, intent_for = env
    aks_lb(state, provider, f"{cluster}-aks", nodes, services=0)
    assert converge(provider, intent_for(make_service("web")))[0].ip


def test_running_under_aks_lb_name_puts_services_on_it(env: Env) -> None:
    state, provider, cluster, nodes, intent_for = env
    """On AKS, cluster_name = "kubernetes" (here: the test's cluster name): AKS's load balancer holds
    the cluster's nodes, so lbprov takes it over and places its Services there."""
    aks_lb(state, provider, cluster, nodes, services=0)
    plan = provider.plan(intent_for(make_service("web")))
    assert ("adopt", "load-balancer") in [(c.action.value, c.kind) for c in plan.changes]
    converge(provider, intent_for(make_service("web")))
    lb = lb_of(state, cluster)
    assert lb is not None and lb["tags"][f"kubernetes.io_cluster_{cluster}"] == "owned"
    assert [r["name"] for r in lb["properties"]["outboundRules"]] == ["aksOutboundRule"]
    assert lb_of(state, f"{cluster}-2") is None


def test_aks_rules_count_toward_the_300_rules_of_a_node(env: Env) -> None:
    state, provider, cluster, nodes, intent_for = env
    # AKS's public load balancer: 298 rules reach every node (one Service with 298 ports)
    svc = make_service("many", namespace="aks", ports=[("TCP", 1000 + i) for i in range(298)])
    upstream_service(state, provider, svc, nodes, nsg=None, cluster=f"{cluster}-aks")
    converge(provider, intent_for(make_service("two", ports=[("TCP", 1), ("TCP", 2)], annotations=INTERNAL)))
    writes = len(state.mutating_requests())
    # every node is in 298 + 2 rules; 3 more fit nowhere (a new load balancer's nodes would still be
    # in AKS's 298): refused by lbprov with the limit named, before ARM would refuse the write
    with pytest.raises(CapacityExceeded, match="300 load-balancing rules"):
        provider.plan(
            intent_for(
                make_service("three", ports=[("TCP", 3), ("TCP", 4), ("TCP", 5)], annotations=INTERNAL)
            )
        )
    assert len(state.mutating_requests()) == writes
    # one more rule fits on a second load balancer of lbprov's (its nodes: 298 + 1)
    converge(provider, intent_for(make_service("one", ports=[("TCP", 6)], annotations=INTERNAL)))
    assert lb_of(state, f"{cluster}-2-internal") is not None
