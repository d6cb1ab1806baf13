"""The Azure node sync plans from the kept listing of the load balancers (lbprov_azure.kept), and a
stale view never writes a wrong pool: through the real SDK against the ARM emulator.

Each stale case (another writer changed the pool or the tags of the load balancer the node sync
writes, a foreign load balancer appeared over the new node, a load balancer's last operation
failed) ends with the pools right and every Service's plan empty, by the node sync itself or by
the controller's fall back (every Service planned again, from a fresh listing).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.lbwriter import StalePlan
from lbprov_azure.sandbox.operations import DEFAULT_API_VERSION
from lbprov_azure.testing import (
    SANDBOX_RG,
    controller_for,
    lb_of,
    make_service,
    node_object,
    upstream_service,
)

from lbprov.controller.service import ingress_of
from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.client import KubeClient
from lbprov.kube.facts import cluster_identity
from lbprov.model import Intent
from lbprov.provider import NodeSyncPlan, apply_nodes, plan_nodes
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for


def _pool(state: Any, lb: str) -> set[str]:
    body = lb_of(state, lb)
    assert body is not None
    (pool,) = [p for p in body["properties"]["backendAddressPools"] if not p["name"].endswith("-IPv6")]
    return {a["properties"]["ipAddress"] for a in pool["properties"]["loadBalancerBackendAddresses"]}


def _ip(node: dict[str, Any]) -> str:
    return str(node["status"]["addresses"][0]["address"])


def _lists(provider: AzureProvider) -> int:
    return provider.calls.stats.by_operation()["loadBalancers.list"]


def _fresh(sandbox: Any, cluster: str, **extra: Any) -> AzureProvider:
    return AzureProvider.from_settings({**sandbox.settings, "cluster_name": cluster, **extra})


class Cluster:
    """Services converged on the sandbox by one provider, whose kept listing they filled."""

    def __init__(self, provider: AzureProvider, intent_for: Any, ensure: Any, make: Any, count: int) -> None:
        self.provider = provider
        self.intent_for = intent_for
        self.services = [make(f"s{i}") for i in range(count)]
        for svc in self.services:
            ensure(intent_for(svc))

    def intents(self, nodes: list[dict[str, Any]], prov: AzureProvider | None = None) -> list[Intent]:
        return [self.intent_for(s, nodes, prov) for s in self.services]

    def plan(self, nodes: list[dict[str, Any]], prov: AzureProvider | None = None) -> NodeSyncPlan:
        plan = plan_nodes(prov or self.provider, self.intents(nodes, prov))
        assert plan is not None
        return plan

    def fall_back(self, nodes: list[dict[str, Any]]) -> None:
        """What the controller does when a node sync fails: every Service planned and applied."""
        for intent in self.intents(nodes):
            self.provider.apply(self.provider.plan(intent))

    def converged(self, sandbox: Any, cluster: str, nodes: list[dict[str, Any]]) -> None:
        """A fresh provider's plan of every Service is empty, and so is a node sync, from its fresh
        listing and from this provider's kept one."""
        fresh = _fresh(sandbox, cluster)
        for intent in self.intents(nodes, fresh):
            plan = fresh.plan(intent)
            assert plan.empty, [f"{c.action} {c.kind} {c.name}" for c in plan.changes]
        assert self.plan(nodes, fresh).empty
        assert self.plan(nodes).empty


@pytest.fixture
def two(provider: AzureProvider, intent_for: Any, ensure: Any, make_service: Any) -> Cluster:
    return Cluster(provider, intent_for, ensure, make_service, 2)


