"""Lease leader election against an in-memory Lease store with resourceVersion semantics.

Unit level (fast, short durations); the two-replica scenario through the sandbox API server is in
tests/e2e/test_controller_e2e.py.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lbprov.controller.leader import LeaderElector
from lbprov.testing import wait_for


class ApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Leases:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 0
        self.lock = threading.Lock()
        self.down = False

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            if self.down:
                raise ApiError(503)
            if (namespace, name) not in self.items:
                return None
            return copy.deepcopy(self.items[(namespace, name)])

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            key = (namespace, body["metadata"]["name"])
            if key in self.items:
                raise ApiError(409)
            self.rv += 1
            body = copy.deepcopy(body)
            body["metadata"]["resourceVersion"] = str(self.rv)
            self.items[key] = body
            return copy.deepcopy(body)

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.down:
                raise ApiError(503)
            cur = self.items[(namespace, name)]
            if body["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                raise ApiError(409)
            self.rv += 1
            body = copy.deepcopy(body)
            body["metadata"]["resourceVersion"] = str(self.rv)
            self.items[(namespace, name)] = body
            return copy.deepcopy(body)

    def holder(self) -> str | None:
        with self.lock:
            item = self.items.get(("ns", "lease"))
            return None if item is None else item["spec"].get("holderIdentity")


class Replica:
    def __init__(
        self, api: Leases, identity: str, clock: Callable[[], float] = time.monotonic, **timing: float
    ) -> None:
        self.leading = threading.Event()
        self.starts = 0
        self.stops = 0
        self.elector = LeaderElector(
            api,
            namespace="ns",
            name="lease",
            identity=identity,
            on_started_leading=self._start,
            on_stopped_leading=self._stop,
            clock=clock,
            **(timing or {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.1}),
        )

    def _start(self) -> None:
        self.starts += 1
        self.leading.set()

    def _stop(self) -> None:
        self.stops += 1
        self.leading.clear()


def test_only_one_of_two_replicas_leads_and_the_other_takes_over_after_release() -> None:
    api = Leases()
    # Both clocks stand still: no lease ever expires and no renewal is ever late, however slow a
    # loaded machine runs the threads. So b can take a's lease only as released, never by expiry
    # (with the real clock the test timed the takeover: under 1 s, the released lease's duration,
    # a bound a loaded machine could pass).
    a, b = Replica(api, "a", clock=lambda: 0.0), Replica(api, "b", clock=lambda: 0.0)
    a.elector.start()
    wait_for(a.leading.is_set, 60, "replica a to lead", interval=0.02)
    b.elector.start()
    time.sleep(0.5)  # let b campaign a few times: it must stay a follower
    assert not b.leading.is_set() and api.holder() == "a"
    a.elector.stop()
    assert a.stops == 1 and not a.elector.is_leader
    wait_for(b.leading.is_set, 60, "replica b to take the released lease at a retry", interval=0.02)
    assert api.holder() == "b"
    assert api.items[("ns", "lease")]["spec"]["leaseTransitions"] >= 1
    b.elector.stop()
    assert api.holder() is None, "a clean shutdown clears the holder"


def test_a_crashed_leader_is_replaced_only_after_the_lease_expires() -> None:
    api = Leases()
    a, b = Replica(api, "a"), Replica(api, "b")
    a.elector.start()
    wait_for(a.leading.is_set, 10, "replica a to lead", interval=0.02)
    # Simulate a crash: the thread stops renewing and nothing is released.
    a.elector._stop.set()
    a.elector._thread.join(2)  # type: ignore[union-attr]
    start = time.monotonic()
    b.elector.start()
    wait_for(b.leading.is_set, 10, "replica b to take the expired lease", interval=0.02)
    assert time.monotonic() - start >= 1.4, "must wait out the 1.5 s lease as observed locally"
    b.elector.stop()


def test_a_leader_that_cannot_renew_steps_down_within_the_renew_deadline() -> None:
    api = Leases()
    a = Replica(api, "a")
    a.elector.start()
    wait_for(a.leading.is_set, 10, "replica a to lead", interval=0.02)
    api.down = True
    wait_for(lambda: a.stops == 1, 60, "replica a to step down", interval=0.02)
    assert not a.elector.is_leader
    api.down = False
    wait_for(a.leading.is_set, 60, "replica a to lead again", interval=0.02)
    assert a.starts == 2
    a.elector.stop()


def test_bad_timings_are_rejected() -> None:
    with pytest.raises(ValueError):
        LeaderElector(
            Leases(),
            namespace="n",
            name="l",
            identity="x",
            on_started_leading=lambda: None,
            on_stopped_leading=lambda: None,
            lease_duration=10,
            renew_deadline=15,
        )


def test_no_other_replica_takes_the_lease_before_held_until() -> None:
    """held_until (where the controller fences cloud writes) is never after another replica's
    acquisition: a crashed leader's last renewal's send time + the lease duration."""
    api = Leases()
    a, b = Replica(api, "a"), Replica(api, "b")
    before = time.monotonic()
    assert a.elector.held_until >= before  # never renewed: held until now, i.e. not at all
    a.elector.start()
    wait_for(a.leading.is_set, 10, "replica a to lead", interval=0.02)
    b_led_at: list[float] = []
    b.elector.on_started_leading = lambda: b_led_at.append(time.monotonic())
    b.elector.start()
    # Two renewals after `since`: the second was sent after the first was written, which was after
    # `since` (the first was not written yet when `since` was taken). So a's last renewal was sent
    # after `since`, whatever the load (the test compared held_until with the time after the crash
    # and a join: a loaded machine could put 0.5 s between a's last renewal and that reading).
    since = time.monotonic()
    for _ in range(2):
        renewed = api.items[("ns", "lease")]["spec"]["renewTime"]
        wait_for(
            lambda renewed=renewed: api.items[("ns", "lease")]["spec"]["renewTime"] != renewed,  # type: ignore[misc]
            60,
            "a to renew while b campaigns",
            interval=0.02,
        )
    a.elector._stop.set()  # a crash: no more renewals, nothing released
    a.elector._thread.join(60)  # type: ignore[union-attr]
    assert not a.elector._thread.is_alive()  # type: ignore[union-attr]
    held_until = a.elector.held_until
    assert held_until >= since + 1.5, "held for lease_duration (1.5 s) after the last renewal was sent"
    assert held_until <= time.monotonic() + 1.5, "and no longer"
    wait_for(lambda: bool(b_led_at), 10, "replica b to take the expired lease", interval=0.02)
    assert b_led_at[0] >= held_until
    b.elector.stop()


def test_held_until_uses_the_duration_written_on_the_lease_and_ends_with_a_release() -> None:
    api = Leases()
    # 2.4 s is written as 2 whole seconds: candidates wait 2 s, so the hold is 2 s, not 2.4
    a = Replica(api, "a", lease_duration=2.4, renew_deadline=1.0, retry_period=0.1)
    a.elector.start()
    wait_for(a.leading.is_set, 10, "replica a to lead", interval=0.02)
    assert api.items[("ns", "lease")]["spec"]["leaseDurationSeconds"] == 2
    assert a.elector.held_until <= time.monotonic() + 2.0
    a.elector.stop()  # released: another replica may take it at its next retry
    assert a.elector.held_until <= time.monotonic()
