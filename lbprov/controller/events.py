"""Event recorders: the controller's Events posted off the worker's critical path.

An Event is a note for the user (``kubectl describe service``), not part of the reconcile's outcome,
so a worker must not wait for the API server to store one. :class:`EventRecorder` is what client-go's
``tools/record`` broadcaster and recorder do for every Kubernetes controller, upstream's service
controller among them (REFERENCE.md section 1 lists its event reasons):

* ``record()`` never blocks: it takes the event's time and a small reference to the object (not the
  object: the worker's copy may change after it returns), and appends it to a bounded queue of
  :data:`MAX_QUEUED_EVENTS` (client-go's ``maxQueuedEvents``); a full queue drops the event with a
  log line, as client-go's broadcaster (``DropIfChannelFull``) does, and counts it in
  ``lbprov_events_dropped_total{reason="queue_full"}``;
* one background thread posts the queue in order through ``KubeClient.create_event``, which keeps
  client-go's aggregation of repeats (the same event again patches ``count`` and ``lastTimestamp``
  of the one already stored). One thread and one FIFO queue keep every object's events in the
  order they were recorded;
* a token bucket per object (client-go's ``EventSourceObjectSpamFilter``: burst 25, one more every
  5 minutes, an LRU of 4,096 objects) drops an object's events past that rate
  (``reason="spam"``), so that a Service failing in a loop cannot flood the API server;
* :meth:`EventRecorder.stop` flushes what is queued within a deadline and then gives up (counted as
  ``reason="shutdown"`` and logged): a signal still stops the process promptly, even with the API
  server hanging.

* a post that fails because the API server cannot be reached (no HTTP answer) is tried again, as
  client-go's ``recordToSink`` does: up to :data:`POST_ATTEMPTS` (12) times, the first wait random
  within :data:`RETRY_SECONDS` (10 s) so that replicas do not retry in step, then 10 s apart,
  holding every later event meanwhile (the queue keeps their order; a full queue drops new ones).
  An error the server answered with is not repeated (client-go gives up on every ``StatusError``).
  The Event's name is fixed when it is recorded, so a try after an answer that was lost (a read
  timeout) finds the stored Event (``AlreadyExists``) instead of making a second one.
  An event given up on is counted as ``reason="unreachable"``; a stop ends the waiting at once.

* events about one object with the same type and reason but ten or more different messages within
  10 minutes are combined into one Event, ``"(combined from similar events): " + message``, as
  client-go's ``EventAggregator`` does (:mod:`lbprov.kube.event_aggregation`). The decision is made
  once per event, when it is recorded, so a try after a lost answer posts the same Event.

:class:`SyncRecorder` posts on the caller's thread: for one-shot uses of the reconciler (tests,
tools) that have no thread to run and want the events stored when ``sync()`` returns.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from lbprov.controller.kubeapi import EventSink
from lbprov.kube.event_aggregation import EventAggregator
from lbprov.naming import event_name

log = logging.getLogger("lbprov.controller")

Obj = dict[str, Any]

#: Events waiting to be posted before new ones are dropped (client-go's ``maxQueuedEvents``).
MAX_QUEUED_EVENTS = 1000
#: The spam filter's token bucket per object: burst, and tokens added per second (client-go's
#: ``defaultSpamBurst`` = 25 and ``defaultSpamQPS`` = 1/300, i.e. one event per 5 minutes).
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
#: Objects whose bucket is remembered (client-go's ``maxLruCacheEntries``).
SPAM_LRU_ENTRIES = 4096
#: How long :meth:`EventRecorder.stop` waits for queued events by default: the controller's stop
#: takes it after the in-flight reconciles, and the whole shutdown must stay inside a pod's grace
#: period (``lbprov run --shutdown-timeout``: the rest of the shutdown takes under 2 s).
FLUSH_SECONDS = 1.0

#: Tries per event while the API server cannot be reached, and the wait between them (client-go's
#: ``maxTriesPerEvent`` and ``sleepDuration``; its first wait is random within it).
POST_ATTEMPTS = 12
RETRY_SECONDS = 10.0

DROP_REASONS = ("queue_full", "spam", "shutdown", "unreachable")


class Recorder(Protocol):
    """What the reconciler records events through."""

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...


def timestamp_now() -> str:
    """An Event's ``firstTimestamp``/``lastTimestamp`` (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference(obj: Obj) -> Obj:
    """The part of ``obj`` an Event refers to (``involvedObject``'s fields), copied, so that the
    queue holds neither the whole object nor a dict the caller may change later."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion") or "v1",
        "kind": obj.get("kind") or "Service",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if meta.get(k) is not None
        },
    }


def correlate(
    aggregator: EventAggregator, ref: Obj, type_: str, reason: str, message: str, component: str
) -> str | None:
    """The combined Event's message if this event about ``ref`` is folded into its group's (see
    :mod:`lbprov.kube.event_aggregation`), else None."""
    meta = ref.get("metadata") or {}
    group = (
        str(meta.get("namespace") or "default"),
        str(ref.get("kind") or "Service"),
        str(meta.get("name")),
        str(meta.get("uid")),
        type_,
        reason,
        component,
    )
    return aggregator.combined(group, message)


class SyncRecorder:
    """Posts each event at once, on the caller's thread (the API call's time is the caller's)."""

    def __init__(self, sink: EventSink, component: str = "lbprov") -> None:
        self.sink = sink
        self.component = component
        self._aggregator = EventAggregator()

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        combined = correlate(self._aggregator, obj, type_, reason, message, self.component)
        self.sink.create_event(
            obj,
            type=type_,
            reason=reason,
            message=combined or message,
            component=self.component,
            combined=combined is not None,
        )
        # (not retried: the caller waits for it; the sink has logged a failure)


