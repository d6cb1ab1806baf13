"""Public IPs are created off the worker slot (:mod:`lbprov_azure.pipwriter`), bounded, errors kept apart.

Through the ARM SDK against the emulator: a sync inside a worker slot lends the slot while its public
IP is created (the emulator holds the PUT until the test lets it go), and still converges; the
error of one Service's public IP is raised in that Service's apply alone. The bound on writes at once
is pinned on the writer itself.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure import AzureProvider
from lbprov_azure.pipwriter import PublicIPWriter
from lbprov_azure.sandbox import Fault

from lbprov.slots import Slots
from lbprov.testing import wait_for


def _pip_name(plan) -> str:
    (change,) = [c for c in plan.changes if c.kind == "public-ip"]
    return str(change.data["name"])


def test_a_sync_lends_its_worker_slot_while_its_public_ip_is_created(
    provider, intent_for, make_service, state
):
    """With one slot, a second sync gets it while the first one's public IP PUT is still in flight;
    the first then takes a slot back and finishes with the same result as ever (ingress, converged)."""
    slots = Slots(1)
    arrived, go = threading.Event(), threading.Event()

    def hold_public_ip_puts(method: str, path: str) -> None:
        if method == "PUT" and "/publicipaddresses/" in path.lower():
            arrived.set()
            assert go.wait(30), "the test never let the public IP's PUT go"

    intent = intent_for(make_service("web"))
    plan = provider.plan(intent)

    def sync():
        with slots.held():
            return provider.apply(plan)

    state.hooks.append(hold_public_ip_puts)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(sync)
            assert arrived.wait(30), "the public IP's PUT never reached the emulator"
            wait_for(lambda: slots.free() == 1, 10, "the slot lent while the public IP is created")
            with slots.held():  # another sync runs meanwhile
                assert slots.free() == 0
            go.set()
            ingress = first.result(timeout=60)
    finally:
        go.set()
        state.hooks.remove(hold_public_ip_puts)
    assert ingress and ingress[0].ip
    assert slots.free() == 1  # the first sync gave its slot back at its end
    assert provider.plan(intent).empty


def test_a_failing_public_ip_fails_its_own_service_only(sandbox, cluster, intent_for, make_service, state):
    """Two Services apply at once; ARM refuses one's public IP: that apply raises ARM's error, the
    other converges, and the refused one converges on its next reconcile."""
    provider = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "coalesce_window_seconds": 0.01}
    )
    good, bad = (
        intent_for(make_service("good"), prov=provider),
        intent_for(make_service("bad"), prov=provider),
    )
    plans = {"good": provider.plan(good), "bad": provider.plan(bad)}
    bad_pip = _pip_name(plans["bad"])
    state.inject(
        Fault(
            method="PUT",
            path=rf"/publicipaddresses/{bad_pip.lower()}$",
            status=400,
            code="InvalidRequestFormat",
        )
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(provider.apply, plan) for name, plan in plans.items()}
        with pytest.raises(HttpResponseError) as failed:
            futures["bad"].result(timeout=60)
        ingress = futures["good"].result(timeout=60)
    assert "InvalidRequestFormat" in str(failed.value)
    assert ingress and ingress[0].ip
    assert provider.plan(good).empty
    assert provider.apply(provider.plan(bad))[0].ip
    assert provider.plan(bad).empty


def test_the_writer_runs_at_most_parallel_writes_at_once():
    """Five writes, two at a time: a third starts only when one of the first two ends, and a write's
    ``on_start`` (the apply announcing itself to its LB's writer) runs only when the write starts, not
    while it is queued."""
    writer = PublicIPWriter(2)
    lock = threading.Lock()
    running, most, ended = [0], [0], [0]
    go = [threading.Event() for _ in range(5)]
    started: list[int] = []
    announced: list[int] = []

    def write(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            started.append(i)
        assert go[i].wait(30), "the test never let the write end"
        with lock:
            running[0] -= 1
            ended[0] += 1
        return i

    with ThreadPoolExecutor(max_workers=5) as callers:
        results = [
            callers.submit(writer.run, lambda i=i: announced.append(i), lambda i=i: write(i))
            for i in range(5)
        ]
        wait_for(lambda: len(started) == 2, 10, "the first two writes")
        assert sorted(announced) == sorted(started)
        first = started[0]
        go[first].set()
        wait_for(lambda: ended[0] == 1 and len(started) == 3, 10, "a third write once one ended")
        assert sorted(announced) == sorted(started)
        for e in go:
            e.set()
        assert [f.result(timeout=30) for f in results] == [0, 1, 2, 3, 4]
    assert most[0] == 2


def test_the_writer_raises_the_error_in_the_caller_and_needs_a_positive_bound():
    writer = PublicIPWriter(1)

    def fail() -> None:
        raise RuntimeError("ARM said no")

    with pytest.raises(RuntimeError, match="ARM said no"):
        writer.run(lambda: None, fail)
    assert writer.run(lambda: None, lambda: 7) == 7  # a failed write gave its place back
    with pytest.raises(ValueError, match="public_ip_writers"):
        PublicIPWriter(0)