def test_a_node_sync_after_the_services_applies_lists_nothing_and_writes_one_pool(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    assert provider.observer.kept.get(120) is not None  # the Services' plans listed; their writes patched it
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    more = [*nodes, new]
    provider.calls.reset()
    seen = len(state.mutating_requests())
    plan = two.plan(more)
    assert len(plan.changes) == 1 and plan.covered == {"default/s0", "default/s1"}
    apply_nodes(provider, plan)
    assert _lists(provider) == 0, provider.calls.stats.by_operation()
    assert [w for w in state.mutating_requests()[seen:] if w.startswith("PUT")] == [
        f"PUT {lb_of(state, cluster)['id']}"  # type: ignore[index]
    ]
    assert _pool(state, cluster) == {_ip(n) for n in more}
    two.converged(sandbox, cluster, more)


def test_the_kept_listing_is_not_used_past_its_age_or_when_the_setting_is_zero(
    sandbox, cluster, nodes, intent_for, ensure, make_service, h
):
    never = _fresh(sandbox, cluster, node_sync_listing_max_age_seconds=0)
    two = Cluster(never, intent_for, ensure, make_service, 2)
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    never.calls.reset()
    apply_nodes(never, two.plan(more))
    assert _lists(never) == 1
    assert never.observer.kept.get(120) is None  # with the setting 0 nothing is even held
    # a provider with the default setting, whose listing the clock moves past
    aged = _fresh(sandbox, cluster)
    assert aged.plan(two.intents(more, aged)[0]).empty  # lists, and keeps the listing
    kept = aged.observer.kept
    assert kept.get(120) is not None and kept.get(0) is None
    kept._clock = lambda: float("inf")  # type: ignore[method-assign]  # no wait for real time
    assert kept.get(120) is None


def test_a_pool_another_writer_changed_is_never_overwritten_and_the_fall_back_converges(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    # another writer takes the first node out of the pool (the kept listing still holds it)
    body = lb_of(state, cluster)
    assert body is not None
    theirs = copy.deepcopy(body)
    (pool,) = [p for p in theirs["properties"]["backendAddressPools"] if not p["name"].endswith("-IPv6")]
    addresses = pool["properties"]["loadBalancerBackendAddresses"]
    pool["properties"]["loadBalancerBackendAddresses"] = [
        a for a in addresses if a["properties"]["ipAddress"] != _ip(nodes[0])
    ]
    state.put("loadBalancers", SANDBOX_RG, cluster, theirs, {"If-Match": body["etag"]})
    left = _pool(state, cluster)
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    more = [*nodes, new]
    plan = two.plan(more)  # from the kept listing: it thinks the pool holds every old node
    assert {*plan.changes[0].before["addresses"]} == {_ip(n) for n in nodes}
    with pytest.raises(StalePlan, match="backend pool"):
        apply_nodes(provider, plan)
    assert _pool(state, cluster) == left  # the other writer's pool, not the stale plan's
    assert provider.observer.kept.get(120) is None  # forgotten: the next plan lists again
    two.fall_back(more)
    assert _pool(state, cluster) == {_ip(n) for n in more}
    two.converged(sandbox, cluster, more)


def test_tags_another_writer_added_survive_and_the_pool_is_written_on_the_fresh_body(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    body = lb_of(state, cluster)
    assert body is not None
    theirs = copy.deepcopy(body)
    theirs["tags"] = {**theirs["tags"], "owner": "ops"}
    state.put("loadBalancers", SANDBOX_RG, cluster, theirs, {"If-Match": body["etag"]})
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    apply_nodes(provider, two.plan(more))  # 412 on the kept body, re-read: the pool is as planned
    after = lb_of(state, cluster)
    assert after is not None and after["tags"]["owner"] == "ops"
    assert _pool(state, cluster) == {_ip(n) for n in more}
    two.converged(sandbox, cluster, more)


def test_a_service_on_a_load_balancer_made_since_the_kept_listing_is_left_to_its_own_plan(
    two, sandbox, cluster, nodes, state, intent_for, ensure, h
):
    """Another replica of the cluster made the internal load balancer after this provider's
    listing: the node sync never saw its pools, so its Service must not count as covered (it did,
    and the new node was never added to it: found by review)."""
    provider = two.provider
    other = _fresh(sandbox, cluster)  # another replica: its writes are not in our kept listing
    internal = make_service(
        "int0", annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    )
    ensure(intent_for(internal, nodes, other), other)
    assert lb_of(state, f"{cluster}-internal") is not None
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    services = [*two.services, internal]
    intents = [intent_for(svc, more, provider) for svc in services]
    plan = plan_nodes(provider, intents)
    assert plan is not None
    assert plan.covered == {"default/s0", "default/s1"}
    assert set(plan.uncovered) == {"default/int0"}
    apply_nodes(provider, plan)
    assert _pool(state, cluster) == {_ip(n) for n in more}
    # the controller re-plans the uncovered Service: its own plan adds the node to its pool
    provider.apply(provider.plan(intents[2]))
    assert _pool(state, f"{cluster}-internal") == {_ip(n) for n in more}
    fresh = _fresh(sandbox, cluster)
    for svc in services:
        assert fresh.plan(intent_for(svc, more, fresh)).empty


def test_a_foreign_load_balancer_over_the_new_node_since_the_listing_is_refused_never_joined(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    more = [*nodes, new]
    # AKS's own load balancer, made after the kept listing, load-balances to the new node
    aks = f"{cluster}-aks"
    upstream_service(
        state,
        provider,
        make_service("aks-0", namespace="aks"),
        [new],
        nsg=None,
        cluster=aks,
        aks_outbound=True,
    )
    plan = two.plan(more)  # the kept listing does not know it
    with pytest.raises(Exception, match="at most one public and one internal"):
        apply_nodes(provider, plan)  # ARM refuses the node in two public load balancers' pools
    assert _ip(new) not in _pool(state, cluster)
    assert provider.observer.kept.get(120) is None
    # the fall back: each Service's plan names the foreign load balancer, and so a fresh node sync
    assert plan_nodes(provider, two.intents(more)) is None
    with pytest.raises(Exception, match=rf"'{aks}'"):
        provider.plan(two.intents(more)[0])
    assert _ip(new) not in _pool(state, cluster)


def test_after_a_failed_pool_write_the_next_node_sync_lists_sees_the_failure_and_declines(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    state.fail_operations(method="PUT", path=f"/loadbalancers/{cluster.lower()}$")
    with pytest.raises(Exception, match=r"InternalServerError|error occurred"):
        apply_nodes(provider, two.plan(more))
    assert provider.observer.kept.get(120) is None
    body = lb_of(state, cluster)
    assert body is not None and body["properties"]["provisioningState"] == "Failed"
    provider.calls.reset()
    assert plan_nodes(provider, two.intents(more)) is None  # listed again: the LB failed
    assert _lists(provider) == 1
    two.fall_back(more)  # each Service's plan repairs the load balancer
    assert _pool(state, cluster) == {_ip(n) for n in more}
    two.converged(sandbox, cluster, more)


def test_a_load_balancer_failed_behind_our_back_is_refused_from_the_kept_listing(
    two, sandbox, cluster, nodes, state, h
):
    provider = two.provider
    body = lb_of(state, cluster)
    assert body is not None
    # another writer's PUT, whose long operation ends Failed (as a client sends it: through handle)
    state.fail_operations(method="PUT", path=f"/loadbalancers/{cluster.lower()}$")
    headers = {"authorization": "Bearer local", "if-match": body["etag"]}
    answer = state.handle(
        "PUT", body["id"], {"api-version": DEFAULT_API_VERSION}, headers, copy.deepcopy(body)
    )
    assert answer.status < 300
    state.finish_operations()
    failed = lb_of(state, cluster)
    assert failed is not None and failed["properties"]["provisioningState"] == "Failed"
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    with pytest.raises(StalePlan, match="last operation failed"):
        apply_nodes(provider, two.plan(more))
    assert _ip(more[-1]) not in _pool(state, cluster)
    assert plan_nodes(provider, two.intents(more)) is None  # listed again: declines
    two.fall_back(more)
    assert _pool(state, cluster) == {_ip(n) for n in more}
    two.converged(sandbox, cluster, more)


def test_controller_a_stale_kept_listing_falls_back_to_every_services_plan_and_converges(
    sandbox, state, cluster
) -> None:
    """The real controller: another writer changes the pool after the Services' applies; the next
    node change's pool write is refused (never written), and the fall back re-plans every Service."""
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        added = [sandbox.add_node(f"{cluster}-k{i}") for i in range(2)]
        for node in added:
            kube.create_node(node_object(node))
        settings = {
            **sandbox.settings,
            "cluster_name": cluster,
            "cluster_id": cluster_identity(kube),
            "coalesce_window_seconds": 0.01,
        }
        provider = AzureProvider.from_settings(settings)
        controller = controller_for(kube, provider, cluster, workers=2)
        controller.start()
        try:
            for name in ("web-0", "web-1"):
                kube.create_service("default", make_service(name, ports=[("TCP", 80)]))
            for name in ("web-0", "web-1"):
                wait_for(
                    lambda n=name: ingress_of(kube.get_service("default", n) or {}), 60, f"ingress of {name}"
                )
            wait_for(controller.idle, 60, "an idle controller")
            body = lb_of(state, cluster)
            assert body is not None
            theirs = copy.deepcopy(body)
            for pool in theirs["properties"]["backendAddressPools"]:
                pool["properties"]["loadBalancerBackendAddresses"] = pool["properties"][
                    "loadBalancerBackendAddresses"
                ][:1]
            state.put("loadBalancers", SANDBOX_RG, cluster, theirs, {"If-Match": body["etag"]})
            before = controller.node_sync.triggers
            added.append(sandbox.add_node(f"{cluster}-k9"))
            kube.create_node(node_object(added[-1]))
            want = {n.internal_ip for n in added}
            wait_for(lambda: controller.node_sync.triggers > before, 60, "the node change handled")
            wait_for(lambda: _pool(state, cluster) == want, 60, "every node in the pool")
            # the report is set after the fall back is queued: wait for it, not for the pool alone
            wait_for(
                lambda: (
                    "backend pool" in getattr(controller.nodes_changed.last, "fell_back", {}).get("azure", "")
                ),
                60,
                "the node sync's StalePlan in its report",
            )
            wait_for(controller.idle, 60, "an idle controller")
            fresh = _fresh(sandbox, cluster, cluster_id=settings["cluster_id"])
            for name in ("web-0", "web-1"):
                svc = kube.get_service("default", name)
                assert svc is not None
                intent = build_intent(svc, kube.list_nodes()[0], IntentSettings(cluster=cluster), fresh)
                plan = fresh.plan(intent)
                assert plan.empty, [f"{c.action} {c.kind} {c.name}" for c in plan.changes]
        finally:
            controller.stop()
