"""Issue 14 for GCP: concurrent workers inside one read round list each collection once, and a
node change costs one instance-group write per zone however many Services' plans ask for it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from gcp_helpers import converge, intent_for, make_service

WORKERS = 10


def _intents(provider, nodes, n=WORKERS):
    return [
        intent_for(provider, make_service(f"w{i}", uid=f"0000000{i}-1111-2222-3333-444444444444"), nodes)
        for i in range(n)
    ]


def _with_node(provider, intent, nodes):
    svc = make_service(intent.ref.name, uid=intent.ref.uid)
    return intent_for(provider, svc, nodes)


def test_concurrent_plans_in_a_round_list_each_collection_once(provider, sandbox, server):
    intents = _intents(provider, sandbox.nodes)
    for intent in intents:
        converge(provider, intent)
    # latency widens the window in which every worker misses the cache at once
    server.inject(None, latency=0.05)
    provider.calls.reset()
    start = threading.Barrier(WORKERS)

    def plan(intent):
        start.wait()
        return provider.plan(intent)

    with provider.read_round(), ThreadPoolExecutor(WORKERS) as pool:
        plans = list(pool.map(plan, intents))
    assert all(p.empty for p in plans)
    sent = provider.calls.stats.sent
    # 1 aggregated group list + 2 member lists (two zones) + 5 collection lists, whatever the workers
    assert provider.calls.stats.reads == 8, dict(sent)
    assert sent[("instanceGroups.listInstances", "read")] == 2, dict(sent)
    assert all(n == 1 for (op, kind), n in sent.items() if kind == "read" and "listInstances" not in op)


def test_a_node_added_costs_one_write_per_zone_with_concurrent_plans_and_applies(provider, sandbox, server):
    nodes = list(sandbox.nodes)
    intents = _intents(provider, nodes)
    for intent in intents:
        converge(provider, intent)
    nodes.append(sandbox.add_node("node-5"))
    intents = [_with_node(provider, intent, nodes) for intent in intents]
    server.inject(None, latency=0.02)
    provider.calls.reset()
    planned = threading.Barrier(WORKERS)

    def reconcile(intent):
        plan = provider.plan(intent)
        planned.wait()  # every worker plans before any applies: all plans ask for the add
        provider.apply(plan)
        return plan

    with provider.read_round(), ThreadPoolExecutor(WORKERS) as pool:
        plans = list(pool.map(reconcile, intents))
    assert all(any(c.kind == "instance-group" for c in p.changes) for p in plans)
    stats = provider.calls.stats
    assert stats.sent[("instanceGroups.addInstances", "write")] == 1, dict(stats.sent)
    assert stats.writes == 1
    assert not stats.errors, dict(stats.errors)
    assert all(provider.plan(intent).empty for intent in intents)


def test_the_first_services_planned_together_create_each_group_once_and_read_none_back(provider, sandbox):
    """Every first Service's plan finds no group and asks to create it: the first apply creates and
    fills it, the others add nothing and read nothing back (each read was made under the lock that
    creates shared resources, holding every worker up, one round trip after the other)."""
    intents = _intents(provider, sandbox.nodes)
    planned = threading.Barrier(WORKERS)

    def reconcile(intent):
        plan = provider.plan(intent)
        planned.wait()  # every worker plans before any applies: all plans ask for the create
        provider.apply(plan)
        return plan

    with provider.read_round(), ThreadPoolExecutor(WORKERS) as pool:
        plans = list(pool.map(reconcile, intents))
    zones = {n.zone for n in sandbox.nodes}
    assert all(sum(c.kind == "instance-group" for c in p.changes) == len(zones) for p in plans)
    sent = provider.calls.stats.sent
    assert sent[("instanceGroups.insert", "write")] == len(zones), dict(sent)
    assert sent[("instanceGroups.addInstances", "write")] == len(zones), dict(sent)
    assert sent[("instanceGroups.listInstances", "read")] == 0, dict(sent)
    assert all(provider.plan(intent).empty for intent in intents)


def test_a_plan_read_after_the_last_write_is_applied_as_planned(provider, sandbox, server):
    """The write memory never hides a change made by someone else after it: a member removed by hand
    after lbprov's own write is added back by the next plan."""
    nodes = list(sandbox.nodes)
    (intent,) = _intents(provider, nodes, 1)
    converge(provider, intent)
    nodes.append(sandbox.add_node("node-5"))
    intent = _with_node(provider, intent, nodes)
    converge(provider, intent)  # lbprov's own write adds node-5
    new = nodes[-1]
    group = next(c for c in server.emulator.all_of("instanceGroups") if c["zone"].endswith(new.zone))
    server.emulator.handle(
        "POST",
        f"/compute/v1/projects/{sandbox.settings['project']}/zones/{new.zone}/instanceGroups/"
        f"{group['name']}/removeInstances",
        {},
        {"instances": [{"instance": f"zones/{new.zone}/instances/{new.name}"}]},
    )
    plan = provider.plan(intent)
    assert [c.kind for c in plan.changes] == ["instance-group"]
    provider.apply(plan)
    assert provider.plan(intent).empty


def test_creates_in_a_round_read_back_only_what_was_written(provider, sandbox, server):
    """A write marks its resources in the round's listings; a later plan reads only those of them
    it asks for, by name, so N creates in one round do not list the account N times."""
    intents = _intents(provider, sandbox.nodes, 20)
    with provider.read_round():
        for intent in intents:
            provider.apply(provider.plan(intent))
        creates = provider.calls.stats.reads
        provider.calls.reset()
        # every plan of the round sees its own resources exactly as written: all empty
        assert all(provider.plan(intent).empty for intent in intents)
    # the listings once, plus per Service the IP read back after reserving it
    assert creates <= 8 + 20 + 6, dict(provider.calls.stats.sent)
    provider.calls.reset()
    with provider.read_round():
        assert all(provider.plan(intent).empty for intent in intents)
    assert provider.calls.stats.reads == 8
