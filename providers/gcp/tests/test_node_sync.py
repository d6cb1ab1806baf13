"""The GCP node sync (``plan_nodes`` / ``apply_nodes``) through the real SDK against the emulator.

After a node is added, removed or made ineligible: the node sync writes exactly one membership
change per zone group that changed; then a fresh per-Service plan of every Service is empty
(convergence), a second node sync writes nothing (idempotence), a group lbprov does not own is never
touched, and a dry run writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import GCE_CLUSTER_ID, converge, intent_for, make_nodes, make_service, provider_for
from lbprov_gcp import names as N

from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.intent import EXCLUDE_LABEL, IntentSettings, build_intent
from lbprov.model import Intent, SandboxNode
from lbprov.provider import apply_nodes, plan_nodes

GROUP = f"k8s-ig--{GCE_CLUSTER_ID}"


def _services(n: int = 4) -> list[dict[str, Any]]:
    """External and internal, Cluster and Local Services: all share the zone groups."""
    internal = {"networking.gke.io/load-balancer-type": "Internal"}
    return [
        make_service(
            f"svc-{i}",
            ports=[("TCP", 80 + i, 30080 + i)],
            local=i % 2 == 1,
            annotations=internal if i % 4 == 3 else None,
        )
        for i in range(n)
    ]


def _intents(provider: Any, services: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[Intent]:
    settings = IntentSettings(cluster=provider.cluster)
    return [build_intent(svc, nodes, settings, provider) for svc in services]


def _converged(provider: Any, services: list[dict[str, Any]], nodes: list[SandboxNode]) -> None:
    for svc in services:
        converge(provider, intent_for(provider, svc, nodes))


def _all_plans_empty(provider: Any, intents: list[Intent]) -> None:
    for intent in intents:
        plan = provider.plan(intent)
        assert plan.empty, [f"{c.action} {c.kind} {c.name}" for c in plan.changes]


def _group_path(sandbox: Any, zone: str, name: str = GROUP) -> str:
    return f"/compute/v1/projects/{sandbox.settings['project']}/zones/{zone}/instanceGroups/{name}"


def _sync(provider: Any, intents: list[Intent]) -> Any:
    plan = plan_nodes(provider, intents)
    assert plan is not None
    apply_nodes(provider, plan)
    return plan


def _idempotent(provider: Any, server: Any, intents: list[Intent]) -> None:
    server.clear_log()
    provider.calls.reset()
    again = _sync(provider, intents)
    assert again.empty and again.updated == frozenset()
    assert provider.calls.stats.writes == 0 and server.mutating_requests() == []


def test_a_node_added_is_one_add_instances_and_every_service_is_covered(provider, sandbox, server):
    services = _services()
    _converged(provider, services, sandbox.nodes)
    new = sandbox.add_node("node-5")  # a zone the groups already serve
    intents = _intents(provider, services, make_nodes([*sandbox.nodes, new]))
    server.clear_log()
    provider.calls.reset()
    plan = _sync(provider, intents)
    keys = {i.ref.key for i in intents}
    assert plan.covered == keys and plan.uncovered == {} and plan.updated == keys
    assert provider.calls.stats.operations("write") == {"instanceGroups.addInstances"}
    assert provider.calls.stats.writes == 1
    assert server.mutating_requests() == [f"POST {_group_path(sandbox, new.zone)}/addInstances"]
    assert provider.calls.stats.reads <= 3  # the groups, and each group's members
    _all_plans_empty(provider, intents)
    _idempotent(provider, server, intents)


def test_a_node_removed_or_made_ineligible_is_one_remove_instances(provider, sandbox, server):
    services = _services()
    _converged(provider, services, sandbox.nodes)
    gone = sandbox.nodes[1]
    nodes = [n for n in sandbox.nodes if n is not gone]
    for case in ("removed", "ineligible"):
        objs = make_nodes(nodes if case == "removed" else sandbox.nodes)
        if case == "ineligible":
            next(o for o in objs if o["metadata"]["name"] == gone.name)["metadata"]["labels"][
                EXCLUDE_LABEL
            ] = "true"
            converge_back = _intents(provider, services, make_nodes(sandbox.nodes))
            _sync(provider, converge_back)  # the node back first
        intents = _intents(provider, services, objs)
        server.clear_log()
        provider.calls.reset()
        plan = _sync(provider, intents)
        assert plan.covered == {i.ref.key for i in intents}, case
        assert server.mutating_requests() == [f"POST {_group_path(sandbox, gone.zone)}/removeInstances"], case
        _all_plans_empty(provider, intents)
        _idempotent(provider, server, intents)


def test_a_node_in_a_new_zone_leaves_every_service_to_its_own_plan(provider, sandbox, server):
    services = _services(2)
    _converged(provider, services, sandbox.nodes)
    zones = {n.zone for n in sandbox.nodes}
    third = next(z for z in server.emulator.zones if z not in zones)
    new = sandbox.extra["seeded"].add_node("node-9", third)
    intents = _intents(provider, services, make_nodes([*sandbox.nodes, new]))
    server.clear_log()
    plan = _sync(provider, intents)
    assert plan.covered == frozenset() and set(plan.uncovered) == {i.ref.key for i in intents}
    assert "backend service lists them" in next(iter(plan.uncovered.values()))
    # the group of the new zone is made once, by the node sync
    assert server.mutating_requests() == [
        f"POST /compute/v1/projects/{sandbox.settings['project']}/zones/{new.zone}/instanceGroups",
        f"POST {_group_path(sandbox, new.zone)}/addInstances",
    ]
    # each Service's own plan then lists the new group in its backend services, and nothing else
    server.clear_log()
    for intent in intents:
        converge(provider, intent)
    assert {r.split("/")[-2] for r in server.mutating_requests()} == {"backendServices"}
    _all_plans_empty(provider, intents)
    _idempotent(provider, server, intents)


def test_a_group_lbprov_does_not_own_is_never_touched(provider, sandbox, server):
    services = _services(2)
    _converged(provider, services, sandbox.nodes)
    zone = sandbox.nodes[0].zone
    emu = server.emulator
    seeded = sandbox.extra["seeded"]
    emu.seed_instance("other-vm", zone, network=seeded.network, subnet=seeded.subnetwork, tags=[])
    emu.put_raw("instanceGroups", f"zones/{zone}", {"name": "k8s-ig--someone-else", "description": ""})
    group = emu._bucket(emu.project, f"zones/{zone}", "instanceGroups")["k8s-ig--someone-else"]
    group["_members"] = [f"projects/{emu.project}/zones/{zone}/instances/other-vm"]
    new = sandbox.add_node("node-5")
    nodes = [n for n in [*sandbox.nodes, new] if n.name != "node-2"]
    intents = _intents(provider, services, make_nodes(nodes))
    server.clear_log()
    _sync(provider, intents)
    assert server.mutating_requests(), "the node sync wrote the cluster's groups"
    assert not [r for r in server.mutating_requests() if "someone-else" in r]
    assert group["_members"] == [f"projects/{emu.project}/zones/{zone}/instances/other-vm"]
    _all_plans_empty(provider, intents)


def test_a_node_in_a_foreign_group_is_left_to_each_services_plan_and_nothing_is_written(
    provider, sandbox, server
):
    services = _services(2)
    _converged(provider, services, sandbox.nodes)
    new = sandbox.add_node("node-5")
    emu = server.emulator
    emu.put_raw(
        "instanceGroups", f"zones/{new.zone}", {"name": "k8s-ig--0ther0c1u5ter0id", "description": ""}
    )
    group = emu._bucket(emu.project, f"zones/{new.zone}", "instanceGroups")["k8s-ig--0ther0c1u5ter0id"]
    group["_members"] = [f"projects/{emu.project}/zones/{new.zone}/instances/node-5"]
    intents = _intents(provider, services, make_nodes([*sandbox.nodes, new]))
    server.clear_log()
    plan = _sync(provider, intents)
    assert plan.empty and set(plan.uncovered) == {i.ref.key for i in intents}
    assert server.mutating_requests() == []


def test_dry_run_node_sync_reads_and_never_writes(provider, sandbox, server):
    services = _services(2)
    _converged(provider, services, sandbox.nodes)
    new = sandbox.add_node("node-5")
    dry = provider_for(sandbox, read_only=True)
    intents = _intents(dry, services, make_nodes([*sandbox.nodes, new]))
    server.clear_log()
    plan = plan_nodes(dry, intents)
    assert plan is not None and len(plan.changes) == 1
    with pytest.raises(ReadOnlyViolation):
        apply_nodes(dry, plan)
    assert server.mutating_requests() == []


def test_services_that_disagree_on_the_nodes_get_no_node_sync(provider, sandbox):
    services = _services(2)
    _converged(provider, services, sandbox.nodes)
    a = _intents(provider, services[:1], make_nodes(sandbox.nodes))
    b = _intents(provider, services[1:], make_nodes(sandbox.nodes[:2]))
    assert plan_nodes(provider, a + b) is None


def _gke_nodes(sandbox: Any, server: Any, names: list[str], tag: str) -> list[SandboxNode]:
    emu, seeded = server.emulator, sandbox.extra["seeded"]
    zone = sandbox.nodes[0].zone
    out = []
    for name in names:
        emu.seed_instance(name, zone, network=seeded.network, subnet=seeded.subnetwork, tags=[tag])
        out.append(SandboxNode(name, f"gce://{emu.project}/{zone}/{name}", "10.0.0.1", zone))
    return out


def test_with_tags_found_from_the_instances_a_new_tag_leaves_every_service_to_its_own_plan(sandbox, server):
    provider = provider_for(sandbox, node_tags=[])
    nodes = _gke_nodes(sandbox, server, ["gke-pool-a1", "gke-pool-a2"], "gke-pool")
    services = _services(2)
    _converged(provider, services, nodes)
    # same tag: covered
    nodes += _gke_nodes(sandbox, server, ["gke-pool-a3"], "gke-pool")
    intents = _intents(provider, services, make_nodes(nodes))
    plan = _sync(provider, intents)
    assert plan.covered == {i.ref.key for i in intents}
    _all_plans_empty(provider, intents)
    # a node of another pool, with its own tag: each Service's firewalls must target it too
    nodes += _gke_nodes(sandbox, server, ["gke-other-b1"], "gke-other")
    intents = _intents(provider, services, make_nodes(nodes))
    plan = _sync(provider, intents)
    assert plan.covered == frozenset() and "network tags" in next(iter(plan.uncovered.values()))
    for intent in intents:
        converge(provider, intent)
    _all_plans_empty(provider, intents)
    assert N.ig_name("test", GCE_CLUSTER_ID) == GROUP


# -- the controller: sandbox Kubernetes API + the GCP emulator -------------------------------------


def test_controller_adds_a_node_with_one_write_and_no_per_service_plan(sandbox, server):
    from lbprov.controller.manager import Controller, ControllerConfig
    from lbprov.controller.service import ingress_of
    from lbprov.kube.client import KubeClient
    from lbprov.sandbox.demo import node_object
    from lbprov.sandbox.kube_api import KubeAPIServer
    from lbprov.testing import event_messages, wait_for

    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        for node in sandbox.nodes:
            kube.create_node(node_object(node))
        provider = provider_for(sandbox)
        config = ControllerConfig(
            cluster="test", default_provider="gcp", workers=2, node_debounce=0.1, cache_sync_timeout=10
        )
        controller = Controller(kube, {"gcp": provider}, config)
        controller.start()
        try:
            names = [f"web-{i}" for i in range(3)]
            for name in names:
                kube.create_service(
                    "default",
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {
                            "type": "LoadBalancer",
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                        },
                    },
                )
            for name in names:
                wait_for(
                    lambda n=name: ingress_of(kube.get_service("default", n) or {}), 30, f"ingress of {name}"
                )
            wait_for(controller.idle, 30, "an idle controller")
            provider.calls.reset()
            server.clear_log()
            before = controller.node_sync.triggers
            new = sandbox.add_node("node-5")
            kube.create_node(node_object(new))
            wait_for(lambda: controller.node_sync.triggers > before, 30, "the node change handled")
            wait_for(controller.idle, 30, "an idle controller")
            assert server.mutating_requests() == [f"POST {_group_path(sandbox, new.zone)}/addInstances"]
            reads = provider.calls.stats.operations("read")
            assert "regionBackendServices.list" not in reads, "no Service was re-planned"
            assert provider.calls.stats.reads <= 3
            report = controller.nodes_changed.last
            assert report is not None and report.queued == []

            for name in names:
                assert wait_for(
                    lambda n=name: event_messages(kube, n, "UpdatedLoadBalancer"), 60, f"event on {name}"
                ) == ["Updated load balancer with new hosts"]
            nodes = kube.list_nodes()[0]
            settings = IntentSettings(cluster=provider.cluster)
            for name in names:
                svc = kube.get_service("default", name)
                assert svc is not None and provider.plan(build_intent(svc, nodes, settings, provider)).empty
        finally:
            controller.stop()


def test_planning_a_node_sync_hashes_the_shared_targets_once_not_once_per_service(
    provider, sandbox, monkeypatch
):
    """Every Service's intent holds the same targets tuple: planning checked that they agree by
    hashing each intent's targets (21 dataclass hashes per Service at 20 nodes, most of the plan's
    CPU at 1,000 Services). Now the same object is looked at once."""
    from lbprov.intent import node_targets
    from lbprov.model import Target

    services = _services(40)
    _converged(provider, services[:4], sandbox.nodes)
    nodes = make_nodes(sandbox.nodes)
    targets = node_targets(nodes)
    settings = IntentSettings(cluster=provider.cluster)
    intents = [build_intent(svc, nodes, settings, provider, targets=targets) for svc in services]
    hashes = 0
    plain = Target.__hash__

    def counting(self: Target) -> int:
        nonlocal hashes
        hashes += 1
        return plain(self)

    monkeypatch.setattr(Target, "__hash__", counting)
    assert plan_nodes(provider, intents) is not None
    assert hashes <= 2 * len(targets), hashes  # was 2 per target per Service: 80 x len(targets)
