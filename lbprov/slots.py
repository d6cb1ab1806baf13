"""Worker slots: ``--workers`` bounds the syncs that make calls at once, not the syncs in flight.

Why: a provider that coalesces the writes of many Services into one (Azure's shared load balancer
and NSG rules: one PUT for every Service pending on it) makes each sync *wait* on a write that
another thread sends for it. Holding a worker while waiting there puts the workers in lock step (all
create their public IPs, all wait for one LB batch, all wait for one NSG batch), and the convoy, not
the calls, bounds the time. So the controller runs more threads than ``workers``, and a sync needs
one of ``workers`` *slots* to run; a provider wraps its wait on a shared writer in :func:`released`,
which hands the slot to the next sync while it waits and takes one again before going on. At most
``workers`` syncs make calls of their own at once, as before; the writes a shared writer sends on
behalf of its waiting syncs come on top (one per shared writer at a time).

A sync that comes back from a wait gets the next free slot before a sync that has not started yet,
so Services already half-way finish first. Outside a slot (a CLI plan, a test calling a provider
directly) :func:`released` does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


class Slots:
    """``n`` slots shared by a controller's worker threads (see the module doc). Thread-safe."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("slots: need at least 1")
        self.size = n
        self._free = n
        self._resuming = 0  # threads waiting to take a slot back after a wait: served first
        # Two conditions on one lock, so a freed slot wakes ONE thread of the right kind (a
        # notify_all woke every waiting thread per release: ~30 at 10 workers, for one slot).
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._back = threading.Condition(self._lock)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Run the block in a slot of the calling thread (waits for a free one)."""
        self._take(resuming=False)
        _local.slots = self
        try:
            yield
        finally:
            _local.slots = None
            self._give()

    def free(self) -> int:
        with self._lock:
            return self._free

    def _take(self, *, resuming: bool) -> None:
        with self._lock:
            if resuming:
                self._resuming += 1
                try:
                    while self._free == 0:
                        self._back.wait()
                finally:
                    self._resuming -= 1
            else:
                while self._free == 0 or self._resuming:
                    self._new.wait()
            self._free -= 1
            if self._free and not self._resuming:
                self._new.notify(self._free)  # slots left that no resuming thread waits for

    def _give(self) -> None:
        with self._lock:
            self._free += 1
            (self._back if self._resuming else self._new).notify()


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
        slots._take(resuming=True)
        _local.slots = slots
