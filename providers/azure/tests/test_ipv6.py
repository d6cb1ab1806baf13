"""spec.ipFamilies on Azure: a frontend, public IP, backend pool, probes, rules and NSG rules per IP
family, named as upstream (``-IPv6`` for the IPv6 parts of a dual-stack Service, the pool
``<cluster>-IPv6`` always), and one ingress IP per family, primary first. Every test goes through
azure-mgmt-network against the emulator and checks DESIGN.md's invariants (``converge``: the re-plan is
empty and a second apply writes nothing)."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import SANDBOX
from lbprov_azure.testing import nsg_rules, upstream_service

from lbprov.model import InvalidService


def _families(svc, families, policy=None):
    svc["spec"]["ipFamilies"] = list(families)
    svc["spec"]["ipFamilyPolicy"] = policy or ("RequireDualStack" if len(families) == 2 else "SingleStack")
    return svc


def _version(ip):
    return ipaddress.ip_address(ip).version


def _pips(state, uid):
    return {
        p["name"]: p
        for p in state.resources["publicIPAddresses"].values()
        if (p.get("tags") or {}).get("lbprov.io_service-uid") == uid
    }


def _pool_ips(lb, name):
    pool = next(p for p in lb["properties"]["backendAddressPools"] if p["name"] == name)
    return {a["properties"]["ipAddress"] for a in pool["properties"]["loadBalancerBackendAddresses"]}


def test_dual_stack_gets_a_frontend_ip_pool_and_rule_per_family_and_both_ips_ipv4_first(
    provider, state, nodes, make_service, intent_for, ensure, h, cluster
):
    svc = _families(make_service(ports=[("TCP", 80), ("UDP", 53)]), ["IPv4", "IPv6"])
    intent = intent_for(svc)
    ingress = ensure(intent)
    assert [_version(i.ip) for i in ingress] == [4, 6]
    base = intent.lb_name
    lb = h.lb_of(state, cluster)
    assert h.part_names(lb, "frontendIPConfigurations") == {base, f"{base}-IPv6"}
    assert h.part_names(lb, "loadBalancingRules") == {
        f"{base}-TCP-80",
        f"{base}-UDP-53",
        f"{base}-TCP-80-IPv6",
        f"{base}-UDP-53-IPv6",
    }
    assert h.part_names(lb, "backendAddressPools") == {cluster, f"{cluster}-IPv6"}
    v6_nodes = {a["address"] for n in nodes for a in n["status"]["addresses"] if ":" in a["address"]}
    assert _pool_ips(lb, f"{cluster}-IPv6") == v6_nodes and len(v6_nodes) == 3
    v6_rule = next(r for r in lb["properties"]["loadBalancingRules"] if r["name"] == f"{base}-TCP-80-IPv6")
    assert v6_rule["properties"]["backendAddressPool"]["id"].endswith(f"/backendAddressPools/{cluster}-IPv6")
    assert v6_rule["properties"]["frontendIPConfiguration"]["id"].endswith(f"/{base}-IPv6")
    pips = _pips(state, intent.ref.uid)
    assert {n: p["properties"]["publicIPAddressVersion"] for n, p in pips.items()} == {
        f"{cluster}-{base}": "IPv4",
        f"{cluster}-{base}-IPv6": "IPv6",
    }
    # NSG: each family's rule opens its own frontend (a rule holds one address family)
    v4, v6 = ingress[0].ip, ingress[1].ip
    rules = nsg_rules(state, base, v4) | nsg_rules(state, base, v6)
    by_dest = {
        d: p
        for p in rules.values()
        for d in (
            [p["destinationAddressPrefix"]]
            if p.get("destinationAddressPrefix")
            else p["destinationAddressPrefixes"]
        )
    }
    assert v4 in by_dest and v6 in by_dest
    for p in rules.values():
        dests = (
            [p["destinationAddressPrefix"]]
            if p.get("destinationAddressPrefix")
            else p["destinationAddressPrefixes"]
        )
        assert len({_version(d) for d in dests}) == 1


def test_ipv6_primary_dual_stack_lists_the_ipv6_address_first(provider, make_service, intent_for, ensure):
    svc = _families(make_service(), ["IPv6", "IPv4"])
    assert [_version(i.ip) for i in ensure(intent_for(svc))] == [6, 4]


def test_prefer_dual_stack_is_served_dual_stack(provider, make_service, intent_for, ensure):
    svc = _families(make_service(), ["IPv4", "IPv6"], "PreferDualStack")
    assert [_version(i.ip) for i in ensure(intent_for(svc))] == [4, 6]


def test_ipv6_only_service_gets_no_ipv4_frontend_and_keeps_upstreams_plain_names(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    svc = _families(make_service(), ["IPv6"])
    intent = intent_for(svc)
    ingress = ensure(intent)
    assert [_version(i.ip) for i in ingress] == [6]
    base = intent.lb_name
    lb = h.lb_of(state, cluster)
    assert h.part_names(lb, "frontendIPConfigurations") == {base}
    assert h.part_names(lb, "loadBalancingRules") == {f"{base}-TCP-80"}
    rule = lb["properties"]["loadBalancingRules"][0]["properties"]
    assert rule["backendAddressPool"]["id"].endswith(f"/{cluster}-IPv6")
    pips = _pips(state, intent.ref.uid)
    assert [p["properties"]["publicIPAddressVersion"] for p in pips.values()] == ["IPv6"]
    assert set(pips) == {f"{cluster}-{base}"}


def test_internal_dual_stack_takes_an_ipv6_address_from_the_dual_stack_subnet(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    svc = _families(
        make_service(annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}),
        ["IPv4", "IPv6"],
    )
    ingress = ensure(intent_for(svc))
    assert [_version(i.ip) for i in ingress] == [4, 6]
    assert ipaddress.ip_address(ingress[1].ip) in ipaddress.ip_network(SANDBOX["subnet_prefix6"])
    lb = h.lb_of(state, f"{cluster}-internal")
    assert h.part_names(lb, "backendAddressPools") == {cluster, f"{cluster}-IPv6"}


def test_internal_ipv6_in_an_ipv4_only_subnet_is_refused_by_arm_and_writes_no_frontend(
    provider, state, make_service, intent_for, h, cluster
):
    svc = _families(
        make_service(
            annotations={
                "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
                "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": SANDBOX[
                    "services_subnet_name"
                ],
            }
        ),
        ["IPv6"],
    )
    with pytest.raises(Exception, match="has no IPv6 address prefix"):
        provider.apply(provider.plan(intent_for(svc)))
    assert h.part_names(h.lb_of(state, f"{cluster}-internal"), "frontendIPConfigurations") == set()


def test_ipv4_to_dual_stack_adds_the_ipv6_frontend_and_keeps_the_ipv4_address_then_back(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    svc = make_service()
    intent = intent_for(svc)
    (v4,) = ensure(intent)
    base = intent.lb_name
    dual = ensure(intent_for(_families(svc, ["IPv4", "IPv6"], "PreferDualStack")))
    assert dual[0] == v4 and _version(dual[1].ip) == 6
    assert h.part_names(h.lb_of(state, cluster), "frontendIPConfigurations") == {base, f"{base}-IPv6"}
    back = ensure(intent_for(_families(svc, ["IPv4"], "SingleStack")))
    assert back == (v4,)
    lb = h.lb_of(state, cluster)
    assert h.part_names(lb, "frontendIPConfigurations") == {base}
    assert h.part_names(lb, "loadBalancingRules") == {f"{base}-TCP-80"}
    assert set(_pips(state, intent.ref.uid)) == {f"{cluster}-{base}"}  # the IPv6 IP is gone
    assert not nsg_rules(state, base, dual[1].ip)  # no rule keeps the IPv6 address


def test_an_ipv6_service_cannot_become_dual_stack_in_place_and_says_why(
    provider, make_service, intent_for, ensure
):
    svc = _families(make_service(), ["IPv6"])
    ensure(intent_for(svc))
    with pytest.raises(InvalidService, match=r"spec\.ipFamilies.*holds an IPv6 address"):
        provider.plan(intent_for(_families(svc, ["IPv6", "IPv4"])))


def test_source_ranges_are_split_by_family(provider, state, make_service, intent_for, ensure):
    svc = _families(make_service(source_ranges=["10.0.0.0/8", "2001:db8::/32"]), ["IPv4", "IPv6"])
    intent = intent_for(svc)
    v4, v6 = (i.ip for i in ensure(intent))
    found = nsg_rules(state, intent.lb_name, v4) | nsg_rules(state, intent.lb_name, v6)
    sources = {
        str(p.get("destinationAddressPrefix") or p.get("destinationAddressPrefixes")): p.get(
            "sourceAddressPrefixes"
        )
        or [p.get("sourceAddressPrefix")]
        for p in found.values()
        if p["access"] == "Allow"
    }
    assert any(v4 in d and s == ["10.0.0.0/8"] for d, s in sources.items()), sources
    assert any(v6 in d and s == ["2001:db8::/32"] for d, s in sources.items()), sources


def test_floating_ip_off_opens_the_nodes_ipv6_addresses_to_ipv6_sources(
    provider, state, nodes, make_service, intent_for, ensure
):
    svc = _families(
        make_service(
            annotations={"service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip": "true"}
        ),
        ["IPv4", "IPv6"],
    )
    intent = intent_for(svc)
    ensure(intent)
    v6_nodes = {a["address"] for n in nodes for a in n["status"]["addresses"] if ":" in a["address"]}
    rules = nsg_rules(state, intent.lb_name)
    v6 = [p for n, p in rules.items() if n.endswith("-IPv6")]
    assert v6 and set(v6[0]["destinationAddressPrefixes"]) == v6_nodes


def test_delete_of_a_dual_stack_service_leaves_nothing_of_either_family(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    svc = _families(make_service(), ["IPv4", "IPv6"])
    intent = intent_for(svc)
    v4, v6 = (i.ip for i in ensure(intent))
    provider.apply(provider.plan_delete(intent.ref))
    assert h.lb_of(state, cluster) is None
    assert _pips(state, intent.ref.uid) == {}
    assert not nsg_rules(state, intent.lb_name, v4) and not nsg_rules(state, intent.lb_name, v6)
    assert provider.plan_delete(intent.ref).empty


def test_dry_run_of_a_dual_stack_service_writes_nothing(sandbox, provider, make_service, intent_for):
    dry = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": provider.settings.cluster_name}, read_only=True
    )
    svc = _families(make_service(), ["IPv4", "IPv6"])
    before = len(sandbox.mutating_requests())
    plan = dry.plan(intent_for(svc, prov=dry))
    assert {c.kind for c in plan.changes} >= {"public-ip", "frontend-ip-configuration", "backend-pool"}
    assert sandbox.mutating_requests()[before:] == []


def test_ipv4_address_annotation_on_an_ipv6_only_service_is_refused_naming_it(make_service, intent_for):
    svc = _families(
        make_service(annotations={"service.beta.kubernetes.io/azure-load-balancer-ipv4": "10.240.0.50"}),
        ["IPv6"],
    )
    with pytest.raises(InvalidService, match=r"azure-load-balancer-ipv4.*no IPv4 family"):
        intent_for(svc)


def test_adopting_upstreams_service_as_dual_stack_is_refused_naming_the_field_and_writes_nothing(
    sandbox, provider, state, nodes, make_service, intent_for
):
    svc = make_service("old")
    upstream_service(state, provider, svc, nodes)
    before = len(sandbox.mutating_requests())
    with pytest.raises(
        InvalidService, match=r"spec\.ipFamilies.*adopts cloud-provider-azure's IPv4 Services only"
    ):
        provider.plan(intent_for(_families(svc, ["IPv4", "IPv6"])))
    assert sandbox.mutating_requests()[before:] == []


def test_the_ipv6_pool_follows_the_ipv4_pool_when_nodes_spread_over_a_second_load_balancer(
    provider, state, nodes, make_service, intent_for, ensure, h, cluster
):
    dual = intent_for(_families(make_service("dual"), ["IPv4", "IPv6"]))
    ensure(dual)
    assert len(_pool_ips(h.lb_of(state, cluster), f"{cluster}-IPv6")) == 3
    configs = "service.beta.kubernetes.io/azure-load-balancer-configurations"
    ensure(intent_for(make_service("pinned", annotations={configs: f"{cluster}-2"})))  # an IPv4 Service
    lb = h.lb_of(state, cluster)
    v4_left = _pool_ips(lb, cluster)
    assert len(v4_left) == 2  # a node moved to the second load balancer's pool
    v6_of = {
        a4["address"]: a6["address"]
        for n in nodes
        for a4 in n["status"]["addresses"][:1]
        for a6 in n["status"]["addresses"][1:]
    }
    assert _pool_ips(lb, f"{cluster}-IPv6") == {v6_of[ip] for ip in v4_left}
    assert provider.plan(dual).empty


def test_gc_lists_both_families_of_a_dual_stack_service(
    provider, state, make_service, intent_for, ensure, cluster
):
    intent = intent_for(_families(make_service(), ["IPv4", "IPv6"]))
    v4, v6 = (i.ip for i in ensure(intent))
    (owned,) = [o for o in provider.list_owned() if o.ref.uid == intent.ref.uid]
    base = intent.lb_name
    assert {
        ("frontend-ip-configuration", f"{cluster}/{base}"),
        ("frontend-ip-configuration", f"{cluster}/{base}-IPv6"),
    } <= set(owned.resources)
    assert {("public-ip", f"{cluster}-{base}"), ("public-ip", f"{cluster}-{base}-IPv6")} <= set(
        owned.resources
    )
    shared = {r.split("/", 1)[1] for k, r in owned.resources if k == "nsg-rule"}
    v4_rules, v6_rules = set(nsg_rules(state, base, v4)), set(nsg_rules(state, base, v6))
    assert v4_rules and v6_rules and v4_rules != v6_rules
    assert shared == v4_rules | v6_rules, owned.resources


def test_a_source_range_of_no_family_of_the_service_is_refused_but_all_ranges_pass(make_service, intent_for):
    with pytest.raises(
        InvalidService, match=r"spec\.loadBalancerSourceRanges.*2001:db8::/32 is of no IP family"
    ):
        intent_for(make_service(source_ranges=["10.0.0.0/8", "2001:db8::/32"]))
    assert intent_for(make_service(source_ranges=["0.0.0.0/0", "::/0"])).ip_families == ("IPv4",)


def test_an_ipv4_services_plan_keeps_the_ipv6_pool_of_its_load_balancer_with_the_nodes(
    sandbox, provider, state, nodes, make_service, intent_for, ensure, h, cluster
):
    ensure(intent_for(_families(make_service("dual"), ["IPv4", "IPv6"])))
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    ensure(intent_for(make_service("v4"), more))  # only the IPv4 Service sees the new node
    lb = h.lb_of(state, cluster)
    assert len(_pool_ips(lb, cluster)) == 4
    assert len(_pool_ips(lb, f"{cluster}-IPv6")) == 4


def test_a_dual_stack_service_pinned_to_a_new_load_balancer_gets_both_pools_there(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    ensure(intent_for(make_service("first")))
    configs = "service.beta.kubernetes.io/azure-load-balancer-configurations"
    pinned = _families(make_service("pinned", annotations={configs: f"{cluster}-2"}), ["IPv6", "IPv4"])
    ingress = ensure(intent_for(pinned))
    assert [_version(i.ip) for i in ingress] == [6, 4]
    lb2 = h.lb_of(state, f"{cluster}-2")
    assert h.part_names(lb2, "backendAddressPools") == {cluster, f"{cluster}-IPv6"}
    assert len(_pool_ips(lb2, f"{cluster}-IPv6")) == len(_pool_ips(lb2, cluster)) >= 1


def test_ten_dual_stack_services_at_once_each_get_both_addresses_on_one_coalesced_load_balancer(
    provider, state, make_service, intent_for, h, cluster
):
    intents = [intent_for(_families(make_service(f"s{i}"), ["IPv4", "IPv6"])) for i in range(10)]
    with ThreadPoolExecutor(5) as pool:
        got = list(pool.map(lambda it: provider.apply(provider.plan(it)), intents))
    assert all([_version(i.ip) for i in g] == [4, 6] for g in got), got
    lb = h.lb_of(state, cluster)
    assert len(h.part_names(lb, "frontendIPConfigurations")) == 20
    assert all(provider.plan(it).empty for it in intents)


def test_internal_ipv6_only_gets_one_private_ipv6_frontend_named_as_upstream(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    internal = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    intent = intent_for(_families(make_service(annotations=internal), ["IPv6"]))
    (only,) = ensure(intent)
    assert ipaddress.ip_address(only.ip) in ipaddress.ip_network(SANDBOX["subnet_prefix6"])
    lb = h.lb_of(state, f"{cluster}-internal")
    (fe,) = lb["properties"]["frontendIPConfigurations"]
    assert fe["name"] == intent.lb_name and fe["properties"]["privateIPAddressVersion"] == "IPv6"
    provider.apply(provider.plan_delete(intent.ref))
    assert h.lb_of(state, f"{cluster}-internal") is None


def test_a_local_dual_stack_service_probes_the_health_check_node_port_on_both_families(
    provider, state, make_service, intent_for, ensure, h, cluster
):
    svc = _families(make_service(policy="Local"), ["IPv4", "IPv6"])
    intent = intent_for(svc)
    ensure(intent)
    probes = {p["name"]: p["properties"] for p in h.lb_of(state, cluster)["properties"]["probes"]}
    hc = svc["spec"]["healthCheckNodePort"]
    assert {n: (p["protocol"], p["port"], p.get("requestPath")) for n, p in probes.items()} == {
        f"{intent.lb_name}-TCP-80": ("Http", hc, "/healthz"),
        f"{intent.lb_name}-TCP-80-IPv6": ("Http", hc, "/healthz"),
    }


def test_a_node_without_an_ipv4_address_is_named_in_a_warning_not_dropped_silently(
    provider, state, nodes, make_service, intent_for, ensure, caplog, h
):
    """Azure keys backend pools by a node's IPv4 address: an IPv6-only node cannot join them, and
    the user hears so (found by review: it was left out of every pool without a word)."""
    import copy
    import logging

    v6_only = copy.deepcopy(nodes[0])
    v6_only["metadata"]["name"] = "v6-only"
    v6_only["spec"]["providerID"] = v6_only["spec"]["providerID"].rsplit("/", 1)[0] + "/v6-only"
    v6_only["status"]["addresses"] = [
        {"type": "InternalIP", "address": "fd00:10::99"},
        {"type": "Hostname", "address": "v6-only"},
    ]
    intent = intent_for(_families(make_service(), ["IPv4", "IPv6"]), [*nodes, v6_only])
    with caplog.at_level(logging.WARNING, logger="lbprov_azure.provider"):
        ensure(intent)
    (warning,) = [r.getMessage() for r in caplog.records if "v6-only" in r.getMessage()]
    assert "no IPv4 InternalIP (fd00:10::99)" in warning and "skipped" in warning
    lb = h.lb_of(state, provider.settings.cluster_name)
    assert "fd00:10::99" not in _pool_ips(lb, f"{provider.settings.cluster_name}-IPv6")
