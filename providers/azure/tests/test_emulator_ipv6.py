"""The ARM emulator's IPv6: Standard static IPv6 public IPs, dual-stack subnets and private IPv6
frontends, one IP version per backend pool and per load-balancing rule, and NSG rules of one address
family. Each refusal is one ARM makes (the rule's source is cited where the emulator enforces it)."""

from __future__ import annotations

import ipaddress

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.sandbox import SANDBOX
from lbprov_azure.testing import SANDBOX_RG


def _body(provider, version):
    return {
        "location": provider.settings.location,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": version},
    }


def test_an_ipv6_public_ip_gets_an_ipv6_address_and_keeps_its_version(provider):
    ops = provider.client.public_ip_addresses
    made = ops.begin_create_or_update(SANDBOX_RG, "v6-ip", _body(provider, "IPv6")).result()
    assert ipaddress.ip_address(made.ip_address).version == 6
    with pytest.raises(HttpResponseError, match="PublicIPAddressVersionCannotBeChanged"):
        ops.begin_create_or_update(SANDBOX_RG, "v6-ip", _body(provider, "IPv4")).result()
    with pytest.raises(HttpResponseError, match="publicIPAddressVersion"):
        ops.begin_create_or_update(SANDBOX_RG, "v7-ip", _body(provider, "IPv7")).result()
    ops.begin_delete(SANDBOX_RG, "v6-ip").result()


def _ids(provider, lb):
    sub = provider.settings.subscription_id
    net = f"/subscriptions/{sub}/resourceGroups/{SANDBOX_RG}/providers/Microsoft.Network"
    return net, f"{net}/loadBalancers/{lb}"


def _lb(provider, lb, frontends, pools, rules=()):
    net, lbid = _ids(provider, lb)
    return {
        "location": provider.settings.location,
        "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [{"name": n, "properties": p} for n, p in frontends],
            "backendAddressPools": [
                {
                    "name": n,
                    "properties": {
                        "loadBalancerBackendAddresses": [
                            {
                                "name": ip,
                                "properties": {
                                    "ipAddress": ip,
                                    "virtualNetwork": {"id": f"{net}/virtualNetworks/{SANDBOX['vnet_name']}"},
                                },
                            }
                            for ip in ips
                        ]
                    },
                }
                for n, ips in pools
            ],
            "loadBalancingRules": [
                {
                    "name": f"r-{fe}-{pool}",
                    "properties": {
                        "frontendIPConfiguration": {"id": f"{lbid}/frontendIPConfigurations/{fe}"},
                        "backendAddressPool": {"id": f"{lbid}/backendAddressPools/{pool}"},
                        "protocol": "Tcp",
                        "frontendPort": port,
                        "backendPort": port,
                        "enableFloatingIP": True,
                    },
                }
                for fe, pool, port in rules
            ],
        },
    }


def _subnet(provider, name):
    net, _ = _ids(provider, "x")
    return {"id": f"{net}/virtualNetworks/{SANDBOX['vnet_name']}/subnets/{name}"}


def test_a_private_ipv6_frontend_takes_an_address_of_the_dual_stack_subnets_ipv6_prefix(provider, sandbox):
    node = sandbox.nodes[0] if sandbox.nodes else sandbox.add_node("v6-emu-node")
    ops = provider.client.load_balancers
    fe = {"subnet": _subnet(provider, SANDBOX["subnet_name"]), "privateIPAddressVersion": "IPv6"}
    body = _lb(provider, "emu-v6-int", [("v6", fe)], [("pool6", [node.internal_ipv6])], [("v6", "pool6", 80)])
    made = ops.begin_create_or_update(SANDBOX_RG, "emu-v6-int", body).result()
    got = made.frontend_ip_configurations[0]
    assert got.private_ip_address_version == "IPv6"
    assert ipaddress.ip_address(got.private_ip_address) in ipaddress.ip_network(SANDBOX["subnet_prefix6"])
    ops.begin_delete(SANDBOX_RG, "emu-v6-int").result()


def test_a_private_ipv6_frontend_in_an_ipv4_only_subnet_is_refused(provider):
    fe = {"subnet": _subnet(provider, SANDBOX["services_subnet_name"]), "privateIPAddressVersion": "IPv6"}
    with pytest.raises(HttpResponseError, match="SubnetHasNoAddressPrefixOfIpVersion"):
        provider.client.load_balancers.begin_create_or_update(
            SANDBOX_RG, "emu-v6-bad", _lb(provider, "emu-v6-bad", [("v6", fe)], [])
        ).result()


