"""Leader election on a ``coordination.k8s.io/v1`` Lease, after client-go's ``leaderelection``.

Why hand-written rather than ``kubernetes.leaderelection``: that module builds its own API client
from the global default configuration, blocks its caller in ``run()``, and cannot release the lease
on shutdown; the algorithm itself is small. It follows client-go:

* every ``retry_period`` (2 s) a candidate reads the Lease; it takes it if nobody holds it, if it
  already holds it (renewal), or if the holder's record has not changed for ``lease_duration``
  (15 s) *as observed by this replica's own clock* (so clock skew between nodes does not matter);
* every write is an update carrying the read ``resourceVersion``: of two candidates racing, the
  API server lets exactly one win (the other gets 409 and stays a follower);
* a leader that cannot renew within ``renew_deadline`` (10 s) stops leading (``on_stopped_leading``)
  and becomes a candidate again -- before anyone else may take over, since 10 s < 15 s;
* on shutdown a leader releases the lease (holder cleared, duration 1 s), so a standby replica takes
  over at its next retry instead of waiting out the lease;
* :attr:`LeaderElector.held_until` is the earliest moment another replica may take the lease: the
  last successful renewal's *send* time + ``lease_duration`` (another candidate saw that renewal
  no earlier than it was sent, and waits ``lease_duration`` from then by its own clock). The
  controller fences cloud writes there (:meth:`lbprov.cloudcalls.CloudCalls.fence`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from lbprov.controller.kubeapi import Obj, is_conflict

log = logging.getLogger("lbprov.controller.leader")


class LeaseAPI(Protocol):
    def get_lease(self, namespace: str, name: str) -> Obj | None:
        """The Lease, or ``None`` if it does not exist."""
        ...

    def create_lease(self, namespace: str, body: Obj) -> Obj: ...

    def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj: ...


def _microtime() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for a Lease in a background thread and calls back on gaining/losing it."""

    def __init__(
        self,
        api: LeaseAPI,
        *,
        namespace: str,
        name: str,
        identity: str,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("leader election: need lease_duration > renew_deadline > retry_period > 0")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.lease_duration = lease_duration
        #: the duration written on the Lease (whole seconds), which other candidates wait
        self.lease_seconds = max(1, round(lease_duration))
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._leading = False
        self._last_renew = 0.0
        self._renew_sent: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def held_until(self) -> float:
        """The clock's time until which no other replica can hold the lease (see the module doc).

        The current time if this replica never renewed it (or released it).
        """
        sent = self._renew_sent
        # candidates wait the record's leaseDurationSeconds, rounded to whole seconds when written
        return self._clock() if sent is None else sent + min(self.lease_duration, self.lease_seconds)

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.identity}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, release: bool = True, timeout: float | None = 30.0) -> None:
        """Stop campaigning; a leader stops leading (callback first), then releases the lease.

        ``timeout`` bounds the wait for the campaign thread and for the release (each): with the
        API server unreachable a request can block for its read timeout, and a shutdown must not.
        The release is best effort (a lease not released expires after ``lease_duration``).
        """
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            was_leading, self._leading = self._leading, False
        if was_leading:
            self.on_stopped_leading()
            if release:
                releaser = threading.Thread(target=self.release, name="lease-release", daemon=True)
                releaser.start()
                releaser.join(timeout)

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = self._clock()
            try:
                acquired = self.try_acquire_or_renew()
            except Exception as exc:  # the API being unreachable is not fatal: retry
                log.warning(
                    "lease %s/%s: %s", self.namespace, self.name, exc, extra={"identity": self.identity}
                )
                acquired = False
            now = self._clock()
            if acquired:
                self._last_renew = now
                self._renew_sent = sent
                became = False
                with self._lock:
                    if not self._leading and not self._stop.is_set():
                        self._leading = became = True
                if became:
                    log.info("became leader", extra={"identity": self.identity})
                    self.on_started_leading()
            elif self._leading and now - self._last_renew > self.renew_deadline:
                with self._lock:
                    lost, self._leading = self._leading, False
                if lost:
                    log.warning("lost leadership (could not renew)", extra={"identity": self.identity})
                    self.on_stopped_leading()
            self._stop.wait(self.retry_period * (1 + (0 if self._leading else random.uniform(0, 0.2))))

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if this replica holds the lease afterwards."""
        lease = self.api.get_lease(self.namespace, self.name)
        # observed when the answer came, as client-go: a record is never taken to be older than it
        # is (taken before the read, a renewal written during it would count from before it was sent)
        now = self._clock()
        if lease is None:
            body: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(None, now_str := _microtime(), now_str),
            }
            try:
                self.api.create_lease(self.namespace, body)
            except Exception as exc:
                if is_conflict(exc):  # AlreadyExists: another replica created it first
                    return False
                raise
            self._observe((self.identity, now_str, 0), now)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions") or 0)
        if record != self._observed:
            self._observe(record, now)
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._observed_at + duration > now:
            return False  # somebody else holds a live lease
        renew = _microtime()
        new_spec = self._spec(spec, renew, spec.get("acquireTime") if holder == self.identity else renew)
        if holder != self.identity:
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease = dict(lease)
        lease["spec"] = new_spec
        try:
            self.api.replace_lease(self.namespace, self.name, lease)
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        self._observe((self.identity, renew, new_spec.get("leaseTransitions") or 0), now)
        return True

    def _spec(self, old: Obj | None, renew: str, acquire: str | None) -> Obj:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": acquire or renew,
            "renewTime": renew,
            "leaseTransitions": int((old or {}).get("leaseTransitions") or 0),
        }

    def _observe(self, record: tuple[Any, ...], now: float) -> None:
        self._observed = record
        self._observed_at = now

    def release(self) -> bool:
        """Clear the holder if it is still us, so that a standby takes over at once."""
        try:
            lease = self.api.get_lease(self.namespace, self.name)
            spec = dict((lease or {}).get("spec") or {})
            if lease is None or spec.get("holderIdentity") != self.identity:
                return False
            spec.pop("holderIdentity", None)
            spec["leaseDurationSeconds"] = 1
            spec["renewTime"] = _microtime()
            lease = dict(lease)
            lease["spec"] = spec
            self.api.replace_lease(self.namespace, self.name, lease)
            self._renew_sent = None  # another replica may take it at once
            log.info("released the lease", extra={"identity": self.identity})
            return True
        except Exception as exc:
            log.warning("could not release the lease: %s", exc, extra={"identity": self.identity})
            return False
