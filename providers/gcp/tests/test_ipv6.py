"""spec.ipFamilies on GCP: IPv6 forwarding rules from a dual-stack subnetwork, one rule per family
and protocol, IPv6 firewalls apart from IPv4 ones, the IPv6 probers, and clear refusals."""

from __future__ import annotations

import ipaddress

import pytest
from gcp_helpers import converge, intent_for, make_service, provider_for
from lbprov_gcp import names as N
from lbprov_gcp.settings import HEALTH_CHECK_RANGES_IPV6
from lbprov_gcp.testing import sdk

from lbprov.model import InvalidService

SUBNET_V6_PREFIX = "2001:db8:0:1::/64"  # the sandbox subnetwork's external /64 (the first one seeded)


def v6_service(name="web", families=("IPv4", "IPv6"), policy="RequireDualStack", **kw):
    svc = make_service(name, **kw)
    svc["spec"]["ipFamilies"] = list(families)
    svc["spec"]["ipFamilyPolicy"] = policy
    return svc


def rules(sandbox):
    client = sdk(sandbox, "ForwardingRulesClient")
    s = sandbox.settings
    return {r.name: r for r in client.list(project=s["project"], region=s["region"])}


def firewalls(sandbox):
    client = sdk(sandbox, "FirewallsClient")
    return {f.name: f for f in client.list(project=sandbox.settings["project"])}


def addresses(sandbox):
    client = sdk(sandbox, "AddressesClient")
    s = sandbox.settings
    return {a.name: a for a in client.list(project=s["project"], region=s["region"])}


def test_dual_stack_gets_a_rule_per_family_and_both_ips_in_family_order(provider, sandbox, server):
    intent = intent_for(provider, v6_service(), sandbox.nodes)
    assert intent.ip_families == ("IPv4", "IPv6")
    plan = provider.plan(intent)
    assert {(c.action.value, c.kind, c.name) for c in plan.changes} >= {
        ("create", "forwarding-rule", f"{intent.lb_name}-tcp"),
        ("create", "forwarding-rule", f"{intent.lb_name}-tcp-ipv6"),
        ("create", "firewall-rule", f"k8s-fw-{intent.lb_name}"),
        ("create", "firewall-rule", f"k8s-fw-{intent.lb_name}-ipv6"),
        ("create", "firewall-rule", "k8s-test-node-http-hc-ipv6"),
    }
    v4, v6 = converge(provider, intent)
    assert ipaddress.ip_address(v4.ip).version == 4
    assert ipaddress.ip_address(v6.ip) in ipaddress.ip_network(SUBNET_V6_PREFIX)

    found = rules(sandbox)
    rule6 = found[f"{intent.lb_name}-tcp-ipv6"]
    assert rule6.ip_version == "IPV6" and rule6.load_balancing_scheme == "EXTERNAL"
    assert rule6.subnetwork.endswith(f"/subnetworks/{sandbox.settings['subnetwork']}")
    assert rule6.I_p_address == v6.ip
    # both families' rules go to the one backend service
    assert rule6.backend_service == found[f"{intent.lb_name}-tcp"].backend_service

    fws = firewalls(sandbox)
    fw4, fw6 = fws[f"k8s-fw-{intent.lb_name}"], fws[f"k8s-fw-{intent.lb_name}-ipv6"]
    assert list(fw4.source_ranges) == ["0.0.0.0/0"] and list(fw4.destination_ranges) == [f"{v4.ip}/32"]
    assert list(fw6.source_ranges) == ["::/0"] and list(fw6.destination_ranges) == [f"{v6.ip}/96"]
    hc6 = fws["k8s-test-node-http-hc-ipv6"]  # the shared check serves both schemes: both prober ranges
    assert sorted(hc6.source_ranges) == sorted(
        HEALTH_CHECK_RANGES_IPV6["external"] + HEALTH_CHECK_RANGES_IPV6["internal"]
    )
    assert all(":" not in r for r in fws["k8s-test-node-http-hc"].source_ranges)
    # the per-apply reservations are released: the rules hold the IPs
    assert addresses(sandbox) == {}

    # convergence and idempotence
    assert provider.plan(intent).empty
    provider.calls.reset()
    assert provider.apply(provider.plan(intent)) == (v4, v6)
    assert provider.calls.stats.writes == 0


def test_ipv6_primary_comes_first_in_the_status(provider, sandbox):
    intent = intent_for(provider, v6_service(families=("IPv6", "IPv4")), sandbox.nodes)
    first, second = converge(provider, intent)
    assert ":" in first.ip and ":" not in second.ip


