"""Public-IP writes off the worker slot: a sync lends its slot while it creates its public IP.

Why: creating a public IP is three dependent requests (the PUT, the poll of its operation, and
ARM's final GET of the resource: the 201 body carries no ``ipAddress``), three round trips during
which the Service's sync can do nothing else (its load-balancer write needs the IP to exist, its
NSG rule and its status need the address). Made inside a worker slot (:mod:`lbprov.slots`), those
round trips were most of a slot's time on the scale bench, and with ``workers`` slots the public
IPs of a batch of new Services went out ``workers`` at a time, as a convoy.

So the sync makes the write inside :func:`lbprov.slots.released`, as it already waits for its load
balancer's and NSG rule's shared batches: the slot goes to the next sync (which plans, adds its
finalizer, or starts its own public IP) and comes back, first in line, when the write is done. The
write stays in the sync's own thread (no hand-off to another thread and back: under CPU contention
each hand-off waits for the scheduler).

What stays exactly as it was: the requests (names, bodies, ``If-Match`` / ``If-None-Match``), sent
through the same client and CloudCalls (retries, counts, rate limits, the read-only guard), one
public IP at a time per Service and in the plan's order; the error of a write is raised in the sync
that made it. Bound: at most ``parallel`` public-IP writes at once (setting ``public_ip_writers``),
on top of the calls the slots bound, as the shared writers' batch PUTs are; a write beyond it waits
(without a slot) for one to end. Outside a slot (``lbprov plan``/``apply``, tests calling the
provider) only the bound applies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from lbprov.slots import released

T = TypeVar("T")


class PublicIPWriter:
    """Bounds the public-IP writes made at once and lends the caller's slot meanwhile (module doc)."""

    def __init__(self, parallel: int) -> None:
        if parallel < 1:
            raise ValueError("public_ip_writers: need at least 1")
        self.parallel = parallel
        self._bound = threading.Semaphore(parallel)

    def run(self, on_start: Callable[[], None], write: Callable[[], T]) -> T:
        """``on_start()`` then ``write()`` once fewer than ``parallel`` writes are under way (a write
        may wait for one to end); the calling sync's slot is lent out from the start of the wait
        until the write returns or raises."""
        with released(), self._bound:
            on_start()
            return write()
