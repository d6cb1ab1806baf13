"""Reads that do not grow with the account (issue 14, asks 2-4), counted by CloudCalls by operation.

* create: N Services made one after another cost O(N) DescribeTags, not O(N²): tags are read once per
  ARN and kept current by lbprov's own writes (remembered.py);
* plans running at the same time share one implicit round's listings (single flight);
* a node added: one RegisterTargets per target group and no per-Service read (the round's listings
  and the remembered targets answer it);
* the periodic resync: listings every period, deep checks rotated so that every Service is checked
  within K resyncs, and drift made by hand (a deleted listener, an edited health check, a widened
  rule) repaired within K resyncs.
"""

from __future__ import annotations

from collections import Counter

import pytest
from lbprov_aws import AWSProvider, observe
from lbprov_aws.testing import NODE_RULE_MODEL, AwsView, Svc, converge, fast_settings, intent_of, node_objects

from lbprov.provider import SandboxCloud

#: The reads counted here include the node-rule model's (who wants a NodePort range rule, the
#: source-ranges tag): NLBs created without security groups.
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


PER_SERVICE = ("elbv2:DescribeListeners", "elbv2:DescribeLoadBalancerAttributes")
PER_TARGET_GROUP = ("elbv2:DescribeTargetGroupAttributes", "elbv2:DescribeTargetHealth")


def _reads(ops: Counter[str]) -> int:
    return sum(n for op, n in ops.items() if ":Describe" in op)


def _services(first: int, n: int) -> list[Svc]:
    # Every other NodePort: exact node rules that do not merge, so the rule budget switches keys to
    # the NodePort range and every plan reads the cluster's target groups (who wants the range).
    return [Svc(name=f"s{i}", ports=[(80, "TCP", 30100 + 2 * i)]) for i in range(first, first + n)]


def test_services_created_one_after_another_read_tags_in_o_n(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    nodes = node_objects(cloud)

    def create(services: list[Svc]) -> Counter[str]:
        provider.calls.reset()
        for svc in services:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))
        return provider.calls.reset().by_operation()

    first = create(_services(0, 30))
    second = create(_services(30, 30))  # 30 more, in an account that holds 30 already
    # Before: every plan re-read the tags of every target group of the account (30 -> 60 Services
    # doubled the tag reads per Service). Now tags are read once per ARN and kept current.
    assert second["elbv2:DescribeTags"] <= first["elbv2:DescribeTags"] + 1, (first, second)
    assert second["elbv2:DescribeTags"] <= 3, second
    # And no other read grows either: the reads per Service of the second 30 are those of the first.
    assert _reads(second) <= _reads(first) + 3, (first, second)
    assert _reads(second) / 30 <= 12, second


def test_tags_read_once_are_kept_current_by_our_writes(provider: AWSProvider, cloud: SandboxCloud) -> None:
    nodes = node_objects(cloud)
    svc = Svc(ports=[(80, "TCP", 30080)])
    converge(provider, intent_of(provider, svc, nodes))
    # A new source range re-tags the target group (lbprov.io/source-ranges): the plans after it,
    # which read no tag of that group again, must see the new value (else they would plan it again).
    svc.spec["loadBalancerSourceRanges"] = ["10.1.0.0/16"]
    converge(provider, intent_of(provider, svc, nodes))
    provider.calls.reset()
    facts = provider.reader.target_group_facts()
    assert provider.calls.reset().by_operation()["elbv2:DescribeTags"] == 0
    assert [f.source_ranges for f in facts] == [("10.1.0.0/16",)]


