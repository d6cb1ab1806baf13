"""ARM's Standard load balancer and NSG limits, as the emulator enforces them (through the SDK).

Limits from "Azure subscription and service limits" (Load Balancer, Networking): 1,500 rules and
600 frontend IP configurations per load balancer, 300 rules per NIC IP configuration across all
load balancers, 1,000 security rules per network security group.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

RG = "lbprov-sandbox"


def _lb_body(state, provider, name, *, frontends=1, rules=0, ips=(), public_ip=None):
    """An internal load balancer's body, or a public one's on ``public_ip`` (one frontend)."""
    s = provider.settings
    lb_id = state.resource_id(RG, "loadBalancers", name)
    vnet = state.resource_id(RG, "virtualNetworks", s.vnet_name)
    subnet = f"{vnet}/subnets/{s.subnet_name}"
    fe_props = {"publicIPAddress": {"id": public_ip}} if public_ip else {"subnet": {"id": subnet}}
    return {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [
                {"name": f"fe{i}", "properties": fe_props} for i in range(frontends)
            ],
            "backendAddressPools": [
                {
                    "name": "pool",
                    "properties": {
                        "loadBalancerBackendAddresses": [
                            {"name": ip, "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet}}}
                            for ip in ips
                        ]
                    },
                }
            ],
            "loadBalancingRules": [
                {
                    "name": f"r{i}",
                    "properties": {
                        "protocol": "Tcp",
                        "frontendPort": 1 + i,
                        "backendPort": 1 + i,
                        "enableFloatingIP": True,
                        "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe0"},
                        "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/pool"},
                    },
                }
                for i in range(rules)
            ],
        },
    }


def _code(call):
    with pytest.raises(HttpResponseError) as info:
        call()
    assert info.value.status_code == 400
    return info.value.error.code


def test_a_load_balancer_holds_at_most_1500_rules(provider, state):
    lbs = provider.client.load_balancers
    body = _lb_body(state, provider, "lim-rules", rules=1501)
    assert (
        _code(lambda: lbs.begin_create_or_update(RG, "lim-rules", body).result())
        == "LoadBalancerRulesLimitReached"
    )
    lbs.begin_create_or_update(RG, "lim-rules", _lb_body(state, provider, "lim-rules", rules=1500)).result()
    lbs.begin_delete(RG, "lim-rules").result()


def test_a_load_balancer_holds_at_most_600_frontends(provider, state):
    lbs = provider.client.load_balancers
    body = _lb_body(state, provider, "lim-fe", frontends=601)
    code = _code(lambda: lbs.begin_create_or_update(RG, "lim-fe", body).result())
    assert code == "LoadBalancerFrontendIPConfigurationCountLimitReached"
    assert state.get("loadBalancers", RG, "lim-fe") is None


def _public_ip(state, name):
    return state.put(
        "publicIPAddresses",
        RG,
        name,
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    )["id"]


def test_a_backend_address_is_in_at_most_300_rules_across_load_balancers(provider, state):
    lbs = provider.client.load_balancers
    ip = "10.240.1.200"
    pip = _public_ip(state, "lim-nic-pip")
    lbs.begin_create_or_update(
        RG, "lim-nic-a", _lb_body(state, provider, "lim-nic-a", rules=200, ips=[ip])
    ).result()
    body = _lb_body(state, provider, "lim-nic-b", rules=101, ips=[ip, "10.240.1.201"], public_ip=pip)
    code = _code(lambda: lbs.begin_create_or_update(RG, "lim-nic-b", body).result())
    assert code == "LoadBalancerRuleCountLimitReachedForNic"
    lbs.begin_create_or_update(
        RG,
        "lim-nic-b",
        _lb_body(state, provider, "lim-nic-b", rules=100, ips=[ip, "10.240.1.201"], public_ip=pip),
    ).result()  # exactly 300 (an internal and a public load balancer: allowed)
    for name in ("lim-nic-a", "lim-nic-b"):
        lbs.begin_delete(RG, name).result()


def test_a_backend_address_is_load_balanced_by_one_public_and_one_internal_lb_at_most(provider, state):
    """ARM: a NIC IP configuration is in the backend pools of at most one public and one internal load
    balancer; pools that only outbound rules use (AKS's aksOutboundBackendPool) do not count."""
    lbs = provider.client.load_balancers
    ip = "10.240.1.210"
    lbs.begin_create_or_update(RG, "one-a", _lb_body(state, provider, "one-a", rules=1, ips=[ip])).result()
    code = _code(
        lambda: lbs.begin_create_or_update(
            RG, "one-b", _lb_body(state, provider, "one-b", rules=1, ips=[ip])
        ).result()
    )
    assert code == "AnotherInternalLoadBalancerExists"
    assert state.get("loadBalancers", RG, "one-b") is None
    # the same address without a load-balancing rule using its pool is accepted (an outbound-only pool)
    lbs.begin_create_or_update(RG, "one-b", _lb_body(state, provider, "one-b", rules=0, ips=[ip])).result()
    # and a public load balancer may load-balance to it next to the internal one
    pip = _public_ip(state, "one-pip")
    lbs.begin_create_or_update(
        RG, "one-c", _lb_body(state, provider, "one-c", rules=1, ips=[ip], public_ip=pip)
    ).result()
    # but not a second public one
    body = _lb_body(state, provider, "one-d", rules=1, ips=[ip], public_ip=_public_ip(state, "one-pip-2"))
    code = _code(lambda: lbs.begin_create_or_update(RG, "one-d", body).result())
    assert code == "NicIpConfigurationInBackendPoolsOfMultiplePublicLoadBalancers"
    for name in ("one-a", "one-b", "one-c"):
        lbs.begin_delete(RG, name).result()


def test_the_rules_counted_across_load_balancers_follow_each_write_of_the_other_lb(provider, state):
    """The emulator keeps each stored LB's rule counts per body: a rewrite of the other LB (fewer
    rules, then more) changes what the next write is checked against."""
    lbs = provider.client.load_balancers
    ip = "10.240.1.220"
    pip = _public_ip(state, "count-pip")

    def put(name, rules, **kw):
        return lbs.begin_create_or_update(
            RG, name, _lb_body(state, provider, name, rules=rules, ips=[ip], **kw)
        ).result()

    put("count-a", 250)
    assert _code(lambda: put("count-b", 51, public_ip=pip)) == "LoadBalancerRuleCountLimitReachedForNic"
    put("count-a", 200)  # room for 100 more now
    put("count-b", 100, public_ip=pip)
    assert _code(lambda: put("count-a", 201)) == "LoadBalancerRuleCountLimitReachedForNic"
    put("count-b", 10, public_ip=pip)
    put("count-a", 290)
    for name in ("count-a", "count-b"):
        lbs.begin_delete(RG, name).result()


def test_a_network_security_group_holds_at_most_1000_rules(provider):
    nsgs, rules = provider.client.network_security_groups, provider.client.security_rules

    def rule(i):
        return {
            "name": f"r{i}",
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 100 + i,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": str(1 + i),
            },
        }

    def nsg(n):
        return {"location": "westeurope", "properties": {"securityRules": [rule(i) for i in range(n)]}}

    assert (
        _code(lambda: nsgs.begin_create_or_update(RG, "lim-nsg", nsg(1001)).result())
        == "SecurityRuleCountLimitReached"
    )
    nsgs.begin_create_or_update(RG, "lim-nsg", nsg(1000)).result()
    extra = {"properties": rule(1000)["properties"]}
    code = _code(lambda: rules.begin_create_or_update(RG, "lim-nsg", "r1000", extra).result())
    assert code == "SecurityRuleCountLimitReached"
    nsgs.begin_delete(RG, "lim-nsg").result()


def test_the_addresses_checked_are_those_of_each_load_balancers_latest_body(provider, state):
    """The emulator keeps each stored body's backend-address counts from the write that built it
    (issue 14): after a load balancer is rewritten with other addresses, the next write of another
    load balancer is checked against the new addresses, not the old ones."""
    lbs = provider.client.load_balancers
    old, new = "10.240.1.230", "10.240.1.231"
    lbs.begin_create_or_update(RG, "late-a", _lb_body(state, provider, "late-a", rules=1, ips=[old])).result()
    lbs.begin_create_or_update(RG, "late-a", _lb_body(state, provider, "late-a", rules=1, ips=[new])).result()
    lbs.begin_create_or_update(RG, "late-b", _lb_body(state, provider, "late-b", rules=1, ips=[old])).result()
    code = _code(
        lambda: lbs.begin_create_or_update(
            RG, "late-c", _lb_body(state, provider, "late-c", rules=1, ips=[new])
        ).result()
    )
    assert code == "AnotherInternalLoadBalancerExists"
    assert state.get("loadBalancers", RG, "late-c") is None
    for name in ("late-a", "late-b"):
        lbs.begin_delete(RG, name).result()
