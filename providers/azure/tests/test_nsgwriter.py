"""The shared-rule writer (pure logic): deltas of Services that arrive while a write is on the wire
become one batch; the deltas apply in order; an error reaches every ticket of its batch."""

from __future__ import annotations

import threading

import pytest
from lbprov_azure.nsgwriter import RuleDelta, RuleWriter, merged_destinations

from lbprov.testing import wait_for


def _delta(add=(), remove=()):
    return RuleDelta(add=set(add), remove=set(remove), template={})


def test_deltas_arriving_during_a_write_become_one_batch():
    batches: list[list[RuleDelta]] = []
    gate = threading.Event()

    def write(deltas, start, known):
        batches.append(deltas)
        if len(batches) == 1:
            gate.wait(60)
        return {"destinations": sorted(merged_destinations(set(), deltas))}

    w = RuleWriter(write, 0)
    first = threading.Thread(target=w.submit, args=(_delta(["10.0.0.1"]),))
    first.start()
    wait_for(lambda: len(batches) == 1, 60, "the first batch to be written", interval=0.005)
    others = [threading.Thread(target=w.submit, args=(_delta([f"10.0.0.{i}"]),)) for i in range(2, 7)]
    for t in others:
        t.start()
    wait_for(lambda: len(w._pending) == 5, 60, "5 deltas pending behind the write", interval=0.005)
    gate.set()
    for t in [first, *others]:
        t.join(60)
    assert [len(b) for b in batches] == [1, 5]


def test_deltas_apply_in_order_and_an_error_reaches_its_batch():
    assert merged_destinations({"a", "b"}, [_delta(["c"], ["a"]), _delta(["a"]), _delta(remove=["c"])]) == {
        "a",
        "b",
    }

    def fail(deltas, start, known):
        raise RuntimeError("ARM said no")

    with pytest.raises(RuntimeError, match="ARM said no"):
        RuleWriter(fail, 0).submit(_delta(["x"]))


def test_a_leader_waits_for_applies_announced_before_it_led_and_not_for_later_ones():
    batches: list[list[RuleDelta]] = []

    def write(deltas, start, known):
        batches.append(deltas)
        return {"destinations": sorted(merged_destinations(set(), deltas))}

    w = RuleWriter(write, 0, max_wait=120)
    early = w.announce()
    threads = [threading.Thread(target=w.submit, args=(_delta(["10.0.0.1"]),))]
    threads[0].start()
    # the leader has taken its cut: it waits for ``early`` (a 120 s wait would end the test by timeout)
    wait_for(lambda: w.leads == 1, 60, "the leader to lead", interval=0.005)
    late = w.announce()  # announced after the cut: not waited for
    threads.append(threading.Thread(target=w.submit, args=(_delta(["10.0.0.2"]), early)))
    threads[1].start()
    try:
        wait_for(
            lambda: len(batches) == 1, 60, "one batch while a later announcement is pending", interval=0.005
        )
        assert [sorted(next(iter(d.add)) for d in b) for b in batches] == [["10.0.0.1", "10.0.0.2"]]
    finally:
        w.withdraw(late)
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads)
