"""The last listing of the resource group's load balancers, kept current with this process's writes.

Why: a node change re-plans the backend pools of every load balancer of the cluster at once
(:mod:`lbprov_azure.node_sync`), and the listing it planned from was most of its time at scale. At
1,000 Services x 2 ports the listing of 7 load balancers (with ARM's back references: each rule
is named by its frontend, probe and pool again) is megabytes of JSON, and decoding it took longer
than the whole node sync may (issue 14). The node sync only needs each load balancer's pools, tags
and provisioning state, and the other load balancers' pools, all of which this process either
wrote itself or read in its last listing.

So, as upstream's LB cache (cloud-provider-azure keeps load balancers 120 s, dropping an entry on
412, after a successful PUT, or on "canceled and superseded"), the observer keeps its last listing:

* replaced by every listing, except for a load balancer that this process wrote while the
  listing was on the wire (the listing may predate that write): that one as the write left it;
* patched with every body this process writes or re-reads (the LB writers report each one, in
  write order: :meth:`record`);
* forgotten when a write fails (the load balancer is then as nobody in this process knows);
* used by the node sync only while younger than the setting ``node_sync_listing_max_age_seconds``
  (0: never, and nothing is held), counted from when the listing was sent; an older one is let go
  when next asked for, so that its megabytes are not held for the life of the process.

What another writer changed since is caught where it matters: the node sync's pool writes carry
what they were planned from (:class:`~lbprov_azure.lbwriter.Seen`) and the PUT carries If-Match,
so a load balancer changed behind this process's back is re-read (412) and the write refused
(StalePlan): the node sync fails, and every Service is planned again from a fresh listing. ARM's
own rules refuse a node in two load balancers' pools of one kind, or in too many rules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]


class KeptListing:
    """The kept listing (see the module doc): lower-case name -> body, with when it was listed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_age: float | None = None) -> None:
        self._clock = clock
        #: the setting (``node_sync_listing_max_age_seconds``) when known: 0 keeps nothing at all,
        #: and a listing past it is dropped when next asked for, not held for the process's life
        self._max_age = max_age
        self._lock = threading.Lock()
        self._lbs: dict[str, JSON] | None = None
        self._taken = 0.0
        #: per load balancer: how many of our writes were sent or answered (a listing on the wire
        #: meanwhile may hold its body from before the write) ...
        self._writes: dict[str, int] = {}
        #: ... and its body as our last write or re-read left it (None: deleted), kept only while a
        #: listing is on the wire (:attr:`_inflight`), which is all it is for
        self._recent: dict[str, JSON | None] = {}
        self._inflight = 0
        #: failed writes so far: a listing on the wire during one is not kept at all
        self._failures = 0

    def sending(self) -> tuple[dict[str, int], int, float]:
        """Call right before a listing is sent; pass the answer to :meth:`listed`, or call
        :meth:`abandoned` if the listing failed."""
        with self._lock:
            self._inflight += 1
            return dict(self._writes), self._failures, self._clock()

    def abandoned(self) -> None:
        """The listing announced by :meth:`sending` failed: nothing to keep."""
        with self._lock:
            self._landed()

    def _landed(self) -> None:
        self._inflight -= 1
        if self._inflight <= 0:
            self._inflight = 0
            self._recent.clear()  # no listing left that a write could have overtaken

    def listed(self, mark: tuple[dict[str, int], int, float], lbs: dict[str, JSON]) -> None:
        """Keep the listing ``lbs`` sent at ``mark``. A load balancer that we wrote while it was on
        the wire is taken as our write left it instead (the listing may predate the write); a
        listing during which a write failed is not kept."""
        before, failures, sent = mark
        with self._lock:
            try:
                if failures != self._failures or (self._max_age is not None and self._max_age <= 0):
                    return  # a write failed meanwhile; or never used, so not held either
                kept = dict(lbs)
                for name, n in self._writes.items():
                    if before.get(name, 0) != n and name in self._recent:
                        body = self._recent[name]
                        if body is None:
                            kept.pop(name, None)
                        else:
                            kept[name] = body
                self._lbs, self._taken = kept, sent
            finally:
                self._landed()

    def writing(self, name: str) -> None:
        """A write of the load balancer ``name`` is about to be sent."""
        with self._lock:
            self._bump(name.lower())

    def record(self, name: str, body: JSON | None) -> None:
        """The load balancer ``name`` as this process wrote or re-read it (None: deleted)."""
        key = name.lower()
        with self._lock:
            self._bump(key)
            if self._inflight:
                self._recent[key] = body
            if self._lbs is not None:
                lbs = dict(self._lbs)  # a new dict: a plan may hold the previous one
                if body is None:
                    lbs.pop(key, None)
                else:
                    lbs[key] = body
                self._lbs = lbs

    def forget(self, name: str) -> None:
        """A write of ``name`` failed: it is as nobody here knows, so the listing goes."""
        key = name.lower()
        with self._lock:
            self._bump(key)
            self._recent.pop(key, None)
            self._failures += 1
            self._lbs = None

    def get(self, max_age: float) -> dict[str, JSON] | None:
        """The kept listing if it was sent at most ``max_age`` seconds ago, else None (read-only)."""
        with self._lock:
            age = self._clock() - self._taken
            limit = self._max_age if self._max_age is not None else max_age
            if self._lbs is not None and limit > 0 and age > limit:
                self._lbs = None  # too old for any use: its memory goes (the next listing keeps anew)
            if self._lbs is None or max_age <= 0 or age > max_age:
                return None
            return self._lbs

    def _bump(self, key: str) -> None:
        self._writes[key] = self._writes.get(key, 0) + 1
