"""A read round handed over to a new one (the controller's rollover) while plans are in flight.

The controller replaces a round that outlived ``MAX_ROUND_SECONDS`` (or that a new batch replaces)
with ``lbprov.provider.read_round(provider, fresh=True)``, and only then ends the old one. The plans
in flight go on in the new round: it reads the load balancers, the public IPs and the NSG once for
all of them, afresh (the old round's reads are not reused), where each plan outside a round lists
the load balancers and reads its public IP and the NSG for itself (what the controller's old
end-then-open gap cost Azure, issue 14).

The plans are held with an event inside the provider (at their listing of the load balancers) while
the round is handed over, as the controller's rollover does between two workers' syncs; no timing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState

from lbprov.model import Intent
from lbprov.provider import hands_over_rounds, read_round

WORKERS = 4
HANG = 60.0  # bounds a hang only


def _gets_since(state: ArmState, start: int) -> Counter[str]:
    with state.lock:
        return Counter(r.path.lower() for r in state.log[start:] if r.method == "GET")


def test_plans_in_flight_across_a_handover_read_once_in_the_new_round(
    provider: AzureProvider,
    state: ArmState,
    make_service: Callable[..., dict[str, Any]],
    intent_for: Callable[..., Intent],
    ensure: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert hands_over_rounds(provider)
    intents = [intent_for(make_service(f"h{i}")) for i in range(WORKERS)]
    for intent in intents:
        ensure(intent)
    observer = provider.observer
    arrived = threading.Semaphore(0)
    go = threading.Event()
    held = threading.local()
    listing = observer.lbs_by_name

    def held_listing() -> Any:  # each plan's first listing of the load balancers waits for ``go``
        if not getattr(held, "done", False):
            held.done = True
            arrived.release()
            assert go.wait(HANG), "never let go"
        return listing()

    old = read_round(provider)
    assert old is not None
    old.__enter__()
    assert all(provider.plan(i).empty for i in intents)  # the old round has read everything
    monkeypatch.setattr(observer, "lbs_by_name", held_listing)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(provider.plan, i) for i in intents]
        for _ in intents:
            assert arrived.acquire(timeout=HANG), "a plan never reached its listing"
        # the rollover, as the controller makes it: the new round first, then the old one ends
        new = read_round(provider, fresh=True)
        assert new is not None
        rnd = new.__enter__()
        old.__exit__(None, None, None)
        assert observer._round is rnd, "the old round's end took the new one with it"
        with state.lock:
            start = len(state.log)
        go.set()
        plans = [f.result(timeout=HANG) for f in futures]
    assert all(p.empty for p in plans)
    gets = _gets_since(state, start)
    # the load balancers listed once for every plan in flight, afresh; nothing read twice
    assert sum(n for path, n in gets.items() if path.endswith("/loadbalancers")) == 1, gets
    assert all(n == 1 for n in gets.values()), gets
    new.__exit__(None, None, None)
    assert observer._round is None


def test_a_round_opened_inside_another_reuses_it_unless_fresh(provider: AzureProvider) -> None:
    observer = provider.observer
    with provider.read_round() as outer:
        with provider.read_round() as inner:
            assert inner is outer
        assert observer._round is outer  # the nested exit leaves the outer round open
        with provider.read_round(fresh=True) as fresh:
            assert fresh is not outer and observer._round is fresh
        assert observer._round is None
    assert observer._round is None


def test_a_read_sent_before_a_handover_is_not_kept_by_the_new_round(
    provider: AzureProvider, state: ArmState
) -> None:
    """A read on the wire when the round is handed over predates the new round: the new round
    reads for itself (a periodic resync's round reads afresh), it does not keep the older answer."""
    observer = provider.observer
    started = threading.Event()
    go = threading.Event()

    def hook(method: str, path: str) -> None:
        if method == "GET" and path.lower().endswith("/publicipaddresses") and not go.is_set():
            started.set()
            assert go.wait(HANG), "never let go"

    rg = provider.settings.resource_group
    with provider.read_round():
        state.hooks.append(hook)
        try:
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(observer.pips, rg)
                assert started.wait(HANG), "the listing never reached the emulator"
                with provider.read_round(fresh=True) as rnd:
                    go.set()
                    first.result(timeout=HANG)
                    assert rg.lower() not in rnd.pips  # not kept: it was sent in the old round
                    with state.lock:
                        start = len(state.log)
                    observer.pips(rg)
                    assert (
                        sum(
                            n
                            for p, n in _gets_since(state, start).items()
                            if p.endswith("/publicipaddresses")
                        )
                        == 1
                    )
                    assert rg.lower() in rnd.pips
        finally:
            state.hooks.remove(hook)
