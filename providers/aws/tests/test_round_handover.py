"""An explicit read round that opens while plans share a young implicit round takes over its listings.

Written for the controller's old rollover (manager.py ended an expired round, then opened a new
one): a plan that started in between found no round and opened an implicit one, which listed the
whole account, and the new explicit round then took that round over instead of listing everything a
second time at once (issue 14: a 10,000-Service restart that outlived its round listed the account
three times, two at once). The controller now hands its rounds over (``read_round(fresh=True)``,
test_round_fresh.py); the takeover pinned here stays for a batch that begins while plans outside
any batch share a young implicit round.
Each test drives the same sequence by hand, in one thread. The one clock involved is an implicit
round's age (observe.SHARED_ROUND_SECONDS, 5 s): a round is joined and taken over only while that
young, and a loaded machine can stretch the plans between a round's start and its takeover past 5 s,
so every round here stays young (:func:`young_rounds`) unless a test makes it old.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from lbprov_aws import AWSProvider, observe
from lbprov_aws.testing import Svc, converge, intent_of, node_objects

from lbprov.provider import SandboxCloud

#: The account-wide listings a round reads once.
LISTINGS = ("elbv2:DescribeLoadBalancers", "elbv2:DescribeTargetGroups", "elb:DescribeLoadBalancers")


@pytest.fixture(autouse=True)
def young_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Implicit rounds stay young for the whole test, however slow the machine (a test that needs
    one too old sets the age itself, after this)."""
    monkeypatch.setattr(observe, "SHARED_ROUND_SECONDS", 3600.0)


def _services(n: int) -> list[Svc]:
    return [Svc(name=f"svc{i}", ports=[(80, "TCP", 30300 + i)]) for i in range(n)]


def _converged(
    provider: AWSProvider, cloud: SandboxCloud, n: int
) -> tuple[list[Svc], list[dict[str, object]]]:
    nodes = node_objects(cloud)
    services = _services(n)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    return services, nodes


def _listings(ops: Counter[str]) -> dict[str, int]:
    return {op: ops.get(op, 0) for op in LISTINGS}


def test_a_new_round_takes_over_the_listings_of_the_plans_in_the_gap(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    services, nodes = _converged(provider, cloud, 3)
    with provider.read_round():  # the batch's first round, which then expires
        assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
    provider.calls.reset()
    with provider.reader.shared_round():  # a worker's plan, started between the two rounds
        assert provider.plan(intent_of(provider, services[0], nodes)).empty
        gap = provider.calls.reset().by_operation()
        with provider.read_round():  # the controller's new round for the rest of the batch
            assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
            taken = provider.calls.reset().by_operation()
    assert _listings(gap) == dict.fromkeys(LISTINGS, 1), gap
    assert _listings(taken) == dict.fromkeys(LISTINGS, 0), taken
    assert provider.reader.round is None


def test_a_taken_over_round_ends_with_the_explicit_round_not_with_its_first_plans(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    services, nodes = _converged(provider, cloud, 2)
    provider.calls.reset()
    shared = provider.reader.shared_round()
    shared.__enter__()
    assert provider.plan(intent_of(provider, services[0], nodes)).empty
    with provider.read_round() as rnd:
        shared.__exit__(None, None, None)  # the gap's plan ends first
        assert provider.reader.round is rnd
        provider.calls.reset()
        assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
        assert _listings(provider.calls.reset().by_operation()) == dict.fromkeys(LISTINGS, 0)
    assert provider.reader.round is None
    # After the round, a plan alone reads afresh again.
    assert provider.plan(intent_of(provider, services[1], nodes)).empty
    assert _listings(provider.calls.reset().by_operation())["elbv2:DescribeTargetGroups"] == 1


def test_an_implicit_round_too_old_to_join_is_replaced_not_taken_over(
    provider: AWSProvider, cloud: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, nodes = _converged(provider, cloud, 2)
    monkeypatch.setattr(observe, "SHARED_ROUND_SECONDS", -1.0)  # every implicit round is too old
    provider.calls.reset()
    with provider.reader.shared_round():
        assert provider.plan(intent_of(provider, services[0], nodes)).empty
        provider.calls.reset()
        with provider.read_round():
            assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
            fresh = provider.calls.reset().by_operation()
    assert _listings(fresh) == dict.fromkeys(LISTINGS, 1), fresh


def test_a_periodic_round_taken_over_lists_again_under_its_drift_schedule(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    services, nodes = _converged(provider, cloud, 4)
    provider.calls.reset()
    with provider.reader.shared_round():
        assert provider.plan(intent_of(provider, services[0], nodes)).empty
        provider.calls.reset()
        with provider.read_round() as rnd:
            rnd.drift_check()  # what the controller does for the periodic resync
            assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
            periodic = provider.calls.reset().by_operation()
            # The sweep's roster was made from the periodic round's own listing.
            assert rnd.roster is not None and len(rnd.roster) == len(services)
    # Listed once more (the implicit listing knew nothing of the period), not twice.
    assert _listings(periodic) == dict.fromkeys(LISTINGS, 1), periodic


def _periodic_reads(
    provider: AWSProvider, services: list[Svc], nodes: list[dict[str, object]], *, taken_over: bool
) -> Counter[str]:
    """The reads of a periodic resync round over ``services``, opened fresh or taken over from an
    implicit round that a plan had just opened (and read everything in)."""
    provider.calls.reset()
    with provider.reader.shared_round() if taken_over else contextlib.nullcontext():
        if taken_over:
            assert provider.plan(intent_of(provider, services[0], nodes)).empty
            provider.calls.reset()
        with provider.read_round() as rnd:
            rnd.drift_check()
            assert all(provider.plan(intent_of(provider, s, nodes)).empty for s in services)
            return provider.calls.reset().by_operation()


def test_a_periodic_round_taken_over_reads_what_a_fresh_periodic_round_reads(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    """Not only the listings: every read the implicit round made before the resync began (the
    cluster's security groups, instances, subnets, route tables, VPC CIDRs) is made again, so a
    hand change made just before the resync is seen by it, as by a round opened at its start."""
    services, nodes = _converged(provider, cloud, 3)
    fresh = _periodic_reads(provider, services, nodes, taken_over=False)
    taken = _periodic_reads(provider, services, nodes, taken_over=True)
    assert set(taken) == set(fresh), (sorted(fresh.items()), sorted(taken.items()))
    for op in ("ec2:DescribeSecurityGroups", "ec2:DescribeInstances", "ec2:DescribeSubnets"):
        assert taken[op] >= 1 and taken[op] == fresh[op], (op, fresh, taken)