def test_a_rule_joining_an_ipv6_frontend_to_an_ipv4_pool_is_refused(provider, sandbox):
    node = sandbox.add_node("v6-emu-mix")
    fe = {"subnet": _subnet(provider, SANDBOX["subnet_name"]), "privateIPAddressVersion": "IPv6"}
    body = _lb(provider, "emu-v6-mix", [("v6", fe)], [("pool4", [node.internal_ip])], [("v6", "pool4", 80)])
    with pytest.raises(HttpResponseError, match="LoadBalancingRuleFrontendAndBackendIpVersionMismatch"):
        provider.client.load_balancers.begin_create_or_update(SANDBOX_RG, "emu-v6-mix", body).result()


def test_a_backend_pool_of_both_ip_versions_is_refused(provider, sandbox):
    node = sandbox.add_node("v6-emu-pool")
    body = _lb(provider, "emu-v6-pool", [], [("both", [node.internal_ip, node.internal_ipv6])])
    with pytest.raises(HttpResponseError, match="LoadBalancerBackendAddressPoolMustHaveSameIpVersion"):
        provider.client.load_balancers.begin_create_or_update(SANDBOX_RG, "emu-v6-pool", body).result()


def _nsg_rule(**props):
    base = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 3999,
        "sourcePortRange": "*",
        "destinationPortRange": "80",
    }
    return {"properties": {**base, **props}}


def test_an_nsg_rule_mixing_address_families_is_refused_and_one_family_or_tags_pass(provider):
    ops = provider.client.security_rules
    nsg = SANDBOX["security_group_name"]
    mixed = _nsg_rule(sourceAddressPrefixes=["10.0.0.0/8", "2001:db8::/32"], destinationAddressPrefix="*")
    with pytest.raises(
        HttpResponseError, match="ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies"
    ):
        ops.begin_create_or_update(SANDBOX_RG, nsg, "mixed", mixed).result()
    across = _nsg_rule(sourceAddressPrefix="10.0.0.0/8", destinationAddressPrefix="2001:db8::1")
    with pytest.raises(
        HttpResponseError, match="ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies"
    ):
        ops.begin_create_or_update(SANDBOX_RG, nsg, "across", across).result()
    v6 = _nsg_rule(sourceAddressPrefix="Internet", destinationAddressPrefix="2001:db8::1")
    ops.begin_create_or_update(SANDBOX_RG, nsg, "v6-ok", v6).result()
    ops.begin_delete(SANDBOX_RG, nsg, "v6-ok").result()


def _vnet(provider, subnet_prefixes):
    return {
        "location": provider.settings.location,
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.9.0.0/16", "fd00:9::/48"]},
            "subnets": [{"name": "s", "properties": {"addressPrefixes": subnet_prefixes}}],
        },
    }


@pytest.mark.parametrize("prefixes", [["10.9.0.0/24", "fd00:9::/80"], ["10.9.0.0/24", "10.9.1.0/24"]])
def test_a_subnet_takes_one_prefix_per_family_the_ipv6_one_a_64(provider, prefixes):
    with pytest.raises(HttpResponseError, match="InvalidAddressPrefixFormat"):
        provider.client.virtual_networks.begin_create_or_update(
            SANDBOX_RG, "v6-vnet", _vnet(provider, prefixes)
        ).result()


def test_a_static_private_frontend_address_of_the_other_version_and_an_unknown_version_are_refused(provider):
    subnet = _subnet(provider, SANDBOX["subnet_name"])
    wrong = {
        "subnet": subnet,
        "privateIPAddressVersion": "IPv6",
        "privateIPAllocationMethod": "Static",
        "privateIPAddress": "10.240.0.77",
    }
    with pytest.raises(HttpResponseError, match="is not of privateIPAddressVersion IPv6"):
        provider.client.load_balancers.begin_create_or_update(
            SANDBOX_RG, "emu-v6-static", _lb(provider, "emu-v6-static", [("v6", wrong)], [])
        ).result()
    unknown = {"subnet": subnet, "privateIPAddressVersion": "IPv5"}
    with pytest.raises(HttpResponseError, match="privateIPAddressVersion 'IPv5' is invalid"):
        provider.client.load_balancers.begin_create_or_update(
            SANDBOX_RG, "emu-v6-unknown", _lb(provider, "emu-v6-unknown", [("v5", unknown)], [])
        ).result()
