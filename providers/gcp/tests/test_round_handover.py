"""A read round handed over to a new one (the controller's rollover) while plans are in flight.

The controller replaces a round that outlived ``MAX_ROUND_SECONDS`` (or that a new batch replaces)
with ``lbprov.provider.read_round(provider, fresh=True)``, and only then ends the old one. The plans
in flight go on in the new round: it lists each collection once for all of them, afresh (the old
round's listings are not reused), and no plan reads by name for itself as it does outside a round
(about 8 reads per plan: what the controller's old end-then-open gap cost GCP, issue 14).

The plans are held with an event inside the provider (at the start of their listings) while the
round is handed over, as the controller's rollover does between two workers' syncs; no timing.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from gcp_helpers import converge, intent_for, make_service

from lbprov.provider import hands_over_rounds, read_round

WORKERS = 6
HANG = 60.0  # bounds a hang only
#: A round's reads: 5 collection listings, the aggregated instance-group list, 2 zones' members.
ROUND_READS = 8


def _intents(provider, nodes):
    return [
        intent_for(provider, make_service(f"h{i}", uid=f"0000000{i}-aaaa-bbbb-cccc-444444444444"), nodes)
        for i in range(WORKERS)
    ]


def test_plans_in_flight_across_a_handover_list_once_in_the_new_round(provider, sandbox, monkeypatch):
    assert hands_over_rounds(provider)
    intents = _intents(provider, sandbox.nodes)
    for intent in intents:
        converge(provider, intent)
    reader = provider.reader
    arrived = threading.Semaphore(0)
    go = threading.Event()
    warm = reader.warm

    def held_warm(prefix):  # every plan reads its listings here first (snapshot.Observer)
        arrived.release()
        assert go.wait(HANG), "never let go"
        return warm(prefix)

    old = read_round(provider)
    old.__enter__()
    assert all(provider.plan(i).empty for i in intents)  # the old round has read everything
    monkeypatch.setattr(reader, "warm", held_warm)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(provider.plan, i) for i in intents]
        for _ in intents:
            assert arrived.acquire(timeout=HANG), "a plan never reached its listings"
        # the rollover, as the controller makes it: the new round first, then the old one ends
        new = read_round(provider, fresh=True)
        rnd = new.__enter__()
        old.__exit__(None, None, None)
        assert reader.round is rnd, "the old round's end took the new one with it"
        provider.calls.reset()
        go.set()
        plans = [f.result(timeout=HANG) for f in futures]
    assert all(p.empty for p in plans)
    stats = provider.calls.stats
    sent = dict(stats.sent)
    # once for every plan in flight, afresh: the old round's listings were not reused
    assert stats.reads == ROUND_READS, sent
    assert all(n == 1 for (op, kind), n in sent.items() if kind == "read" and "listInstances" not in op), sent
    new.__exit__(None, None, None)
    assert reader.round is None


def test_a_round_opened_inside_another_reuses_it_unless_fresh(provider):
    with provider.read_round() as outer:
        with provider.read_round() as inner:
            assert inner is outer
        assert provider.reader.round is outer  # the nested exit leaves the outer round open
        with provider.read_round(fresh=True) as fresh:
            assert fresh is not outer and provider.reader.round is fresh
        assert provider.reader.round is None  # the fresh round's end: no round until the next
    assert provider.reader.round is None  # the outer round's end leaves none either
