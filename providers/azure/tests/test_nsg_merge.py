"""NSG rules that differ only in destination are merged, as upstream does (one rule per protocol,
sources and ports; each Service is one of its destinationAddressPrefixes): 1,000 rules per NSG then
bound the number of distinct (protocol, sources, ports), not the number of Services. Through
azure-mgmt-network against the ARM emulator: counts, concurrency, leaving, and ARM's limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.placement import CapacityExceeded
from lbprov_azure.testing import SANDBOX_RG, nsg_rules

P = "service.beta.kubernetes.io/azure-"


def _cluster_rules(state, cluster):
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    return {
        r["name"]: r["properties"]
        for r in nsg["properties"]["securityRules"]
        if r["properties"].get("description", "").startswith(f"lbprov {cluster} ")
    }


def _dests(p):
    return sorted(
        [p["destinationAddressPrefix"]]
        if p.get("destinationAddressPrefix")
        else p["destinationAddressPrefixes"]
    )


def test_twenty_services_by_ten_workers_share_one_rule_per_protocol_sources_and_ports(
    provider, cluster, intent_for, make_service, ensure, state
):
    intents = [intent_for(make_service(f"m{i}", ports=[("TCP", 80), ("TCP", 443)])) for i in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        ingresses = list(pool.map(lambda i: provider.apply(provider.plan(i)), intents))
    rules = _cluster_rules(state, cluster)
    # one rule for 20 Services (rules of their own would be 20): no address lost to a concurrent write
    assert len(rules) == 1, sorted(rules)
    (rule,) = rules.values()
    assert _dests(rule) == sorted(i[0].ip for i in ingresses)
    assert (
        sorted(rule["destinationPortRanges"]) == ["443", "80"] and rule["sourceAddressPrefix"] == "Internet"
    )
    for i in intents:
        ensure(i)  # each converged: empty re-plan, idempotent second apply
    # a Service with other ports gets a rule of its own, and shares it with the next such Service
    other = [intent_for(make_service(f"o{i}", ports=[("UDP", 53)])) for i in range(2)]
    for i in other:
        ensure(i)
    assert len(_cluster_rules(state, cluster)) == 2
    # leaving: one Service's address goes, the rule stays for the others; the last one takes it away
    provider.apply(provider.plan_delete(intents[0].ref))
    (rule,) = [p for p in _cluster_rules(state, cluster).values() if p["protocol"] == "Tcp"]
    assert ingresses[0][0].ip not in _dests(rule) and len(_dests(rule)) == 19
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda i: provider.apply(provider.plan_delete(i.ref)), intents[1:] + other))
    assert _cluster_rules(state, cluster) == {}
    assert all(provider.plan_delete(i.ref).empty for i in intents + other)


def test_a_service_that_changes_address_leaves_the_shared_rule(
    provider, cluster, intent_for, make_service, ensure, state
):
    stay = intent_for(make_service("stay"))
    (kept,) = ensure(stay)
    svc = make_service("moving")
    (first,) = ensure(intent_for(svc))
    svc["metadata"]["annotations"][P + "pip-name"] = "moving-ip"
    ops = provider.client.public_ip_addresses
    body = {
        "location": provider.settings.location,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    second_ip = ops.begin_create_or_update(SANDBOX_RG, "moving-ip", body).result().ip_address
    moved = intent_for(svc)
    (second,) = ensure(moved)
    assert second.ip == second_ip != first.ip
    (rule,) = _cluster_rules(state, cluster).values()
    assert _dests(rule) == sorted([kept.ip, second.ip])  # the old address is gone from the rule
    provider.apply(provider.plan_delete(moved.ref))
    provider.apply(provider.plan_delete(stay.ref))
    ops.begin_delete(SANDBOX_RG, "moving-ip").result()
    assert _cluster_rules(state, cluster) == {}


def test_an_internal_service_joins_with_its_private_address(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(annotations={P + "load-balancer-internal": "true"}))
    (ingress,) = ensure(intent)
    (rule,) = nsg_rules(state, intent.lb_name, ingress.ip).values()
    assert ingress.ip in _dests(rule) and rule["sourceAddressPrefix"] == "*"
    provider.apply(provider.plan_delete(intent.ref))
    assert nsg_rules(state, intent.lb_name, ingress.ip) == {}


def test_arm_refuses_more_than_4000_destination_addresses_per_nsg(provider):
    ops = provider.client.security_rules
    props = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 4000,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationPortRange": "80",
        "destinationAddressPrefixes": [f"10.{i // 250}.{i % 250}.1" for i in range(4001)],
    }
    with pytest.raises(HttpResponseError) as info:
        ops.begin_create_or_update(SANDBOX_RG, "lbprov-nsg", "too-many", {"properties": props}).result()
    # ARM's code and message (kubernetes-sigs/cloud-provider-azure#2725)
    assert info.value.status_code == 400
    assert info.value.error.code == "SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached"
    assert "cannot have more than 4000 DestinationAddressPrefixes" in str(info.value)


def test_a_service_beyond_4000_nsg_addresses_gets_capacity_exceeded_and_a_member_still_converges(
    provider, intent_for, make_service, ensure, state
):
    member = intent_for(make_service("member", ports=[("TCP", 8090)]))
    ensure(member)
    ops = provider.client.security_rules
    filler = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 4001,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationPortRange": "9",
    }
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    held = sum(
        1
        if r["properties"].get("destinationAddressPrefix")
        else len(r["properties"].get("destinationAddressPrefixes", []))
        for r in nsg["properties"]["securityRules"]
    )
    filler["destinationAddressPrefixes"] = [f"10.{i // 250}.{i % 250}.9" for i in range(4000 - held)]
    ops.begin_create_or_update(SANDBOX_RG, "lbprov-nsg", "filler", {"properties": filler}).result()
    try:
        with pytest.raises(CapacityExceeded, match="4000"):
            provider.plan(intent_for(make_service("one-too-many", ports=[("TCP", 8091)])))
        assert provider.plan(member).empty  # already a destination: not counted again
    finally:
        ops.begin_delete(SANDBOX_RG, "lbprov-nsg", "filler").result()
        provider.apply(provider.plan_delete(member.ref))
