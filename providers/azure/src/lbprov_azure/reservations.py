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
never short while a write is on the wire, and never doubled once its result is seen. An ended
hold is forgotten once no plan that started before its end is still placing, so the holds kept
are those of the plans in flight: placement's cost does not grow with the number of Services.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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
    id: int = field(default=0)


class Reservations:
    """The holds of one provider process (see the module doc). Thread-safe."""

    def __init__(self) -> None:
        # reentrant: a plan's finalizer (:meth:`bind`) may run in a thread that holds it
        self.lock = threading.RLock()
        self._seq = 0  # bumped by every end: plans remember it when they start observing
        self._ids = itertools.count(1)
        self._live: dict[int, Ticket] = {}
        self._by_plan: dict[int, Ticket] = {}
        self._placing: Counter[int] = Counter()  # the marks of the plans still placing

    @contextmanager
    def placing(self) -> Iterator[int]:
        """Around a plan's reads and placement; yields its mark (enter before reading the load
        balancers: holds that end after it still count for this plan)."""
        with self.lock:
            since = self._seq
            self._placing[since] += 1
        try:
            yield since
        finally:
            with self.lock:
                self._placing[since] -= 1
                if not self._placing[since]:
                    del self._placing[since]

    def counted(self, since: int) -> list[Hold]:
        """The holds a placement that started observing at ``since`` must count (callers skip their
        own Service's and those the observed load balancer already records)."""
        with self.lock:
            oldest = min(self._placing, default=self._seq)
            for tid in [t.id for t in self._live.values() if t.ended is not None and t.ended <= oldest]:
                del self._live[tid]  # no plan still placing started before it ended
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
                ticket.ended = self._seq

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

    def size(self) -> int:
        """Holds kept (live, or ended and still counted for plans that started before)."""
        with self.lock:
            return len(self._live)
