"""Public-IP writes off the worker slot: a bounded pool sends them while the sync lends its slot.

Why: creating a public IP is three dependent requests (the PUT, the poll of its operation, and
ARM's final GET of the resource: the 201 body carries no ``ipAddress``), three round trips during
which the Service's sync can do nothing else (its load-balancer write needs the IP to exist, its
NSG rule and its status need the address). Made inside a worker slot (:mod:`lbprov.slots`), those
round trips were most of a slot's time on the scale bench, and with ``workers`` slots the public
IPs of a batch of new Services went out ``workers`` at a time, as a convoy.

So the sync hands the write to this pool and waits for it inside :func:`lbprov.slots.released`, as
it already waits for its load balancer's and NSG rule's shared batches: the slot goes to the next
sync (which plans, adds its finalizer, or hands over its own public IP) and comes back, first in
line, when the write is done.

What stays exactly as it was: the requests (names, bodies, ``If-Match`` / ``If-None-Match``), sent
through the same client and CloudCalls (retries, counts, rate limits, the read-only guard), one
public IP at a time per Service and in the plan's order; the error of a write is raised in the sync
that asked for it. Bound: at most ``parallel`` public-IP writes at once (setting
``public_ip_writers``), on top of the calls the slots bound, as the shared writers' batch PUTs are.
Outside a slot (``lbprov plan``/``apply``, tests calling the provider) the caller simply waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from lbprov.slots import released

T = TypeVar("T")


class PublicIPWriter:
    """Runs public-IP writes on at most ``parallel`` threads of its own (see the module doc)."""

    def __init__(self, parallel: int) -> None:
        if parallel < 1:
            raise ValueError("public_ip_writers: need at least 1")
        self.parallel = parallel
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # started on the first write

    def run(self, on_start: Callable[[], None], write: Callable[[], T]) -> T:
        """``on_start()`` then ``write()`` on the pool, once a thread of it is free (a write may
        queue); the calling sync's slot is lent out until the write returns or raises."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="azure-public-ip")
            pool = self._pool

        def started() -> T:
            on_start()
            return write()

        future = pool.submit(started)
        with released():
            return future.result()
