"""Similar events combined into one (client-go's ``EventAggregator``): the pure decision, and the
recorder posting through the real client to the sandbox API server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lbprov.controller.events import EventRecorder, SyncRecorder
from lbprov.kube.client import KubeClient
from lbprov.kube.event_aggregation import COMBINED_PREFIX, EventAggregator
from lbprov.sandbox.kube_api import KubeAPIServer

GROUP = ("default", "Service", "web", "uid-web", "Warning", "SyncLoadBalancerFailed", "lbprov")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_tenth_distinct_message_of_a_group_is_combined_and_so_is_every_later_new_one() -> None:
    aggregator = EventAggregator(clock=Clock())
    assert [aggregator.combined(GROUP, f"quota {i}") for i in range(9)] == [None] * 9
    assert aggregator.combined(GROUP, "quota 9") == COMBINED_PREFIX + "quota 9"
    assert aggregator.combined(GROUP, "quota 10") == COMBINED_PREFIX + "quota 10"


def test_repeats_of_one_message_are_never_combined() -> None:
    aggregator = EventAggregator(clock=Clock())
    assert {aggregator.combined(GROUP, "quota exceeded") for _ in range(50)} == {None}


def test_groups_differ_by_reason_type_and_object() -> None:
    aggregator = EventAggregator(clock=Clock())
    for i in range(9):
        aggregator.combined(GROUP, f"m{i}")
    for other in (
        (*GROUP[:5], "EnsuringLoadBalancer", *GROUP[6:]),
        (*GROUP[:4], "Normal", *GROUP[5:]),
        ("default", "Service", "api", "uid-api", *GROUP[4:]),
    ):
        assert aggregator.combined(other, "m9") is None, other
    assert aggregator.combined(GROUP, "m9") is not None


def test_a_group_quiet_for_ten_minutes_starts_again() -> None:
    clock = Clock()
    aggregator = EventAggregator(clock=clock)
    for i in range(9):
        aggregator.combined(GROUP, f"m{i}")
        clock.now += 60.0  # within 10 minutes of the group's last event, each time
    assert aggregator.combined(GROUP, "m9") is not None, "10 distinct messages, never 10 minutes apart"
    clock.now += 600.5
    assert aggregator.combined(GROUP, "m10") is None, "a new group after 10 quiet minutes"


def test_the_groups_remembered_are_bounded() -> None:
    aggregator = EventAggregator(clock=Clock(), max_groups=3)
    for name in ("a", "b", "c", "d"):
        aggregator.combined(("default", "Service", name), "m")
    assert len(aggregator._groups) == 3 and ("default", "Service", "a") not in aggregator._groups


@pytest.fixture
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


def _web(kube: KubeClient) -> dict[str, Any]:
    return kube.create_service(
        "default",
        {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
    )


def test_the_recorder_posts_nine_events_and_then_one_combined_event_patched_per_repeat(
    api: KubeAPIServer,
) -> None:
    """As ``kubectl describe service`` shows upstream's: nine Events of their own, then one
    "(combined from similar events)" Event counting the rest, with the latest message."""
    kube = KubeClient.for_url(api.url)
    svc = _web(kube)
    recorder = EventRecorder(kube).start()
    try:
        for i in range(12):
            recorder.record(svc, "Warning", "SyncLoadBalancerFailed", f"quota exceeded (request {i})")
        assert recorder.flush(10)
    finally:
        recorder.stop()
    events = kube.list_events("default", field_selector="involvedObject.name=web")
    own = sorted(e["message"] for e in events if not e["message"].startswith(COMBINED_PREFIX))
    (combined,) = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert own == sorted(f"quota exceeded (request {i})" for i in range(9))
    assert combined["count"] == 3
    assert combined["message"] == COMBINED_PREFIX + "quota exceeded (request 11)"
    assert {e["count"] for e in events if e is not combined} == {1}


def test_the_sync_recorder_combines_as_well(api: KubeAPIServer) -> None:
    kube = KubeClient.for_url(api.url)
    svc = _web(kube)
    recorder = SyncRecorder(kube)
    for i in range(11):
        recorder.record(svc, "Warning", "SyncLoadBalancerFailed", f"m{i}")
    events = kube.list_events("default", field_selector="involvedObject.name=web")
    assert len(events) == 10
    assert sum(e["count"] for e in events) == 11
