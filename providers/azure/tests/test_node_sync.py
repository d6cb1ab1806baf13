"""The Azure node sync (``plan_nodes`` / ``apply_nodes``) through the real SDK against the ARM emulator.

After a node is added, removed or made ineligible: the node sync writes one PUT per load balancer
whose pools change; then a fresh per-Service plan of every Service is empty (convergence), a second
node sync writes nothing (idempotence), a load balancer lbprov does not own is never written, and a
dry run writes nothing. Also the real controller over the sandbox Kubernetes API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.options import DISABLE_FLOATING_IP
from lbprov_azure.testing import SANDBOX_RG, controller_for, lb_of, node_object

from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.controller.service import ingress_of
from lbprov.intent import EXCLUDE_LABEL
from lbprov.kube.client import KubeClient
from lbprov.kube.facts import cluster_identity
from lbprov.model import Intent
from lbprov.provider import apply_nodes, plan_nodes
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import event_messages, wait_for

CONFIGS = "service.beta.kubernetes.io/azure-load-balancer-configurations"


def _pool(state: Any, lb: str) -> set[str]:
    body = lb_of(state, lb)
    assert body is not None
    (pool,) = [p for p in body["properties"]["backendAddressPools"] if not p["name"].endswith("-IPv6")]
    return {a["properties"]["ipAddress"] for a in pool["properties"]["loadBalancerBackendAddresses"]}


def _ip(node: dict[str, Any]) -> str:
    return str(node["status"]["addresses"][0]["address"])


class World:
    """Services converged on the sandbox, re-intended with any node list."""

    def __init__(
        self, provider: AzureProvider, intent_for: Callable[..., Intent], ensure: Any, state: Any
    ) -> None:
        self.provider = provider
        self.intent_for = intent_for
        self.ensure = ensure
        self.state = state
        self.services: list[dict[str, Any]] = []

    def add(self, svc: dict[str, Any]) -> None:
        self.ensure(self.intent_for(svc))
        self.services.append(svc)

    def intents(self, nodes: list[dict[str, Any]], prov: AzureProvider | None = None) -> list[Intent]:
        return [self.intent_for(s, nodes, prov) for s in self.services]

    def sync(self, nodes: list[dict[str, Any]]) -> tuple[Any, list[str]]:
        """One node sync; (its plan, the mutating requests it sent)."""
        intents = self.intents(nodes)
        seen = len(self.state.mutating_requests())
        plan = plan_nodes(self.provider, intents)
        assert plan is not None
        apply_nodes(self.provider, plan)
        return plan, self.state.mutating_requests()[seen:]

    def converged(self, nodes: list[dict[str, Any]]) -> None:
        for intent in self.intents(nodes):
            plan = self.provider.plan(intent)
            assert plan.empty, [f"{c.action} {c.kind} {c.name}" for c in plan.changes]
        again, writes = self.sync(nodes)
        assert again.empty and writes == [], writes


@pytest.fixture
def world(provider: AzureProvider, intent_for: Any, ensure: Any, state: Any) -> World:
    return World(provider, intent_for, ensure, state)


def _foreign_lb(world: World, ips: list[str]) -> dict[str, Any]:
    """A load balancer of someone else's (no ownership tag), whose pool holds ``ips``."""
    s = world.provider.settings
    vnet = world.provider.planner.ids.vnet(s.vnet_rg, s.vnet_name)
    return {
        "location": s.location,
        "sku": {"name": "Standard"},
        "properties": {
            "backendAddressPools": [
                {
                    "name": "theirs",
                    "properties": {
                        "loadBalancerBackendAddresses": [
                            {"name": f"x{i}", "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet}}}
                            for i, ip in enumerate(ips)
                        ]
                    },
                }
            ]
        },
    }


def _lbs_written(writes: list[str]) -> list[str]:
    return [w.split("/loadBalancers/")[1] for w in writes if w.startswith("PUT") and "/loadBalancers/" in w]


def test_a_node_added_is_one_put_of_the_load_balancer_and_every_service_is_covered(
    world, sandbox, cluster, nodes, make_service, state, h
):
    for name in ("a", "b", "c"):
        world.add(make_service(name))
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    more = [*nodes, new]
    plan, writes = world.sync(more)
    keys = {f"default/{n}" for n in ("a", "b", "c")}
    assert plan.covered == keys and plan.uncovered == {} and plan.updated == keys
    assert _lbs_written(writes) == [cluster] and len(writes) == 1
    assert _pool(state, cluster) == {_ip(n) for n in more}
    world.converged(more)


def test_a_node_removed_or_made_ineligible_is_one_put(world, sandbox, cluster, nodes, make_service, state, h):
    world.add(make_service("a"))
    world.add(make_service("b"))
    fewer = nodes[1:]
    plan, writes = world.sync(fewer)
    assert _lbs_written(writes) == [cluster] and plan.covered == {"default/a", "default/b"}
    assert _pool(state, cluster) == {_ip(n) for n in fewer}
    world.converged(fewer)
    world.sync(nodes)  # the node back, then made ineligible by the exclude label
    assert _pool(state, cluster) == {_ip(n) for n in nodes}
    excluded = [
        nodes[0] | {"metadata": {**nodes[0]["metadata"], "labels": {EXCLUDE_LABEL: "true"}}},
        *nodes[1:],
    ]
    plan, writes = world.sync(excluded)
    assert _lbs_written(writes) == [cluster]
    assert _pool(state, cluster) == {_ip(n) for n in fewer}
    world.converged(excluded)


def test_with_two_load_balancers_only_the_one_that_gains_the_node_is_written(
    world, sandbox, cluster, nodes, make_service, state, h
):
    world.add(make_service("first"))
    world.add(make_service("pinned", annotations={CONFIGS: f"{cluster}-2"}))
    pools = {lb: _pool(state, lb) for lb in (cluster, f"{cluster}-2")}
    assert sorted(len(p) for p in pools.values()) == [1, 2]  # three nodes over two slots
    small = min(pools, key=lambda lb: len(pools[lb]))
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    more = [*nodes, new]
    plan, writes = world.sync(more)
    assert _lbs_written(writes) == [small]
    assert _pool(state, small) == pools[small] | {_ip(new)}
    owner = "default/first" if small == cluster else "default/pinned"
    assert plan.updated == {owner} and plan.covered == {"default/first", "default/pinned"}
    world.converged(more)


def test_a_node_removed_moves_another_so_the_slots_stay_even_losing_one_first(
    world, sandbox, cluster, nodes, make_service, state, h
):
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    world.add(make_service("first"))
    world.add(make_service("pinned", annotations={CONFIGS: f"{cluster}-2"}))
    world.sync(more)
    world.converged(more)
    pools = {lb: _pool(state, lb) for lb in (cluster, f"{cluster}-2")}
    assert sorted(len(p) for p in pools.values()) == [2, 2]
    # two nodes of one slot go: one node of the other slot moves over (sizes differ by at most one)
    lb = cluster
    gone = pools[lb]
    left = [n for n in more if _ip(n) not in gone]
    _, writes = world.sync(left)
    assert len(_lbs_written(writes)) == 2
    assert _lbs_written(writes)[0] == f"{cluster}-2", (
        "the node leaves its old pool before it joins the new one"
    )
    assert sorted(len(_pool(state, x)) for x in (cluster, f"{cluster}-2")) == [1, 1]
    world.converged(left)


def test_a_service_with_floating_ip_off_is_left_to_its_own_plan(
    world, sandbox, cluster, nodes, make_service, h
):
    world.add(make_service("a"))
    world.add(make_service("direct", annotations={DISABLE_FLOATING_IP: "true"}))
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    plan, _ = world.sync(more)
    assert plan.covered == {"default/a"} and set(plan.uncovered) == {"default/direct"}
    assert "floating IP" in plan.uncovered["default/direct"]
    assert plan.updated == {"default/a"}
    # its own plan: the NSG rule that opens the nodes, and nothing of the pool
    (direct,) = [i for i in world.intents(more) if i.ref.name == "direct"]
    own = world.provider.plan(direct)
    assert {c.kind for c in own.changes} == {"nsg-rule"}
    world.provider.apply(own)
    world.converged(more)


def test_a_load_balancer_lbprov_does_not_own_is_never_written(
    world, sandbox, cluster, nodes, make_service, state, h
):
    world.add(make_service("a"))
    foreign = f"{cluster}-someone-else"
    state.put("loadBalancers", SANDBOX_RG, foreign, _foreign_lb(world, []))
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    _, writes = world.sync(more)
    assert _lbs_written(writes) == [cluster]
    world.converged(more)


def test_a_node_in_a_foreign_load_balancers_pool_declines_the_node_sync(
    world, sandbox, cluster, nodes, make_service, state, h
):
    world.add(make_service("a"))
    new = h.node_object(sandbox.add_node(f"{cluster}-n9"))
    foreign = f"{cluster}-theirs"
    state.put("loadBalancers", SANDBOX_RG, foreign, _foreign_lb(world, [_ip(new)]))
    seen = len(state.mutating_requests())
    # from a fresh listing (a kept one misses the foreign LB: test_node_sync_kept_listing.py)
    fresh = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "node_sync_listing_max_age_seconds": 0}
    )
    assert plan_nodes(fresh, world.intents([*nodes, new], fresh)) is None
    assert state.mutating_requests()[seen:] == []


