"""Apply's describe-before-create guard of an NLB, answered by the read round's listing (issue 14).

Creating an NLB used to cost a DescribeLoadBalancers by name first (moto, unlike AWS, makes a second
load balancer of an existing name). Inside a read round whose load balancer listing is fresh, the
listing answers instead; a load balancer made by someone else since the listing is refused by
AWS's name uniqueness (DuplicateLoadBalancerName, reproduced by the strict layer), which brings
apply back to the guard: this Service's own load balancer is reused, anyone else's is an
OwnershipConflict. Every case checks what exists afterwards with plain boto3.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from lbprov_aws import AWSProvider
from lbprov_aws.observe import NAME_FREE_SECONDS
from lbprov_aws.testing import CLUSTER, AwsView, Svc, converge, delete_all, intent_of, node_objects

from lbprov import naming
from lbprov.model import OwnershipConflict, Plan
from lbprov.provider import SandboxCloud


def _apply_counting(provider: AWSProvider, plan: Plan) -> Counter[str]:
    provider.calls.reset()
    provider.apply(plan)
    return provider.calls.reset().by_operation()


def _nlbs_named(view: AwsView, name: str) -> list[dict[str, Any]]:
    return [lb for lb in view.nlbs() if lb["LoadBalancerName"] == name]


def test_in_a_round_the_listing_answers_the_guard_and_outside_one_apply_describes(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    inside, outside = (
        Svc(name="inside", ports=[(80, "TCP", 30080)]),
        Svc(name="out", ports=[(80, "TCP", 30081)]),
    )
    with provider.read_round():
        sent = _apply_counting(provider, provider.plan(intent_of(provider, inside, nodes)))
    assert sent["elbv2:CreateLoadBalancer"] == 1
    assert sent["elbv2:DescribeLoadBalancers"] == 0, sent
    sent = _apply_counting(provider, provider.plan(intent_of(provider, outside, nodes)))
    assert sent["elbv2:CreateLoadBalancer"] == 1
    assert sent["elbv2:DescribeLoadBalancers"] == 1, sent  # no round: the guard describes
    for svc in (inside, outside):
        assert len(_nlbs_named(view, svc.lb_name)) == 1
        converge(provider, intent_of(provider, svc, nodes))  # plan after apply empty, no write
        delete_all(provider, svc)
        view.assert_nothing_owned(svc)


def test_a_stale_listing_does_not_answer(provider: AWSProvider, cloud: SandboxCloud) -> None:
    nodes = node_objects(cloud)
    svc = Svc()
    with provider.read_round() as rnd:
        plan = provider.plan(intent_of(provider, svc, nodes))
        assert rnd.nlbs_listed_at is not None
        rnd.nlbs_listed_at -= NAME_FREE_SECONDS + 1
        sent = _apply_counting(provider, plan)
    assert sent["elbv2:DescribeLoadBalancers"] == 1, sent


def test_a_foreign_load_balancer_made_after_the_listing_is_refused_and_never_duplicated(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc()
    with provider.read_round():
        plan = provider.plan(intent_of(provider, svc, nodes))
        # Someone else takes the name between the plan's listing and the apply.
        view.elbv2.create_load_balancer(
            Name=svc.lb_name,
            Subnets=cloud.extra["public_subnets"][:1],
            Type="network",
            Tags=[{"Key": naming.cluster_tag_key("other-cluster"), "Value": naming.OWNED}],
        )
        provider.calls.reset()
        with pytest.raises(OwnershipConflict, match="appeared after the plan"):
            provider.apply(plan)
        ops = provider.calls.stats
    # The create was refused by AWS's name uniqueness, then the guard described the name.
    assert ops.errors["elbv2:CreateLoadBalancer"] == 1, ops.to_json()
    assert sum(n for (op, _), n in ops.sent.items() if op == "elbv2:DescribeLoadBalancers") == 1
    found = _nlbs_named(view, svc.lb_name)
    assert len(found) == 1 and naming.SERVICE_UID_TAG not in found[0]["Tags"]


def test_our_own_load_balancer_made_after_the_listing_is_reused(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """Another process of ours (a second replica during a handover) created the Service's NLB
    after this one's listing, with other settings (an extra tag): DuplicateLoadBalancerName, then
    the guard finds it owned by the Service and reuses it; one NLB, and the Service converges."""
    nodes = node_objects(cloud)
    svc = Svc()
    intent = intent_of(provider, svc, nodes)
    with provider.read_round():
        plan = provider.plan(intent)
        lb_change = next(c for c in plan.changes if c.kind == "load-balancer")
        assert lb_change.after is not None
        tags = dict(lb_change.after["tags"], **{"lbprov.io/test-extra": "x"})  # other settings
        view.elbv2.create_load_balancer(
            Name=svc.lb_name,
            Subnets=lb_change.after["subnets"],
            Type="network",
            Scheme=lb_change.after["scheme"],
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )
        provider.apply(plan)
    found = _nlbs_named(view, svc.lb_name)
    assert len(found) == 1 and found[0]["Tags"][naming.SERVICE_UID_TAG] == svc.uid
    converge(provider, intent)
    assert len(_nlbs_named(view, svc.lb_name)) == 1
    delete_all(provider, svc)
    view.assert_nothing_owned(svc)


def test_an_identical_create_by_another_replica_returns_the_same_load_balancer(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """Two processes apply the same plan: AWS's CreateLoadBalancer with the same name and settings
    returns the existing load balancer (the strict layer replays it), so both succeed with one NLB."""
    nodes = node_objects(cloud)
    svc = Svc()
    intent = intent_of(provider, svc, nodes)
    other = AWSProvider(provider.settings)
    with provider.read_round(), other.read_round():
        mine, theirs = provider.plan(intent), other.plan(intent)
        other.apply(theirs)
        provider.apply(mine)
    found = _nlbs_named(view, svc.lb_name)
    assert len(found) == 1
    converge(provider, intent)
    delete_all(provider, svc)
    view.assert_nothing_owned(svc)


def test_the_strict_layer_refuses_a_second_load_balancer_of_a_name(
    cloud: SandboxCloud, view: AwsView
) -> None:
    """What the guard relies on (ELBv2 CreateLoadBalancer: a name that exists with other settings is
    DuplicateLoadBalancerName): plain moto would make a second one."""
    subnets = cloud.extra["public_subnets"][:1]
    view.elbv2.create_load_balancer(Name="a" * 32, Subnets=subnets, Type="network")
    with pytest.raises(ClientError) as err:
        view.elbv2.create_load_balancer(
            Name="a" * 32, Subnets=subnets, Type="network", Tags=[{"Key": CLUSTER, "Value": "x"}]
        )
    assert err.value.response["Error"]["Code"] == "DuplicateLoadBalancerName"
    assert len(_nlbs_named(view, "a" * 32)) == 1
