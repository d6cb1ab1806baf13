"""Node sync: a change of the eligible node set, debounced, handled by one node sync per provider.

As upstream (``shouldSyncUpdatedNode``), only what changes a load balancer's targets counts: a node
added or removed, its eligibility (:func:`lbprov.intent.node_exclusion_reason`: exclude label,
``ToBeDeletedByClusterAutoscaler`` taint, deletion, no providerID) or its ``spec.providerID``.
Heartbeat-only updates (status conditions every few seconds) are ignored.

Debouncing: the first relevant change starts a timer of ``debounce`` seconds; changes inside the
window ride along; when it fires, the handler runs once (never two at a time). A node rollout of 50
nodes thus costs one node sync, not fifty.

The handler (:class:`ProviderNodeSync`) asks each provider that has one for a *node sync*
(:func:`lbprov.provider.plan_nodes`): one plan of the node-dependent changes of all its Services at
once, applied once (GCP: one write per zone group; Azure: one per load balancer), instead of
re-planning every Service, which cost each Service a plan's reads and CPU for the same few writes.
The Services it does not cover, those never applied, and every Service of a provider without a node
sync (or whose node sync failed: nothing is lost) are queued as before. As upstream's
``nodeSyncService``, each Service whose load balancer got new hosts gets the Normal event
``UpdatedLoadBalancer`` "Updated load balancer with new hosts".
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov.controller.events import reference
from lbprov.controller.kubeapi import Obj
from lbprov.controller.service import ServiceReconciler, service_key
from lbprov.intent import build_intent, node_exclusion_reason
from lbprov.model import Intent, Target
from lbprov.provider import NodeSyncPlan, Provider, apply_nodes, plan_nodes

log = logging.getLogger("lbprov.controller.nodes")

#: why a planned node sync was not applied (its Services are queued: a no-op unless leading again)
NOT_LEADING = "no longer leading (the lease was lost, or the controller is stopping): nothing applied"


def node_signature(node: Mapping[str, Any] | None) -> tuple[bool, str] | None:
    """What about a node matters to load balancers: (eligible, providerID); None if absent."""
    if node is None:
        return None
    return (node_exclusion_reason(node) is None, str((node.get("spec") or {}).get("providerID") or ""))


class NodeSync:
    """Turns node informer events into a debounced call of ``handle`` (one at a time)."""

    def __init__(self, handle: Callable[[], int], *, debounce: float = 1.0) -> None:
        self.handle = handle
        self.debounce = debounce
        self._lock = threading.Lock()
        self._running = threading.Lock()  # a change during a handler waits for it, then runs again
        self._timer: threading.Timer | None = None
        self._stopped = False
        #: Events before the node cache is synced (the informer's initial list) are ignored: the
        #: controller plans every Service once it starts anyway.
        self.armed = False
        #: node changes handled: counted when the handler has returned (its node syncs applied, the
        #: Services they do not cover queued), so that a waiter on it sees the handler's work
        self.triggers = 0
        #: (monotonic) the last handled change: its first node event, the timer firing, the
        #: handler's return -- how long the node change took, apart from the debounce (bench, logs)
        self.last_timing: tuple[float, float, float] | None = None
        self._first_event: float | None = None

    # informer handlers
    def on_add(self, node: Mapping[str, Any]) -> None:
        self._changed(None, node)

    def on_update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self._changed(old, new)

    def on_delete(self, node: Mapping[str, Any]) -> None:
        self._changed(node, None)

    def _changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if not self.armed or node_signature(old) == node_signature(new):
            return
        name = ((new or old or {}).get("metadata") or {}).get("name")
        log.debug("node set changed", extra={"reason": f"node {name}"})
        with self._lock:
            if self._stopped or self._timer is not None:
                return
            self._first_event = time.monotonic()
            self._timer = threading.Timer(self.debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._running:
            with self._lock:
                self._timer = None
                first, self._first_event = self._first_event, None
                if self._stopped:
                    return
            fired = time.monotonic()
            try:
                n = self.handle()
                log.info("node set changed: queued %d Services", n)
            except Exception:
                log.exception("node set changed: the handler failed")
            finally:
                with self._lock:
                    self.last_timing = (first or fired, fired, time.monotonic())
                    self.triggers += 1

    def stop(self) -> None:
        """No handler starts any more (a pending timer is cancelled); see :meth:`wait_idle`."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a running handler to return; True if none runs now.

        The handler writes to the cloud (the node syncs): on losing the lease and on stop, the
        controller waits here before the lease may go to another replica. Bounded, never a hang:
        a handler stuck on a cloud call is left to its (daemon) thread, and False says so.
        """
        if not self._running.acquire(timeout=max(0.0, timeout)):
            return False
        self._running.release()
        return True


@dataclass
class NodeSyncReport:
    """What one node change did, per provider (for logs and tests)."""

    #: provider -> the node sync plan it applied
    synced: dict[str, NodeSyncPlan] = field(default_factory=dict)
    #: provider -> why every one of its Services was queued instead (no node sync, or it failed)
    fell_back: dict[str, str] = field(default_factory=dict)
    #: provider -> the covered Services whose node sync writes failed (key -> why): re-planned
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the Service keys queued for a per-Service re-plan
    queued: list[str] = field(default_factory=list)
    #: provider -> seconds its node sync took (intents, plan and apply)
    seconds: dict[str, float] = field(default_factory=dict)


class ProviderNodeSync:
    """The node change handler: per provider, one node sync; the rest re-planned per Service.

    ``enqueue(keys)`` queues keys as one batch and returns how many; ``in_flight()`` lists the keys
    whose syncs are running; ``leading()`` says whether this replica leads and is not stopping (only
    the leader syncs); ``event(svc, type, reason, message)`` records an Event.

    ``leading()`` is asked again right before each provider's write (:func:`apply_nodes`), not only
    when the handler starts: planning takes a while, and a replica that lost the lease (or is
    stopping) in the meantime must write nothing from its node cache over the new leader's work.
    The new leader plans every Service when it starts, so nothing is lost. The controller waits
    for a running handler (:meth:`NodeSync.wait_idle`) before the lease may change hands, so a
    write that began while leading has returned by then.

    A sync running when the node change is handled may have built its intent with the old nodes and
    may apply after the node sync, undoing its membership change for everyone (a shared group or
    pool is written whole): those Services are queued again too (the queue runs them once more
    after the running sync), as the re-plan of every Service did.
    """

    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        reconciler: ServiceReconciler,
        list_services: Callable[[], Iterable[Obj]],
        list_nodes: Callable[[], list[Obj]],
        enqueue: Callable[[list[str]], int],
        in_flight: Callable[[], list[str]],
        leading: Callable[[], bool],
        event: Callable[[Obj, str, str, str], None],
    ) -> None:
        self.providers = providers
        self.reconciler = reconciler
        self.list_services = list_services
        self.list_nodes = list_nodes
        self.enqueue = enqueue
        self.in_flight = in_flight
        self.leading = leading
        self.event = event
        self.last: NodeSyncReport | None = None  # the last change's report (tests, debugging)

    def __call__(self) -> int:
        if not self.leading():
            return 0
        try:
            return self._handle()
        except Exception as exc:  # nothing is lost: every Service of ours is re-planned, as before
            log.warning(
                "node sync failed: every Service is re-planned", exc_info=True, extra={"error": str(exc)}
            )
            rec = self.reconciler
            return self.enqueue(sorted(service_key(s) for s in self.list_services() if rec.is_ours(s)))

    def _handle(self) -> int:
        report = NodeSyncReport()
        # before anything is read: a sync that starts later builds its intent with the new nodes
        queue: list[str] = list(self.in_flight())
        rec = self.reconciler
        managed = set(rec.managed_keys())
        nodes = self.list_nodes()
        targets = rec.node_targets(nodes)  # the same for every Service
        batches: dict[str, _Batch] = {}
        # one Service decoded at a time (the informer keeps them packed): what is kept of each is
        # its intent and the small reference its event needs, not the Service
        for svc in self.list_services():
            name = rec.provider_for(svc)
            if name is None or not rec.is_ours(svc):
                continue
            key = service_key(svc)
            if key not in managed or not rec.wants_our_load_balancer(svc, name):
                queue.append(key)  # never applied, or being cleaned up: its own sync, as before
                continue
            batch = batches.get(name)
            if batch is None:
                provider = self.providers[name]
                intent_of = None  # no node sync: every Service re-planned, no intent needed
                if getattr(provider, "plan_nodes", None) is not None:
                    intent_of = functools.partial(
                        self._intent, nodes=nodes, targets=targets, provider=provider
                    )
                batch = batches[name] = _Batch(intent_of)
            started = time.monotonic()
            batch.add(key, svc)
            batch.seconds += time.monotonic() - started
        updated: list[Obj] = []
        for name, batch in sorted(batches.items()):
            started = time.monotonic()
            left, refs = self._sync(name, batch, report)
            report.seconds[name] = round(batch.seconds + time.monotonic() - started, 4)
            queue.extend(left)
            updated.extend(refs)
        report.queued = sorted(set(queue))
        n = self.enqueue(report.queued)
        # after the queueing, so that no worker waits for them
        for ref in updated:
            self.event(ref, "Normal", "UpdatedLoadBalancer", "Updated load balancer with new hosts")
        self.last = report
        return n

    def _intent(
        self, svc: Obj, *, nodes: list[Obj], targets: tuple[Target, ...], provider: Provider
    ) -> Intent | None:
        """The Service's intent for the node sync, or None when its own sync must say why."""
        try:
            intent = build_intent(svc, nodes, self.reconciler.settings, provider, targets=targets)
        except Exception:  # InvalidService or anything else: its own sync says why, in an event
            return None
        return intent if intent.targets else None  # no target: its sync says so (UnAvailable...)

    def _sync(self, name: str, batch: _Batch, report: NodeSyncReport) -> tuple[list[str], list[Obj]]:
        """One provider's node sync: (keys to queue, references of the Services whose load
        balancer got new hosts)."""
        provider = self.providers[name]
        every = batch.keys
        if batch.intent_of is None:
            report.fell_back[name] = "the provider has no node sync"
            return every, []
        intents = batch.intents
        queue = list(batch.queue)
        extra = {"provider": name}
        try:
            plan = plan_nodes(provider, list(intents.values()))
            if plan is None:
                report.fell_back[name] = "the provider's node sync declined"
                log.info("node sync declined: every Service is re-planned", extra=extra)
                return every, []
            if not plan.empty:
                if not self.leading():  # lost the lease (or stopping) while planning: write nothing
                    report.fell_back[name] = NOT_LEADING
                    log.info(
                        "node sync not applied: %s", NOT_LEADING, extra={**extra, "plan": plan.summary()}
                    )
                    return every, []
                log.info("node sync: %s", plan.summary(), extra={**extra, "plan": plan.summary()})
            failed = apply_nodes(provider, plan)
        except Exception as exc:
            report.fell_back[name] = f"the node sync failed: {exc}"
            log.warning(
                "node sync failed: every Service is re-planned",
                exc_info=True,
                extra={**extra, "error": str(exc)},
            )
            return every, []
        report.synced[name] = plan
        if failed:
            report.failed[name] = dict(failed)
            log.warning(
                "node sync: %d Services' writes failed: they are re-planned",
                len(failed),
                extra={**extra, "services": sorted(failed)},
            )
        answered = plan.covered | set(plan.uncovered)
        queue.extend(plan.uncovered)
        queue.extend(key for key in failed if key not in plan.uncovered)
        queue.extend(key for key in intents if key not in answered)  # not answered for: re-planned
        done = plan.covered - set(failed)  # a Service whose write failed gets no "new hosts" event
        return queue, [batch.refs[key] for key in sorted(plan.updated) if key in done]


@dataclass
class _Batch:
    """One provider's Services in a node sync: their keys, intents and event references."""

    #: the Service's intent for the node sync, or None when its own sync must say why; None
    #: itself when the provider has no node sync
    intent_of: Callable[[Obj], Intent | None] | None
    keys: list[str] = field(default_factory=list)
    intents: dict[str, Intent] = field(default_factory=dict)
    refs: dict[str, Obj] = field(default_factory=dict)
    #: Services whose intent could not be built (or has no target): re-planned
    queue: list[str] = field(default_factory=list)
    seconds: float = 0.0  # building the intents

    def add(self, key: str, svc: Obj) -> None:
        self.keys.append(key)
        if self.intent_of is None:
            return
        intent = self.intent_of(svc)
        if intent is None:
            self.queue.append(key)
            return
        self.intents[key] = intent
        self.refs[key] = reference(svc)
