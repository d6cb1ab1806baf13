"""Room on the cluster's load balancers held for plans decided but not yet applied.

Placement (:mod:`lbprov_azure.placement`) counts what it *observes* on each slot. Plans made at
the same moment (10 workers of one controller) each observe the same room on the same slot, and
all but the first few are refused at apply by ARM (``LoadBalancerRuleCountLimitReachedForNic``,
or the 600 frontends / 1,500 rules of a load balancer): failed syncs, requeued. So a plan that puts
a Service on a slot that does not hold it yet takes a :class:`Hold` for the rules and the frontend
it adds, and every later placement counts the holds of other plans as if they were applied.

A hold lives while its plan can still write:

* it is taken under the lock in which the slot is chosen (two plans cannot both see the last room);
* it ends when the plan's apply ends, successfully or not (:meth:`Reservations.end`);
* it is dropped at once when the plan is discarded unapplied (the plan object is garbage
  collected: a weak reference's finalizer, :meth:`Reservations.bind`) or the plan itself fails;
* a dry-run provider (``lbprov plan``) takes none: it never applies.

An ended hold still counts for the plans that started observing before it ended (their read of
the load balancer may predate the write), until they observe the Service on the load balancer:
a hold never counts for a Service the observed load balancer already records. So the count is
never short while a write is on the wire, and never doubled once its result is seen.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: Ended holds older than this are forgotten (no plan observes for that long; if one did, it
#: would only miss the hold, which is what placement did before holds existed).
ENDED_KEEP_SECONDS = 300.0


@dataclass(frozen=True)
class Hold:
    """What one plan adds to one slot: rules (they reach every node of the slot) and frontends on
    the slot's load balancer of the Service's scheme."""

    token: str  # the Service (names.uid_token): a plan never counts its own Service's holds
    slot: int
    scheme: str  # "external" | "internal"
    rules: int
    frontends: int = 1


@dataclass(eq=False)
class Ticket:
    """A taken hold; ``ended`` is the sequence number at which its plan's apply ended."""

    hold: Hold
    ended: int | None = None
    ended_at: float = 0.0
    id: int = field(default=0)


class Reservations:
    """The holds of one provider process (see the module doc). Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._seq = 0  # bumped by every end: plans remember it when they start observing
        self._ids = itertools.count(1)
        self._live: dict[int, Ticket] = {}
        self._by_plan: dict[int, Ticket] = {}

    def mark(self) -> int:
        """Call before reading the load balancers: holds that end after this still count."""
        with self.lock:
            return self._seq

    def counted(self, since: int) -> list[Hold]:
        """The holds a placement that started observing at ``since`` must count (callers skip their
        own Service's and those the observed load balancer already records)."""
        with self.lock:
            self._forget_old()
            return [t.hold for t in self._live.values() if t.ended is None or t.ended > since]

    def take(self, hold: Hold) -> Ticket:
        """Hold room (call under :attr:`lock`, with the placement that decided it)."""
        with self.lock:
            ticket = Ticket(hold, id=next(self._ids))
            self._live[ticket.id] = ticket
            return ticket

    def drop(self, ticket: Ticket | None) -> None:
        """The plan was discarded or failed before any write: its hold goes at once."""
        if ticket is None:
            return
        with self.lock:
            self._live.pop(ticket.id, None)

    def end(self, ticket: Ticket | None) -> None:
        """The plan's apply ended (its writes landed, or some did): the hold goes once observed."""
        if ticket is None:
            return
        with self.lock:
            if ticket.id in self._live and ticket.ended is None:
                self._seq += 1
                ticket.ended, ticket.ended_at = self._seq, self._clock()

    def bind(self, ticket: Ticket | None, plan: object) -> None:
        """Tie ``ticket`` to ``plan``: :meth:`applying` finds it, and it is dropped if the plan is
        garbage collected without having been applied."""
        if ticket is None:
            return
        key = id(plan)
        with self.lock:
            self._by_plan[key] = ticket
        weakref.finalize(plan, self._discarded, key, ticket)

    @contextmanager
    def applying(self, plan: object) -> Iterator[None]:
        """Around a plan's apply: its hold ends when the apply does, whatever the outcome."""
        with self.lock:
            ticket = self._by_plan.pop(id(plan), None)
        try:
            yield
        finally:
            self.end(ticket)

    def _discarded(self, key: int, ticket: Ticket) -> None:
        with self.lock:
            if self._by_plan.get(key) is ticket:
                del self._by_plan[key]
            if ticket.ended is None:
                self._live.pop(ticket.id, None)

    def _forget_old(self) -> None:
        cutoff = self._clock() - ENDED_KEEP_SECONDS
        for tid in [t.id for t in self._live.values() if t.ended is not None and t.ended_at < cutoff]:
            del self._live[tid]

    def size(self) -> int:
        """Holds kept (live, or ended and still counted for plans that started before)."""
        with self.lock:
            return len(self._live)
