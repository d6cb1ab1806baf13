"""Placement holds room for plans decided but not yet applied (:mod:`lbprov_azure.reservations`).

Without holds, plans made at the same moment each see the same last room on a slot, and ARM refuses
all but the first few at apply (``LoadBalancerRuleCountLimitReachedForNic``: a NIC IP configuration
is in at most 300 load-balancing rules): failed syncs. Every test here makes its plans *before* any
apply, which is the concurrent case made deterministic.
"""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure import AzureProvider
from lbprov_azure.placement import CapacityExceeded, SlotUse, choose_slot
from lbprov_azure.reservations import Hold, Reservations
from lbprov_azure.sandbox import Fault
from lbprov_azure.testing import MemoryKube

TWO_PORTS = [("TCP", 80), ("TCP", 443)]


def _ports(n: int, first: int = 1000) -> list[tuple[str, int]]:
    return [("TCP", p) for p in range(first, first + n)]


def _provider(sandbox, cluster, **extra) -> AzureProvider:
    return AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "coalesce_window_seconds": 0.01, **extra}
    )


def _fill(provider, intent_for, make_service, ensure, rules: int):
    """Slot 0 holds one Service of ``rules`` rules (one per port): 300 - ``rules`` rules are left."""
    filler = intent_for(make_service("filler", ports=_ports(rules)), prov=provider)
    ensure(filler, provider)
    return filler


def _rule_limit_errors(provider: AzureProvider) -> int:
    return provider.calls.stats.errors.get("loadBalancers.create_or_update", 0)


# -- the holds themselves ---------------------------------------------------------------------


def test_a_hold_counts_until_its_apply_ends_and_then_only_for_plans_that_started_before():
    res = Reservations()
    with res.placing() as before:
        ticket = res.take(Hold("svc-a", slot=0, scheme="external", rules=2))
        with res.placing() as during:
            assert res.counted(during) == [ticket.hold]
            res.end(ticket)
            # a plan that read the load balancer before the write ended may not see it: still counted
            assert res.counted(before) == [ticket.hold] and res.counted(during) == [ticket.hold]
            with res.placing() as after:
                assert res.counted(after) == []  # a plan that starts now reads the write itself
        assert res.size() == 1  # kept while a plan that started before its end is placing
    with res.placing() as now:
        assert res.counted(now) == [] and res.size() == 0  # then forgotten: holds do not pile up


def test_a_discarded_plan_drops_its_hold_and_an_applied_one_ends_it():
    res = Reservations()

    class Plan:  # any object: the hold follows its lifetime
        pass

    plan = Plan()
    res.bind(res.take(Hold("svc-a", 0, "external", 2)), plan)
    assert res.size() == 1
    del plan
    gc.collect()
    assert res.size() == 0
    applied = Plan()
    res.bind(res.take(Hold("svc-b", 0, "external", 2)), applied)
    with res.placing() as since:
        with res.applying(applied), res.placing() as during:
            assert res.counted(during) != []
        assert res.counted(since) != []
    with res.placing() as now:
        assert res.counted(now) == []


def test_held_room_counts_toward_each_limit_but_the_choice_among_fitting_slots_counts_what_exists():
    # 300 rules per NIC (the slot), 1,500 rules and 600 frontends per load balancer
    nic = SlotUse(0, rules=296, lb_rules=296, frontends=148, held_rules=4, held_lb_rules=4, held_frontends=2)
    lb_rules = SlotUse(0, rules=100, lb_rules=1498, frontends=10, held_lb_rules=2)
    frontends = SlotUse(0, rules=100, lb_rules=100, frontends=599, held_frontends=1)
    for full in (nic, lb_rules, frontends):
        assert choose_slot([full], 2, max_slots=2, nodes=3) == 1  # a new slot, not an ARM error
        with pytest.raises(CapacityExceeded):
            choose_slot([full], 2, max_slots=1, nodes=3)
    # both fit: the one with fewer rules that exist wins, whatever is held (plans made together
    # keep going to one load balancer, where their writes share a PUT)
    busy, quiet = SlotUse(0, 50, 50, 25, held_rules=200), SlotUse(1, 100, 100, 50)
    assert choose_slot([busy, quiet], 2, max_slots=2, nodes=3) == 0


# -- through the SDK against the emulator -----------------------------------------------------


def test_concurrent_plans_near_the_nic_limit_all_apply_when_holds_open_a_new_load_balancer(
    sandbox, cluster, intent_for, make_service, ensure, state, h
):
    """Slot 0 has room for 2 two-port Services; 6 are planned at once, then applied at once.

    Without holds all 6 plans choose slot 0 and ARM refuses 4 of them at apply (300 rules per NIC).
    With holds, 2 stay on slot 0, the 4 others open slot 1, and every apply succeeds."""
    provider = _provider(sandbox, cluster, max_load_balancers=2)
    filler = _fill(provider, intent_for, make_service, ensure, 296)
    intents = [intent_for(make_service(f"s{i}", ports=TWO_PORTS), prov=provider) for i in range(6)]
    planned = threading.Barrier(len(intents))
    provider.calls.reset()

    def reconcile(intent):
        plan = provider.plan(intent)
        planned.wait(timeout=60)  # every plan is decided before any apply
        return plan.data["lb"], provider.apply(plan)

    with ThreadPoolExecutor(max_workers=len(intents)) as pool:
        results = list(pool.map(reconcile, intents))
    assert _rule_limit_errors(provider) == 0, provider.calls.stats.to_json()
    assert all(ingress and ingress[0].ip for _, ingress in results)
    assert sorted(lb for lb, _ in results) == [cluster] * 2 + [f"{cluster}-2"] * 4
    assert len(h.part_names(h.lb_of(state, cluster), "loadBalancingRules")) == 300
    assert len(h.part_names(h.lb_of(state, f"{cluster}-2"), "loadBalancingRules")) == 8
    res = provider.reservations
    assert res is not None
    with res.placing() as now:
        assert res.counted(now) == [] and res.size() == 0  # ended, and no plan in flight: none kept
    for intent in intents:  # converged
        assert provider.plan(intent).empty
    for intent in [*intents, filler]:
        provider.apply(provider.plan_delete(intent.ref))


