"""``read_round(fresh=True)``: the controller's rollover hands the open round over to a new one.

The controller opens the next round before it ends the old one (lbprov/controller/manager.py), so
that no plan finds no round in between: the new round replaces the old one at once, lists the
account afresh once (the old round's listings are not reused), and the old round's end leaves it in
place. Driven by hand, in one thread: no timing is involved.
"""

from __future__ import annotations

from collections import Counter

from lbprov_aws import AWSProvider
from lbprov_aws.testing import Svc, converge, intent_of, node_objects

from lbprov.provider import SandboxCloud, hands_over_rounds, read_round

#: The account-wide listings a round reads once.
LISTINGS = ("elbv2:DescribeLoadBalancers", "elbv2:DescribeTargetGroups", "elb:DescribeLoadBalancers")


def _listings(ops: Counter[str]) -> dict[str, int]:
    return {op: ops.get(op, 0) for op in LISTINGS}


def test_a_fresh_round_replaces_the_open_one_and_lists_afresh_once(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    # The controller does not ask it of AWS (a higher 10,000-Service create peak, see provider.py),
    # but the provider supports it.
    assert not hands_over_rounds(provider)
    nodes = node_objects(cloud)
    services = [Svc(name=f"fresh{i}", ports=[(80, "TCP", 30400 + i)]) for i in range(3)]
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    old = read_round(provider)
    assert old is not None
    first = old.__enter__()
    assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
    assert read_round(provider, fresh=True) is None  # the core asks it only of those that hand over
    new = provider.read_round(fresh=True)
    rnd = new.__enter__()
    old.__exit__(None, None, None)
    assert rnd is not first and provider.reader.round is rnd, "the old round's end took the new one"
    provider.calls.reset()
    assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
    assert _listings(provider.calls.reset().by_operation()) == dict.fromkeys(LISTINGS, 1)
    new.__exit__(None, None, None)
    assert provider.reader.round is None


def test_a_round_opened_inside_an_explicit_one_reuses_it_unless_fresh(provider: AWSProvider) -> None:
    with provider.read_round() as outer:
        with provider.read_round() as inner:
            assert inner is outer
        assert provider.reader.round is outer
        with provider.read_round(fresh=True) as fresh:
            assert fresh is not outer and provider.reader.round is fresh
        assert provider.reader.round is None
    assert provider.reader.round is None
