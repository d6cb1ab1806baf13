"""A plan's CPU does not grow with the Services of the account (issue 14), pinned by counting.

The controller's CPU per Service on a resync or a node sync grew with N (15 -> 50 ms per Service
from 300 to 1,000 Services) because each plan scanned the round's whole listings (every security
group's rules deep-copied and parsed, every target group's name filtered). The work is counted
here, not timed: the Python lines the provider executes (``sys.settrace`` line events, which a
loop inside a comprehension emits once per iteration) for the same plans in a read round whose
listings are already read, in an account of N and of 4N Services. A per-plan scan of a listing
shows as lines that grow with N; the round's shared listings and indexes are built once per round
and are not in the measured plans.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from lbprov_aws import AWSProvider, sg_index
from lbprov_aws.testing import Svc, intent_of, node_objects

from lbprov.model import Intent
from lbprov.provider import SandboxCloud

MEASURED = 4


@contextmanager
def counting_lines() -> Iterator[dict[str, int]]:
    """Count the Python lines executed in this thread inside the block."""
    count = {"lines": 0}

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "line":
            count["lines"] += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield count
    finally:
        sys.settrace(old)


def _create(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> None:
    with provider.read_round():
        for svc in services:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))


def _lines_per_plan(provider: AWSProvider, intents: list[Intent], *, apply: bool) -> float:
    """Lines per plan (and apply) of the last MEASURED intents, in a round whose listings the
    first intent's plan read (not applied)."""
    with provider.read_round():
        provider.plan(intents[0])
        builds = sg_index.BUILDS["count"]
        with counting_lines() as count:
            for intent in intents[-MEASURED:]:
                plan = provider.plan(intent)
                if apply:
                    assert not plan.empty  # (the new node's registration)
                    provider.apply(plan)
                else:
                    assert plan.empty
        # The round's security groups were indexed once, by the first plan: none per plan.
        assert sg_index.BUILDS["count"] == builds
    return count["lines"] / MEASURED


def _measure(
    provider: AWSProvider, cloud: SandboxCloud, services: list[Svc], node: str
) -> tuple[float, float]:
    """Lines per plan of an unchanged resync, then per plan + apply of a node sync (``node`` added)."""
    nodes = node_objects(cloud)
    resync = _lines_per_plan(provider, [intent_of(provider, s, nodes) for s in services], apply=False)
    cloud.nodes.append(cloud.add_node(node))
    nodes = node_objects(cloud)
    node_sync = _lines_per_plan(provider, [intent_of(provider, s, nodes) for s in services], apply=True)
    return resync, node_sync


def test_a_plan_in_a_round_costs_the_same_at_n_and_at_4n_services(cloud: SandboxCloud) -> None:
    small, large = 6, 24
    provider = AWSProvider.from_settings({**cloud.settings, "cluster_id": "plan-cost"})
    services = [Svc(name=f"s{i}", ports=[(80, "TCP", 30100 + 3 * i)]) for i in range(large)]
    _create(provider, services[:small], node_objects(cloud))
    resync_small, node_small = _measure(provider, cloud, services[:small], "node-x")
    _create(provider, services[small:], node_objects(cloud))
    resync_large, node_large = _measure(provider, cloud, services, "node-y")
    # Equal up to what varies per Service (hash slots, dict sizes): a scan of the 18 more security
    # groups or target groups per plan would add hundreds of lines.
    assert resync_large <= resync_small * 1.03 + 20, (resync_small, resync_large)
    assert node_large <= node_small * 1.03 + 20, (node_small, node_large)
