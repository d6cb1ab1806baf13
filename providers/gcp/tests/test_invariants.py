"""DESIGN.md invariants for the GCP provider, through google-cloud-compute against the emulator:
convergence, idempotence, ownership, no leaks, read-only dry runs."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import CLUSTER_ID, GCE_CLUSTER_ID, converge, intent_for, make_service, provider_for
from lbprov_gcp import names as N

from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import OwnershipConflict

LB_COLLECTIONS = (
    "forwardingRules",
    "backendServices",
    "healthChecks",
    "addresses",
    "firewalls",
    "instanceGroups",
)


def inventory(server: Any) -> dict[str, set[str]]:
    """Every load-balancing resource in the emulator, by collection (zonal ones as zone/name)."""
    emu = server.emulator
    out: dict[str, set[str]] = {}
    with emu.lock:
        for (_, scope, coll), bucket in emu._store.items():
            if coll in LB_COLLECTIONS and bucket:
                prefix = scope.split("/")[-1] + "/" if scope.startswith("zones/") else ""
                out.setdefault(coll, set()).update(prefix + n for n in bucket)
    return out


def test_plan_after_apply_is_empty_and_second_apply_writes_nothing(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080), ("TCP", 443, 30443), ("UDP", 53, 30053)])
    intent = intent_for(provider, svc, sandbox.nodes)
    ingress = converge(provider, intent)
    assert ingress and ingress[0].ip and ingress[0].ip.startswith("203.0.113.")

    plan = provider.plan(intent)
    assert plan.empty, plan.changes
    assert plan.ingress == ingress  # status is known from reads alone

    provider.calls.reset()
    server.clear_log()
    assert provider.apply(plan) == ingress
    assert provider.calls.stats.writes == 0
    assert server.mutating_requests() == []  # proven on the emulator's side too


def test_resources_carry_ownership_json_in_their_description(provider, sandbox, server):
    svc = make_service(name="owned", namespace="shop", local=True)
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    emu = server.emulator
    uid = svc["metadata"]["uid"]
    per_service = [
        r
        for coll in ("forwardingRules", "backendServices", "healthChecks", "addresses", "firewalls")
        for r in emu.all_of(coll)
    ]
    assert len(per_service) == 5  # rule, backend, check, traffic + check firewalls (the IP is released)
    for res in per_service:
        tags = N.ownership(res["description"])
        assert tags["kubernetes.io/cluster/test"] == "owned"
        assert tags["lbprov.io/service-uid"] == uid
        assert tags["kubernetes.io/service-name"] == "shop/owned"
    for group in emu.all_of("instanceGroups"):
        tags = N.ownership(group["description"])
        assert tags == {
            "kubernetes.io/cluster/test": "owned",
            "lbprov.io/managed-by": "lbprov",
            "lbprov.io/cluster-id": CLUSTER_ID,
        }


def test_after_the_last_service_is_deleted_nothing_remains(provider, sandbox, server):
    before = inventory(server)
    a = intent_for(provider, make_service("a", ports=[("TCP", 80, 30001)]), sandbox.nodes)
    b = intent_for(provider, make_service("b", ports=[("UDP", 53, 30002)], local=True), sandbox.nodes)
    c = intent_for(provider, make_service("c", ports=[("TCP", 8080, 30003)]), sandbox.nodes)
    for intent in (a, b, c):
        converge(provider, intent)

    provider.apply(provider.plan_delete(a.ref))
    after_a = inventory(server)
    # a's own resources are gone; the shared ones stay for b and c
    assert not any(a.lb_name in name for names in after_a.values() for name in names)
    assert N.shared_hc_name("test") in after_a["healthChecks"]
    assert len(after_a["instanceGroups"]) == 2

    provider.apply(provider.plan_delete(c.ref))
    after_c = inventory(server)
    # c was the last Cluster Service: the shared kube-proxy check and its firewall go
    assert N.shared_hc_name("test") not in after_c["healthChecks"]
    assert N.shared_hc_firewall_name("test") not in after_c["firewalls"]
    assert len(after_c["instanceGroups"]) == 2  # b still uses the groups

    provider.apply(provider.plan_delete(b.ref))
    left = inventory(server)
    # the k8s-ig--<cluster ID> groups are shared with upstream and ingress-gce: never deleted
    assert set(left) == {"instanceGroups"} and len(left["instanceGroups"]) == 2
    assert before == {}
    # and deleting again is a no-op that finds nothing
    assert provider.plan_delete(b.ref).empty


def _foreign_rule(server: Any, name: str, ip: str | None = None) -> None:
    """A user's own load balancer (health check, backend service, forwarding rule) made with other tools."""
    emu = server.emulator
    region = f"regions/{emu.region}"
    emu.put_raw(
        "healthChecks",
        region,
        {"name": f"{name}-hc", "type": "TCP", "tcpHealthCheck": {"port": 22}},
    )
    emu.put_raw(
        "backendServices",
        region,
        {
            "name": f"{name}-bs",
            "protocol": "TCP",
            "loadBalancingScheme": "EXTERNAL",
            "healthChecks": [f"{region}/healthChecks/{name}-hc"],
        },
    )
    body = {"name": name, "backendService": f"{region}/backendServices/{name}-bs", "ports": ["22"]}
    emu.put_raw("forwardingRules", region, body)