def test_plans_running_at_the_same_time_share_one_listing(
    provider: AWSProvider, cloud: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # plans join a round only while it is younger than SHARED_ROUND_SECONDS (5 s), a time a loaded
    # machine can stretch the first plan past: here the round stays young for the whole test
    monkeypatch.setattr(observe, "SHARED_ROUND_SECONDS", 3600.0)
    nodes = node_objects(cloud)
    a, b = Svc(name="a", ports=[(80, "TCP", 30080)]), Svc(name="b", ports=[(80, "TCP", 30081)])
    provider.calls.reset()
    with provider.reader.shared_round():  # another worker's plan, still in flight
        provider.plan(intent_of(provider, a, nodes))
        first = provider.calls.reset().by_operation()
        provider.plan(intent_of(provider, b, nodes))
        joined = provider.calls.reset().by_operation()
    assert first["ec2:DescribeSubnets"] == first["elbv2:DescribeTargetGroups"] == 1, first
    for op in (
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "ec2:DescribeInstances",
        "elbv2:DescribeTargetGroups",
    ):
        assert joined[op] == 0, (op, joined)
    # A plan that starts when no other is in flight reads afresh.
    provider.plan(intent_of(provider, b, nodes))
    alone = provider.calls.reset().by_operation()
    assert alone["ec2:DescribeSubnets"] == alone["elbv2:DescribeTargetGroups"] == 1, alone


def test_a_new_node_costs_one_register_per_target_group_and_no_read_per_service(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services(0, 24)
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    added = cloud.add_node("node-new")
    nodes = [
        *nodes,
        {
            "metadata": {"name": added.name, "labels": {"topology.kubernetes.io/zone": added.zone}},
            "spec": {"providerID": added.provider_id},
            "status": {"addresses": [{"type": "InternalIP", "address": added.internal_ip}]},
        },
    ]
    provider.calls.reset()
    with provider.read_round():  # the node sync's batch (not a periodic resync)
        for svc in services:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))
    ops = provider.calls.reset().by_operation()
    writes = {op: n for op, n in ops.items() if ":Describe" not in op}
    assert writes == {"elbv2:RegisterTargets": 24}, writes
    for op in PER_SERVICE + PER_TARGET_GROUP:
        assert ops[op] == 0, (op, ops)
    # Only account-wide listings: a constant number, whatever the number of Services.
    assert _reads(ops) <= 12, ops
    instance = added.provider_id.rsplit("/", 1)[1]
    assert all(instance in tg["Targets"] for tg in view.tgs())
    for svc in services:
        assert provider.plan(intent_of(provider, svc, nodes)).empty


def _periodic(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, object]]) -> Counter[str]:
    provider.calls.reset()
    with provider.read_round() as rnd:
        rnd.drift_check()  # what the controller's periodic resync does
        for svc in services:
            plan = provider.plan(intent_of(provider, svc, nodes))
            if not plan.empty:
                provider.apply(plan)
    return provider.calls.reset().by_operation()


def test_resync_deep_checks_every_service_within_k_periods_under_the_budget(cloud: SandboxCloud) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, **NODE_RULE_MODEL, resync_read_budget=1.0))
    k = provider.drift_check_periods
    assert k == 4
    services = _services(0, 40)
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    rounds = [_periodic(provider, services, nodes) for _ in range(k)]
    # Each Service is deep-checked exactly once in K periods (drift_schedule.py's sweep), at most
    # ceil(N / K) in each period ...
    assert sum(r["elbv2:DescribeListeners"] for r in rounds) == len(services)
    assert sum(r["elbv2:DescribeTargetHealth"] for r in rounds) == len(services)
    assert all(r["elbv2:DescribeListeners"] <= -(-len(services) // k) for r in rounds), rounds
    # ... so a period costs the listings plus about 1/K of the deep checks.
    for r in rounds:
        assert sum(r[op] for op in PER_SERVICE + PER_TARGET_GROUP) <= 2 * 4 * len(services) / k, r
        assert not {op for op in r if ":Describe" not in op}, r
    total = sum(_reads(r) for r in rounds) / k / len(services)
    assert total <= 1.0 + 12 / len(services), [dict(r) for r in rounds]


def test_drift_made_by_hand_is_repaired_within_k_resyncs(cloud: SandboxCloud, view: AwsView) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, **NODE_RULE_MODEL, resync_read_budget=1.0))
    k = provider.drift_check_periods
    services = _services(0, 12)
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    for lb in view.nlbs():  # every listener deleted by hand
        for li in view.listeners(lb["LoadBalancerArn"]):
            view.elbv2.delete_listener(ListenerArn=li["ListenerArn"])
    tg = view.tgs()[0]
    view.elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthyThresholdCount=7)
    view.ec2.authorize_security_group_ingress(
        GroupId=cloud.extra["node_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 30100,
                "ToPort": 30101,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": _client_description(view)}],
            }
        ],
    )
    _periodic(provider, services, nodes)
    # The health check and the rules are in the listings of every period: repaired at once.
    assert view.tgs()[0]["HealthyThresholdCount"] == 3
    assert ("tcp", 30100, 30101, "0.0.0.0/0") not in view.node_rules("client")
    for _ in range(k - 1):
        _periodic(provider, services, nodes)
    # Listeners are a deep check: every Service's turn came within K periods.
    assert all(len(view.listeners(lb["LoadBalancerArn"])) == 1 for lb in view.nlbs())
    fresh = AWSProvider.from_settings(fast_settings(cloud, **NODE_RULE_MODEL))
    for svc in services:
        assert fresh.plan(intent_of(fresh, svc, nodes)).empty


def _client_description(view: AwsView) -> str:
    for perm in view.node_sg()["IpPermissions"]:
        for r in perm.get("IpRanges", []):
            if r.get("Description", "").startswith("lbprov") or "client" in r.get("Description", ""):
                return str(r["Description"])
    raise AssertionError("no lbprov client rule found")
