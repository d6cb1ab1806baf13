"""DESIGN.md invariants for the Azure provider, through azure-mgmt-network against the emulator:
convergence, idempotence, ownership, no leaks, read-only dry runs."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider

from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import OwnershipConflict

RG = "lbprov-sandbox"


def test_create_converges_and_second_apply_writes_nothing(
    provider, intent_for, make_service, ensure, state, h
):
    intent = intent_for(make_service(ports=[("TCP", 80), ("TCP", 443), ("UDP", 53)]))
    ingress = ensure(intent)  # asserts empty re-plan and zero writes on the second apply
    pip = state.get("publicIPAddresses", RG, f"{provider.settings.cluster_name}-{intent.lb_name}")
    assert pip is not None and ingress[0].ip == pip["properties"]["ipAddress"]
    lb = h.lb_of(state, provider.settings.cluster_name)
    base = intent.lb_name
    assert h.part_names(lb, "frontendIPConfigurations") == {base}
    want = {f"{base}-TCP-80", f"{base}-TCP-443", f"{base}-UDP-53"}
    assert h.part_names(lb, "loadBalancingRules") == want
    assert h.part_names(lb, "probes") == want
    rules = {r["name"]: r["properties"] for r in lb["properties"]["loadBalancingRules"]}
    ports = {(p.protocol, p.port): p.node_port for p in intent.ports}
    assert ports[("TCP", 80)] != 80
    assert rules[f"{base}-TCP-80"]["backendPort"] == 80  # floating IP on by default, as upstream
    assert rules[f"{base}-TCP-80"]["enableFloatingIP"] is True
    assert rules[f"{base}-TCP-80"]["enableTcpReset"] is True
    pool = lb["properties"]["backendAddressPools"][0]
    assert pool["name"] == provider.settings.cluster_name
    assert sorted(
        a["properties"]["ipAddress"] for a in pool["properties"]["loadBalancerBackendAddresses"]
    ) == sorted(t.internal_ip for t in intent.targets)
    # ownership marks: tags on the public IP, Service map on the LB, cluster tags on the LB
    assert pip["tags"]["lbprov.io_service-uid"] == intent.ref.uid
    assert pip["tags"][f"kubernetes.io_cluster_{provider.settings.cluster_name}"] == "owned"
    assert intent.ref.uid.replace("-", "") in " ".join(
        v for k, v in lb["tags"].items() if k.startswith("lbprov.io_services.")
    )
    provider.apply(provider.plan_delete(intent.ref))


def test_delete_of_last_service_leaves_nothing_owned_shared_lb_included(
    provider, intent_for, make_service, ensure, state, h
):
    cluster = provider.settings.cluster_name
    ext = intent_for(make_service("a", ports=[("TCP", 80)], source_ranges=["203.0.113.0/24"]))
    ext2 = intent_for(make_service("b", ports=[("TCP", 81)]))
    internal = intent_for(
        make_service("c", annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
    )
    for i in (ext, ext2, internal):
        ensure(i)
    assert h.lb_of(state, cluster) is not None and h.lb_of(state, f"{cluster}-internal") is not None
    provider.apply(provider.plan_delete(ext.ref))
    assert h.lb_of(state, cluster) is not None  # b still uses it
    for i in (ext2, internal):
        provider.apply(provider.plan_delete(i.ref))
        assert provider.plan_delete(i.ref).empty
    assert h.lb_of(state, cluster) is None
    assert h.lb_of(state, f"{cluster}-internal") is None
    uids = {ext.ref.uid, ext2.ref.uid, internal.ref.uid}
    leftovers = [
        p["name"]
        for p in state.resources["publicIPAddresses"].values()
        if (p.get("tags") or {}).get("lbprov.io_service-uid") in uids
    ]
    assert leftovers == []
    nsg = state.get("networkSecurityGroups", RG, "lbprov-nsg")
    bases = {i.lb_name for i in (ext, ext2, internal)}
    assert not [r["name"] for r in nsg["properties"]["securityRules"] if any(b in r["name"] for b in bases)]
    assert provider.list_owned() == []


def test_foreign_frontend_rule_and_nsg_rule_survive_every_operation(
    provider, intent_for, make_service, ensure, state, h
):
    cluster = provider.settings.cluster_name
    first = intent_for(make_service("first"))
    ensure(first)
    # someone else adds their own frontend + probe + rule to the shared LB, and a rule to the NSG
    lb = h.lb_of(state, cluster)
    foreign_pip = state.put(
        "publicIPAddresses",
        RG,
        f"foreign-{cluster}",
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    )
    body = {k: lb[k] for k in ("location", "sku", "tags")}
    props = lb["properties"]
    lb_id = lb["id"]
    body["properties"] = {
        "frontendIPConfigurations": [
            *props["frontendIPConfigurations"],
            {"name": "foreign-fe", "properties": {"publicIPAddress": {"id": foreign_pip["id"]}}},
        ],
        "backendAddressPools": props["backendAddressPools"],
        "probes": [
            *props["probes"],
            {
                "name": "foreign-probe",
                "properties": {"protocol": "Tcp", "port": 31999, "intervalInSeconds": 5, "numberOfProbes": 2},
            },
        ],
        "loadBalancingRules": [
            *props["loadBalancingRules"],
            {
                "name": "foreign-rule",
                "properties": {
                    "protocol": "Tcp",
                    "frontendPort": 8080,
                    "backendPort": 31999,
                    "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/foreign-fe"},
                    "backendAddressPool": {"id": props["backendAddressPools"][0]["id"]},
                    "probe": {"id": f"{lb_id}/probes/foreign-probe"},
                },
            },
        ],
    }
    state.put("loadBalancers", RG, cluster, body)
    foreign_priority = state.free_priority(RG, "lbprov-nsg")  # the next Service would want it
    state.put_security_rule(
        RG,
        "lbprov-nsg",
        f"foreign-{cluster}",
        {
            "protocol": "Tcp",
            "access": "Allow",
            "direction": "Inbound",
            "priority": foreign_priority,
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "22",
        },
    )

    def foreign_intact() -> None:
        lb_now = h.lb_of(state, cluster)
        assert "foreign-fe" in h.part_names(lb_now, "frontendIPConfigurations")
        assert "foreign-rule" in h.part_names(lb_now, "loadBalancingRules")
        assert "foreign-probe" in h.part_names(lb_now, "probes")
        nsg = state.get("networkSecurityGroups", RG, "lbprov-nsg")
        rule = next(r for r in nsg["properties"]["securityRules"] if r["name"] == f"foreign-{cluster}")
        assert (
            rule["properties"]["priority"] == foreign_priority
            and rule["properties"]["destinationPortRange"] == "22"
        )

    ensure(first)  # a re-plan sees the foreign parts and does not want to touch them
    foreign_intact()
    second = intent_for(make_service("second", ports=[("TCP", 80), ("UDP", 53)]))
    ensure(second)  # the foreign rule holds the next free priority: allocated around it
    foreign_intact()
    ensure(intent_for(make_service("first", uid=first.ref.uid, ports=[("TCP", 8443)])))
    foreign_intact()
    provider.apply(provider.plan_delete(first.ref))
    provider.apply(provider.plan_delete(second.ref))
    foreign_intact()
    lb_now = h.lb_of(state, cluster)
    assert lb_now is not None  # the LB still holds foreign parts: it is not deleted
    assert h.part_names(lb_now, "frontendIPConfigurations") == {"foreign-fe"}
    assert state.get("publicIPAddresses", RG, f"foreign-{cluster}") is not None


def test_load_balancer_name_collision_with_foreign_lb_is_an_error_never_adoption(
    provider, intent_for, make_service, state
):
    cluster = provider.settings.cluster_name
    state.put(
        "loadBalancers",
        RG,
        cluster,
        {"location": "westeurope", "sku": {"name": "Standard"}, "tags": {"owner": "capz"}, "properties": {}},
    )
    before = state.get("loadBalancers", RG, cluster)
    with pytest.raises(OwnershipConflict, match="not owned by cluster"):
        provider.plan(intent_for(make_service()))
    assert state.get("loadBalancers", RG, cluster)["etag"] == before["etag"]


def test_public_ip_name_collision_with_foreign_ip_is_an_error(provider, intent_for, make_service, state):
    intent = intent_for(make_service())
    name = f"{provider.settings.cluster_name}-{intent.lb_name}"
    state.put(
        "publicIPAddresses",
        RG,
        name,
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
            "tags": {"team": "x"},
        },
    )
    with pytest.raises(OwnershipConflict, match="not owned by Service"):
        provider.plan(intent)


def test_dry_run_is_read_only_on_the_emulator_side(
    sandbox, provider, intent_for, make_service, ensure, state
):
    existing = intent_for(make_service("existing"))
    ensure(existing)
    dry = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": provider.settings.cluster_name}, read_only=True
    )
    before = len(sandbox.mutating_requests())
    new = intent_for(make_service("new", ports=[("TCP", 80), ("UDP", 53)]), prov=dry)
    plan = dry.plan(new)
    assert not plan.empty
    changed = intent_for(make_service("existing", uid=existing.ref.uid, ports=[("TCP", 81)]), prov=dry)
    assert not dry.plan(changed).empty
    assert not dry.plan_delete(existing.ref).empty
    dry.list_owned()
    with pytest.raises(ReadOnlyViolation):
        dry.apply(plan)
    assert dry.calls.stats.writes == 0 and dry.calls.stats.reads > 0
    assert sum(dry.calls.stats.refused.values()) >= 1
    assert sandbox.mutating_requests()[before:] == []  # not one PUT/DELETE reached the emulator
    provider.apply(provider.plan_delete(existing.ref))


def test_delete_finds_resources_by_ownership_not_annotations(
    provider, intent_for, make_service, ensure, state, h
):
    """A Service created internal with a custom subnet, deleted after its annotations were dropped."""
    cluster = provider.settings.cluster_name
    svc = make_service(
        "moved",
        annotations={
            "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
            "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "services",
        },
    )
    intent = intent_for(svc)
    ingress = ensure(intent)
    assert ingress[0].ip.startswith("10.240.8.")  # the services subnet
    plan = provider.plan_delete(intent.ref)  # knows nothing of the annotations
    kinds = {(c.kind, c.action.value) for c in plan.changes}
    assert ("frontend-ip-configuration", "delete") in kinds and ("nsg-rule", "delete") in kinds
    provider.apply(plan)
    assert h.lb_of(state, f"{cluster}-internal") is None
    assert provider.plan_delete(intent.ref).empty


def test_read_round_shares_reads_and_still_converges(provider, intent_for, make_service, ensure):
    intents = [intent_for(make_service(f"r{i}")) for i in range(6)]
    with provider.read_round():
        for i in intents[:3]:
            provider.apply(provider.plan(i))
        provider.calls.reset()
        for i in intents[3:]:  # later plans in the round see the earlier writes (no stale "create LB")
            plan = provider.plan(i)
            assert not any(c.kind == "load-balancer" for c in plan.changes)
            provider.apply(plan)
    provider.calls.reset()
    with provider.read_round():
        assert all(provider.plan(i).empty for i in intents)
    stats = provider.calls.stats
    assert stats.writes == 0 and stats.reads <= 4  # both LBs, the NSG, one public IP listing
    for i in intents:
        provider.apply(provider.plan_delete(i.ref))
