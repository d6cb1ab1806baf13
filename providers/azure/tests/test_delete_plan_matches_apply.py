"""The dry run says what apply does: an emptied load balancer is planned deleted only when apply
deletes it (DESIGN.md: the plan is exactly what apply does).

Apply deletes an emptied load balancer only if it carries this cluster's identity
(:func:`lbprov.naming.identity_matches`, the guard of every delete decided from cloud state); the
planner takes the same decision, so cloud-provider-azure's load balancer (never adopted, no lbprov
identity) is planned and left as an update that removes the Service's parts, never as a delete.
Everything runs through azure-mgmt-network against the ARM emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lbprov_azure import AzureProvider, names
from lbprov_azure.lbwriter import LBDelta, merge
from lbprov_azure.sandbox import ArmState
from lbprov_azure.sandbox.cloud_provider_azure import frontend_names
from lbprov_azure.testing import SANDBOX_RG, converge, lb_of, upstream_service

from lbprov import naming
from lbprov.model import Action, Intent, OwnershipConflict, Plan

Svc = dict[str, Any]


def _lb_changes(plan: Plan, lb: str) -> list[tuple[str, str]]:
    return [(c.action.value, c.kind) for c in plan.changes if c.data.get("lb") == lb]


_KINDS = ("loadBalancers", "publicIPAddresses", "networkSecurityGroups")


def _resources(state: ArmState) -> dict[str, list[str]]:
    """Every load balancer, public IP and NSG rule of the resource group, by name (a diffable snapshot)."""
    with state.lock:
        found = {
            t: [b for (rg, _), b in state.resources[t].items() if rg == SANDBOX_RG.lower()] for t in _KINDS
        }
    return {
        "lbs": sorted(b["name"] for b in found["loadBalancers"]),
        "pips": sorted(b["name"] for b in found["publicIPAddresses"]),
        "rules": sorted(
            r["name"] for n in found["networkSecurityGroups"] for r in n["properties"]["securityRules"]
        ),
    }


def test_the_plan_of_deleting_an_unadopted_upstream_service_keeps_its_load_balancer(
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    nodes: list[dict[str, Any]],
    intent_for: Callable[..., Intent],
) -> None:
    svc = make_service("legacy")
    upstream_service(state, provider, svc, nodes)
    cluster = provider.settings.cluster_name
    base = naming.lb_name(svc["metadata"]["uid"])
    ref = intent_for(svc).ref
    writes = len(state.mutating_requests())
    plan = provider.plan_delete(ref)
    assert len(state.mutating_requests()) == writes  # the dry run is read-only
    lb_plan = _lb_changes(plan, cluster)
    assert ("delete", "load-balancer") not in lb_plan, plan.changes
    # the Service's parts are removed from it: the load balancer is updated, not deleted
    assert ("delete", "frontend-ip-configuration") in lb_plan
    assert ("delete", "load-balancing-rule") in lb_plan
    before = _resources(state)
    provider.apply(plan)
    after = _resources(state)
    # apply did exactly what the plan said: every resource the plan deletes is gone, nothing else
    deleted = {c.name.rsplit("/", 1)[-1] for c in plan.changes if c.action == Action.DELETE}
    for kind in ("lbs", "pips", "rules"):
        assert set(before[kind]) - set(after[kind]) == set(before[kind]) & deleted, kind
    assert cluster in after["lbs"]
    lb = lb_of(state, cluster)
    assert lb is not None and not frontend_names(lb, base)
    assert provider.plan_delete(ref).empty


def test_an_emptied_load_balancer_of_this_cluster_is_planned_and_deleted(
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    intent_for: Callable[..., Intent],
) -> None:
    intent = intent_for(make_service("mine"))
    converge(provider, intent)
    cluster = provider.settings.cluster_name
    plan = provider.plan_delete(intent.ref)
    assert ("delete", "load-balancer") in _lb_changes(plan, cluster)
    provider.apply(plan)
    assert lb_of(state, cluster) is None
    assert provider.plan_delete(intent.ref).empty


def _lb(tags: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "c",
        "etag": "e1",
        "tags": tags,
        "properties": {"frontendIPConfigurations": [{"name": "a1", "properties": {}}]},
    }


@pytest.mark.parametrize("planned", [True, False], ids=["planned-delete", "planned-kept"])
def test_the_write_time_identity_guard_refuses_a_planned_delete_it_does_not_follow(planned: bool) -> None:
    """The LB lost this cluster's identity between plan and apply (a race): the write-time guard
    keeps it, and a delta whose plan said "delete" gets an error naming the LB instead of a silent
    keep; a plan that already said "kept" applies as planned."""
    owned = names.with_services({names.azure_key(naming.cluster_tag_key("c")): naming.OWNED}, ["svc1"])
    delta = LBDelta(
        service="svc1",
        base="a1",
        deletes=(("frontendIPConfigurations", "a1"),),
        join=False,
        delete_lb=planned,
    )
    merged = merge(_lb(owned), [delta], "c", "lb c", cluster_id="id-1")
    assert merged.action in ("none", "update")
    if planned:
        assert isinstance(merged.errors.get(0), OwnershipConflict)
        assert "lb c" in str(merged.errors[0]) and "identity" in str(merged.errors[0])
        assert merged.action == "none"  # nothing of the refused delta is written
    else:
        assert merged.errors == {}
        assert merged.action == "update"
    # with the identity, the same planned delete is carried out
    ours = merge(_lb({**owned, names.CLUSTER_ID_KEY: "id-1"}), [delta], "c", "lb c", cluster_id="id-1")
    assert ours.action == "delete" and ours.errors == {}


def test_a_planned_delete_of_a_load_balancer_that_lost_the_identity_is_refused(
    state: ArmState,
    provider: AzureProvider,
    make_service: Callable[..., Svc],
    intent_for: Callable[..., Intent],
) -> None:
    """Between the plan and apply someone strips the identity tag: apply keeps the LB (the guard)
    and says so with an error naming it, writing nothing of the Service's to it."""
    intent = intent_for(make_service("raced"))
    converge(provider, intent)
    cluster = provider.settings.cluster_name
    plan = provider.plan_delete(intent.ref)
    assert ("delete", "load-balancer") in _lb_changes(plan, cluster)
    lb = lb_of(state, cluster)
    assert lb is not None
    stripped = {k: v for k, v in lb["tags"].items() if k != names.CLUSTER_ID_KEY}
    assert stripped != lb["tags"]
    state.put("loadBalancers", SANDBOX_RG, cluster, {**lb, "tags": stripped})
    with pytest.raises(OwnershipConflict, match=f"load balancer {cluster}.*identity"):
        provider.apply(plan)
    kept = lb_of(state, cluster)
    assert kept is not None and frontend_names(kept, naming.lb_name(intent.ref.uid))
