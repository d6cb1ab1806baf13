"""Cluster identity on GCP: every resource lbprov creates carries lbprov.io/cluster-id (in the
description, and as the label lbprov-cluster-id where the description cannot change); older
resources get it on their next reconcile; deletes decided from cloud state need it to match; and
EKS-style cluster names still give valid GCE names."""

from __future__ import annotations

from typing import Any

from gcp_helpers import CLUSTER_ID, converge, intent_for, make_service, provider_for
from lbprov_gcp import names as N
from lbprov_gcp.testing import make_nodes, sdk

from lbprov import naming
from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Action


def everything(server: Any) -> list[tuple[str, dict[str, Any]]]:
    emu = server.emulator
    return [
        (coll, r)
        for coll in ("forwardingRules", "backendServices", "healthChecks", "firewalls", "addresses")
        for r in emu.all_of(coll)
    ]


def test_every_resource_lbprov_creates_carries_the_identity(provider, sandbox, server):
    for svc in (
        make_service("a"),
        make_service("b", local=True),
        make_service("c", ports=[("UDP", 53, 30053), ("TCP", 53, 30054)]),
    ):
        converge(provider, intent_for(provider, svc, sandbox.nodes))
    found = everything(server)
    assert {c for c, _ in found} == {
        "forwardingRules",
        "backendServices",
        "healthChecks",
        "firewalls",
        "addresses",
    }
    for coll, res in found:
        assert N.identity(res) == CLUSTER_ID, (coll, res["name"])
    s = sandbox.settings
    for rule in sdk(sandbox, "ForwardingRulesClient").list(project=s["project"], region=s["region"]):
        assert rule.labels[N.ID_LABEL] == CLUSTER_ID
    for group in server.emulator.all_of("instanceGroups"):
        assert N.ownership(group["description"])[naming.CLUSTER_ID_TAG] == CLUSTER_ID


def test_resources_from_before_identities_get_it_on_the_next_reconcile(sandbox, server):
    old = provider_for(sandbox, cluster_id=None)
    intent = intent_for(old, make_service(), sandbox.nodes)
    converge(old, intent)
    assert all(N.identity(r) is None for _, r in everything(server))
    new = provider_for(sandbox)
    plan = new.plan(intent)
    assert {c.reason for c in plan.changes} == {"add the cluster identity"}
    new.calls.reset()
    new.apply(plan)
    assert new.calls.stats.operations("write") == {
        "firewalls.patch",
        "regionHealthChecks.update",
        "regionBackendServices.patch",
        "forwardingRules.setLabels",
    }
    assert all(N.identity(r) == CLUSTER_ID for _, r in everything(server))
    assert new.plan(intent).empty


def test_a_kept_reservation_from_before_identities_gets_the_label(sandbox, server):
    """static_addresses keeps the Service's reservation for good; one made before cluster identities
    gets the label lbprov-cluster-id on the next reconcile (its description cannot change)."""
    old = provider_for(sandbox, cluster_id=None, static_addresses=True)
    intent = intent_for(old, make_service(), sandbox.nodes)
    converge(old, intent)
    s = sandbox.settings
    addresses = sdk(sandbox, "AddressesClient")
    before = addresses.get(project=s["project"], region=s["region"], address=intent.lb_name)
    assert N.ID_LABEL not in before.labels
    new = provider_for(sandbox, static_addresses=True)
    plan = new.plan(intent)
    labelled = [c for c in plan.changes if c.kind == "address"]
    assert [(c.action, c.reason) for c in labelled] == [(Action.UPDATE, "add the cluster identity")]
    new.apply(plan)
    after = addresses.get(project=s["project"], region=s["region"], address=intent.lb_name)
    assert after.labels[N.ID_LABEL] == CLUSTER_ID and after.address == before.address
    assert new.plan(intent).empty


def test_a_shared_check_of_another_cluster_identity_is_never_deleted(provider, sandbox, server):
    # another cluster with the same name made the shared kube-proxy check in this project
    emu = server.emulator
    other = N.cluster_description("test", "ffffffff-0000-4000-8000-00000000000f")
    provider_other = provider_for(sandbox, cluster_id="ffffffff-0000-4000-8000-00000000000f")
    theirs = intent_for(provider_other, make_service("theirs"), sandbox.nodes)
    converge(provider_other, theirs)
    hc = emu._bucket(emu.project, f"regions/{emu.region}", "healthChecks")[N.shared_hc_name("test")]
    assert hc["description"] == other
    # their Service goes by hand (its backend service and rule), the shared check stays behind
    for coll in ("forwardingRules", "backendServices"):
        for name in [
            n for n in emu._bucket(emu.project, f"regions/{emu.region}", coll) if n.startswith(theirs.lb_name)
        ]:
            del emu._bucket(emu.project, f"regions/{emu.region}", coll)[name]
    ours = intent_for(provider, make_service("ours"), sandbox.nodes)
    converge(provider, ours)
    provider.apply(provider.plan_delete(ours.ref))
    assert N.shared_hc_name("test") in emu._bucket(emu.project, f"regions/{emu.region}", "healthChecks")
    assert N.shared_hc_firewall_name("test") in emu._bucket(emu.project, "global", "firewalls")


def test_list_owned_reports_the_identity(provider, sandbox):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    (owned,) = provider.list_owned()
    assert owned.ref.uid == intent.ref.uid and owned.cluster_id == CLUSTER_ID


def test_an_eks_style_cluster_name_gives_valid_gce_names(sandbox, server):
    cluster = "Prod_EU-" + "X" * 92
    assert len(cluster) == 100
    provider = provider_for(sandbox, cluster_name=cluster, gce_cluster_id=None)
    svc = make_service()
    intent = build_intent(svc, make_nodes(sandbox.nodes), IntentSettings(cluster=cluster), provider)
    converge(provider, intent)
    assert provider.plan(intent).empty
    for coll, res in everything(server):
        assert len(res["name"]) <= 63 and res["name"] == res["name"].lower(), (coll, res["name"])
        assert N.ownership(res["description"])[f"kubernetes.io/cluster/{cluster}"] == "owned"
    groups = {g["name"] for g in server.emulator.all_of("instanceGroups")}
    assert all(len(g) <= 63 and g == g.lower() for g in groups)
    provider.apply(provider.plan_delete(intent.ref))
    assert [c for c, _ in everything(server)] == []
