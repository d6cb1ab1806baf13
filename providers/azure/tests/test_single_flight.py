"""The plans of a read round that start together share one read of each shared resource (single flight).

A resync hands every worker a Service at once; each plan found the round's cache empty and sent its own
listing of the load balancers (about 10 at the start of every round). Now a plan joins the same read
on the wire, unless a write of this process started or finished since it was sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState

from lbprov.testing import wait_for

LISTING = r"/loadbalancers$"


class _Gate:
    """Holds every listing of the load balancers in the emulator until released, counting arrivals."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, method: str, path: str) -> None:
        if method == "GET" and path.lower().rstrip("/").endswith("/loadbalancers"):
            self.arrived.release()
            assert self.release.wait(30), "the test never released the listing"


@pytest.fixture
def gate(state: ArmState) -> Iterator[_Gate]:
    """The gate on the emulator; released at the end whatever happened (no request left held)."""
    g = _Gate()
    state.hooks.append(g)
    yield g
    g.release.set()


def _start(n: int, fn: Callable[[], Any], out: list[Any]) -> list[threading.Thread]:
    threads = [threading.Thread(target=lambda: out.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_plans_asking_while_the_listing_is_on_the_wire_join_it(
    provider: AzureProvider, state: ArmState, gate: _Gate
) -> None:
    before = state.count("GET", LISTING)
    results: list[Any] = []
    with provider.read_round() as rnd:
        threads = _start(1, provider.observer.lbs_by_name, results)
        assert gate.arrived.acquire(timeout=30)
        threads += _start(5, provider.observer.lbs_by_name, results)
        wait_for(
            lambda: rnd.flights["loadBalancers.list"].joined == 5,
            30,
            "the other plans to join",
            interval=0.005,
        )
        gate.release.set()
        for t in threads:
            t.join(30)
        assert not rnd.flights  # nothing left on the wire
    assert state.count("GET", LISTING) - before == 1
    assert len(results) == 6 and all(r == results[0] for r in results)


def test_a_plan_asking_after_a_write_started_sends_its_own_listing(
    provider: AzureProvider, state: ArmState, gate: _Gate
) -> None:
    """The answer on the wire may predate the write; the plan's view must not (placement holds count
    on it), so it reads for itself."""
    before = state.count("GET", LISTING)
    results: list[Any] = []
    with provider.read_round():
        threads = _start(1, provider.observer.lbs_by_name, results)
        assert gate.arrived.acquire(timeout=30)
        provider.observer.writing()  # a write of this process is sent now
        threads += _start(1, provider.observer.lbs_by_name, results)
        assert gate.arrived.acquire(timeout=30)  # a second listing reached the emulator
        gate.release.set()
        for t in threads:
            t.join(30)
    assert state.count("GET", LISTING) - before == 2
    assert len(results) == 2


def test_a_round_of_plans_started_together_reads_each_shared_resource_once(
    provider: AzureProvider, state: ArmState, intent_for: Any, make_service: Any, ensure: Any
) -> None:
    intents = [intent_for(make_service(f"sf{i}")) for i in range(3)]
    for intent in intents:
        ensure(intent)
    provider.calls.reset()
    plans: list[Any] = []
    with provider.read_round():
        for t in _start(6, lambda: [provider.plan(i) for i in intents], plans):
            t.join(60)
    assert len(plans) == 6 and all(p.empty for ps in plans for p in ps)
    sent = provider.calls.stats.sent
    assert sent[("loadBalancers.list", "read")] == 1, dict(sent)
    assert sent[("networkSecurityGroups.get", "read")] == 1, dict(sent)
    assert sent[("publicIPAddresses.list", "read")] == 1, dict(sent)


@pytest.mark.parametrize(
    "read, op",
    [
        (lambda o, rg: o.pips(rg), "publicIPAddresses.list"),
        (lambda o, rg: o.lbs_by_name(), "loadBalancers.list"),
        (lambda o, rg: o.nsg(), "networkSecurityGroups.get"),
    ],
)
def test_a_plan_arriving_as_a_shared_read_ends_takes_the_rounds_copy(
    provider: AzureProvider, intent_for: Any, make_service: Any, ensure: Any, read: Any, op: str
) -> None:
    """The window the single-flight test hit now and then under load: a plan looks at the round's
    cache (empty), another plan's read then ends and stores its answer, and only after that does
    the first plan reach the single flight. It must take the round's copy, not send a second read."""
    ensure(intent_for(make_service("sf-late")))
    observer = provider.observer
    rg = provider.settings.resource_group
    real = observer._single_flight
    others: list[str] = []

    def late(key: str, fn: Any, cached: Any = None) -> Any:
        if not others:  # the other plan's whole flight runs between this plan's look and here
            others.append(key)
            real(key, fn, cached)
        return real(key, fn, cached)

    with provider.read_round():
        observer._single_flight = late  # type: ignore[method-assign]
        try:
            provider.calls.reset()
            read(observer, rg)
        finally:
            del observer._single_flight
    assert others, "the read went through the single flight"
    assert provider.calls.stats.sent[(op, "read")] == 1, dict(provider.calls.stats.sent)
