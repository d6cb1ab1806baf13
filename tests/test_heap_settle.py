"""``lbprov.heap.settle``: one full collection, then the survivors frozen, at most once per interval."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from lbprov import heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def settling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "SETTLE_INTERVAL", 300.0)
    monkeypatch.setattr(heap, "_settled_at", None)
    try:
        yield
    finally:
        gc.unfreeze()  # this test process keeps the interpreter's own collection


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_off_by_default_so_a_library_or_test_process_keeps_its_collection() -> None:
    assert heap.SETTLE_INTERVAL is None  # ``lbprov run`` sets SETTLE_SECONDS in its own process


def test_settle_collects_the_garbage_and_freezes_the_rest(settling: None) -> None:
    gone = _cycle()
    kept = _Node()
    gc.disable()  # nothing but settle collects in between
    try:
        assert gone() is not None
        assert heap.settle(now=lambda: 1000.0)
    finally:
        gc.enable()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    # the survivor is frozen: in no generation a later collection walks
    assert not any(o is kept for o in gc.get_objects())


def test_a_second_settle_within_the_interval_does_nothing_after_it_again(settling: None) -> None:
    assert heap.settle(now=lambda: 1000.0)
    gone = _cycle()
    assert not heap.settle(now=lambda: 1299.0)
    gc.disable()
    try:
        assert gone() is not None  # not collected by that call
        assert heap.settle(now=lambda: 1300.0)
    finally:
        gc.enable()
    assert gone() is None


def test_a_cycle_frozen_by_one_settle_is_collected_by_the_next(settling: None) -> None:
    gone = _cycle()
    gc.disable()
    try:
        gc.freeze()  # as if an earlier settle had frozen it while still in use
        assert gone() is not None
        assert heap.settle(now=lambda: 5000.0)  # unfreezes first
    finally:
        gc.enable()
    assert gone() is None


def test_with_no_interval_settle_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "SETTLE_INTERVAL", None)
    before = gc.get_freeze_count()
    assert not heap.settle()
    assert gc.get_freeze_count() == before
