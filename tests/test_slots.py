"""lbprov.slots: at most ``n`` syncs in their slots; a wait in :func:`released` frees a slot."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from lbprov.slots import Slots, released
from lbprov.testing import wait_for


def test_at_most_n_threads_hold_a_slot_at_once() -> None:
    slots = Slots(2)
    inside = 0
    most = 0
    lock = threading.Lock()
    go = threading.Event()

    def run() -> None:
        nonlocal inside, most
        with slots.held():
            with lock:
                inside += 1
                most = max(most, inside)
            go.wait(5)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    wait_for(lambda: slots.free() == 0, 5, "both slots taken")
    go.set()
    for t in threads:
        t.join(5)
    assert most == 2
    assert slots.free() == 2


def test_a_wait_in_released_lets_another_sync_take_the_slot() -> None:
    slots = Slots(1)
    waiting = threading.Event()
    batch_done = threading.Event()
    order: list[str] = []

    def waiter() -> None:
        with slots.held():
            order.append("waiter starts")
            with released():
                waiting.set()
                batch_done.wait(5)  # the shared writer's batch, sent by another thread
            order.append("waiter resumes")

    def other() -> None:
        waiting.wait(5)
        with slots.held():  # only possible because the waiter gave its slot back
            order.append("other runs")
            batch_done.set()

    threads = [threading.Thread(target=waiter), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert order == ["waiter starts", "other runs", "waiter resumes"]
    assert slots.free() == 1


def test_a_resuming_sync_gets_the_free_slot_before_a_new_one() -> None:
    slots = Slots(1)
    order: list[str] = []
    in_wait = threading.Event()
    end_wait = threading.Event()
    holder_go = threading.Event()
    holder_in = threading.Event()

    def holder() -> None:
        in_wait.wait(5)
        with slots.held():
            holder_in.set()
            holder_go.wait(5)

    def resumer() -> None:
        with slots.held():
            with released():
                in_wait.set()
                end_wait.wait(5)
            order.append("resumed")

    def newcomer() -> None:
        with slots.held():
            order.append("new")

    r = threading.Thread(target=resumer)
    h = threading.Thread(target=holder)
    r.start()
    h.start()
    holder_in.wait(5)  # the slot is the holder's; now a new sync and the resumer both wait for it
    n = threading.Thread(target=newcomer)
    n.start()
    wait_for(lambda: slots._new._waiters, 5, "the new sync waits")  # type: ignore[attr-defined]
    end_wait.set()
    wait_for(lambda: slots._resuming == 1, 5, "the resumer waits")
    holder_go.set()
    for t in (r, h, n):
        t.join(5)
    assert order == ["resumed", "new"]


def test_released_outside_a_slot_does_nothing() -> None:
    with released():
        pass  # a provider called outside the controller (lbprov plan, a test)


def test_slots_need_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


def test_the_controller_runs_another_sync_while_one_waits_in_released() -> None:
    """``workers=1``: a sync waiting on a shared write (in :func:`released`) does not hold the one
    worker, so a second Service is reconciled meanwhile; the waiting one then finishes too."""
    sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the fakes' module
    from test_reconciler import FakeKube, FakeProvider, controller_over, make_service

    timeline: list[str] = []
    kube = FakeKube(timeline)
    provider = FakeProvider("a", timeline)
    waiting, gate = threading.Event(), threading.Event()
    real_apply = provider.apply

    def apply(plan):  # type: ignore[no-untyped-def]
        if plan.ref.name == "first":
            with released():  # as Azure's wait on its shared load balancer's batch
                waiting.set()
                assert gate.wait(10)
        return real_apply(plan)

    provider.apply = apply  # type: ignore[method-assign]
    kube.put(make_service("first"))
    controller = controller_over(kube, provider, workers=1)
    controller.start()
    try:
        assert waiting.wait(5), "the first sync waits in released()"
        kube.put(make_service("second"))
        controller.enqueue("default/second")
        wait_for(
            lambda: kube.services["default/second"].get("status", {}).get("loadBalancer", {}).get("ingress"),
            5,
            "the second Service's ingress while the first waits",
        )
        gate.set()
        wait_for(
            lambda: kube.services["default/first"].get("status", {}).get("loadBalancer", {}).get("ingress"),
            5,
            "the first Service's ingress after its wait",
        )
    finally:
        gate.set()
        controller.stop()
