"""The controller hands a batch's read round over to the next one: no plan ever finds no round.

A round ends when it outlives ``MAX_ROUND_SECONDS`` while its batch goes on, or when a new batch
(the resync, a node sync's) replaces it. The controller used to end the old round and then open the
new one; a plan that read in between found no round, and a provider then read the whole account for
that plan alone (AWS opened an implicit round listing everything, GCP and Azure read per Service or
listed the shared load balancers for one plan): issue 14. Now the new round opens first and the old
one ends after it (``lbprov.provider.read_round(fresh=True)``), for providers that declare
``hands_over_rounds``.

Each test holds one plan with an event until the old round has ended (the fake round's exit lets it
go on and waits for its listing), so that the plan reads exactly where the gap was: no thread timing
is involved, and the deadlines only bound a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from lbprov import provider as provider_api
from lbprov.model import Intent, Plan
from lbprov.testing import wait_for
from tests.test_reconciler import FakeKube, FakeProvider, controller_over, make_service

HANG = 60.0  # bounds a hang only


class Round:
    """One read round of :class:`RoundProvider`: the account is listed at most once in it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.listings = 0
        self.ended = False
        self.drift_checks = 0

    def list_once(self) -> None:
        with self.lock:
            if self.listings == 0:
                self.listings = 1

    def drift_check(self) -> None:
        self.drift_checks += 1


class RoundProvider(FakeProvider):
    """The fake provider with read rounds as the clouds have them: every plan lists the account,
    once per round inside one, or for itself outside any round (counted in :attr:`outside`).

    ``hold``: the name of a Service whose plan waits, before it lists, until :attr:`release` is
    set. ``on_first_exit``: run once, when the first round ends (after it is no longer current);
    ``on_first_exit_begins``: run once, as the first round begins to end (still current)."""

    hands_over_rounds: ClassVar[bool] = True

    def __init__(self, timeline: list[str], hold: str) -> None:
        super().__init__("a", timeline)
        self.hold = hold
        self.lock = threading.Lock()
        self.current: Round | None = None
        self.rounds: list[Round] = []
        self.fresh_asked = 0
        self.outside = 0
        self.open_at_listing: list[int] = []  # rounds not yet ended at each plan's listing
        self.held_started = threading.Event()
        self.release = threading.Event()
        self.held_listed = threading.Event()
        self.on_first_exit: Callable[[], None] | None = None
        self.on_first_exit_begins: Callable[[], None] | None = None

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[Round]:
        with self.lock:
            self.fresh_asked += fresh
            outer = self.current
            if outer is not None and not fresh:
                rnd, mine = outer, False
            else:
                rnd, mine = Round(), True
                self.current = rnd
                self.rounds.append(rnd)
        try:
            yield rnd
        finally:
            if mine:
                begins, self.on_first_exit_begins = self.on_first_exit_begins, None
                if begins is not None:
                    begins()  # the round is ending, and still the provider's current one
                with self.lock:
                    if self.current is rnd:
                        self.current = None
                    rnd.ended = True
                    hook, self.on_first_exit = self.on_first_exit, None
                if hook is not None:
                    hook()

    def plan(self, intent: Intent) -> Plan:
        if intent.ref.name == self.hold:
            self.held_started.set()
            assert self.release.wait(HANG), "the held plan was never released"
        rnd = self.current
        with self.lock:
            self.open_at_listing.append(sum(not r.ended for r in self.rounds))
        if rnd is None:
            with self.lock:
                self.outside += 1  # a plan without a round reads the whole account for itself
        else:
            rnd.list_once()
        if intent.ref.name == self.hold:
            self.held_listed.set()
        return super().plan(intent)


def _release_the_held_plan_in_the_gap(provider: RoundProvider) -> None:
    """When the first round has ended: let the held plan read, and wait until it has (on the old
    controller this was the gap between the two rounds)."""

    def hook() -> None:
        provider.release.set()
        assert provider.held_listed.wait(HANG), "the held plan never listed"

    provider.on_first_exit = hook


def _run(provider: RoundProvider, kube: FakeKube, act: Callable[[Any], None]) -> None:
    """Start the controller over two Services (``quick``, and the held one), wait until both of the
    initial batch's plans are in flight, ``act(workers)``, and wait until every round has ended."""
    gate = threading.Event()
    quick_started = threading.Event()
    plan = provider.plan

    def gated(intent: Intent) -> Plan:
        if intent.ref.name == "quick" and not gate.is_set():
            quick_started.set()
            assert gate.wait(HANG), "the quick plan was never let go"
        return plan(intent)

    provider.plan = gated  # type: ignore[method-assign]
    kube.put(make_service("quick"))
    kube.put(make_service(provider.hold))
    controller = controller_over(kube, provider, workers=2, waiting_syncs=0)
    controller.start()
    try:
        assert provider.held_started.wait(HANG) and quick_started.wait(HANG)
        act(controller._workers)
        gate.set()
        wait_for(
            lambda: len(provider.cloud) == 2 and all(r.ended for r in provider.rounds),
            HANG,
            "both Services applied and every round ended",
            interval=0.01,
        )
    finally:
        controller.stop()


def test_a_round_that_expires_mid_batch_is_handed_over_and_no_plan_reads_without_one() -> None:
    """The quick plan's worker finds the round too old (its batch still has the held plan in
    flight) and replaces it: the held plan, let go as the old round ends, reads in the new round."""
    provider = RoundProvider([], hold="held")
    _release_the_held_plan_in_the_gap(provider)

    def expire(workers: Any) -> None:
        with workers.round_lock:
            workers.round_started -= 1e6  # older than MAX_ROUND_SECONDS: the next sync's end rolls over

    _run(provider, FakeKube([]), expire)
    assert provider.outside == 0, "a plan read the whole account outside any round"
    assert len(provider.rounds) == 2
    # one listing per round: the first by the quick plan, the second by the held one
    assert [r.listings for r in provider.rounds] == [1, 1]
    assert provider.fresh_asked == 1
    # the old round had ended (its cache gone) before the new one was read into
    assert provider.open_at_listing == [1, 1]


