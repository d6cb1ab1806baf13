"""A read round's listings keep compact records as the pages come, not the whole parsed listing.

At 10,000 Services the parsed answers of one listing of load balancers and target groups are about
56 MB (3.2 KB and 2.4 KB each, as botocore parses them): alive all at once, and twice when two
listings overlapped, they set the restart's peak (issue 14). Counted with a dict subclass that
knows how many of its instances are alive: CPython frees each one when its last reference goes,
so the count does not depend on timing or on the garbage collector.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import Svc, converge, intent_of, node_objects

from lbprov.provider import SandboxCloud

SERVICES = [Svc(name=f"s{i}", ports=[(80, "TCP", 30400 + i)]) for i in range(4)]


class _Raw(dict[str, Any]):
    """One item of a listing's answer, counted by operation while alive."""

    alive: ClassVar[Counter[str]] = Counter()

    def __init__(self, operation: str, item: dict[str, Any]) -> None:
        super().__init__(item)
        self.operation = operation
        self.alive[operation] += 1

    def __del__(self) -> None:
        self.alive[self.operation] -= 1


@pytest.fixture
def most_alive(provider: AWSProvider, cloud: SandboxCloud, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Converge the SERVICES, then count, per listing operation, the most of its items alive at
    once (each item comes as its own page, as if every page held one)."""
    nodes = node_objects(cloud)
    for svc in SERVICES:
        converge(provider, intent_of(provider, svc, nodes))
    gc.collect()
    pages = provider.reader.clients.pages
    most: dict[str, int] = {}

    def counted(operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for item in pages(operation, key, **kwargs):
            raw = _Raw(operation, item)
            most[operation] = max(most.get(operation, 0), _Raw.alive[operation])
            yield raw
            del raw

    monkeypatch.setattr(provider.reader.clients, "pages", counted)
    return most


def test_a_rounds_load_balancer_and_target_group_listings_keep_no_parsed_page_behind(
    provider: AWSProvider, cloud: SandboxCloud, most_alive: dict[str, int]
) -> None:
    nodes = node_objects(cloud)
    with provider.read_round():
        assert all(provider.plan(intent_of(provider, svc, nodes)).empty for svc in SERVICES)
    # The item being turned into its record, and the one before it still named by the loop.
    assert most_alive["elbv2:DescribeLoadBalancers"] <= 2, most_alive
    assert most_alive["elbv2:DescribeTargetGroups"] <= 2, most_alive
