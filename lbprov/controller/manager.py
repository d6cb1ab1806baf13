"""The controller: informers + work queue + workers + node sync + resync + leader election.

:class:`Controller` wires the parts of this package together and owns their lifecycle:

* informers on Services and Nodes run on every replica (so a standby has a warm cache and
  ``/readyz`` reflects cache sync, whether or not it leads);
* only the leader runs workers: on gaining the lease it queues every Service of ours from the cache
  and starts the worker threads (``workers`` slots, :mod:`lbprov.slots`), plus the periodic resync;
  on losing it (or on shutdown) the queue stops handing out work, in-flight reconciles and a
  running node sync finish (both within ``shutdown_timeout``), and the workers are joined; their
  cloud writes are fenced from the moment another replica may take the lease
  (:attr:`LeaderElector.held_until`, :meth:`lbprov.cloudcalls.CloudCalls.fence`), so a write
  stuck past the term is refused unsent rather than made beside the next leader;
* :meth:`Controller.stop` is the graceful shutdown: stop taking work, finish what is in flight,
  release the lease (only if all of it finished: else it expires), stop the informers.

Whenever many Services are queued at once -- the initial sync after gaining leadership, those a
node change's node sync does not cover (:mod:`lbprov.controller.nodes`), the periodic resync -- the
batch runs inside the provider's read round, for providers that offer one
(:func:`lbprov.provider.read_round`; all three clouds do): a context manager under which the
provider caches its account-wide listings until the queue drains, so re-planning N Services costs
far fewer than N rounds of reads. A round that outlives :data:`MAX_ROUND_SECONDS`, or that a new
batch replaces, is handed over to its successor: the new round opens before the old one ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lbprov import heap, httpheaders
from lbprov.cloudcalls import CloudCalls
from lbprov.controller.events import EventRecorder
from lbprov.controller.kubeapi import ControllerKube, Obj
from lbprov.controller.leader import LeaderElector, LeaseAPI
from lbprov.controller.nodes import NodeSync, ProviderNodeSync
from lbprov.controller.queue import WorkQueue
from lbprov.controller.service import COMPONENT, ServiceReconciler, has_finalizer, service_key
from lbprov.intent import NodeTargetsMemo
from lbprov.model import InvalidService
from lbprov.observability import Metrics
from lbprov.provider import Provider, hands_over_rounds, read_round, waits_on_shared_writes
from lbprov.slots import Slots

log = logging.getLogger("lbprov.controller")

#: A read round (cached listings) never outlives this, even if the queue never drains: drift made
#: by hand in the cloud is seen at the latest this long after a batch started.
MAX_ROUND_SECONDS = 120.0


class Interrupted(Exception):
    """:meth:`Controller.start` was interrupted by :meth:`Controller.request_stop` (a signal)."""


class CacheSyncTimeout(TimeoutError):
    """The informer caches did not sync in time; the message says why (the informers' last error)."""


#: How long :meth:`Controller.stop` waits for the informer and lease threads: they are daemons, and
#: a thread blocked on a dead API server must not hold a shutdown past the pod's patience.
THREAD_STOP_SECONDS = 0.5


class InformerLike(Protocol):
    def start(self) -> Any: ...

    def stop(self, timeout: float = ...) -> Any: ...

    def wait_synced(self, timeout: float) -> bool: ...

    def get(self, key: str) -> Obj | None: ...

    def list(self) -> list[Obj]: ...


InformerFactory = Callable[..., InformerLike]


class KubeForController(ControllerKube, LeaseAPI, Protocol):
    pass


@dataclass
class ControllerConfig:
    """Everything ``lbprov run`` configures (defaults are the production values)."""

    cluster: str
    default_provider: str | None = None
    workers: int = 10
    #: Threads beyond ``workers`` for syncs that wait on a write another sync makes for them
    #: (:mod:`lbprov.slots`); at most ``workers`` syncs make calls at once. None: 3 x ``workers``
    #: if a configured provider waits on shared writes (``waits_on_shared_writes``; Azure at 10
    #: workers: 20 waiting threads left the batches' waits the bound, 30 did not), else 0.
    waiting_syncs: int | None = None
    resync_period: float = 600.0
    node_debounce: float = 1.0
    backoff_base: float = 5.0
    backoff_max: float = 300.0
    #: Retry delays are drawn from [(1-j)*d, d], so Services that failed together on a shared cloud
    #: resource do not retry in lockstep.
    backoff_jitter: float = 0.5
    leader_elect: bool = False
    lease_namespace: str = "kube-system"
    lease_name: str = "lbprov"
    identity: str | None = None
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    cache_sync_timeout: float = 60.0
    #: Wait this long for in-flight reconciles on shutdown: under the pod's default 30 s grace period.
    shutdown_timeout: float = 25.0


def default_identity() -> str:
    """``<hostname>_<pid>``: unique per replica (the pod name is the hostname in a Deployment)."""
    return f"{socket.gethostname()}_{os.getpid()}"


class _Workers:
    """One leadership term's queue, worker threads and resync thread."""

    def __init__(self, controller: Controller) -> None:
        self.c = controller
        cfg = controller.config
        self.queue: WorkQueue[str] = WorkQueue(
            backoff_base=cfg.backoff_base, backoff_max=cfg.backoff_max, jitter=cfg.backoff_jitter
        )
        self.slots = Slots(cfg.workers)
        self.take_lock = threading.Lock()  # a worker takes its key and lines up for a slot at once
        waiting = cfg.waiting_syncs
        if waiting is None:  # extra threads only help where a sync waits on another's write
            shared = any(waits_on_shared_writes(p) for p in controller.providers.values())
            waiting = 3 * cfg.workers if shared else 0
        self.threads = [
            threading.Thread(target=self._work, name=f"lbprov-worker-{i}", daemon=True)
            for i in range(cfg.workers + waiting)
        ]
        self.stop_event = threading.Event()
        self.resync_thread = threading.Thread(target=self._resync_loop, name="lbprov-resync", daemon=True)
        self.round: dict[str, Any] = {}  # provider -> active read-round context (resync batch)
        self.round_lock = threading.Lock()
        self.round_started = 0.0

    def start(self) -> None:
        for t in self.threads:
            t.start()
        self.resync_thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop taking work and wait for in-flight reconciles; True if all finished in time."""
        self.stop_event.set()
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._end_round()
        return not any(t.is_alive() for t in self.threads)

    def _work(self) -> None:
        c = self.c
        while True:
            with self.take_lock:  # so keys line up for slots in the queue's order
                if (key := self.queue.get()) is None:
                    break
                ticket = self.slots.line_up()
            try:
                with self.slots.held(ticket):
                    # stopped while this sync waited for a slot: it never started, so it does not
                    # run now (stop takes no new work; the next term queues every Service again)
                    if self.stop_event.is_set():
                        continue
                    self.queue.started(key)
                    c.reconciler.sync(key)
                self.queue.forget(key)
            except Exception as exc:
                delay = self.queue.add_rate_limited(key)
                if c.metrics is not None:
                    c.metrics.queue_retries.inc()
                if not isinstance(exc, InvalidService):
                    log.debug("sync of %s failed", key, exc_info=True, extra={"service": key})
                log.info("requeue in %.1fs", delay, extra={"service": key, "error": str(exc)})
            finally:
                self.queue.done(key)
                self._maybe_end_round()

    def _resync_loop(self) -> None:
        period = self.c.config.resync_period
        while not self.stop_event.wait(period):
            self.resync()

    def resync(self) -> int:
        """Queue every Service of ours as one batch (see :meth:`batch`)."""
        n = self.batch(self.c.keys_of_ours(), periodic=True)
        log.info("resync: queued %d Services", n)
        return n

    def batch(self, keys: list[str], *, periodic: bool = False) -> int:
        """Queue ``keys`` as one round: inside each provider's ``read_round()``, when it has one.

        The round stays open until the queue drains (or :data:`MAX_ROUND_SECONDS` pass), so the
        provider's cached account-wide listings serve the whole batch. Used for the resync, the
        initial sync after gaining leadership, and the node sync -- the three moments when every
        Service is re-planned at once. ``periodic`` (the resync): the round object is told so
        through its ``drift_check()``, when it has one, so that the provider can spend its drift
        check read budget there (AWS: deep checks rotated over the resyncs) and not in node syncs.
        """
        if not keys:
            return 0
        with self.round_lock:
            if self.stop_event.is_set():  # stopped: a round opened now would never be ended
                return 0
            replaced = self.round
            self.round, leftover = self._open_rounds(periodic=periodic, replacing=replaced)
            # Queued under the lock, so that no worker sees an empty queue and ends the new round
            # before its keys are in.
            for key in keys:
                self.queue.add(key)
        _exit_rounds(leftover, release=bool(replaced))
        return len(keys)

    def _open_rounds(self, *, periodic: bool, replacing: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """Each provider's new read round (entered under ``round_lock``), in place of ``replacing``;
        and the replaced rounds still to exit, once the lock is released.

        A provider that hands rounds over (:func:`lbprov.provider.hands_over_rounds`) gets its new
        round before its old one ends, so that no plan in flight finds no round between the two
        (such a plan read the whole account for itself, issue 14). Another provider's old round is
        exited here first: a round opened while one is open reuses it (no overlap either way).
        ``replacing`` is not changed, and the caller sets :attr:`round` only once it is whole: a
        worker that finds it empty, unlocked, ends nothing (:meth:`_maybe_end_round`)."""
        opened: dict[str, Any] = {}
        leftover: list[Any] = []
        for name, provider in self.c.providers.items():
            old = replacing.get(name)
            handover = old is not None and hands_over_rounds(provider)
            if old is not None and not handover:
                _exit_round(old)
            try:
                ctx = read_round(provider, fresh=handover)
                if ctx is None:
                    continue
                entered = ctx.__enter__()
                drift_check = getattr(entered, "drift_check", None)
                if periodic and callable(drift_check):
                    try:
                        drift_check()
                    except Exception:
                        _exit_round(ctx)  # entered: never left open behind a failed start
                        raise
            except Exception:
                log.warning("provider %s: read_round failed; batch without it", name, exc_info=True)
                continue
            finally:
                if handover:
                    leftover.append(old)
            opened[name] = ctx
        # (a round of a provider no longer configured: none in practice)
        leftover.extend(ctx for name, ctx in replacing.items() if name not in self.c.providers)
        self.round_started = time.monotonic()
        return opened, leftover

    def _maybe_end_round(self) -> None:
        """End the read round once the batch is done (queue drained); when it is too old and the
        batch is not done, replace it with a fresh one.

        A round older than :data:`MAX_ROUND_SECONDS` ends so that drift made by hand is seen; the
        rest of its batch gets a new round (fresh listings, once), not none: without a round every
        later plan of a long batch listed the whole account for itself, O(N) per plan, which made
        a 1,000-Service create on a slow machine O(N^2) (issue 14). The new round opens before the
        old one ends (:meth:`_open_rounds`), so that the plans in flight always find one."""
        if not self.round:
            return
        with self.round_lock:
            drained = len(self.queue) == 0 and self.queue.in_flight() == 0
            expired = time.monotonic() - self.round_started > MAX_ROUND_SECONDS
            if not self.round or not (drained or expired):
                return
            if drained:
                # Exited under the lock: a batch that starts now must find either this round
                # (and hand it over) or none, never a round that ends under it (its plans would
                # then run with no round at all: found by review).
                replaced, self.round = self.round, {}
                for ctx in replaced.values():
                    _exit_round(ctx)
                leftover: list[Any] = []
            else:
                self.round, leftover = self._open_rounds(periodic=False, replacing=self.round)
        _exit_rounds(leftover, release=True, settle=drained)

    def _end_round(self) -> None:
        with self.round_lock:  # exited under the lock, as in _maybe_end_round
            rounds, self.round = self.round, {}
            for ctx in rounds.values():
                _exit_round(ctx)
        _exit_rounds([], release=bool(rounds), settle=bool(rounds))


def _exit_round(ctx: Any) -> None:
    with contextlib.suppress(Exception):
        ctx.__exit__(None, None, None)


def _exit_rounds(ctxs: list[Any], *, release: bool, settle: bool = False) -> None:
    """Exit the read rounds taken from a batch and, when any round ended (here or, ``release``,
    before), give the freed listings' pages back to the system (:func:`lbprov.heap.release`).

    ``settle``: the batch is done (drained, or the workers stopped), so its transient objects are
    gone: :func:`lbprov.heap.settle` then leaves the long-lived rest out of later collections. Not
    when a round is replaced mid-batch: plans in flight would be frozen with it, and every thread
    would wait on the collection while they run."""
    for ctx in ctxs:
        _exit_round(ctx)
    if ctxs or release:
        if settle:
            heap.settle()
        heap.release()
    ctxs.clear()


class Controller:
    """Reconciles LoadBalancer Services through the given providers."""

    def __init__(
        self,
        kube: KubeForController,
        providers: Mapping[str, Provider],
        config: ControllerConfig,
        *,
        metrics: Metrics | None = None,
        informer_factory: InformerFactory | None = None,
    ) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        if config.workers < 1:
            raise ValueError("workers must be at least 1")
        # Every response of the process (API server, cloud SDKs) has its headers parsed without the
        # email package's MIME parser when they are plain lines: the same HTTPMessage, cheaper.
        httpheaders.install()
        self.kube = kube
        self.providers = dict(providers)
        self.config = config
        self.metrics = metrics
        if informer_factory is None:
            from lbprov.kube.informer import Informer

            informer_factory = Informer
        factory: InformerFactory = informer_factory
        self.services = factory(
            kube, "services", on_add=self._svc_add, on_update=self._svc_update, on_delete=self._svc_delete
        )
        self.node_sync = NodeSync(lambda: self.nodes_changed(), debounce=config.node_debounce)
        self.nodes = factory(
            kube,
            "nodes",
            on_add=self.node_sync.on_add,
            on_update=self.node_sync.on_update,
            on_delete=self.node_sync.on_delete,
        )
        #: Events go out from their own thread (started in :meth:`start`, flushed by :meth:`stop`).
        self.events = EventRecorder(kube, COMPONENT, registry=metrics.registry if metrics else None)
        self.reconciler = ServiceReconciler(
            kube,
            get_service=self.services.get,
            list_nodes=self.nodes.list,
            providers=self.providers,
            cluster=config.cluster,
            default_provider=config.default_provider,
            metrics=metrics,
            recorder=self.events,
            node_targets=NodeTargetsMemo(),  # the informer replaces node objects, never edits one
        )
        #: a node change: one node sync per provider, the Services it does not cover queued
        self.nodes_changed = ProviderNodeSync(
            providers=self.providers,
            reconciler=self.reconciler,
            list_services=self._each_service,
            list_nodes=self.nodes.list,
            enqueue=lambda keys: w.batch(keys) if (w := self._workers) is not None else 0,
            in_flight=lambda: w.queue.running() if (w := self._workers) is not None else [],
            leading=lambda: self._workers is not None and not self._stopped.is_set(),
            event=self.reconciler._event,
        )
        self.identity = config.identity or default_identity()
        self._workers: _Workers | None = None
        self._workers_lock = threading.Lock()
        #: set by :meth:`_stop_workers`: whether the term's reconciles and node sync all returned
        self._term_finished: bool | None = None
        self._synced = False
        self._stopped = threading.Event()
        #: Set by :meth:`request_stop` (e.g. from a signal handler): a blocked :meth:`start` returns.
        #: A plain flag, polled: a signal handler must not take a lock the main thread may hold.
        self._interrupted = False
        self.elector: LeaderElector | None = None
        if config.leader_elect:
            self.elector = LeaderElector(
                kube,
                namespace=config.lease_namespace,
                name=config.lease_name,
                identity=self.identity,
                on_started_leading=self._start_workers,
                on_stopped_leading=self._stop_workers,
                lease_duration=config.lease_duration,
                renew_deadline=config.renew_deadline,
                retry_period=config.retry_period,
            )
        if metrics is not None:
            for provider in self.providers.values():
                metrics.observe_cloud_calls(provider.calls)
            metrics.queue_depth.set_function(self.queue_depth)
            metrics.leader.set(0)
            metrics.synced.set(0)
            for name in self.providers:
                metrics.managed.labels(name).set(0)

    # -- lifecycle -------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask a running :meth:`start` to give up at once (safe to call from a signal handler)."""
        self._interrupted = True

    def start(self) -> Controller:
        """Start informers, wait for their caches, then lead (or campaign for the lease).

        Raises :class:`Interrupted` if :meth:`request_stop` is called while waiting for the caches,
        and :class:`CacheSyncTimeout` naming each informer's last error if they do not sync in
        ``cache_sync_timeout`` seconds.
        """
        heap.configure()  # large blocks by mmap for good (lbprov/heap.py), before the first list
        self.events.start()
        self.services.start()
        self.nodes.start()
        self._wait_synced(self.config.cache_sync_timeout)
        if self._interrupted:
            raise Interrupted("stop requested before the controller started")
        self._synced = True
        self.node_sync.armed = True
        if self.metrics is not None:
            self.metrics.synced.set(1)
        log.info("caches synced", extra={"identity": self.identity})
        if self.elector is not None:
            self.elector.start()
        else:
            self._start_workers()
        return self

    def _wait_synced(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        informers = {"services": self.services, "nodes": self.nodes}
        while True:
            pending = [name for name, inf in informers.items() if not inf.wait_synced(0)]
            if not pending:
                return
            if self._interrupted:
                raise Interrupted(f"stop requested while waiting for the {' and '.join(pending)} caches")
            left = deadline - time.monotonic()
            if left <= 0:
                why = "; ".join(f"{name}: {_sync_status(informers[name])}" for name in pending)
                raise CacheSyncTimeout(f"informer caches did not sync within {timeout:g}s ({why})")
            time.sleep(min(0.05, left))

    def stop(self) -> None:
        """Graceful shutdown: no new work, in-flight reconciles and node sync finish, lease released.

        Only in-flight reconciles may take long (up to ``shutdown_timeout``); the queued events get
        :data:`lbprov.controller.events.FLUSH_SECONDS`, every other step :data:`THREAD_STOP_SECONDS`,
        even with the API server unreachable.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._interrupted = True
        self.node_sync.stop()
        if self.elector is not None:
            # the lease goes to another replica only once nothing of this term can still write (the
            # reconciles and a node sync, waited for in _stop_workers): if one is still running after
            # shutdown_timeout, the lease is not released but left to expire (lease_duration)
            self._term_finished = None
            self.elector.stop(release=False, timeout=THREAD_STOP_SECONDS)
            if self._term_finished:
                releaser = threading.Thread(target=self.elector.release, name="lease-release", daemon=True)
                releaser.start()
                releaser.join(THREAD_STOP_SECONDS)
            elif self._term_finished is False:
                log.warning("lease not released (a write may still be running): it expires instead")
        else:
            self._stop_workers()
        stoppers = [
            threading.Thread(target=inf.stop, kwargs={"timeout": THREAD_STOP_SECONDS}, daemon=True)
            for inf in (self.services, self.nodes)
        ]
        for t in stoppers:
            t.start()
        self.events.stop()  # the last reconciles' events (bounded), while the informers stop
        for t in stoppers:
            t.join(THREAD_STOP_SECONDS + 0.5)
        if self.metrics is not None:
            self.metrics.detach()
        log.info("controller stopped", extra={"identity": self.identity})

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def ready(self) -> bool:
        """Caches synced (and not shut down). Leading is not required: standbys are ready too."""
        return self._synced and not self._stopped.is_set()

    @property
    def leading(self) -> bool:
        return self._workers is not None

    def _start_workers(self) -> None:
        with self._workers_lock:
            if self._workers is not None or self._stopped.is_set():
                return
            for calls in self._cloud_calls():
                calls.unfence()
            self._workers = _Workers(self)
            self._workers.start()
        if self.metrics is not None:
            self.metrics.leader.set(1)
        n = self.enqueue_all()
        log.info("workers started; queued %d Services", n, extra={"identity": self.identity})

    def _stop_workers(self) -> None:
        with self._workers_lock:
            workers, self._workers = self._workers, None
        if workers is None:
            return
        if self.metrics is not None:
            self.metrics.leader.set(0)
        if self.elector is not None:
            held_until = self.elector.held_until
            for calls in self._cloud_calls():
                calls.fence(held_until, "this replica stopped leading, and the lease may now be another's")
        deadline = time.monotonic() + self.config.shutdown_timeout
        finished = workers.stop(self.config.shutdown_timeout)
        if not finished:
            log.warning("some reconciles were still running at shutdown")
        # a node sync that began while leading may still be writing: it gets the same deadline
        # (not leading any more, a node sync that has not applied yet writes nothing)
        if not self.node_sync.wait_idle(deadline - time.monotonic()):
            finished = False
            log.warning("a node sync was still running at shutdown")
        self._term_finished = finished
        log.info("workers stopped", extra={"identity": self.identity})

    def _cloud_calls(self) -> list[CloudCalls]:
        return [c for p in self.providers.values() if isinstance(c := getattr(p, "calls", None), CloudCalls)]

    # -- queueing --------------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        workers = self._workers
        if workers is not None:
            workers.queue.add(key)

    def _each_service(self) -> Iterator[Obj]:
        """Every cached Service, decoded one at a time: the informer keeps them packed
        (lbprov/kube/informer.py), and a resync or node sync of 10,000 must not decode them all
        at once."""
        keys = getattr(self.services, "keys", None)
        if not callable(keys):
            yield from self.services.list()
            return
        for key in keys():
            svc = self.services.get(key)
            if svc is not None:
                yield svc

    def keys_of_ours(self) -> list[str]:
        """Keys of every cached Service of ours (wants an LB or needs cleanup)."""
        return sorted(service_key(s) for s in self._each_service() if self.reconciler.is_ours(s))

    def enqueue_all(self) -> int:
        """Queue every Service of ours as one batch (read round); returns how many."""
        workers = self._workers
        return workers.batch(self.keys_of_ours()) if workers is not None else 0

    def resync(self) -> int:
        """Run a resync now (what the periodic timer does)."""
        workers = self._workers
        return workers.resync() if workers is not None else 0

    def queue_depth(self) -> float:
        """Keys waiting to start: queued, or taken by a thread that waits for a slot."""
        workers = self._workers
        return float(len(workers.queue) + workers.slots.waiting()) if workers is not None else 0.0

    def idle(self) -> bool:
        """Nothing queued and nothing in flight (delayed retries aside)."""
        workers = self._workers
        return workers is None or (len(workers.queue) == 0 and workers.queue.in_flight() == 0)

    # -- Service informer handlers ---------------------------------------------------------------

    def _svc_add(self, svc: Obj) -> None:
        if self.reconciler.is_ours(svc):
            self.enqueue(service_key(svc))

    def _svc_update(self, old: Obj, new: Obj) -> None:
        if not (self.reconciler.is_ours(new) or self.reconciler.is_ours(old)):
            return
        if needs_sync(old, new):
            self.enqueue(service_key(new))

    def _svc_delete(self, svc: Obj) -> None:
        self.enqueue(service_key(svc))  # the sync sees it gone and forgets it


def _sync_status(informer: InformerLike) -> str:
    status = getattr(informer, "sync_status", None)
    return str(status()) if callable(status) else "not synced"


def needs_sync(old: Obj, new: Obj) -> bool:
    """Did anything a load balancer depends on change? (upstream ``needsUpdate``, plus finalizers).

    Status-only updates (including our own status patches) do not re-queue: the resync catches a
    status edited by hand. Losing our finalizer does, so the Service gets it back; our own adding
    of it does not (that would re-plan every new Service once more for nothing).
    """
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or om.get("annotations") != nm.get("annotations")
        or om.get("uid") != nm.get("uid")
        or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
        or (has_finalizer(old) and not has_finalizer(new))
    )


@contextlib.contextmanager
def running(controller: Controller) -> Iterator[Controller]:
    """``with running(Controller(...)) as c:`` -- start, and always stop gracefully."""
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