def test_ipv6_only_service_gets_no_ipv4_load_balancer(provider, sandbox):
    intent = intent_for(provider, v6_service(families=("IPv6",), policy="SingleStack"), sandbox.nodes)
    (only,) = converge(provider, intent)
    assert ipaddress.ip_address(only.ip).version == 6
    assert set(rules(sandbox)) == {f"{intent.lb_name}-tcp-ipv6"}
    fws = firewalls(sandbox)
    assert f"k8s-fw-{intent.lb_name}" not in fws and f"k8s-fw-{intent.lb_name}-ipv6" in fws
    assert provider.plan(intent).empty


def test_local_ipv6_service_opens_the_external_ipv6_probers_to_its_health_check_port(provider, sandbox):
    intent = intent_for(provider, v6_service(local=True, hc_port=32100), sandbox.nodes)
    converge(provider, intent)
    hc6 = firewalls(sandbox)[f"k8s-{intent.lb_name}-http-hc-ipv6"]
    assert list(hc6.source_ranges) == list(HEALTH_CHECK_RANGES_IPV6["external"])
    assert [(a.I_p_protocol, list(a.ports)) for a in hc6.allowed] == [("tcp", ["32100"])]


def test_tcp_and_udp_share_one_reserved_ipv6_address(provider, sandbox):
    svc = v6_service(ports=[("TCP", 53, 30053), ("UDP", 53, 30054)])
    intent = intent_for(provider, svc, sandbox.nodes)
    _, v6 = converge(provider, intent)
    found = rules(sandbox)
    assert found[f"{intent.lb_name}-tcp-ipv6"].I_p_address == found[f"{intent.lb_name}-udp-ipv6"].I_p_address
    assert found[f"{intent.lb_name}-udp-ipv6"].I_p_address == v6.ip
    kept = addresses(sandbox)
    assert kept[N.ipv6(intent.lb_name)].address == v6.ip and kept[N.ipv6(intent.lb_name)].ip_version == "IPV6"
    assert provider.plan(intent).empty


def test_source_ranges_are_split_by_family(provider, sandbox):
    svc = v6_service(source_ranges=["10.0.0.0/8", "2001:db8:ffff::/48"])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    fws = firewalls(sandbox)
    assert list(fws[f"k8s-fw-{intent.lb_name}"].source_ranges) == ["10.0.0.0/8"]
    assert list(fws[f"k8s-fw-{intent.lb_name}-ipv6"].source_ranges) == ["2001:db8:ffff::/48"]


def test_a_family_without_a_source_range_is_refused_naming_the_field(provider, sandbox):
    with pytest.raises(InvalidService, match=r"spec\.loadBalancerSourceRanges.*no IPv6 range"):
        intent_for(provider, v6_service(source_ranges=["10.0.0.0/8"]), sandbox.nodes)