@dataclass(frozen=True)
class _Pending:
    ref: Obj
    type: str
    reason: str
    message: str
    timestamp: str
    #: the Event's name if it is created, fixed at record time (as client-go's recorder names it)
    #: so that a try after a lost answer finds the stored one rather than making a second
    name: str
    #: folded into its group's combined Event (``message`` is the combined one)
    combined: bool = False


class _SpamFilter:
    """A token bucket per object, the least recently used forgotten.

    Keyed by the object's UID (unique per object across kinds and namespaces; a string of its own
    per bucket, since the informer decodes a fresh copy of a Service on each read), or
    (namespace, kind, name) for an object without one:
    client-go keys by all of them, but with a UID the rest adds nothing. A plain dict, re-inserted
    on use, is the LRU (insertion order; the oldest is the first key): with 10,000 Services, its
    :data:`SPAM_LRU_ENTRIES` entries cost about half of what an ``OrderedDict`` keyed by a 4-tuple
    did (issue 14: the create-time peak at 10,000 Services)."""

    def __init__(self, burst: int, qps: float, entries: int, clock: Callable[[], float]) -> None:
        self.burst = burst
        self.qps = qps
        self.entries = entries
        self.clock = clock
        self._buckets: dict[str | tuple[str, ...], tuple[float, float]] = {}

    @staticmethod
    def key(ref: Obj) -> str | tuple[str, ...]:
        meta = ref["metadata"]
        uid = meta.get("uid")
        if uid:
            return str(uid)
        return (str(meta.get("namespace")), str(ref["kind"]), str(meta.get("name")))

    def allow(self, ref: Obj) -> bool:
        key = self.key(ref)
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.qps)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.entries:
            del self._buckets[next(iter(self._buckets))]
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class EventRecorder:
    """Records events asynchronously: a bounded queue, posted in order by one background thread.

    ``registry``: the controller's Prometheus registry (``Metrics.registry``), where
    ``lbprov_events_dropped_total{reason}`` (``queue_full``, ``spam``, ``shutdown``) and
    ``lbprov_events_queued`` are registered; without one, a private registry keeps them.
    """

    def __init__(
        self,
        sink: EventSink,
        component: str = "lbprov",
        *,
        max_queued: int = MAX_QUEUED_EVENTS,
        registry: CollectorRegistry | None = None,
        spam_burst: int = SPAM_BURST,
        spam_qps: float = SPAM_QPS,
        clock: Callable[[], float] = time.monotonic,
        post_attempts: int = POST_ATTEMPTS,
        retry_seconds: float = RETRY_SECONDS,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.sink = sink
        self.component = component
        self.max_queued = max_queued
        self.post_attempts = max(1, post_attempts)
        self.retry_seconds = retry_seconds
        self._jitter = jitter  # the first wait's fraction of retry_seconds
        self._spam = _SpamFilter(spam_burst, spam_qps, SPAM_LRU_ENTRIES, clock)
        self._aggregator = EventAggregator(clock=clock)
        self._queue: deque[_Pending] = deque()
        self._posting = 0  # events taken off the queue and not yet posted (0 or 1)
        self._queued_total = 0  # events ever queued, and ever taken off the queue and finished:
        self._finished_total = 0  # flush() waits for the second to reach what the first was
        self._cond = threading.Condition()
        self._accepting = True
        self._closed = False
        self._thread: threading.Thread | None = None
        self.registry = registry if registry is not None else CollectorRegistry()
        self._dropped = Counter(
            "lbprov_events_dropped",
            "Events not recorded: queue full, rate-limited per object (spam), or still queued at shutdown",
            ["reason"],
            registry=self.registry,
        )
        for why in DROP_REASONS:
            self._dropped.labels(why)
        queued = Gauge("lbprov_events_queued", "Events waiting to be posted", registry=self.registry)
        queued.set_function(self.queued)

    # -- the caller's side -----------------------------------------------------------------------

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Queue an event about ``obj`` and return at once (dropped, logged and counted when the
        queue is full, the object over its rate, or the recorder stopped)."""
        ref = reference(obj)
        pending = _Pending(
            ref, type_, reason, message, timestamp_now(), event_name(str(ref["metadata"].get("name")))
        )
        with self._cond:
            if not self._accepting:
                why = "shutdown"
            elif len(self._queue) >= self.max_queued:
                why = "queue_full"  # before the spam filter: a dropped event takes no token
            else:
                # client-go's correlator: aggregate first, then the spam filter
                combined = correlate(self._aggregator, ref, type_, reason, message, self.component)
                if combined is not None:
                    pending = dataclasses.replace(pending, message=combined, combined=True)
                why = "" if self._spam.allow(pending.ref) else "spam"
            if not why:
                self._queue.append(pending)
                self._queued_total += 1
                self._cond.notify_all()
                return
        self._drop(why, pending)

    def queued(self) -> int:
        """Events recorded and not yet posted (the one being posted included)."""
        with self._cond:
            return len(self._queue) + self._posting

    def dropped(self, reason: str) -> int:
        """How many events were dropped for ``reason`` (one of :data:`DROP_REASONS`)."""
        value = self.registry.get_sample_value("lbprov_events_dropped_total", {"reason": reason})
        return int(value or 0)

    def _drop(self, why: str, pending: _Pending) -> None:
        self._dropped.labels(why).inc()
        meta = pending.ref["metadata"]
        level = logging.DEBUG if why == "spam" else logging.WARNING
        log.log(
            level,
            "event %s on %s/%s dropped (%s)",
            pending.reason,
            meta.get("namespace") or "default",
            meta.get("name"),
            {
                "queue_full": f"{self.max_queued} events queued",
                "spam": "over the per-object rate",
                "unreachable": f"the API server could not be reached in {self.post_attempts} tries",
            }.get(why, "the recorder is stopped"),
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> EventRecorder:
        """Start the posting thread (once; a stopped recorder stays stopped)."""
        with self._cond:
            if self._thread is not None or self._closed:
                return self
            self._thread = threading.Thread(target=self._run, name="lbprov-events", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float) -> bool:
        """Wait until every event recorded so far is posted (events recorded meanwhile are not
        waited for, so a steady stream cannot hold it to its deadline); False if ``timeout``
        passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._queued_total
            while self._finished_total < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or self._closed:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Take no more events, post what is queued within ``timeout``, then stop the thread.
        Events still queued at the deadline are dropped (logged and counted). True if all were
        posted. A post hanging on a dead API server is left to its daemon thread."""
        with self._cond:
            self._accepting = False
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if left:
            self._dropped.labels("shutdown").inc(len(left))
            log.warning(
                "%d events not recorded: the API server did not take them within %gs of shutdown",
                len(left),
                timeout,
            )
        return flushed and not left

    # -- the posting thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                pending = self._queue.popleft()
                self._posting = 1
            try:
                self._post(pending)
            finally:
                with self._cond:
                    self._posting = 0
                    self._finished_total += 1
                    self._cond.notify_all()

    def _post(self, pending: _Pending) -> None:
        for attempt in range(1, self.post_attempts + 1):
            try:
                stored = self.sink.create_event(
                    pending.ref,
                    type=pending.type,
                    reason=pending.reason,
                    message=pending.message,
                    component=self.component,
                    timestamp=pending.timestamp,
                    name=pending.name,
                    combined=pending.combined,
                )
            except Exception:  # the sink is best effort; a bug there must not kill the thread
                log.exception("recording event %s failed", pending.reason)
                return
            if stored is not False:
                return
            if attempt == self.post_attempts:
                self._drop("unreachable", pending)
                return
            wait = self.retry_seconds * (self._jitter() if attempt == 1 else 1.0)
            with self._cond:
                stopped = self._cond.wait_for(lambda: self._closed, wait)
            if stopped:
                self._drop("shutdown", pending)
                return
