"""Node churn across many Services, and throttling / 5xx / latency injected by the emulator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from gcp_helpers import GCE_CLUSTER_ID, converge, intent_for, make_service, provider_for
from google.api_core import exceptions as gexc
from lbprov_gcp import names as N


def test_one_node_added_costs_one_write_to_its_zones_group_for_20_services(provider, sandbox, server):
    nodes = list(sandbox.nodes)
    services = [
        make_service(f"svc-{i}", ports=[("TCP", 80 + i, 30000 + i)], local=i % 2 == 0) for i in range(20)
    ]
    for svc in services:
        converge(provider, intent_for(provider, svc, nodes))

    new = sandbox.add_node("node-5")
    nodes.append(new)
    provider.calls.reset()
    server.clear_log()
    for svc in services:
        converge(provider, intent_for(provider, svc, nodes))
    stats = provider.calls.stats
    assert stats.writes == 1
    assert stats.operations("write") == {"instanceGroups.addInstances"}
    assert server.mutating_requests() == [
        f"POST /compute/v1/projects/{sandbox.settings['project']}/zones/{new.zone}/instanceGroups/"
        f"{N.ig_name('test', GCE_CLUSTER_ID)}/addInstances"
    ]
    # every later plan is empty
    for svc in services[:3]:
        assert provider.plan(intent_for(provider, svc, nodes)).empty


def test_throttling_and_503s_are_retried_until_convergence(sandbox, server):
    provider = provider_for(sandbox, retry_attempts=8)
    throttle = server.inject(429, every_n=3)
    unavailable = server.inject(503, count=4, operations=["write"])
    intent = intent_for(provider, make_service(ports=[("TCP", 80, 30080), ("UDP", 53, 30053)]), sandbox.nodes)
    (ingress,) = converge(provider, intent)
    stats = provider.calls.stats
    assert throttle.fired > 0 and unavailable.fired == 4
    assert stats.throttled and sum(stats.throttled.values()) == throttle.fired
    assert sum(stats.retries.values()) == throttle.fired + unavailable.fired
    server.clear_faults()
    assert provider.plan(intent).empty
    assert ingress.ip


def test_retry_after_from_the_server_is_honoured(sandbox, server):
    sleeps: list[float] = []
    provider = provider_for(sandbox)
    provider.calls._sleep = sleeps.append  # record instead of sleeping
    server.inject(429, count=1, operations=["regionHealthChecks.list"], retry_after=3)
    provider.plan(intent_for(provider, make_service(), sandbox.nodes))
    assert sleeps and sleeps[0] >= 3
    assert provider.calls.stats.throttled["regionHealthChecks.list"] == 1


def test_a_persistent_error_is_raised_after_bounded_attempts(sandbox, server):
    provider = provider_for(sandbox, retry_attempts=3)
    fault = server.inject(503, operations=["instanceGroups.aggregatedList"])
    with pytest.raises(gexc.ServiceUnavailable):
        provider.plan(intent_for(provider, make_service(), sandbox.nodes))
    assert fault.fired == 3
    assert provider.calls.stats.retries["instanceGroups.aggregatedList"] == 2


def test_an_ownership_conflict_is_not_retried(sandbox, server):
    provider = provider_for(sandbox)
    server.emulator.put_raw(
        "firewalls",
        "global",
        {
            "name": "k8s-test-node-http-hc",
            "network": "global/networks/lbprov-net",
            "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp"}],
        },
    )
    intent = intent_for(provider, make_service(), sandbox.nodes)
    with pytest.raises(Exception, match="not owned by cluster test"):
        provider.plan(intent)
    assert sum(provider.calls.stats.retries.values()) == 0


def test_latency_slows_but_does_not_break_convergence(sandbox, server):
    provider = provider_for(sandbox)
    server.inject(None, latency=0.01)
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    assert provider.plan(intent).empty


def test_a_read_round_lists_each_collection_once_for_all_services(provider, sandbox, server):
    nodes = list(sandbox.nodes)
    intents = [
        intent_for(provider, make_service(f"s{i}", ports=[("TCP", 80, 31000 + i)]), nodes) for i in range(20)
    ]
    with provider.read_round():
        for intent in intents:
            provider.apply(provider.plan(intent))
    provider.calls.reset()
    with provider.read_round():
        assert all(provider.plan(intent).empty for intent in intents)
    # 1 aggregated group list + 2 member lists + 5 collection lists, for 20 Services
    assert provider.calls.stats.reads == 8
    # a node added inside a round: the first apply refreshes the groups, the others see it
    nodes.append(sandbox.add_node("node-5"))
    provider.calls.reset()
    with provider.read_round():
        for intent in intents:
            plan = provider.plan(
                intent_for(
                    provider,
                    make_service(
                        intent.ref.name, uid=intent.ref.uid, ports=[("TCP", 80, intent.ports[0].node_port)]
                    ),
                    nodes,
                )
            )
            provider.apply(plan)
    assert provider.calls.stats.writes == 1


def test_concurrent_reconciles_create_the_shared_resources_once(provider, sandbox, server):
    intents = [
        intent_for(provider, make_service(f"c{i}", ports=[("TCP", 80, 31500 + i)]), sandbox.nodes)
        for i in range(6)
    ]
    plans = [provider.plan(intent) for intent in intents]  # all planned before anything exists
    assert all(any(c.kind == "instance-group" for c in plan.changes) for plan in plans)
    provider.calls.reset()
    with ThreadPoolExecutor(max_workers=6) as pool:
        ingresses = list(pool.map(provider.apply, plans))
    assert len({i[0].ip for i in ingresses}) == 6
    sent = provider.calls.stats.sent
    assert sent[("instanceGroups.insert", "write")] == 2
    assert (
        sent[("regionHealthChecks.insert", "write")] == 1
    )  # only the shared check: all are Cluster Services
    assert sent[("instanceGroups.addInstances", "write")] == 2
    assert all(provider.plan(intent).empty for intent in intents)


def test_gce_style_403_rate_limit_is_throttling_too(sandbox, server):
    provider = provider_for(sandbox)
    fault = server.inject(403, count=2, operations=["forwardingRules.list"])
    provider.plan(intent_for(provider, make_service(), sandbox.nodes))
    assert fault.fired == 2
    assert provider.calls.stats.throttled["forwardingRules.list"] == 2


def test_a_client_error_answer_is_not_retried(sandbox, server):
    provider = provider_for(sandbox)
    fault = server.inject(400, count=1, operations=["forwardingRules.list"])
    with pytest.raises(gexc.BadRequest):
        provider.plan(intent_for(provider, make_service(), sandbox.nodes))
    assert fault.fired == 1 and sum(provider.calls.stats.retries.values()) == 0
