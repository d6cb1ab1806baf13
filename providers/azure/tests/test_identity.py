"""The cluster identity (``lbprov.io/cluster-id``, the kube-system Namespace UID) on every resource,
added to older ones on their next reconcile, and the guard of every delete decided from cloud state."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider, names
from lbprov_azure.testing import SANDBOX_RG, allow_rule, converge

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import OwnershipConflict

KEY = "lbprov.io_cluster-id"


def _provider(sandbox, cluster, cluster_id):
    settings = {k: v for k, v in sandbox.settings.items() if k != "cluster_id"}
    if cluster_id:
        settings["cluster_id"] = cluster_id
    return AzureProvider.from_settings({**settings, "cluster_name": cluster})


def _intent(prov, svc, nodes):
    return build_intent(svc, nodes, IntentSettings(cluster=prov.settings.cluster_name), prov)


def _nsg_rule(state, name):
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    return next(r["properties"] for r in nsg["properties"]["securityRules"] if r["name"] == name)


def test_every_resource_carries_the_cluster_identity(
    provider, cluster, intent_for, make_service, ensure, state
):
    cid = provider.settings.cluster_id
    assert cid
    intent = intent_for(make_service())
    ensure(intent)
    pip = state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{intent.lb_name}")
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    assert pip["tags"][KEY] == cid and lb["tags"][KEY] == cid
    rule = allow_rule(state, intent.lb_name, pip["properties"]["ipAddress"])
    assert names.rule_identity(cid) in rule["description"].split(" ")
    (owned,) = [o for o in provider.list_owned() if o.ref.uid == intent.ref.uid]
    assert owned.cluster_id == cid


def test_older_resources_get_the_identity_on_their_next_reconcile(
    sandbox, cluster, make_service, nodes, state
):
    old = _provider(sandbox, cluster, None)
    svc = make_service()
    converge(old, _intent(old, svc, nodes))
    new = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000042")
    intent = _intent(new, svc, nodes)
    plan = new.plan(intent)
    assert sorted((c.action.value, c.kind) for c in plan.changes) == [
        ("update", "load-balancer"),
        ("update", "nsg-rule"),
        ("update", "public-ip"),
    ]
    converge(new, intent)
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    assert lb["tags"][KEY] == new.settings.cluster_id
    new.apply(new.plan_delete(intent.ref))
    assert state.get("loadBalancers", SANDBOX_RG, cluster) is None  # identity matches: deleted


def test_an_emptied_lb_is_kept_when_the_identity_is_unknown(sandbox, cluster, make_service, nodes, state):
    anon = _provider(sandbox, cluster, None)
    intent = _intent(anon, make_service(), nodes)
    converge(anon, intent)
    anon.apply(anon.plan_delete(intent.ref))
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    assert lb is not None and not lb["properties"]["frontendIPConfigurations"]  # emptied, not deleted
    ours = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000043")
    ours.apply(ours.plan_delete(intent.ref))  # a run that knows the identity tags it, then deletes it
    assert state.get("loadBalancers", SANDBOX_RG, cluster) is None


def test_a_same_named_cluster_of_another_identity_is_never_touched(
    sandbox, cluster, make_service, nodes, state
):
    first = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000044")
    a = _intent(first, make_service("a"), nodes)
    converge(first, a)
    before = state.get("loadBalancers", SANDBOX_RG, cluster)
    twin = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000045")
    with pytest.raises(OwnershipConflict, match="another cluster's identity"):
        twin.plan(_intent(twin, make_service("b"), nodes))
    # a delete plan is the caller's decision (gc checks the identity first, or a user names the LB):
    # it takes the Service's parts, but never re-tags the other cluster's load balancer
    assert not [
        c for c in twin.plan_delete(a.ref).changes if c.kind == "load-balancer" and c.action.value == "update"
    ]
    assert state.get("loadBalancers", SANDBOX_RG, cluster)["etag"] == before["etag"]
    first.apply(first.plan_delete(a.ref))


def test_a_run_that_does_not_know_the_identity_keeps_it(sandbox, cluster, make_service, nodes):
    """``lbprov plan -f`` reads no cluster, so it has no identity: it must not plan to remove one."""
    ours = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000046")
    svc = make_service()
    converge(ours, _intent(ours, svc, nodes))
    anon = _provider(sandbox, cluster, None)
    assert anon.plan(_intent(anon, svc, nodes)).empty
    ours.apply(ours.plan_delete(_intent(ours, svc, nodes).ref))


def test_a_delete_plan_never_deletes_the_load_balancer_of_another_identity(
    sandbox, cluster, make_service, nodes, state
):
    """The twin's delete plan takes its Service's parts (the caller's decision), never the emptied LB
    itself: only this cluster's identity lets an LB go (found by review: the plan asked
    ``deletable`` with the identity the LB carried, which always matched)."""
    first = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000047")
    a = _intent(first, make_service("a"), nodes)
    converge(first, a)
    twin = _provider(sandbox, cluster, "7f3e2d1c-aaaa-4bbb-8ccc-000000000048")
    plan = twin.plan_delete(a.ref)
    assert ("delete", "load-balancer") not in {(c.action.value, c.kind) for c in plan.changes}
    twin.apply(plan)
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    assert lb is not None and lb["tags"][KEY] == first.settings.cluster_id  # kept, emptied of a
    assert ("delete", "load-balancer") not in {
        (c.action.value, c.kind) for c in twin.plan_delete(a.ref).changes
    }
    owner = _provider(sandbox, cluster, first.settings.cluster_id)  # a fresh run of the owner
    owner.apply(owner.plan_delete(a.ref))  # deletes its emptied LB
    assert state.get("loadBalancers", SANDBOX_RG, cluster) is None
