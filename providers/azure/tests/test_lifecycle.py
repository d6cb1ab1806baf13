"""Lifecycle and updates: every change converges (empty re-plan, idempotent second apply)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.sandbox import Fault
from lbprov_azure.testing import allow_rule, nsg_rules

RG = "lbprov-sandbox"
INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"


def _rules(state, lb_name):
    lb = state.get("loadBalancers", RG, lb_name)
    return {
        r["name"]: r["properties"] for r in (lb or {}).get("properties", {}).get("loadBalancingRules", [])
    }


def _probes(state, lb_name):
    lb = state.get("loadBalancers", RG, lb_name)
    return {r["name"]: r["properties"] for r in (lb or {}).get("properties", {}).get("probes", [])}


def _nsg_rules(state, base, address=None):
    return nsg_rules(state, base, address)


def test_ports_and_protocols_change_in_place_keeping_the_ip(
    provider, intent_for, make_service, ensure, state
):
    cluster = provider.settings.cluster_name
    svc = make_service("p", ports=[("TCP", 80)])
    uid = svc["metadata"]["uid"]
    first = ensure(intent_for(svc))
    updated = intent_for(make_service("p", uid=uid, ports=[("TCP", 443), ("UDP", 53), ("UDP", 123)]))
    plan = provider.plan(updated)
    kinds = sorted((c.action.value, c.kind) for c in plan.changes)
    assert ("delete", "load-balancing-rule") in kinds and ("create", "load-balancing-rule") in kinds
    assert ("create", "nsg-rule") in kinds  # the UDP rule
    assert not any(c.kind == "public-ip" for c in plan.changes)
    assert ensure(updated) == first  # same public IP
    base = updated.lb_name
    assert set(_rules(state, cluster)) == {f"{base}-TCP-443", f"{base}-UDP-53", f"{base}-UDP-123"}
    assert _probes(state, cluster)[f"{base}-UDP-53"]["port"] == 10256  # UDP: kube-proxy health
    assert len(_nsg_rules(state, base, first[0].ip)) == 2  # TCP and UDP, shared by destination
    # floating IP on (the default): the service ports, to the frontend address
    udp = allow_rule(state, base, first[0].ip, "Udp")
    assert sorted(udp["destinationPortRanges"]) == ["123", "53"]
    assert udp["destinationAddressPrefix"] == first[0].ip
    provider.apply(provider.plan_delete(updated.ref))


def test_node_changes_update_the_shared_pool_once_for_all_services(
    sandbox, provider, intent_for, make_service, ensure, state, nodes, h
):
    cluster = provider.settings.cluster_name
    a = intent_for(make_service("a"))
    b = intent_for(make_service("b"))
    ensure(a)
    ensure(b)
    new_node = sandbox.add_node(f"node-{cluster}")
    more = [*nodes, h.node_object(new_node)]
    a2 = intent_for(make_service("a", uid=a.ref.uid, node_ports={("TCP", 80): a.ports[0].node_port}), more)
    b2 = intent_for(make_service("b", uid=b.ref.uid, node_ports={("TCP", 80): b.ports[0].node_port}), more)
    plan = provider.plan(a2)
    assert [(c.action.value, c.kind) for c in plan.changes] == [("update", "backend-pool")]
    assert new_node.internal_ip in plan.changes[0].after["addresses"]
    provider.calls.reset()
    provider.apply(plan)
    assert provider.calls.stats.to_json()["by_operation"]["loadBalancers.create_or_update (write)"] == 1
    assert provider.plan(b2).empty  # the pool is shared: b has nothing left to do
    pool = state.get("loadBalancers", RG, cluster)["properties"]["backendAddressPools"][0]
    assert new_node.internal_ip in [
        x["properties"]["ipAddress"] for x in pool["properties"]["loadBalancerBackendAddresses"]
    ]
    # a node leaves (excluded by label): pool shrinks
    fewer = [
        *nodes,
        h.node_object(new_node, **{"node.kubernetes.io/exclude-from-external-load-balancers": "true"}),
    ]
    a3 = intent_for(make_service("a", uid=a.ref.uid, node_ports={("TCP", 80): a.ports[0].node_port}), fewer)
    ensure(a3)
    pool = state.get("loadBalancers", RG, cluster)["properties"]["backendAddressPools"][0]
    assert new_node.internal_ip not in [
        x["properties"]["ipAddress"] for x in pool["properties"]["loadBalancerBackendAddresses"]
    ]
    for i in (a, b):
        provider.apply(provider.plan_delete(i.ref))


def test_local_cluster_policy_and_client_ip_affinity(provider, intent_for, make_service, ensure, state):
    cluster = provider.settings.cluster_name
    svc = make_service("l", ports=[("TCP", 80)])
    uid, nps = svc["metadata"]["uid"], {("TCP", 80): svc["spec"]["ports"][0]["nodePort"]}
    ensure(intent_for(svc))
    local_svc = make_service("l", uid=uid, node_ports=nps, policy="Local", affinity="ClientIP")
    local = intent_for(local_svc)
    ensure(local)
    name = f"{local.lb_name}-TCP-80"
    probe = _probes(state, cluster)[name]
    assert (probe["protocol"], probe["port"], probe["requestPath"]) == (
        "Http",
        local_svc["spec"]["healthCheckNodePort"],
        "/healthz",
    )
    assert _rules(state, cluster)[name]["loadDistribution"] == "SourceIP"
    back = intent_for(make_service("l", uid=uid, node_ports=nps))
    ensure(back)
    probe = _probes(state, cluster)[name]
    assert (probe["protocol"], probe["port"]) == ("Tcp", nps[("TCP", 80)])
    assert _rules(state, cluster)[name]["loadDistribution"] == "Default"
    provider.apply(provider.plan_delete(back.ref))


def test_source_ranges_change_moves_the_service_between_shared_rules(
    provider, intent_for, make_service, ensure, state
):
    svc = make_service("s", source_ranges=["203.0.113.0/24"])
    uid, nps = svc["metadata"]["uid"], {("TCP", 80): svc["spec"]["ports"][0]["nodePort"]}
    first = intent_for(svc)
    (ingress,) = ensure(first)
    rule = allow_rule(state, first.lb_name, ingress.ip)
    assert rule["sourceAddressPrefix"] == "203.0.113.0/24"
    assert 500 <= rule["priority"] <= 4096
    second = intent_for(
        make_service("s", uid=uid, node_ports=nps, source_ranges=["198.51.100.0/24", "203.0.113.0/25"])
    )
    plan = provider.plan(second)
    # rules are shared by (protocol, sources, ports): new sources = another rule; the old one, left
    # without destination, goes
    assert sorted((c.action.value, c.kind) for c in plan.changes) == [
        ("create", "nsg-rule"),
        ("delete", "nsg-rule"),
    ]
    ensure(second)
    rule = allow_rule(state, first.lb_name, ingress.ip)
    assert sorted(rule["sourceAddressPrefixes"]) == ["198.51.100.0/24", "203.0.113.0/25"]
    off = intent_for(
        make_service(
            "s",
            uid=uid,
            node_ports=nps,
            annotations={"service.beta.kubernetes.io/azure-disable-load-balancer-nsg-rule": "true"},
        )
    )
    ensure(off)
    assert _nsg_rules(state, first.lb_name, ingress.ip) == {}
    provider.apply(provider.plan_delete(off.ref))


def test_external_to_internal_and_back_moves_between_the_two_lbs(
    provider, intent_for, make_service, ensure, state, h
):
    cluster = provider.settings.cluster_name
    svc = make_service("x")
    uid, nps = svc["metadata"]["uid"], {("TCP", 80): svc["spec"]["ports"][0]["nodePort"]}
    ext = intent_for(svc)
    ensure(ext)
    pip_name = f"{cluster}-{ext.lb_name}"
    assert state.get("publicIPAddresses", RG, pip_name) is not None
    internal = intent_for(make_service("x", uid=uid, node_ports=nps, annotations={INTERNAL: "true"}))
    ingress = ensure(internal)
    assert ingress[0].ip.startswith("10.240.")
    assert h.lb_of(state, cluster) is None  # its only Service left: the public LB went
    assert state.get("publicIPAddresses", RG, pip_name) is None  # and its public IP
    assert ext.lb_name in h.part_names(h.lb_of(state, f"{cluster}-internal"), "frontendIPConfigurations")
    fixed = intent_for(
        make_service(
            "x",
            uid=uid,
            node_ports=nps,
            annotations={
                INTERNAL: "true",
                "service.beta.kubernetes.io/azure-load-balancer-ipv4": "10.240.3.200",
            },
        )
    )
    assert ensure(fixed)[0].ip == "10.240.3.200"
    back = intent_for(make_service("x", uid=uid, node_ports=nps))
    assert not ensure(back)[0].ip.startswith("10.240.")
    assert h.lb_of(state, f"{cluster}-internal") is None
    provider.apply(provider.plan_delete(back.ref))


def test_pip_name_user_owned_ip_is_used_and_never_deleted(provider, intent_for, make_service, ensure, state):
    cluster = provider.settings.cluster_name
    user_pip = state.put(
        "publicIPAddresses",
        RG,
        f"mine-{cluster}",
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "tags": {"team": "web"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    )
    svc = make_service("u")
    uid, nps = svc["metadata"]["uid"], {("TCP", 80): svc["spec"]["ports"][0]["nodePort"]}
    own = intent_for(svc)
    ensure(own)
    own_pip = f"{cluster}-{own.lb_name}"
    pinned = intent_for(
        make_service(
            "u",
            uid=uid,
            node_ports=nps,
            annotations={"service.beta.kubernetes.io/azure-pip-name": f"mine-{cluster}"},
        )
    )
    plan = provider.plan(pinned)
    assert ("delete", "public-ip") in [(c.action.value, c.kind) for c in plan.changes]  # our old one
    assert ensure(pinned)[0].ip == user_pip["properties"]["ipAddress"]
    assert state.get("publicIPAddresses", RG, own_pip) is None
    assert state.get("publicIPAddresses", RG, f"mine-{cluster}")["tags"] == {"team": "web"}  # untouched
    provider.apply(provider.plan_delete(pinned.ref))
    assert state.get("publicIPAddresses", RG, f"mine-{cluster}") is not None  # never deleted
    # spec.loadBalancerIP naming the user's address works the same way
    by_ip = intent_for(make_service("u2", lb_ip=user_pip["properties"]["ipAddress"]))
    assert ensure(by_ip)[0].ip == user_pip["properties"]["ipAddress"]
    provider.apply(provider.plan_delete(by_ip.ref))
    assert state.get("publicIPAddresses", RG, f"mine-{cluster}") is not None


def test_annotations_reach_the_cloud(provider, intent_for, make_service, ensure, state):
    cluster = provider.settings.cluster_name
    dns = f"lbprov-{cluster}"
    svc = make_service(
        "ann",
        ports=[("TCP", 80)],
        annotations={
            "service.beta.kubernetes.io/azure-dns-label-name": dns,
            "service.beta.kubernetes.io/azure-pip-tags": "team=web, cost=42",
            "service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout": "30",
            "service.beta.kubernetes.io/azure-load-balancer-disable-tcp-reset": "true",
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-protocol": "http",
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path": "/ready",
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-interval": "10",
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-num-of-probe": "3",
            "service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip": "false",
        },
    )
    intent = intent_for(svc)
    ensure(intent)
    pip = state.get("publicIPAddresses", RG, f"{cluster}-{intent.lb_name}")
    assert pip["properties"]["dnsSettings"]["domainNameLabel"] == dns
    assert pip["tags"]["team"] == "web" and pip["tags"]["cost"] == "42"
    name = f"{intent.lb_name}-TCP-80"
    rule = _rules(state, cluster)[name]
    assert (
        rule["idleTimeoutInMinutes"],
        rule["enableTcpReset"],
        rule["enableFloatingIP"],
        rule["backendPort"],
    ) == (30, False, True, 80)
    probe = _probes(state, cluster)[name]
    assert (probe["protocol"], probe["requestPath"], probe["intervalInSeconds"], probe["probeThreshold"]) == (
        "Http",
        "/ready",
        10,
        3,
    )
    # floating IP on: packets keep the frontend address and the service port
    nsg = allow_rule(state, intent.lb_name, pip["properties"]["ipAddress"])
    assert (nsg["destinationAddressPrefix"], nsg["destinationPortRange"]) == (
        pip["properties"]["ipAddress"],
        "80",
    )
    provider.apply(provider.plan_delete(intent.ref))


def test_floating_ip_on_an_internal_service_opens_the_nsg_to_its_dynamic_address(
    provider, intent_for, make_service, ensure, state
):
    svc = make_service(
        "fl",
        annotations={
            INTERNAL: "true",
            "service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip": "false",
        },
    )
    intent = intent_for(svc)
    plan = provider.plan(intent)
    nsg_change = next(c for c in plan.changes if c.kind == "nsg-rule")
    assert nsg_change.after["destination"] == "@frontend-address"  # known only after the LB write
    ingress = ensure(intent)
    nsg = allow_rule(state, intent.lb_name, ingress[0].ip)
    assert nsg["destinationAddressPrefix"] == ingress[0].ip
    provider.apply(provider.plan_delete(intent.ref))


def test_throttled_429_with_retry_after_converges_and_honours_the_delay(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service("t"))
    state.inject(Fault(method="PUT", path=r"/loadbalancers/", status=429, retry_after=0.3, times=2))
    state.inject(Fault(method="GET", path=r"/networksecuritygroups/", status=429, retry_after=0.2, times=1))
    provider.calls.reset()
    ingress = provider.apply(provider.plan(intent))
    stats = provider.calls.stats
    assert ingress[0].ip
    assert stats.throttled["loadBalancers.create_or_update"] == 2
    assert stats.throttled["networkSecurityGroups.get"] == 1
    assert stats.retries["loadBalancers.create_or_update"] == 2
    assert stats.backoff_seconds >= 0.3 + 0.3 + 0.2  # each wait at least the server's Retry-After
    assert provider.plan(intent).empty
    provider.apply(provider.plan_delete(intent.ref))


def test_server_errors_are_retried_and_a_persistent_one_surfaces(provider, intent_for, make_service, state):
    intent = intent_for(make_service("e"))
    state.inject(
        Fault(method="PUT", path=r"/publicipaddresses/", status=503, code="ServiceUnavailable", times=1)
    )
    provider.calls.reset()
    assert provider.apply(provider.plan(intent))[0].ip
    assert provider.calls.stats.retries["publicIPAddresses.create_or_update"] == 1
    other = intent_for(make_service("e2"))
    state.inject(
        Fault(method="PUT", path=r"/securityrules/", status=500, code="InternalServerError", times=-1)
    )
    plan = provider.plan(other)
    with pytest.raises(HttpResponseError) as info:
        provider.apply(plan)
    assert info.value.status_code == 500
    assert (
        provider.calls.stats.retries["securityRules.create_or_update"] == provider.settings.max_attempts - 1
    )
    state.clear_faults()
    provider.apply(provider.plan(other))  # a fresh plan + apply converges after the failure
    assert provider.plan(other).empty
    for i in (intent, other):
        provider.apply(provider.plan_delete(i.ref))


def test_latency_is_tolerated(provider, intent_for, make_service, ensure, state):
    state.inject(Fault(method="GET", path=r"/loadbalancers/", status=0, latency=0.2, times=2))
    intent = intent_for(make_service("slow"))
    ensure(intent)
    provider.apply(provider.plan_delete(intent.ref))


def test_public_ip_in_another_resource_group_is_found_and_deleted_by_ownership(
    provider, intent_for, make_service, ensure, state
):
    svc = make_service(
        "rg",
        annotations={"service.beta.kubernetes.io/azure-load-balancer-resource-group": "lbprov-sandbox-ips"},
    )
    intent = intent_for(svc)
    ingress = ensure(intent)
    pip_name = f"{provider.settings.cluster_name}-{intent.lb_name}"
    pip = state.get("publicIPAddresses", "lbprov-sandbox-ips", pip_name)
    assert pip is not None and pip["properties"]["ipAddress"] == ingress[0].ip
    plan = provider.plan_delete(intent.ref)  # no annotations here: the frontend names the IP
    assert ("delete", "public-ip", f"lbprov-sandbox-ips/{pip_name}") in [
        (c.action.value, c.kind, c.name) for c in plan.changes
    ]
    provider.apply(plan)
    assert state.get("publicIPAddresses", "lbprov-sandbox-ips", pip_name) is None


def test_list_owned_reports_every_service_with_its_resources_for_gc(
    provider, intent_for, make_service, ensure
):
    ext = intent_for(make_service("gc-ext", namespace="team-a", ports=[("TCP", 80), ("TCP", 443)]))
    internal = intent_for(make_service("gc-int", namespace="team-b", annotations={INTERNAL: "true"}))
    ensure(ext)
    ensure(internal)
    owned = {o.ref.uid: o for o in provider.list_owned()}
    assert set(owned) == {ext.ref.uid, internal.ref.uid}
    assert owned[ext.ref.uid].ref.key == "team-a/gc-ext"
    # an internal Service's only resources naming it were its NSG rules; they are shared by destination
    # now, so gc knows it by UID (what the delete needs) and not by name
    assert owned[internal.ref.uid].ref.uid == internal.ref.uid
    assert "nsg-rule" in {k for k, _ in owned[internal.ref.uid].resources}
    kinds = sorted(k for k, _ in owned[ext.ref.uid].resources)
    assert kinds == [
        "frontend-ip-configuration",
        "load-balancing-rule",
        "load-balancing-rule",
        "nsg-rule",
        "probe",
        "probe",
        "public-ip",
    ]
    assert owned[internal.ref.uid].name == f"{provider.settings.cluster_name}-internal"
    for o in owned.values():  # what gc does: delete by the reported ref
        provider.apply(provider.plan_delete(o.ref))
    assert provider.list_owned() == []
