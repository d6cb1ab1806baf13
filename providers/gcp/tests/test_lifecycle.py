"""Lifecycle and updates of one Service's load balancer, checked on the emulator's state."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import GCE_CLUSTER_ID, converge, intent_for, make_service
from google.api_core import exceptions as gexc
from lbprov_gcp import names as N

from lbprov.model import Action, InvalidService


def region_bucket(server: Any, coll: str) -> dict[str, dict[str, Any]]:
    emu = server.emulator
    return emu._bucket(emu.project, f"regions/{emu.region}", coll)


def rules(server: Any, lb: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in region_bucket(server, "forwardingRules").items() if n.startswith(lb)}


def backends(server: Any, lb: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in region_bucket(server, "backendServices").items() if n.startswith(lb)}


def members(server: Any) -> dict[str, list[str]]:
    emu = server.emulator
    out = {}
    for zone in emu.zones:
        group = emu._bucket(emu.project, f"zones/{zone}", "instanceGroups").get(
            N.ig_name("test", GCE_CLUSTER_ID)
        )
        if group is not None:
            out[zone] = sorted(m.split("/")[-1] for m in group["_members"])
    return out


def assert_converged(provider: Any, intent: Any) -> None:
    plan = provider.plan(intent)
    assert plan.empty, [f"{c.action} {c.kind} {c.name} {c.diff()}" for c in plan.changes]


def test_tcp_and_udp_get_one_rule_and_backend_each_on_one_ip_across_two_zones(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 53, 30053), ("UDP", 53, 30054), ("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    lb = intent.lb_name
    frs = rules(server, lb)
    assert set(frs) == {f"{lb}-tcp", f"{lb}-udp"}
    assert frs[f"{lb}-tcp"]["ports"] == ["53", "80"] and frs[f"{lb}-udp"]["ports"] == ["53"]
    assert {r["IPAddress"] for r in frs.values()} == {ingress.ip}
    assert {r["IPProtocol"] for r in frs.values()} == {"TCP", "UDP"}
    bss = backends(server, lb)
    assert {b["protocol"] for b in bss.values()} == {"TCP", "UDP"}
    zones = {n.zone for n in sandbox.nodes}
    assert len(zones) == 2
    for bs in bss.values():
        assert sorted(b["group"].split("/")[-3] for b in bs["backends"]) == sorted(zones)
        assert all(b["balancingMode"] == "CONNECTION" for b in bs["backends"])
        assert bs["healthChecks"][0].endswith(f"/healthChecks/{N.shared_hc_name('test')}")
    by_zone: dict[str, list[str]] = {}
    for n in sandbox.nodes:
        by_zone.setdefault(n.zone, []).append(n.name)
    assert members(server) == {z: sorted(v) for z, v in by_zone.items()}
    fw = server.emulator._bucket(server.emulator.project, "global", "firewalls")[f"k8s-fw-{lb}"]
    assert fw["allowed"] == [
        {"IPProtocol": "tcp", "ports": ["53", "80"]},
        {"IPProtocol": "udp", "ports": ["53"]},
    ]
    assert fw["targetTags"] == ["k8s-sandbox-node"]
    assert_converged(provider, intent)


def test_a_port_change_replaces_the_rule_and_keeps_the_ip(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)])
    uid = svc["metadata"]["uid"]
    (first,) = converge(provider, intent_for(provider, svc, sandbox.nodes))
    changed = intent_for(
        provider, make_service(uid=uid, ports=[("TCP", 80, 30080), ("TCP", 8443, 30443)]), sandbox.nodes
    )
    plan = provider.plan(changed)
    # the rule's ephemeral IP is promoted to reserved, the rule recreated on it, the reservation released
    assert [(c.action, c.kind) for c in plan.changes] == [
        (Action.CREATE, "address"),
        (Action.UPDATE, "firewall-rule"),
        (Action.REPLACE, "forwarding-rule"),
    ]
    assert plan.changes[0].after["address"] == first.ip and plan.changes[0].data["transient"]
    (second,) = provider.apply(plan)
    assert second == first
    assert not [a for a in server.emulator.all_of("addresses")]
    assert rules(server, changed.lb_name)[f"{changed.lb_name}-tcp"]["ports"] == ["80", "8443"]
    assert_converged(provider, changed)


def test_more_than_five_ports_use_all_ports(provider, sandbox, server):
    ports = [("TCP", 8000 + i, 30000 + i) for i in range(6)]
    intent = intent_for(provider, make_service(ports=ports), sandbox.nodes)
    converge(provider, intent)
    rule = rules(server, intent.lb_name)[f"{intent.lb_name}-tcp"]
    assert rule["allPorts"] is True and "ports" not in rule
    assert_converged(provider, intent)
    five = intent_for(provider, make_service(uid=intent.ref.uid, ports=ports[:5]), sandbox.nodes)
    converge(provider, five)
    rule = rules(server, intent.lb_name)[f"{intent.lb_name}-tcp"]
    assert rule["ports"] == ["8000", "8001", "8002", "8003", "8004"] and "allPorts" not in rule
    assert_converged(provider, five)


def test_removing_a_protocol_deletes_its_rule_before_its_backend_service(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    tcp_only = intent_for(
        provider, make_service(uid=intent.ref.uid, ports=[("TCP", 80, 30080)]), sandbox.nodes
    )
    plan = provider.plan(tcp_only)
    order = [(c.action, c.kind, c.name) for c in plan.changes]
    lb = intent.lb_name
    assert order.index((Action.DELETE, "forwarding-rule", f"{lb}-udp")) < order.index(
        (Action.DELETE, "backend-service", f"{lb}-udp")
    )
    provider.apply(plan)
    assert set(rules(server, lb)) == {f"{lb}-tcp"} and set(backends(server, lb)) == {f"{lb}-tcp"}
    assert_converged(provider, tcp_only)


def test_local_and_cluster_policies_swap_the_health_check(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)], local=True, hc_port=31999)
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    lb = intent.lb_name
    hcs = region_bucket(server, "healthChecks")
    assert set(hcs) == {lb}
    assert hcs[lb]["httpHealthCheck"] == {"port": 31999, "requestPath": "/healthz", "proxyHeader": "NONE"}
    fws = server.emulator._bucket(server.emulator.project, "global", "firewalls")
    assert fws[f"k8s-{lb}-http-hc"]["allowed"] == [{"IPProtocol": "tcp", "ports": ["31999"]}]
    assert fws[f"k8s-{lb}-http-hc"]["sourceRanges"] == [
        "130.211.0.0/22",
        "209.85.152.0/22",
        "209.85.204.0/22",
        "35.191.0.0/16",
    ]

    cluster = intent_for(
        provider, make_service(uid=intent.ref.uid, ports=[("TCP", 80, 30080)]), sandbox.nodes
    )
    converge(provider, cluster)
    shared = N.shared_hc_name("test")
    assert set(hcs) == {shared}
    assert hcs[shared]["httpHealthCheck"]["port"] == 10256
    assert f"k8s-{lb}-http-hc" not in fws and N.shared_hc_firewall_name("test") in fws
    assert backends(server, lb)[f"{lb}-tcp"]["healthChecks"][0].endswith(f"/{shared}")
    assert_converged(provider, cluster)

    converge(provider, intent)  # and back: the shared check goes since nobody else uses it
    assert set(hcs) == {lb}
    assert N.shared_hc_firewall_name("test") not in fws
    assert_converged(provider, intent)


def test_switching_to_local_keeps_the_shared_check_another_service_uses(provider, sandbox, server):
    other = intent_for(provider, make_service("other", ports=[("TCP", 81, 30081)]), sandbox.nodes)
    converge(provider, other)
    svc = make_service(ports=[("TCP", 80, 30080)])
    converge(provider, intent_for(provider, svc, sandbox.nodes))
    local = intent_for(provider, make_service(uid=svc["metadata"]["uid"], local=True), sandbox.nodes)
    converge(provider, local)
    assert N.shared_hc_name("test") in region_bucket(server, "healthChecks")
    assert_converged(provider, other)


def test_client_ip_affinity_is_patched_with_the_fingerprint(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    lb = intent.lb_name
    old_fp = backends(server, lb)[f"{lb}-tcp"]["fingerprint"]
    sticky = intent_for(provider, make_service(uid=intent.ref.uid, affinity=True), sandbox.nodes)
    plan = provider.plan(sticky)
    assert [(c.action, c.kind, c.diff()) for c in plan.changes] == [
        (Action.UPDATE, "backend-service", {"sessionAffinity": ("NONE", "CLIENT_IP")})
    ]
    provider.calls.reset()
    provider.apply(plan)
    assert provider.calls.stats.operations("write") == {"regionBackendServices.patch"}
    bs = backends(server, lb)[f"{lb}-tcp"]
    assert bs["sessionAffinity"] == "CLIENT_IP" and bs["fingerprint"] != old_fp
    assert_converged(provider, sticky)


def test_a_stale_fingerprint_fails_with_412_and_a_fresh_plan_converges(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    sticky = intent_for(provider, make_service(uid=intent.ref.uid, affinity=True), sandbox.nodes)
    plan = provider.plan(sticky)
    # someone changes the backend service between our plan and our apply
    backends(server, intent.lb_name)[f"{intent.lb_name}-tcp"]["fingerprint"] = "changed-by-someone"
    with pytest.raises(gexc.PreconditionFailed, match="fingerprint"):
        provider.apply(plan)
    converge(provider, sticky)
    assert_converged(provider, sticky)


def test_source_ranges_update_the_traffic_firewall_in_place(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)], source_ranges=["10.0.0.0/8"])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    fws = server.emulator._bucket(server.emulator.project, "global", "firewalls")
    name = f"k8s-fw-{intent.lb_name}"
    assert fws[name]["sourceRanges"] == ["10.0.0.0/8"]
    created = fws[name]["id"]
    narrowed = intent_for(
        provider,
        make_service(uid=intent.ref.uid, source_ranges=["192.0.2.0/24", "10.1.0.0/16"]),
        sandbox.nodes,
    )
    plan = provider.plan(narrowed)
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [(Action.UPDATE, "firewall-rule", name)]
    converge(provider, narrowed)
    assert fws[name]["sourceRanges"] == ["10.1.0.0/16", "192.0.2.0/24"] and fws[name]["id"] == created
    assert_converged(provider, narrowed)


def test_a_requested_ip_is_reserved_as_our_address_and_released_on_delete(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)], ip="203.0.113.77")
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert ingress.ip == "203.0.113.77"
    addrs = region_bucket(server, "addresses")
    assert addrs == {}  # reserved while the rule was made, then released: the rule holds the IP
    assert rules(server, intent.lb_name)[f"{intent.lb_name}-tcp"]["IPAddress"] == "203.0.113.77"
    assert_converged(provider, intent)
    # a new requested IP: reserved, the rule recreated on it, then released; never pointing at nothing
    moved = intent_for(provider, make_service(uid=intent.ref.uid, ip="203.0.113.78"), sandbox.nodes)
    plan = provider.plan(moved)
    assert [(c.action, c.kind) for c in plan.changes] == [
        (Action.CREATE, "address"),
        (Action.DELETE, "forwarding-rule"),
        (Action.UPDATE, "firewall-rule"),
        (Action.CREATE, "forwarding-rule"),
    ]
    assert provider.apply(plan)[0].ip == "203.0.113.78"
    assert_converged(provider, moved)
    provider.apply(provider.plan_delete(intent.ref))
    assert addrs == {}


def test_a_user_reserved_address_is_used_and_never_released(provider, sandbox, server):
    emu = server.emulator
    emu.put_raw("addresses", f"regions/{emu.region}", {"name": "my-static-ip", "address": "198.51.100.10"})
    svc = make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)], ip="198.51.100.10")
    intent = intent_for(provider, svc, sandbox.nodes)
    plan = provider.plan(intent)
    assert "address" not in {c.kind for c in plan.changes}
    (ingress,) = provider.apply(plan)
    assert ingress.ip == "198.51.100.10"
    addrs = region_bucket(server, "addresses")
    assert set(addrs) == {"my-static-ip"}
    assert {r["IPAddress"] for r in rules(server, intent.lb_name).values()} == {"198.51.100.10"}
    assert_converged(provider, intent)
    provider.apply(provider.plan_delete(intent.ref))
    assert set(addrs) == {"my-static-ip"}
    assert addrs["my-static-ip"].get("description") is None  # untouched


def test_external_to_internal_replaces_in_an_order_that_never_orphans_a_rule(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)])
    intent = intent_for(provider, svc, sandbox.nodes)
    (public,) = converge(provider, intent)
    internal_svc = make_service(
        uid=intent.ref.uid,
        ports=[("TCP", 80, 30080), ("UDP", 53, 30053)],
        annotations={"networking.gke.io/load-balancer-type": "Internal"},
    )
    internal = intent_for(provider, internal_svc, sandbox.nodes)
    assert internal.scheme == "internal"
    plan = provider.plan(internal)
    kinds = [(c.action.value, c.kind) for c in plan.changes]
    # the address is replaced (releasing it demotes the rules' IP to ephemeral), the rules go, the
    # firewall follows the new IP, the backend services are replaced, then the rules come back
    assert kinds == [
        ("replace", "address"),
        ("delete", "forwarding-rule"),
        ("delete", "forwarding-rule"),
        ("update", "firewall-rule"),
        ("replace", "backend-service"),
        ("replace", "backend-service"),
        ("create", "forwarding-rule"),
        ("create", "forwarding-rule"),
    ]
    (private,) = provider.apply(plan)
    assert private.ip != public.ip and private.ip.startswith("10.128.")
    lb = intent.lb_name
    for rule in rules(server, lb).values():
        assert rule["loadBalancingScheme"] == "INTERNAL" and rule["IPAddress"] == private.ip
        assert rule["subnetwork"].endswith("/subnetworks/lbprov-subnet")
    assert region_bucket(server, "addresses")[lb]["purpose"] == "SHARED_LOADBALANCER_VIP"
    assert_converged(provider, internal)

    back = intent_for(provider, make_service(uid=intent.ref.uid, ports=[("TCP", 80, 30080)]), sandbox.nodes)
    (again,) = converge(provider, back)
    assert again.ip.startswith("203.0.113.")
    assert_converged(provider, back)


def test_legacy_internal_annotation_and_standard_tier(provider, sandbox, server):
    legacy = make_service(annotations={"cloud.google.com/load-balancer-type": "internal"})
    assert intent_for(provider, legacy, sandbox.nodes).scheme == "internal"
    std = intent_for(
        provider, make_service(annotations={"cloud.google.com/network-tier": "Standard"}), sandbox.nodes
    )
    converge(provider, std)
    rule = rules(server, std.lb_name)[f"{std.lb_name}-tcp"]
    assert rule["networkTier"] == "STANDARD"
    assert region_bucket(server, "addresses") == {}
    assert_converged(provider, std)


def test_nodes_leaving_shrink_the_instance_groups_and_an_empty_zone_leaves_the_backends(
    provider, sandbox, server
):
    svc = make_service(ports=[("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    zone_a = sandbox.nodes[0].zone
    only_a = [n for n in sandbox.nodes if n.zone == zone_a]
    shrunk = intent_for(provider, svc, only_a)
    plan = provider.plan(shrunk)
    kinds = sorted((c.action.value, c.kind) for c in plan.changes)
    assert kinds == [("update", "backend-service"), ("update", "instance-group")]
    converge(provider, shrunk)
    assert {z: m for z, m in members(server).items() if m} == {zone_a: sorted(n.name for n in only_a)}
    bs = backends(server, intent.lb_name)[f"{intent.lb_name}-tcp"]
    assert [b["group"].split("/")[-3] for b in bs["backends"]] == [zone_a]
    assert_converged(provider, shrunk)
    # the nodes come back
    converge(provider, intent)
    assert_converged(provider, intent)


def test_deletion_finds_resources_by_uid_whatever_the_annotations_say_now(provider, sandbox, server):
    internal_svc = make_service(annotations={"networking.gke.io/load-balancer-type": "Internal"})
    intent = intent_for(provider, internal_svc, sandbox.nodes)
    converge(provider, intent)
    # the annotation is dropped before deletion: plan_delete needs only the Service's identity
    plan = provider.plan_delete(intent.ref)
    provider.apply(plan)
    for coll in ("forwardingRules", "backendServices", "healthChecks", "addresses"):
        assert region_bucket(server, coll) == {}


def test_an_apply_that_fails_midway_converges_on_the_next_plan(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)])
    intent = intent_for(provider, svc, sandbox.nodes)
    fault = server.inject(503, operations=["forwardingRules.insert"])
    with pytest.raises(gexc.ServiceUnavailable):
        converge(provider, intent)
    assert fault.fired == provider.settings.retry_attempts
    server.clear_faults()
    plan = provider.plan(intent)
    assert [(c.action.value, c.kind) for c in plan.changes] == [
        ("create", "forwarding-rule"),
        ("create", "forwarding-rule"),
    ]
    (ingress,) = provider.apply(plan)
    assert ingress.ip == region_bucket(server, "addresses")[intent.lb_name]["address"]
    assert_converged(provider, intent)


def test_long_running_operations_are_waited_for(provider, sandbox, server):
    server.emulator.operation_delay = 0.05
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    waited = provider.calls.stats.operations("read") & {
        "regionOperations.wait",
        "zoneOperations.wait",
        "globalOperations.wait",
    }
    assert waited == {"regionOperations.wait", "zoneOperations.wait", "globalOperations.wait"}
    server.emulator.operation_delay = 0.0
    assert_converged(provider, intent)


def test_an_ip_that_another_service_holds_is_refused(provider, sandbox, server):
    first = intent_for(provider, make_service("first", ip="203.0.113.90"), sandbox.nodes)
    converge(provider, first)
    second = intent_for(provider, make_service("second", ip="203.0.113.90"), sandbox.nodes)
    server.clear_log()
    with pytest.raises(InvalidService, match=r"already the address of Service default/first"):
        provider.plan(second)
    assert server.mutating_requests() == []