def test_dropping_the_ipv6_family_removes_its_rules_and_firewalls(provider, sandbox):
    svc = v6_service(local=True, ports=[("TCP", 53, 30053), ("UDP", 53, 30054)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    single = dict(svc, spec={**svc["spec"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"})
    intent4 = intent_for(provider, single, sandbox.nodes)
    plan = provider.plan(intent4)
    deleted = {c.name for c in plan.changes if c.action.value == "delete"}
    assert {c.reason for c in plan.changes if c.action.value == "delete"} == {"IP family IPv6 no longer used"}
    assert deleted == {
        f"{intent.lb_name}-tcp-ipv6",
        f"{intent.lb_name}-udp-ipv6",
        f"k8s-fw-{intent.lb_name}-ipv6",
        f"k8s-{intent.lb_name}-http-hc-ipv6",
        N.ipv6(intent.lb_name),
    }
    (only,) = provider.apply(plan)
    assert ":" not in only.ip
    assert provider.plan(intent4).empty
    assert not [
        n for n in list(rules(sandbox)) + list(firewalls(sandbox)) + list(addresses(sandbox)) if "ipv6" in n
    ]


def test_delete_leaves_nothing_of_either_family(provider, sandbox, server):
    intent = intent_for(provider, v6_service(ports=[("TCP", 53, 30053), ("UDP", 53, 30054)]), sandbox.nodes)
    converge(provider, intent)
    provider.apply(provider.plan_delete(intent.ref))
    assert rules(sandbox) == {} and addresses(sandbox) == {}
    assert set(firewalls(sandbox)) == set()  # the shared probers' firewalls go with the last Service
    assert provider.plan_delete(intent.ref).empty


def test_dry_run_of_a_dual_stack_service_writes_nothing(sandbox, server):
    reader = provider_for(sandbox, read_only=True)
    server.clear_log()
    plan = reader.plan(intent_for(reader, v6_service(), sandbox.nodes))
    assert any(c.name.endswith("-ipv6") for c in plan.changes)
    assert server.mutating_requests() == []


def test_an_ipv4_only_subnetwork_refuses_ipv6_before_any_write(sandbox, server):
    server.emulator.seed_network(sandbox.settings["network"], "v4-only", "10.140.0.0/20")
    provider = provider_for(sandbox, subnetwork="v4-only")
    intent = intent_for(provider, v6_service(), sandbox.nodes)
    with pytest.raises(InvalidService, match=r"spec\.ipFamilies.*'v4-only' has stackType IPV4_ONLY"):
        provider.plan(intent)
    assert provider.calls.stats.writes == 0
    # IPv4 only is served on the same subnetwork
    single = intent_for(provider, v6_service(families=("IPv4",), policy="SingleStack"), sandbox.nodes)
    converge(provider, single)
    # PreferDualStack with an IPv4 primary is served IPv4 only there; IPv6 first is still refused
    prefer = intent_for(provider, v6_service("p", policy="PreferDualStack"), sandbox.nodes)
    (only,) = converge(provider, prefer)
    assert ":" not in only.ip and provider.plan(prefer).empty
    prefer6 = intent_for(provider, v6_service("q", ("IPv6", "IPv4"), "PreferDualStack"), sandbox.nodes)
    with pytest.raises(InvalidService, match="IPV4_ONLY"):
        provider.plan(prefer6)


def test_an_internal_ipv6_service_needs_an_internal_dual_stack_subnetwork(provider, sandbox, server):
    server.emulator.seed_network(
        sandbox.settings["network"], "v6-internal", "10.150.0.0/20", ipv6_access_type="INTERNAL"
    )
    annotations = {
        "networking.gke.io/load-balancer-type": "Internal",
        "networking.gke.io/internal-load-balancer-subnet": "v6-internal",
    }
    intent = intent_for(provider, v6_service(annotations=annotations), sandbox.nodes)
    v4, v6 = converge(provider, intent)
    assert ipaddress.ip_address(v4.ip) in ipaddress.ip_network("10.150.0.0/20")
    rule6 = rules(sandbox)[f"{intent.lb_name}-tcp-ipv6"]
    assert rule6.load_balancing_scheme == "INTERNAL" and rule6.ip_version == "IPV6"
    assert rule6.subnetwork.endswith("/subnetworks/v6-internal") and rule6.I_p_address == v6.ip
    assert provider.plan(intent).empty
    # the external-access subnetwork cannot serve an internal IPv6 rule
    annotations["networking.gke.io/internal-load-balancer-subnet"] = sandbox.settings["subnetwork"]
    other = intent_for(provider, v6_service("other", annotations=annotations), sandbox.nodes)
    with pytest.raises(InvalidService, match="ipv6AccessType EXTERNAL"):
        provider.plan(other)


def test_ipv6_without_a_subnetwork_setting_is_refused_naming_the_field(sandbox):
    provider = provider_for(sandbox, subnetwork=None)
    with pytest.raises(InvalidService, match=r"spec\.ipFamilies.*subnetwork"):
        intent_for(provider, v6_service(), sandbox.nodes)


def test_standard_tier_with_ipv6_is_refused_naming_the_annotation(provider, sandbox):
    svc = v6_service(annotations={"cloud.google.com/network-tier": "Standard"})
    with pytest.raises(InvalidService, match="network-tier"):
        intent_for(provider, svc, sandbox.nodes)


def test_named_reserved_addresses_give_each_family_its_ip_and_are_kept(provider, sandbox, server):
    emu, s = server.emulator, sandbox.settings
    base = f"/compute/v1/projects/{s['project']}/regions/{s['region']}/addresses"
    assert emu.handle("POST", base, {}, {"name": "mine4"})[0] == 200
    body6 = {
        "name": "mine6",
        "ipVersion": "IPV6",
        "ipv6EndpointType": "NETLB",
        "subnetwork": f"regions/{s['region']}/subnetworks/{s['subnetwork']}",
    }
    assert emu.handle("POST", base, {}, body6)[0] == 200
    mine = addresses(sandbox)
    svc = v6_service(annotations={"networking.gke.io/load-balancer-ip-addresses": "mine6,mine4"})
    intent = intent_for(provider, svc, sandbox.nodes)
    v4, v6 = converge(provider, intent)
    assert (v4.ip, v6.ip) == (mine["mine4"].address, mine["mine6"].address)
    assert set(addresses(sandbox)) == {"mine4", "mine6"}  # used, never released
    assert provider.plan(intent).empty
    provider.apply(provider.plan_delete(intent.ref))
    assert set(addresses(sandbox)) == {"mine4", "mine6"}
    # an IPv6-only Service naming only an IPv4 address is refused, naming the annotation
    only6 = v6_service(
        "o", ("IPv6",), "SingleStack", annotations={"networking.gke.io/load-balancer-ip-addresses": "mine4"}
    )
    with pytest.raises(InvalidService, match=r"load-balancer-ip-addresses.*names no IPv6 address"):
        provider.plan(intent_for(provider, only6, sandbox.nodes))
