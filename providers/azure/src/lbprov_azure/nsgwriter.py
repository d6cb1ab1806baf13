"""Write-side concurrency of the NSG rules shared by destination: deltas of many Services, one PUT.

Every Service with the same protocol, sources and ports is one destination of the same rule (as
upstream merges them), so concurrent reconciles all change that one rule. Each submits a *delta*
(addresses to add, to remove); a leader takes every delta pending for the rule after a short window,
reads the rule fresh, applies them all and writes once with If-Match (a 412 -- another process --
re-reads and re-applies). Followers wait for the leader's result. A rule left without destination
is deleted. The same shape as :class:`~lbprov_azure.lbwriter.SharedLBWriter`, for a smaller body.

Announcements, as the load balancer's writer takes them: an apply that will submit a delta after
other writes (its public IP first) announces itself, and a leader waits for the applies announced
before its batch began (up to ``max_wait``). A new Service's rule delta goes out beside its load
balancer's batch (:mod:`lbprov_azure.overlap`), no longer right after it: without the wait, each
rule batch took whoever had arrived in its window and the rule's PUTs nearly doubled (17 to 29 for
300 Services on the scale bench); with it the rule's batches follow the public IPs' as the load
balancer's do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lbprov_azure.lbwriter import Announcement, AnnouncingWriter

JSON = dict[str, Any]


@dataclass
class RuleDelta:
    add: set[str]
    remove: set[str]
    #: the rule's body when it must be created (properties without destination, with a priority)
    template: JSON
    #: the description to write (the cluster identity on a rule that predates it), or None
    description: str | None = None
    #: the rule as the plan saw it (None: absent); ``seen=False``: the plan did not look
    snapshot: JSON | None = None
    seen: bool = False


@dataclass
class _Ticket:
    delta: RuleDelta
    done: bool = False
    lead: bool = False
    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class RuleWriter(AnnouncingWriter):
    """One shared rule's writer. ``write(deltas, last, known)`` does the merge-write of a batch,
    starting from ``last`` when ``known`` (the rule as this writer last wrote it, or as the first
    delta's plan saw it; an ETag mismatch then costs one re-read) and returns the rule as written
    (None: deleted). A leader writes one batch and hands the lead to the next pending ticket, so no
    worker keeps writing other Services' batches while its own reconcile waits."""

    def __init__(
        self,
        write: Callable[[list[RuleDelta], JSON | None, bool], JSON | None],
        window: float,
        max_wait: float = 0.0,
    ) -> None:
        self._write = write
        self.window = window
        self.max_wait = max_wait
        self._init_announcements()
        self._pending: list[_Ticket] = []
        self._busy = False
        self._last: JSON | None = None
        self._known = False
        self.batches = 0
        #: batches whose leader has fixed which announced applies it waits for (tests wait for this)
        self.leads = 0

    def submit(self, delta: RuleDelta, announcement: Announcement | None = None) -> None:
        ticket, announcement = _Ticket(delta), self._own(announcement)
        with self._lock:
            self._spend(announcement)  # in one hold with the ticket's append
            self._pending.append(ticket)
            if not self._busy:
                self._busy = True
                ticket.lead = True
        while not ticket.done:
            if ticket.lead:
                self._lead()
            else:
                ticket.event.wait()
                ticket.event.clear()
        if ticket.error is not None:
            raise ticket.error

    def _lead(self) -> None:
        deadline = time.monotonic() + self.max_wait
        with self._lock:
            cut = self._announced  # only applies announced before the batch began are waited for
            self.leads += 1
        if self.window:
            time.sleep(self.window)
        with self._lock:
            self._await_announced(cut, deadline)
            batch, self._pending = self._pending, []
        self.batches += 1
        deltas = [t.delta for t in batch]
        start, known = (self._last, True) if self._known else (deltas[0].snapshot, deltas[0].seen)
        error: BaseException | None = None
        try:
            self._last, self._known = self._write(deltas, start, known), True
        except BaseException as exc:  # every ticket of the batch gets the error
            self._known = False
            error = exc
        with self._lock:
            for t in batch:
                t.error, t.done, t.lead = error, True, False
                t.event.set()
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
                nxt.event.set()
            else:
                self._busy = False


def merged_destinations(current: set[str], deltas: list[RuleDelta]) -> set[str]:
    """The destinations after ``deltas`` in order (pure)."""
    out = set(current)
    for d in deltas:
        out = (out - d.remove) | d.add
    return out