def test_a_new_batch_hands_the_open_round_over_and_its_periodic_round_is_new() -> None:
    """The resync begins while the initial batch's held plan is in flight: its round replaces the
    initial one (a new round, told it is periodic), and the held plan reads in it."""
    provider = RoundProvider([], hold="held")
    _release_the_held_plan_in_the_gap(provider)
    queued: list[int] = []

    _run(provider, FakeKube([]), lambda workers: queued.append(workers.resync()))
    assert queued == [2]
    assert provider.outside == 0, "a plan read the whole account outside any round"
    first, second = provider.rounds
    assert second is not first and second.drift_checks == 1 and first.drift_checks == 0
    assert second.listings == 1  # the held plan's (and the resync's plans', once)


def test_a_provider_that_does_not_hand_rounds_over_gets_its_old_round_ended_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``hands_over_rounds`` a round opened while one is open would reuse it: the old
    round ends before the new one opens, as before (never two at once, never the old one reused)."""
    monkeypatch.setattr(RoundProvider, "hands_over_rounds", False)
    provider = RoundProvider([], hold="held")
    overlap: list[int] = []
    read_round = provider.read_round

    @contextmanager
    def counting(**kwargs: Any) -> Iterator[Round]:
        assert not kwargs, "fresh=True asked of a provider that does not hand rounds over"
        overlap.append(sum(not r.ended for r in provider.rounds))
        with read_round() as rnd:
            yield rnd

    provider.read_round = counting  # type: ignore[method-assign]
    _release_the_held_plan_in_the_gap(provider)

    def expire(workers: Any) -> None:
        with workers.round_lock:
            workers.round_started -= 1e6

    _run(provider, FakeKube([]), expire)
    assert len(provider.rounds) == 2 and overlap == [0, 0]
    assert provider.outside == 1  # such a provider still has the gap


def test_read_round_asks_fresh_only_of_providers_that_hand_rounds_over() -> None:
    class Plain:
        def read_round(self) -> Any:
            return "round"

    class HandsOver(Plain):
        hands_over_rounds = True

        def read_round(self, *, fresh: bool = False) -> Any:
            return ("round", fresh)

    assert provider_api.read_round(object()) is None
    assert provider_api.read_round(Plain()) == "round"
    assert provider_api.read_round(Plain(), fresh=True) is None  # the caller ends the old one first
    assert provider_api.read_round(HandsOver(), fresh=True) == ("round", True)
    assert provider_api.hands_over_rounds(HandsOver) and not provider_api.hands_over_rounds(Plain)


class _WatchedLock:
    """``round_lock`` that says when a thread had to wait for it (:attr:`contended`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self) -> _WatchedLock:
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_a_batch_that_begins_while_a_drained_round_ends_gets_a_round_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The initial batch drains and its round ends; a resync queued at that very moment (here: from
    inside the round's exit) used to find no round in the batch, nest into the ending one, and then
    run every plan with no round at all (found by review). Now the round ends under ``round_lock``:
    the resync waits for it, then opens a round of its own, told it is periodic."""
    from lbprov.controller import manager

    init = manager._Workers.__init__

    def watched(self: Any, controller: Any) -> None:
        init(self, controller)
        self.round_lock = _WatchedLock()

    monkeypatch.setattr(manager._Workers, "__init__", watched)
    provider = RoundProvider([], hold="-none-")
    kube = FakeKube([])
    kube.put(make_service("only"))
    controller = controller_over(kube, provider, workers=2, waiting_syncs=0)
    resynced = threading.Event()

    def resync_now() -> None:
        workers = controller._workers
        assert workers is not None
        t = threading.Thread(target=lambda: (workers.resync(), resynced.set()), daemon=True)
        t.start()
        # the resync either ran in the gap (the old controller) or waits for the lock (now)
        wait_for(
            lambda: resynced.is_set() or workers.round_lock.contended.is_set(),
            HANG,
            "the resync ran or waited for the round lock",
            interval=0.001,
        )

    provider.on_first_exit_begins = resync_now
    controller.start()
    try:
        wait_for(resynced.is_set, HANG, "the resync was queued", interval=0.01)
        wait_for(
            lambda: len(provider.rounds) >= 2 and all(r.ended for r in provider.rounds),
            HANG,
            "the resync's round opened and ended",
            interval=0.01,
        )
    finally:
        controller.stop()
    assert provider.outside == 0, "a plan read the whole account outside any round"
    first, second = provider.rounds[:2]
    assert first.drift_checks == 0 and second.drift_checks == 1  # on the resync's own round


def test_a_batch_queued_after_the_workers_stopped_opens_no_round() -> None:
    """A resync that reached ``batch()`` after stop opened a provider round that nobody ended (the
    next term's batch then nested into it): found by review."""
    provider = RoundProvider([], hold="-none-")
    kube = FakeKube([])
    kube.put(make_service("only"))
    controller = controller_over(kube, provider, workers=1, waiting_syncs=0)
    controller.start()
    try:
        wait_for(
            lambda: (
                len(provider.cloud) == 1 and bool(provider.rounds) and all(r.ended for r in provider.rounds)
            ),
            HANG,
            "the Service applied and its round ended",
            interval=0.01,
        )
        workers = controller._workers
        assert workers is not None
    finally:
        controller.stop()
    rounds = len(provider.rounds)
    assert workers.batch(["default/only"]) == 0
    assert len(provider.rounds) == rounds and provider.current is None
