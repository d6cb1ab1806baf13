"""Worker slots: ``--workers`` bounds the syncs that make calls at once, not the syncs in flight.

Why: a provider that coalesces the writes of many Services into one (Azure's shared load balancer
and NSG rules: one PUT for every Service pending on it) makes each sync *wait* on a write that
another thread sends for it. Holding a worker while waiting there puts the workers in lock step (all
create their public IPs, all wait for one LB batch, all wait for one NSG batch), and the convoy, not
the calls, bounds the time. So for such providers (:func:`lbprov.provider.waits_on_shared_writes`)
the controller runs more threads than ``workers``, and a sync needs one of ``workers`` *slots* to
run; a provider wraps its wait on a shared writer in :func:`released`, which hands the slot to the
next sync while it waits and takes one again before going on. At most ``workers`` syncs make calls
of their own at once; the writes a shared writer's leader sends on behalf of its waiting syncs come
on top (one batch PUT per busy shared writer at a time).

Slots are handed over in order: a freed slot goes straight to the longest-waiting sync (a sync that
comes back from a wait first, so Services already half-way finish first; then new syncs in the order
they lined up). The thread that frees a slot cannot take it back ahead of them: a new request of its
own lines up behind every waiting one. A worker lines up (:meth:`Slots.line_up`) right after it
takes its key off the work queue, so the queue's order is kept through the hand-off, and no key
taken earlier starves behind keys that keep arriving. Outside a slot (a CLI plan, a test calling a
provider directly) :func:`released` does nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


class Ticket:
    """One sync's place in a line for a slot; ``granted`` once the slot is its own."""

    __slots__ = ("_event", "granted")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.granted = False


class Slots:
    """``n`` slots shared by a controller's worker threads (see the module doc). Thread-safe.

    Invariant (under the lock): free slots and waiting tickets never coexist -- a slot that frees
    up goes at once to the head of a line, so no wake-up can be lost or taken by a late-comer.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("slots: need at least 1")
        self.size = n
        self._free = n
        self._lock = threading.Lock()
        self._resuming: deque[Ticket] = deque()  # syncs back from a wait in released(): served first
        self._new: deque[Ticket] = deque()  # syncs that have not started, in the order they lined up

    def line_up(self) -> Ticket:
        """A place in the line of new syncs (granted at once if a slot is free); pass it to
        :meth:`held`. Taking the ticket apart from the wait lets the caller line up in the same
        critical section as it takes its work (the controller: right after ``queue.get()``)."""
        return self._enqueue(self._new)

    @contextmanager
    def held(self, ticket: Ticket | None = None) -> Iterator[None]:
        """Run the block in a slot of the calling thread: ``ticket``'s, or a new place in line."""
        self._wait(ticket if ticket is not None else self.line_up())
        _local.slots = self
        try:
            yield
        finally:
            _local.slots = None
            self._give()

    def free(self) -> int:
        with self._lock:
            return self._free

    def waiting(self) -> int:
        """New syncs lined up for a slot that have not started (their keys are off the queue)."""
        with self._lock:
            return len(self._new)

    def resuming(self) -> int:
        """Syncs back from a wait in :func:`released`, waiting to take a slot again."""
        with self._lock:
            return len(self._resuming)

    def _enqueue(self, line: deque[Ticket]) -> Ticket:
        ticket = Ticket()
        with self._lock:
            if self._free:  # the invariant: nobody waits, so the slot is this ticket's
                self._free -= 1
                ticket.granted = True
            else:
                line.append(ticket)
        return ticket

    def _wait(self, ticket: Ticket) -> None:
        if ticket.granted:
            return
        try:
            ticket._event.wait()
        except BaseException:  # interrupted while in line: leave it, or give back what came
            with self._lock:
                for line in (self._new, self._resuming):
                    if ticket in line:
                        line.remove(ticket)
                        break
                else:
                    ticket.granted = False
                    self._free += 1
                    self._hand_over_locked()
            raise

    def _give(self) -> None:
        with self._lock:
            self._free += 1
            self._hand_over_locked()

    def _hand_over_locked(self) -> None:
        while self._free and (self._resuming or self._new):
            ticket = (self._resuming or self._new).popleft()
            self._free -= 1
            ticket.granted = True
            ticket._event.set()


@contextmanager
def released() -> Iterator[None]:
    """Give the calling thread's slot to another sync while the block runs (a wait on a write that
    another thread makes for this one); take one back after it. Does nothing outside a slot."""
    slots: Slots | None = getattr(_local, "slots", None)
    if slots is None:
        yield
        return
    _local.slots = None  # nested releases do nothing
    slots._give()
    try:
        yield
    finally:
        slots._wait(slots._enqueue(slots._resuming))
        _local.slots = slots