def test_the_plan_beyond_the_ceiling_gets_the_clear_event_not_an_arm_error(
    sandbox, cluster, make_service, nodes
):
    """One load balancer (the ceiling) with room for 2 two-port Services; 3 reconciled at once by the
    real reconciler: 2 get their IP, the third is refused at plan with the event naming the limit and
    the room held for the others, and no write reaches ARM to be refused there."""
    provider = _provider(sandbox, cluster, max_load_balancers=1)
    filler = make_service("filler", ports=_ports(296))
    services = [make_service(f"s{i}", ports=TWO_PORTS) for i in range(3)]
    kube = MemoryKube([filler, *services])
    reconciler = kube.reconciler(provider, nodes, cluster)
    reconciler.sync("default/filler")
    planned = threading.Barrier(len(services))
    plan = provider.plan

    def plan_then_wait(intent):
        try:
            return plan(intent)
        finally:
            planned.wait(timeout=60)  # every plan (or refusal) is decided before any apply

    provider.plan = plan_then_wait  # type: ignore[method-assign]
    provider.calls.reset()

    def sync(svc):
        try:
            reconciler.sync(f"default/{svc['metadata']['name']}")
        except CapacityExceeded as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        outcomes = list(pool.map(sync, services))
    provider.plan = plan  # type: ignore[method-assign]
    refused = [s["metadata"]["name"] for s, o in zip(services, outcomes, strict=True) if o is not None]
    assert len(refused) == 1, outcomes
    assert _rule_limit_errors(provider) == 0, provider.calls.stats.to_json()
    warnings = [m for name, r, m in kube.events if name == refused[0] and r == "SyncLoadBalancerFailed"]
    assert warnings and "no load balancer of the cluster can take" in warnings[0], kube.events
    assert "4 of their rules held for plans not yet applied" in warnings[0]
    assert "max_load_balancers=1" in warnings[0]
    for s in services:
        ingress = (kube.get_service("default", s["metadata"]["name"]).get("status") or {}).get("loadBalancer")
        assert bool((ingress or {}).get("ingress")) == (s["metadata"]["name"] not in refused)
    for key in [*(f"default/{s['metadata']['name']}" for s in services), "default/filler"]:
        kube.services[key]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        reconciler.sync(key)


def test_a_failed_apply_and_a_discarded_plan_give_their_room_back(
    sandbox, cluster, intent_for, make_service, ensure, state
):
    provider = _provider(sandbox, cluster, max_load_balancers=1, max_attempts=1)
    filler = _fill(provider, intent_for, make_service, ensure, 298)  # room for one two-port Service
    a, b = (intent_for(make_service(n, ports=TWO_PORTS), prov=provider) for n in ("a", "b"))
    plan_a = provider.plan(a)
    with pytest.raises(CapacityExceeded, match="2 of their rules held for plans not yet applied"):
        provider.plan(b)
    del plan_a  # discarded unapplied (the controller re-plans, or gives up): the room is free at once
    gc.collect()
    plan_b = provider.plan(b)
    with pytest.raises(CapacityExceeded):
        provider.plan(a)
    state.inject(
        Fault(method="PUT", path=r"/loadbalancers/", status=500, code="InternalServerError", times=-1)
    )
    with pytest.raises(HttpResponseError):
        provider.apply(plan_b)  # nothing reached the load balancer
    state.clear_faults()
    ensure(a, provider)  # b's failed apply holds nothing for plans made after it
    with pytest.raises(CapacityExceeded) as info:
        provider.plan(b)
    assert "held for plans" not in str(info.value)  # full by what exists, not by holds
    for intent in (a, b, filler):
        provider.apply(provider.plan_delete(intent.ref))


def test_dry_run_plans_hold_nothing(sandbox, cluster, intent_for, make_service, ensure):
    provider = _provider(sandbox, cluster, max_load_balancers=1)
    filler = _fill(provider, intent_for, make_service, ensure, 298)
    dry = AzureProvider.from_settings({**sandbox.settings, "cluster_name": cluster}, read_only=True)
    assert dry.reservations is None
    plans = [dry.plan(intent_for(make_service(n, ports=TWO_PORTS), prov=dry)) for n in ("a", "b")]
    assert [p.data["lb"] for p in plans] == [cluster, cluster]  # each shown as if alone
    intent = intent_for(make_service("c", ports=TWO_PORTS), prov=provider)
    assert provider.plan(intent).data["lb"] == cluster  # the dry plans took no room
    provider.apply(provider.plan_delete(filler.ref))
