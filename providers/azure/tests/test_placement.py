"""Several standard load balancers: each node in exactly one slot's pools, each Service placed
deterministically, a ceiling set by Azure's 300 rules per NIC, an emptied load balancer deleted."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded, SlotUse, assign_nodes, choose_slot
from lbprov_azure.testing import SANDBOX_RG

from lbprov.model import InvalidService

CONFIGS = "service.beta.kubernetes.io/azure-load-balancer-configurations"


# -- pure placement ---------------------------------------------------------------------------


def test_nodes_are_spread_evenly_and_keep_their_slot():
    ips = [f"10.0.0.{i}" for i in range(1, 8)]
    first = assign_nodes(ips, {}, [0])
    assert first == {0: set(ips)}
    two = assign_nodes(ips, first, [0, 1])
    assert sorted(len(v) for v in two.values()) == [3, 4] and two[0] <= first[0]
    # a new node joins the smaller slot; nobody else moves
    more = assign_nodes([*ips, "10.0.0.99"], two, [0, 1])
    small = min(two, key=lambda k: len(two[k]))
    assert more[small] == two[small] | {"10.0.0.99"} and more[1 - small] == two[1 - small]
    # every node in exactly one slot
    assert set().union(*more.values()) == {*ips, "10.0.0.99"} and not more[0] & more[1]


def test_a_new_service_goes_to_the_least_used_slot_that_fits_else_a_new_one():
    uses = [
        SlotUse(0, rules=290, lb_rules=290, frontends=100),
        SlotUse(1, rules=100, lb_rules=50, frontends=50),
    ]
    assert choose_slot(uses, 5, max_slots=4, nodes=6) == 1
    assert choose_slot(uses[:1], 20, max_slots=4, nodes=6) == 1  # slot 0 full: open slot 1
    with pytest.raises(CapacityExceeded, match="max_load_balancers=1"):
        choose_slot(uses[:1], 20, max_slots=1, nodes=6)
    with pytest.raises(CapacityExceeded, match="2 nodes"):
        choose_slot([SlotUse(0, 300, 300, 1), SlotUse(1, 300, 300, 1)], 1, max_slots=8, nodes=2)


# -- through the SDK against the emulator -----------------------------------------------------


def _pools(state, cluster):
    out = {}
    for lb in state.resources["loadBalancers"].values():
        if lb["name"].startswith(cluster):
            pool = lb["properties"]["backendAddressPools"][0]
            out[lb["name"]] = {
                a["properties"]["ipAddress"] for a in pool["properties"]["loadBalancerBackendAddresses"]
            }
    return out


def _ports(n, first=1000):
    return [("TCP", p) for p in range(first, first + n)]


def test_the_ceiling_for_three_nodes_is_three_load_balancers_of_300_rules(
    provider, cluster, intent_for, make_service, ensure, state, nodes
):
    ips = {n["status"]["addresses"][0]["address"] for n in nodes}
    services = [intent_for(make_service(f"big{i}", ports=_ports(300))) for i in range(3)]
    for intent in services:
        ensure(intent)
    pools = _pools(state, cluster)
    assert set(pools) == {cluster, f"{cluster}-2", f"{cluster}-3"}
    assert sorted(len(p) for p in pools.values()) == [1, 1, 1]  # each node in exactly one pool
    assert set().union(*pools.values()) == ips
    # one more rule does not fit anywhere: a clear error before any write
    extra = intent_for(make_service("one-more", ports=[("TCP", 80)]))
    provider.calls.reset()
    with pytest.raises(CapacityExceeded) as info:
        provider.plan(extra)
    assert "Service default/one-more (1 rules)" in str(info.value)
    assert "at most 300 load-balancing rules" in str(info.value) and "3 nodes" in str(info.value)
    assert provider.calls.stats.writes == 0
    # the middle one goes: its load balancer is deleted, its node joins another slot
    provider.apply(provider.plan_delete(services[1].ref))
    assert state.get("loadBalancers", SANDBOX_RG, f"{cluster}-2") is None
    ensure(services[0])
    pools = _pools(state, cluster)
    assert set(pools) == {cluster, f"{cluster}-3"}
    assert set().union(*pools.values()) == ips and sum(len(p) for p in pools.values()) == 3
    for intent in (services[0], services[2]):
        provider.apply(provider.plan_delete(intent.ref))
    assert _pools(state, cluster) == {}


def test_services_stay_where_they_are_and_new_ones_fill_the_least_used(
    provider, cluster, intent_for, make_service, ensure, state
):
    a = intent_for(make_service("a", ports=_ports(200)))
    ensure(a)
    b = intent_for(make_service("b", ports=_ports(150)))  # 200 + 150 > 300: a second slot
    ensure(b)
    c = intent_for(make_service("c", ports=_ports(100)))  # fits the second (150) and goes there
    ensure(c)
    lbs = {name: state.get("loadBalancers", SANDBOX_RG, name) for name in (cluster, f"{cluster}-2")}
    fes = {n: {f["name"] for f in lb["properties"]["frontendIPConfigurations"]} for n, lb in lbs.items()}
    assert fes == {cluster: {a.lb_name}, f"{cluster}-2": {b.lb_name, c.lb_name}}
    ensure(a)  # re-planning changes nothing: nobody moves
    for intent in (a, b, c):
        provider.apply(provider.plan_delete(intent.ref))


def test_load_balancer_configurations_chooses_the_load_balancer(
    provider, cluster, intent_for, make_service, ensure, state
):
    first = intent_for(make_service("first"))
    ensure(first)
    pinned = intent_for(make_service("pinned", annotations={CONFIGS: f"{cluster}-2"}))
    ensure(pinned)
    lb2 = state.get("loadBalancers", SANDBOX_RG, f"{cluster}-2")
    assert {f["name"] for f in lb2["properties"]["frontendIPConfigurations"]} == {pinned.lb_name}
    with pytest.raises(InvalidService, match="not a load balancer of this cluster"):
        provider.plan(intent_for(make_service("bad", annotations={CONFIGS: "someone-else"})))
    for intent in (first, pinned):
        provider.apply(provider.plan_delete(intent.ref))


def test_max_load_balancers_one_keeps_a_single_load_balancer(
    sandbox, cluster, intent_for, make_service, ensure
):
    one = AzureProvider.from_settings({**sandbox.settings, "cluster_name": cluster, "max_load_balancers": 1})
    big = intent_for(make_service("big", ports=_ports(300)), prov=one)
    ensure(big, one)
    with pytest.raises(CapacityExceeded, match="max_load_balancers=1"):
        one.plan(intent_for(make_service("next"), prov=one))
    one.apply(one.plan_delete(big.ref))


def test_a_full_nsg_is_a_clear_error_before_any_write(provider, intent_for, make_service, state):
    """Seed the cluster NSG up to Azure's 1,000 rules; the next Service is refused by the plan."""
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    assert nsg is not None
    kept = nsg["properties"]["securityRules"]
    taken = {r["properties"]["priority"] for r in kept}
    free = [p for p in range(100, 4097) if p not in taken][: 1000 - len(kept)]
    filler = [
        {
            "name": f"filler-{p}",
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Inbound",
                "priority": p,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "1",
            },
        }
        for p in free
    ]
    body = {"location": "westeurope", "properties": {"securityRules": [*kept, *filler]}}
    state.put("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg", body)
    try:
        provider.calls.reset()
        with pytest.raises(CapacityExceeded, match="limit of 1000 rules per NSG"):
            provider.plan(intent_for(make_service("no-room")))
        assert provider.calls.stats.writes == 0
    finally:
        body["properties"]["securityRules"] = kept
        state.put("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg", body)
