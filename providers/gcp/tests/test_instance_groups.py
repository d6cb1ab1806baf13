"""Issue 11, item 2: lbprov shares upstream's k8s-ig--<clusterID> groups and never puts a node in a
second load-balanced group (GCE refuses that with instanceInMultipleLoadBalancedIgs)."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import GCE_CLUSTER_ID, converge, intent_for, make_service, provider_for
from lbprov_gcp import GCPProvider
from lbprov_gcp import names as N
from lbprov_gcp.diff import ForeignInstanceGroup
from lbprov_gcp.testing import sdk

from lbprov.kube.client import KubeClient
from lbprov.kube.facts import fill_settings
from lbprov.sandbox.kube_api import KubeAPIServer

UPSTREAM = N.ig_name("test", GCE_CLUSTER_ID)


def seed_group(server: Any, zone: str, name: str, members: list[str], description: str = "") -> None:
    emu = server.emulator
    emu.put_raw("instanceGroups", f"zones/{zone}", {"name": name, "description": description})
    group = emu._bucket(emu.project, f"zones/{zone}", "instanceGroups")[name]
    group["_members"] = [f"projects/{emu.project}/zones/{zone}/instances/{m}" for m in members]


def group_members(sandbox: Any, zone: str, name: str) -> list[str]:
    client = sdk(sandbox, "InstanceGroupsClient")
    items = client.list_instances(project=sandbox.settings["project"], zone=zone, instance_group=name)
    return sorted(i.instance.split("/")[-1] for i in items)


def backend_groups(sandbox: Any, name: str) -> list[str]:
    s = sandbox.settings
    bs = sdk(sandbox, "RegionBackendServicesClient").get(
        project=s["project"], region=s["region"], backend_service=name
    )
    return sorted("/".join(b.group.split("/")[-3::2]) for b in bs.backends)


def zone_nodes(sandbox: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in sandbox.nodes:
        out.setdefault(n.zone, []).append(n.name)
    return {z: sorted(v) for z, v in out.items()}


def test_groups_are_named_as_upstream_names_them(provider, sandbox):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    assert f"k8s-ig--{GCE_CLUSTER_ID}" == UPSTREAM
    for zone, names in zone_nodes(sandbox).items():
        assert group_members(sandbox, zone, UPSTREAM) == names
    assert backend_groups(sandbox, f"{intent.lb_name}-tcp") == sorted(
        f"{z}/{UPSTREAM}" for z in zone_nodes(sandbox)
    )


def test_nodes_already_in_upstreams_group_are_used_as_they_are(provider, sandbox, server):
    zones = zone_nodes(sandbox)
    zone, names = next(iter(zones.items()))
    seed_group(server, zone, UPSTREAM, names[:1])  # upstream grouped one node so far
    intent = intent_for(provider, make_service(), sandbox.nodes)
    server.clear_log()
    converge(provider, intent)
    adds = [
        r for r in server.mutating_requests() if r.endswith(f"{zone}/instanceGroups/{UPSTREAM}/addInstances")
    ]
    assert len(adds) == 1  # only the missing node joins; the group is not recreated
    assert not [r for r in server.mutating_requests() if r.endswith(f"zones/{zone}/instanceGroups")]
    assert group_members(sandbox, zone, UPSTREAM) == names


def test_a_node_in_a_foreign_load_balanced_group_is_named_and_never_added_to_a_second(
    provider, sandbox, server
):
    zone, names = next(iter(zone_nodes(sandbox).items()))
    seed_group(server, zone, "k8s-ig--0ther0c1u5ter0id", names[:1])
    intent = intent_for(provider, make_service(), sandbox.nodes)
    server.clear_log()
    with pytest.raises(
        ForeignInstanceGroup,
        match=rf"node {names[0]} \(instance {zone}/{names[0]}\) is in instance group {zone}/k8s-ig--0ther0c1u5ter0id",
    ):
        provider.plan(intent)
    assert server.mutating_requests() == []


def test_lbprovs_own_earlier_group_keeps_its_nodes_and_new_nodes_join_upstreams(provider, sandbox, server):
    legacy = N.ig_name("test")  # lbprov named its groups after the cluster before it shared upstream's
    assert legacy == "k8s-ig--test" and legacy != UPSTREAM
    zone, names = next(iter(zone_nodes(sandbox).items()))
    seed_group(server, zone, legacy, names, N.cluster_description("test"))
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    assert group_members(sandbox, zone, legacy) == names
    groups = backend_groups(sandbox, f"{intent.lb_name}-tcp")
    assert f"{zone}/{legacy}" in groups and f"{zone}/{UPSTREAM}" not in groups
    added = sandbox.extra["seeded"].add_node("node-9", zone)
    nodes = [*sandbox.nodes, added]
    grown = intent_for(provider, make_service(uid=intent.ref.uid), nodes)
    converge(provider, grown)
    assert group_members(sandbox, zone, UPSTREAM) == ["node-9"]
    assert group_members(sandbox, zone, legacy) == names
    plan = provider.plan(grown)
    assert plan.empty, [f"{c.action} {c.kind} {c.name}" for c in plan.changes]


def test_the_cluster_id_comes_from_the_ingress_uid_config_map_as_upstream_reads_it(sandbox):
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        settings = {k: v for k, v in sandbox.settings.items() if k != "gce_cluster_id"}
        # missing and read-only: left unset
        assert fill_settings(kube, GCPProvider, settings, read_only=True)["gce_cluster_id"] is None
        # missing: created with a random uid, as upstream does
        made = fill_settings(kube, GCPProvider, settings, read_only=False)["gce_cluster_id"]
        cm = kube.get_config_map("kube-system", "ingress-uid")
        assert cm is not None and cm["data"] == {"uid": made}
        provider = GCPProvider.from_settings({**settings, "gce_cluster_id": made, "cluster_name": "test"})
        intent = intent_for(provider, make_service(), sandbox.nodes)
        converge(provider, intent)
        zone = sandbox.nodes[0].zone
        assert group_members(sandbox, zone, f"k8s-ig--{made}")


def test_provider_uid_wins_over_uid(sandbox):
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        kube.create_config_map(
            "kube-system",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "ingress-uid", "namespace": "kube-system"},
                "data": {"uid": "aaaa", "provider-uid": "bbbb"},
            },
        )
        settings = {k: v for k, v in sandbox.settings.items() if k != "gce_cluster_id"}
        assert fill_settings(kube, GCPProvider, settings, read_only=True)["gce_cluster_id"] == "bbbb"


def test_no_group_is_ever_deleted(provider, sandbox, server):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    plan = provider.plan_delete(intent.ref)
    assert "instance-group" not in {c.kind for c in plan.changes}
    provider.apply(plan)
    for zone, names in zone_nodes(sandbox).items():
        assert group_members(sandbox, zone, UPSTREAM) == names
    # gc of an ownerless cluster finds nothing to delete either
    assert provider_for(sandbox).list_owned() == []


def test_a_node_in_a_users_load_balanced_group_fails_with_gces_error_and_what_to_do(
    provider, sandbox, server
):
    emu = server.emulator
    zone, names = next(iter(zone_nodes(sandbox).items()))
    seed_group(server, zone, "user-web", names[:1])
    region = f"regions/{emu.region}"
    emu.put_raw("healthChecks", region, {"name": "user-hc", "type": "TCP", "tcpHealthCheck": {"port": 22}})
    emu.put_raw(
        "backendServices",
        region,
        {
            "name": "user-bs",
            "protocol": "TCP",
            "loadBalancingScheme": "EXTERNAL",
            "healthChecks": [f"{region}/healthChecks/user-hc"],
            "backends": [{"group": f"zones/{zone}/instanceGroups/user-web", "balancingMode": "CONNECTION"}],
        },
    )
    intent = intent_for(provider, make_service(), sandbox.nodes)
    with pytest.raises(RuntimeError, match=rf"instances/{names[0]}'.*at most one load-balanced.*exclude"):
        converge(provider, intent)
    assert group_members(sandbox, zone, "user-web") == names[:1]
