"""The shared load balancer under concurrency: no lost update, coalesced PUTs, 412 races resolved."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from lbprov_azure import AzureProvider

RG = "lbprov-sandbox"


def _lb_puts(state, cluster: str) -> int:
    return state.count("PUT", rf"/loadbalancers/{cluster.lower()}$")


def test_50_services_by_10_workers_lose_nothing_and_coalesce_lb_puts(
    provider, intent_for, make_service, state, h
):
    cluster = provider.settings.cluster_name
    intents = [
        intent_for(
            make_service(f"svc-{i}", ports=[("TCP", 80), ("UDP", 53)] if i % 5 == 0 else [("TCP", 80)])
        )
        for i in range(50)
    ]
    provider.calls.reset()

    def reconcile(intent):
        return provider.apply(provider.plan(intent))

    with ThreadPoolExecutor(max_workers=10) as pool:
        ingresses = list(pool.map(reconcile, intents))
    assert all(i and i[0].ip for i in ingresses)
    assert len({i[0].ip for i in ingresses}) == 50
    lb = h.lb_of(state, cluster)
    fes = h.part_names(lb, "frontendIPConfigurations")
    rules = h.part_names(lb, "loadBalancingRules")
    probes = h.part_names(lb, "probes")
    expected_rules = {f"{i.lb_name}-{p.protocol}-{p.port}" for i in intents for p in i.ports}
    assert fes == {i.lb_name for i in intents}  # no lost update
    assert rules == expected_rules and probes == expected_rules
    puts = _lb_puts(state, cluster)
    writer = provider.writer(cluster)
    stats = provider.calls.stats.to_json()
    print(
        json.dumps(
            {"services": 50, "workers": 10, "lb_puts": puts, "writer": vars(writer.stats), "calls": stats}
        )
    )
    assert puts == stats["by_operation"]["loadBalancers.create_or_update (write)"]
    assert puts <= 10, f"{puts} LB PUTs for 50 Services: writes were not coalesced"
    with ThreadPoolExecutor(max_workers=10) as pool:
        assert all(p.empty for p in pool.map(provider.plan, intents))  # converged
        list(pool.map(lambda i: provider.apply(provider.plan_delete(i.ref)), intents))
    assert h.lb_of(state, cluster) is None
    assert provider.list_owned() == []


def test_two_replicas_writing_the_same_lb_resolve_412s_without_losing_parts(
    sandbox, provider, intent_for, make_service, state, h
):
    """Two processes (two providers, two writers) race on one LB: only If-Match keeps them honest."""
    cluster = provider.settings.cluster_name
    other = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "coalesce_window_seconds": 0}
    )
    a = [intent_for(make_service(f"a-{i}")) for i in range(8)]
    b = [intent_for(make_service(f"b-{i}"), prov=other) for i in range(8)]
    barrier = threading.Barrier(8)

    def run(pair):
        prov, intent = pair
        barrier.wait(timeout=30)
        return prov.apply(prov.plan(intent))

    jobs = [(provider, i) for i in a] + [(other, i) for i in b]
    jobs = [j for pair in zip(jobs[:8], jobs[8:], strict=True) for j in pair]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run, jobs))
    lb = h.lb_of(state, cluster)
    assert h.part_names(lb, "frontendIPConfigurations") == {i.lb_name for i in a + b}
    conflicts = provider.writer(cluster).stats.conflicts + other.writer(cluster).stats.conflicts
    assert state.count("PUT", rf"/loadbalancers/{cluster.lower()}$") >= 2
    print(json.dumps({"conflicts_412": conflicts}))
    for i in a + b:
        provider.apply(provider.plan_delete(i.ref))
    assert h.lb_of(state, cluster) is None


def test_injected_412_race_is_re_read_merged_and_keeps_the_other_writer_change(
    provider, intent_for, make_service, ensure, state, h
):
    cluster = provider.settings.cluster_name
    first = intent_for(make_service("first"))
    ensure(first)
    second = intent_for(make_service("second"))
    plan = provider.plan(second)
    fired = []

    def race(method: str, path: str) -> None:
        # Just before our LB PUT is handled, another writer changes the LB (new ETag).
        if method == "PUT" and path.lower().endswith(f"/loadbalancers/{cluster}".lower()) and not fired:
            fired.append(path)
            lb = state.get("loadBalancers", RG, cluster)
            body = {k: lb[k] for k in ("location", "sku", "tags", "properties")}
            body["tags"] = {**lb["tags"], "touched-by": "someone-else"}
            state.put("loadBalancers", RG, cluster, body)

    state.hooks.append(race)
    before = _lb_puts(state, cluster)
    ingress = provider.apply(plan)
    assert fired and ingress[0].ip
    assert provider.writer(cluster).stats.conflicts == 1  # one 412, then re-read and re-merged
    assert _lb_puts(state, cluster) - before == 2
    lb = h.lb_of(state, cluster)
    assert lb["tags"]["touched-by"] == "someone-else"  # the other writer's change survived
    assert h.part_names(lb, "frontendIPConfigurations") == {first.lb_name, second.lb_name}
    state.hooks.clear()
    assert provider.plan(second).empty and provider.plan(first).empty
    for i in (first, second):
        provider.apply(provider.plan_delete(i.ref))


def test_mixed_creates_scheme_switches_and_deletes_at_once_end_consistent(
    provider, intent_for, make_service, ensure, state, h
):
    """Both shared LBs written by 8 workers at once: creates, external<->internal moves, deletes."""
    cluster = provider.settings.cluster_name
    internal = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    movers = [make_service(f"mv-{i}") for i in range(6)]
    leavers = [intent_for(make_service(f"lv-{i}", annotations=internal if i % 2 else {})) for i in range(6)]
    for svc in movers:
        ensure(intent_for(svc))
    for i in leavers:
        ensure(i)
    moved = [
        intent_for(
            make_service(
                svc["metadata"]["name"],
                uid=svc["metadata"]["uid"],
                node_ports={("TCP", 80): svc["spec"]["ports"][0]["nodePort"]},
                annotations=internal,
            )
        )
        for svc in movers
    ]
    fresh = [intent_for(make_service(f"new-{i}", annotations=internal if i % 2 else {})) for i in range(6)]
    jobs = [("ensure", i) for i in moved + fresh] + [("delete", i) for i in leavers]
    jobs = jobs[::2] + jobs[1::2]

    def run(job):
        kind, intent = job
        plan = provider.plan(intent) if kind == "ensure" else provider.plan_delete(intent.ref)
        return provider.apply(plan)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run, jobs))
    ext = h.part_names(h.lb_of(state, cluster), "frontendIPConfigurations")
    intl = h.part_names(h.lb_of(state, f"{cluster}-internal"), "frontendIPConfigurations")
    assert ext == {i.lb_name for i in fresh[0::2]}
    assert intl == {i.lb_name for i in moved} | {i.lb_name for i in fresh[1::2]}
    for i in moved + fresh:
        assert provider.plan(i).empty
    for i in leavers:
        assert provider.plan_delete(i.ref).empty
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: provider.apply(provider.plan_delete(i.ref)), moved + fresh))
    assert h.lb_of(state, cluster) is None and h.lb_of(state, f"{cluster}-internal") is None
    assert provider.list_owned() == []


def test_cleanup_check_reads_what_the_delete_produced(provider, intent_for, make_service, ensure, state):
    """Another Service's plan re-reads the NSG while this Service's rule is being deleted; the
    controller's post-delete check (plan_delete again, same read round) must not see that stale copy."""
    # port 8443: "gone" is the only destination of its shared rule, so its delete deletes the rule
    gone, other = intent_for(make_service("gone", ports=[("TCP", 8443)])), intent_for(make_service("other"))
    ensure(gone)
    ensure(other)
    seen: list[str] = []

    def replan_other_during_delete(method: str, path: str) -> None:
        if method == "DELETE" and "/securityrules/" in path.lower() and not seen:
            seen.append(path)
            provider.plan(other)  # reads the NSG into the round before the delete is done

    with provider.read_round():
        plan = provider.plan_delete(gone.ref)
        assert any(c.kind == "nsg-rule" for c in plan.changes)
        state.hooks.append(replan_other_during_delete)
        provider.apply(plan)
        assert seen, "the hook did not run: the test staged nothing"
        left = provider.plan_delete(gone.ref)
    assert left.empty, [(c.action.value, c.kind, c.name) for c in left.changes]