def test_dry_run_node_sync_reads_and_never_writes(world, sandbox, cluster, nodes, make_service, state, h):
    world.add(make_service("a"))
    more = [*nodes, h.node_object(sandbox.add_node(f"{cluster}-n9"))]
    dry = AzureProvider.from_settings({**sandbox.settings, "cluster_name": cluster}, read_only=True)
    seen = len(state.mutating_requests())
    plan = plan_nodes(dry, world.intents(more, dry))
    assert plan is not None and len(plan.changes) == 1
    with pytest.raises(ReadOnlyViolation):
        apply_nodes(dry, plan)
    assert state.mutating_requests()[seen:] == []


def test_controller_adds_a_node_with_one_put_and_no_per_service_plan(sandbox, state, cluster) -> None:
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        for i in range(2):
            kube.create_node(node_object(sandbox.add_node(f"{cluster}-k{i}")))
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
            names = ["web-0", "web-1", "web-2"]
            for name in names:
                kube.create_service(
                    "default",
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {
                            "type": "LoadBalancer",
                            "ports": [{"name": "p80", "protocol": "TCP", "port": 80}],
                        },
                    },
                )
            for name in names:
                wait_for(
                    lambda n=name: ingress_of(kube.get_service("default", n) or {}), 60, f"ingress of {name}"
                )
            wait_for(controller.idle, 30, "an idle controller")
            provider.calls.reset()
            seen = len(state.mutating_requests())
            before = controller.node_sync.triggers
            new = sandbox.add_node(f"{cluster}-k9")
            kube.create_node(node_object(new))
            wait_for(lambda: controller.node_sync.triggers > before, 30, "the node change handled")
            wait_for(controller.idle, 30, "an idle controller")
            assert _lbs_written(state.mutating_requests()[seen:]) == [cluster]
            assert len(state.mutating_requests()[seen:]) == 1
            assert new.internal_ip in _pool(state, cluster)
            reads = provider.calls.stats.operations("read")
            assert not [op for op in reads if "securityGroups" in op or "publicIP" in op], reads
            report = controller.nodes_changed.last
            assert report is not None and report.queued == []

            for name in names:
                assert wait_for(
                    lambda n=name: event_messages(kube, n, "UpdatedLoadBalancer"), 60, f"event on {name}"
                ) == ["Updated load balancer with new hosts"]
        finally:
            controller.stop()


def test_internal_and_dual_stack_services_pools_of_both_load_balancers_and_the_ipv6_pool(
    world, sandbox, cluster, nodes, make_service, state, h
):
    world.add(make_service("ext"))
    world.add(
        make_service("int", annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
    )
    dual = make_service("dual")
    dual["spec"].update(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack")
    world.add(dual)
    added = sandbox.add_node(f"{cluster}-n9")
    assert added.internal_ipv6, "the sandbox's nodes are dual-stack"
    more = [*nodes, h.node_object(added)]
    plan, writes = world.sync(more)
    assert sorted(_lbs_written(writes)) == sorted([cluster, f"{cluster}-internal"])  # one PUT each
    assert plan.covered == {"default/ext", "default/int", "default/dual"}
    body = lb_of(state, cluster)
    assert body is not None
    (v6,) = [p for p in body["properties"]["backendAddressPools"] if p["name"].endswith("-IPv6")]
    assert added.internal_ipv6 in {
        a["properties"]["ipAddress"] for a in v6["properties"]["loadBalancerBackendAddresses"]
    }
    assert _pool(state, f"{cluster}-internal") == {_ip(n) for n in more}
    world.converged(more)