def test_foreign_resources_survive_the_whole_lifecycle(provider, sandbox, server):
    emu = server.emulator
    emu.put_raw(
        "firewalls",
        "global",
        {
            "name": "allow-ssh",
            "network": "global/networks/lbprov-net",
            "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
            "targetTags": ["k8s-sandbox-node"],
        },
    )
    _foreign_rule(server, "user-lb")
    foreign = {
        coll: {n: dict(r) for n, r in emu._bucket(emu.project, scope, coll).items()}
        for coll, scope in (
            ("firewalls", "global"),
            ("forwardingRules", f"regions/{emu.region}"),
            ("backendServices", f"regions/{emu.region}"),
            ("healthChecks", f"regions/{emu.region}"),
        )
    }
    svc = make_service(ports=[("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    converge(
        provider, intent_for(provider, make_service(uid=svc["metadata"]["uid"], local=True), sandbox.nodes)
    )
    provider.apply(provider.plan_delete(intent.ref))
    for coll, items in foreign.items():
        bucket = emu._bucket(emu.project, "global" if coll == "firewalls" else f"regions/{emu.region}", coll)
        assert {n: bucket[n] for n in items} == items, f"{coll} changed"
        assert set(bucket) == set(items), f"{coll}: only the foreign resources remain"
    assert {o.ref.uid for o in provider.list_owned()} == set()


def test_a_foreign_forwarding_rule_with_our_name_is_an_error_and_is_never_touched(provider, sandbox, server):
    svc = make_service(ports=[("TCP", 80, 30080)])
    intent = intent_for(provider, svc, sandbox.nodes)
    collided = N.rule_name(intent.lb_name, "TCP")
    _foreign_rule(server, collided)
    emu = server.emulator
    original = dict(emu._bucket(emu.project, f"regions/{emu.region}", "forwardingRules")[collided])

    server.clear_log()
    with pytest.raises(
        OwnershipConflict, match=rf"forwarding-rule '{collided}'.*not owned by Service default/web"
    ):
        provider.plan(intent)
    assert server.mutating_requests() == []
    # Deleting the Service must not take the foreign rule either: it carries no ownership.
    provider.apply(provider.plan_delete(intent.ref))
    assert emu._bucket(emu.project, f"regions/{emu.region}", "forwardingRules")[collided] == original


def test_upstreams_instance_group_is_shared_not_an_ownership_conflict(provider, sandbox, server):
    emu = server.emulator
    zone = sandbox.nodes[0].zone
    name = N.ig_name("test", GCE_CLUSTER_ID)
    emu.put_raw("instanceGroups", f"zones/{zone}", {"name": name, "description": "made by upstream"})
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    group = emu._bucket(emu.project, f"zones/{zone}", "instanceGroups")[name]
    assert group["description"] == "made by upstream"  # used, never relabelled or replaced
    assert sorted(m.split("/")[-1] for m in group["_members"]) == sorted(
        n.name for n in sandbox.nodes if n.zone == zone
    )


def test_dry_run_plans_without_a_single_mutating_request(sandbox, server):
    reader = provider_for(sandbox, read_only=True)
    svc = make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)], local=True)
    intent = intent_for(reader, svc, sandbox.nodes)
    server.clear_log()
    plan = reader.plan(intent)
    assert len(plan.changes) == 10
    with pytest.raises(ReadOnlyViolation, match=r"instanceGroups\.insert"):
        reader.apply(plan)
    assert reader.calls.stats.refused["instanceGroups.insert"] == 1
    assert reader.calls.stats.writes == 0
    assert server.mutating_requests() == []
    assert server.requests  # the reads did reach it

    # and on an existing load balancer, a dry-run delete and re-plan stay read-only too
    writer = provider_for(sandbox)
    converge(writer, intent)
    server.clear_log()
    changed = intent_for(
        reader, make_service(uid=svc["metadata"]["uid"], ports=[("TCP", 81, 30081)]), sandbox.nodes
    )
    assert not reader.plan(changed).empty
    assert len(reader.plan_delete(intent.ref).changes) >= 6
    assert server.mutating_requests() == []


def test_list_owned_reports_each_services_load_balancer_for_gc(provider, sandbox, server):
    a = intent_for(
        provider,
        make_service("a", namespace="x", ports=[("TCP", 80, 30001), ("UDP", 53, 30002)]),
        sandbox.nodes,
    )
    b = intent_for(
        provider,
        make_service("b", annotations={"networking.gke.io/load-balancer-type": "Internal"}, local=True),
        sandbox.nodes,
    )
    converge(provider, a)
    converge(provider, b)
    _foreign_rule(server, "not-ours")
    owned = {o.ref: o for o in provider.list_owned()}
    assert set(owned) == {a.ref, b.ref}
    assert owned[a.ref].name == a.lb_name and owned[a.ref].kind == "gcp-passthrough-external"
    assert owned[b.ref].kind == "gcp-passthrough-internal"
    kinds = [k for k, _ in owned[a.ref].resources]
    assert kinds.count("forwarding-rule") == 2 and kinds.count("backend-service") == 2
    assert ("health-check", b.lb_name) in owned[b.ref].resources
    # another cluster's provider sees none of it
    other = provider_for(sandbox, cluster_name="other")
    assert other.list_owned() == []
