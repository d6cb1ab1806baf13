"""Migration in place from cloud-provider-azure: its resources for a Service are adopted, not recreated.

Each test first makes, on the ARM emulator and the way upstream makes them
(:mod:`lbprov_azure.sandbox.cloud_provider_azure`), the resources of one or more Services, then runs
lbprov's plan/apply through azure-mgmt-network: the plan shows ``adopt``, the Service keeps its IP,
a second plan is empty, and a delete leaves nothing of upstream's for the Service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState
from lbprov_azure.sandbox.cloud_provider_azure import frontend_names
from lbprov_azure.testing import SANDBOX_RG, converge, lb_of, upstream_service
from lbprov_azure.testing import node_object as h_node

from lbprov import naming
from lbprov.model import Action, Intent, OwnershipConflict, Plan

Svc = dict[str, Any]


class Env(NamedTuple):
    """The fixtures every adoption test takes, in one (unpacked at the top of each test)."""

    state: ArmState
    provider: AzureProvider
    make_service: Callable[..., Svc]
    nodes: list[dict[str, Any]]
    intent_for: Callable[..., Intent]


@pytest.fixture
def env(
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    nodes: list[dict[str, Any]],
    intent_for: Callable[..., Intent],
) -> Env:
    return Env(state, provider, make_service, nodes, intent_for)


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action.value, c.kind) for c in plan.changes]


def nsg_rules(state: ArmState, provider: AzureProvider) -> dict[str, Any]:
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, str(provider.settings.security_group_name))
    assert nsg is not None
    return {r["name"]: r for r in nsg["properties"]["securityRules"]}


def pip_creates(state: ArmState) -> int:
    return sum(
        1
        for r in state.log
        if r.method == "PUT" and r.status == 201 and "publicipaddresses" in r.path.lower()
    )


def test_upstream_service_is_adopted_in_place_and_keeps_its_ip(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    svc = make_service("web", ports=[("TCP", 80), ("TCP", 443)])
    ip = upstream_service(state, provider, svc, nodes)
    cluster = provider.settings.cluster_name
    base = naming.lb_name(svc["metadata"]["uid"])
    assert {n for n in nsg_rules(state, provider) if n.startswith(base)} == {
        f"{base}-TCP-80-Internet",
        f"{base}-TCP-443-Internet",
    }
    intent = intent_for(svc)
    plan = provider.plan(intent)
    got = actions(plan)
    assert ("adopt", "load-balancer") in got and ("adopt", "public-ip") in got
    assert got.count(("adopt", "load-balancing-rule")) == 2 and got.count(("adopt", "probe")) == 2
    assert ("adopt", "frontend-ip-configuration") in got
    # nothing of the Service's is recreated: no create of a frontend, rule, probe or public IP
    assert not [
        c
        for c in plan.changes
        if c.action == Action.CREATE and c.kind != "nsg-rule" and c.kind != "lb-service-tag"
    ]
    # upstream's NSG rules go only after lbprov's own are written
    kinds = [(c.action, c.name.rsplit("/", 1)[-1]) for c in plan.changes if c.kind == "nsg-rule"]
    assert kinds[0][0] == Action.CREATE and {a for a, _ in kinds[1:]} == {Action.DELETE}
    assert plan.summary().startswith("7 to adopt, 2 to create, 0 to update")
    assert plan.ingress[0].ip == ip

    before = pip_creates(state)
    ingress = converge(provider, intent)
    assert ingress[0].ip == ip
    assert pip_creates(state) == before
    pip = state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{base}")
    assert pip is not None and pip["properties"]["ipAddress"] == ip
    assert (
        "k8s-azure-service" not in pip["tags"]
        and pip["tags"]["lbprov.io_service-uid"] == svc["metadata"]["uid"]
    )
    lb = lb_of(state, cluster)
    assert lb is not None and lb["tags"][f"kubernetes.io_cluster_{cluster}"] == "owned"
    assert lb["tags"]["lbprov.io_cluster-id"] == provider.settings.cluster_id
    rules = nsg_rules(state, provider)
    assert not [n for n in rules if n.startswith(base)]
    # lbprov's allow rule (shared by Services that differ only in destination) now admits the IP
    admits = [
        n
        for n, r in rules.items()
        if ip
        in [
            r["properties"].get("destinationAddressPrefix"),
            *(r["properties"].get("destinationAddressPrefixes") or []),
        ]
    ]
    assert admits and all(n.startswith("lbprov-") for n in admits)

    provider.apply(provider.plan_delete(intent.ref))
    assert state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{base}") is None
    assert not frontend_names(lb_of(state, cluster), base)
    assert not [n for n in nsg_rules(state, provider) if base in n]


def test_adoption_updates_only_what_differs(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    svc = make_service("tuned", ports=[("TCP", 80)])
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"] = "10"
    ip = upstream_service(state, provider, svc, nodes)
    plan = provider.plan(intent_for(svc))
    rule = [c for c in plan.changes if c.kind == "load-balancing-rule"]
    assert [c.action for c in rule] == [Action.UPDATE] and rule[0].diff() == {"idle_timeout": (4, 10)}
    assert ("adopt", "probe") in actions(plan) and ("adopt", "frontend-ip-configuration") in actions(plan)
    assert converge(provider, intent_for(svc))[0].ip == ip


def test_other_upstream_services_on_the_adopted_lb_are_untouched_then_adopted(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    a, b = make_service("a"), make_service("b", ports=[("TCP", 8080)])
    ip_a, ip_b = upstream_service(state, provider, a, nodes), upstream_service(state, provider, b, nodes)
    cluster = provider.settings.cluster_name
    base_b = naming.lb_name(b["metadata"]["uid"])
    parts_b = frontend_names(lb_of(state, cluster), base_b)
    assert converge(provider, intent_for(a))[0].ip == ip_a
    assert frontend_names(lb_of(state, cluster), base_b) == parts_b  # b's parts stay upstream's
    assert f"{base_b}-TCP-8080-Internet" in nsg_rules(state, provider)
    plan_b = provider.plan(intent_for(b))
    assert ("adopt", "load-balancer") not in actions(plan_b)  # already lbprov's
    assert ("adopt", "public-ip") in actions(plan_b)
    assert converge(provider, intent_for(b))[0].ip == ip_b


def test_internal_upstream_service_keeps_its_private_address(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    svc = make_service(
        "db",
        ports=[("TCP", 5432)],
        annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
    )
    addr = upstream_service(state, provider, svc, nodes, internal=True)
    plan = provider.plan(intent_for(svc))
    assert ("adopt", "load-balancer") in actions(plan) and ("adopt", "frontend-ip-configuration") in actions(
        plan
    )
    assert converge(provider, intent_for(svc))[0].ip == addr


def test_shared_upstream_nsg_rules_lose_the_service_address(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    a, b = make_service("sa"), make_service("sb")
    ip_a = upstream_service(state, provider, a, nodes, nsg_style="shared")
    ip_b = upstream_service(state, provider, b, nodes, nsg_style="shared")
    (shared,) = [n for n in nsg_rules(state, provider) if n.startswith("k8s-azure-lb_")]
    assert sorted(nsg_rules(state, provider)[shared]["properties"]["destinationAddressPrefixes"]) == sorted(
        [ip_a, ip_b]
    )
    converge(provider, intent_for(a))
    assert nsg_rules(state, provider)[shared]["properties"]["destinationAddressPrefixes"] == [ip_b]
    converge(provider, intent_for(b))
    assert shared not in nsg_rules(state, provider)  # its last Service left it


def test_a_never_adopted_predecessor_is_deleted_with_its_service(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    svc = make_service("gone")
    upstream_service(state, provider, svc, nodes)
    cluster = provider.settings.cluster_name
    base = naming.lb_name(svc["metadata"]["uid"])
    provider.apply(provider.plan_delete(intent_for(svc).ref))
    assert state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{base}") is None
    assert not frontend_names(lb_of(state, cluster), base)
    assert not [n for n in nsg_rules(state, provider) if base in n]
    assert provider.plan_delete(intent_for(svc).ref).empty
    # the load balancer stays upstream's (no lbprov tag, no identity): still adoptable by the others
    lb = lb_of(state, cluster)
    assert lb is not None and not [k for k in lb["tags"] if k.startswith(("lbprov", "kubernetes.io"))]
    assert converge(provider, intent_for(make_service("next")))[0].ip


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        (
            {"k8s-azure-service": "default/web", "k8s-azure-cluster-name": "another-cluster"},
            "another-cluster",
        ),
        ({"k8s-azure-service": "default/other", "k8s-azure-cluster-name": "@cluster"}, "default/other"),
        ({"k8s-azure-service": "default/web,default/web2", "k8s-azure-cluster-name": "@cluster"}, "web2"),
        ({}, "no ownership tags"),
    ],
    ids=["other-cluster", "other-service", "shared-ip", "untagged"],
)
def test_look_alikes_stay_ownership_conflicts(
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    nodes: list[dict[str, Any]],
    intent_for: Callable[..., Intent],
    tags: dict[str, str],
    why: str,
) -> None:
    cluster = provider.settings.cluster_name
    tags = {k: v.replace("@cluster", cluster) for k, v in tags.items()}
    svc = make_service("web")
    upstream_service(state, provider, svc, nodes, pip_tags=tags)
    writes = len(state.mutating_requests())
    with pytest.raises(OwnershipConflict, match=why):
        provider.plan(intent_for(svc))
    assert len(state.mutating_requests()) == writes


def test_a_new_service_adopts_the_upstream_lb_that_holds_its_nodes(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    old, new = make_service("old"), make_service("new")
    ip_old = upstream_service(state, provider, old, nodes)
    cluster = provider.settings.cluster_name
    base_old = naming.lb_name(old["metadata"]["uid"])
    parts_old = frontend_names(lb_of(state, cluster), base_old)
    plan = provider.plan(intent_for(new))
    assert ("adopt", "load-balancer") in actions(plan) and ("create", "frontend-ip-configuration") in actions(
        plan
    )
    converge(provider, intent_for(new))
    assert frontend_names(lb_of(state, cluster), base_old) == parts_old  # old's parts stay upstream's
    assert converge(provider, intent_for(old))[0].ip == ip_old


def test_a_load_balancer_of_the_cluster_name_without_its_nodes_or_service_is_a_conflict(
    sandbox: Any,
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    nodes: list[dict[str, Any]],
    intent_for: Callable[..., Intent],
) -> None:
    cluster = provider.settings.cluster_name
    # another cluster of the same name (other nodes) made a load balancer named like this one's
    others = [h_node(sandbox.add_node(f"{cluster}-other{i}")) for i in range(2)]
    upstream_service(state, provider, make_service("theirs"), others)
    writes = len(state.mutating_requests())
    with pytest.raises(OwnershipConflict, match="adopted with the first of its Services"):
        provider.plan(intent_for(make_service("mine")))
    assert len(state.mutating_requests()) == writes


def test_aks_load_balancer_keeps_its_outbound_set_up_and_snat_setting(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    svc = make_service("edge", ports=[("TCP", 80)])
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"] = "30"
    ip = upstream_service(state, provider, svc, nodes, aks_outbound=True)
    cluster = provider.settings.cluster_name
    assert converge(provider, intent_for(svc))[0].ip == ip
    lb = lb_of(state, cluster)
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["outboundRules"]] == ["aksOutboundRule"]
    assert "aksOutboundBackendPool" in {p["name"] for p in lb["properties"]["backendAddressPools"]}
    (rule,) = lb["properties"]["loadBalancingRules"]
    # the rule was updated (idle timeout) and kept AKS's disableOutboundSnat
    assert (
        rule["properties"]["idleTimeoutInMinutes"] == 30 and rule["properties"]["disableOutboundSnat"] is True
    )
    provider.apply(provider.plan_delete(intent_for(svc).ref))
    lb = lb_of(state, cluster)
    assert lb is not None, "AKS's load balancer (outbound rules) is never deleted"
    assert [r["name"] for r in lb["properties"]["outboundRules"]] == ["aksOutboundRule"]
    assert {f["name"] for f in lb["properties"]["frontendIPConfigurations"]} == {"outbound"}


def test_local_and_udp_services_are_adopted_with_lbprov_probes(env: Env) -> None:
    state, provider, make_service, nodes, intent_for = env
    """Upstream's Local Services share one HTTP probe on the health-check NodePort, and its UDP rules
    have none; lbprov's probes (one per rule) replace them in the same write, the rules are updated,
    nothing else is recreated."""
    local = make_service("local", ports=[("TCP", 80), ("TCP", 443)], policy="Local")
    ip_local = upstream_service(
        state, provider, local, nodes, health_check_node_port=local["spec"]["healthCheckNodePort"]
    )
    udp = make_service("dns", ports=[("UDP", 53)])
    ip_udp = upstream_service(state, provider, udp, nodes)
    for svc, ip in ((local, ip_local), (udp, ip_udp)):
        plan = provider.plan(intent_for(svc))
        assert ("adopt", "frontend-ip-configuration") in actions(plan) and ("adopt", "public-ip") in actions(
            plan
        )
        assert {k for a, k in actions(plan) if a == "update"} <= {"load-balancing-rule"}
        assert converge(provider, intent_for(svc))[0].ip == ip
    lb = lb_of(state, provider.settings.cluster_name)
    base = naming.lb_name(local["metadata"]["uid"])
    hc = local["spec"]["healthCheckNodePort"]
    assert f"{base}-TCP-{hc}" not in {p["name"] for p in lb["properties"]["probes"]}  # type: ignore[index]


def test_an_adopted_service_stays_on_its_load_balancer_and_upstream_lb_keeps_its_nodes_until_adopted(
    env: Env,
) -> None:
    state, provider, make_service, nodes, intent_for = env
    cluster = provider.settings.cluster_name
    svc = make_service("stay")
    ip = upstream_service(state, provider, svc, nodes)
    elsewhere = {"service.beta.kubernetes.io/azure-load-balancer-configurations": f"{cluster}-2"}
    writes = len(state.mutating_requests())
    # a Service asking for the second load balancer would take nodes from upstream's, not adopted yet
    with pytest.raises(OwnershipConflict, match="not yet adopted"):
        provider.plan(intent_for(make_service("elsewhere", annotations=elsewhere)))
    assert len(state.mutating_requests()) == writes
    assert converge(provider, intent_for(svc))[0].ip == ip
    # adopted: the nodes are lbprov's to spread; the adopted Service stays where it is
    converge(provider, intent_for(make_service("elsewhere", annotations=elsewhere)))
    assert lb_of(state, f"{cluster}-2") is not None
    assert naming.lb_name(svc["metadata"]["uid"]) in frontend_names(
        lb_of(state, cluster), naming.lb_name(svc["metadata"]["uid"])
    )
    assert converge(provider, intent_for(svc))[0].ip == ip
