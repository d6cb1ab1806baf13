"""ServiceReconciler: converge one Service's cloud load balancer (DESIGN.md "The flow of one reconcile").

``sync(key)`` reads the Service and the nodes from the informer caches and then either

* **ensures** -- the Service wants a load balancer (type LoadBalancer, a class of ours or no class
  with a default provider, not being deleted): ``build_intent`` (pure; an ``InvalidService`` becomes a
  Warning event and no cloud call), the finalizer ``service.kubernetes.io/load-balancer-cleanup``
  (added before the first cloud write), ``provider.plan`` (reads), ``provider.apply`` (only when the
  plan has changes: an unchanged Service costs reads and no write), and the status patch of
  ``status.loadBalancer.ingress`` on the ``status`` subresource only when it differs; or
* **cleans up** -- it does not want one but carries our finalizer: ``provider.plan_delete`` (found by
  the Service UID's ownership tags, never by today's annotations), ``apply``, a check that nothing
  owned is left, the status cleared, and only then the finalizer removed.

Events (upstream reasons): ``EnsuringLoadBalancer`` then ``EnsuredLoadBalancer`` when a plan with
changes creates a Service's load balancer (the Service had no ingress yet), ``EnsuringLoadBalancer``
then ``UpdatedLoadBalancer`` when it changes an existing one (ports, nodes, options), nothing for an
empty plan (a resync or node sync that finds nothing to do must not spam events),
``SyncLoadBalancerFailed`` (Warning) on any ensure error, ``UnAvailableLoadBalancer`` (Warning) when
no node is eligible (the load balancer is kept with no backends, as upstream), ``DeletingLoadBalancer`` /
``DeletedLoadBalancer`` around a cleanup and ``DeleteLoadBalancerFailed`` (Warning) when it fails.
They go through ``recorder``: in the controller an :class:`~lbprov.controller.events.EventRecorder`,
which queues them and posts them from its own thread, so that a worker's Kubernetes writes on the
path of a Service are only the finalizer patch (before any cloud write) and the status patch (after
the apply), as upstream.

Errors propagate to the worker, which requeues the key with backoff: one Service's failure never
touches another's. Writes to the API that lose a race (409) are retried on a fresh read; likewise a
provider's "plan went stale" (:func:`is_stale_plan`: a shared cloud resource changed between plan
and apply, nothing written) is re-planned at once, up to :data:`STALE_PLAN_RETRIES` times.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov.cloudcalls import is_fenced
from lbprov.controller.events import Recorder, SyncRecorder
from lbprov.controller.kubeapi import ControllerKube, Obj, ServiceGone, is_conflict, is_not_found
from lbprov.intent import IntentSettings, build_intent, no_nodes_reason, node_targets, service_ref
from lbprov.model import Action, Ingress, InvalidService, Plan, Target
from lbprov.observability import Metrics
from lbprov.provider import Provider, implemented_elsewhere

log = logging.getLogger("lbprov.controller")

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
CLASS_PREFIX = "lbprov.io/"
COMPONENT = "lbprov"
#: Attempts of a metadata write that keeps losing races (409) before giving up to the backoff.
CONFLICT_RETRIES = 5
#: Immediate re-plans after a provider reports that its plan went stale (a concurrent apply changed
#: a shared resource between plan and apply, and nothing was written) before the normal backoff.
STALE_PLAN_RETRIES = 3
#: How long applies with changes stay serialised after the last stale plan.
STALE_COOLDOWN_SECONDS = 10.0


def is_stale_plan(exc: BaseException) -> bool:
    """Did the provider refuse to apply because the cloud changed since the plan (nothing written)?

    The cloud-side analogue of a 409: re-plan on fresh data at once instead of backing off. The core
    imports no provider, so it is recognised by duck typing: an exception class named ``StalePlan``
    anywhere in the MRO (as ``lbprov_aws.executor.StalePlan``), or a true ``stale_plan`` attribute.
    """
    if getattr(exc, "stale_plan", False) is True:
        return True
    return any(cls.__name__ == "StalePlan" for cls in type(exc).__mro__)


def class_for(provider: str) -> str:
    """The ``spec.loadBalancerClass`` that selects ``provider`` (``lbprov.io/aws``)."""
    return CLASS_PREFIX + provider


def has_finalizer(svc: Mapping[str, Any]) -> bool:
    return FINALIZER in ((svc.get("metadata") or {}).get("finalizers") or [])


def service_key(svc: Mapping[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def ingress_of(svc: Mapping[str, Any]) -> list[dict[str, str]]:
    """``status.loadBalancer.ingress`` reduced to ip/hostname, in status order.

    Order is meaning: a dual-stack Service lists its primary family's address first, and upstream's
    ``LoadBalancerStatusEqual`` compares the ingress lists element by element.
    """
    raw = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [{k: str(v) for k, v in item.items() if k in ("ip", "hostname") and v} for item in raw]


def ingress_dicts(ingress: tuple[Ingress, ...]) -> list[dict[str, str]]:
    """The provider's ingress as status entries, in the provider's order (primary family first)."""
    return [i.to_k8s() for i in ingress]


_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.ADOPT: "adopted",
}


def what_changed(plan: Plan) -> str:
    """An applied plan as what happened (``created 2 listeners, updated 1 target-group``), for the
    event a user reads after the fact; ``Plan.summary`` says what *would* happen."""
    counts: dict[tuple[Action, str], int] = {}
    for change in plan.changes:
        if change.action in _PAST:
            counts[(change.action, change.kind)] = counts.get((change.action, change.kind), 0) + 1
    parts = [f"{_PAST[action]} {n} {_plural(kind, n)}" for (action, kind), n in counts.items()]
    return ", ".join(parts) or "no changes"


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return kind + ("es" if kind.endswith(("s", "sh", "ch", "x")) else "s")


class ApplyGate:
    """Per provider: serialises plan+apply for a while after a plan went stale (contention)."""

    def __init__(
        self, cooldown: float = STALE_COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lock = threading.Lock()
        self.cooldown = cooldown
        self._clock = clock
        self._until = 0.0

    def contended(self) -> bool:
        return self._clock() < self._until

    def stale(self) -> None:
        self._until = self._clock() + self.cooldown


@dataclass
class SyncResult:
    """What one sync did, for logs, metrics and tests."""

    key: str
    action: str  # "ensured" | "unchanged" | "deleted" | "ignored" | "gone"
    provider: str | None = None
    plan: Plan | None = None
    ingress: list[dict[str, str]] = field(default_factory=list)


class ServiceReconciler:
    """Converges Services to cloud load balancers through one or more providers.

    ``get_service(key)`` and ``list_nodes()`` read the informer caches. ``providers`` maps names
    (``aws``) to provider instances; ``default_provider`` serves Services without a class.
    ``recorder`` records the events: the controller's is asynchronous
    (:class:`lbprov.controller.events.EventRecorder`, off the worker's path); the default posts each
    event through ``kube`` before ``sync()`` goes on (:class:`~lbprov.controller.events.SyncRecorder`).
    """

    def __init__(
        self,
        kube: ControllerKube,
        *,
        get_service: Callable[[str], Obj | None],
        list_nodes: Callable[[], list[Obj]],
        providers: Mapping[str, Provider],
        cluster: str,
        default_provider: str | None = None,
        metrics: Metrics | None = None,
        recorder: Recorder | None = None,
        node_targets: Callable[[list[Obj]], tuple[Target, ...]] = node_targets,
    ) -> None:
        if default_provider is not None and default_provider not in providers:
            raise ValueError(f"default provider {default_provider!r} is not among {sorted(providers)}")
        self.kube = kube
        self.get_service = get_service
        self.list_nodes = list_nodes
        #: every intent's targets from ``list_nodes()`` (the controller's memo computes them once
        #: per set of node objects: they are the same for every Service)
        self.node_targets = node_targets
        self.providers = dict(providers)
        self.cluster = cluster
        self.default_provider = default_provider
        self.metrics = metrics
        self.recorder: Recorder = recorder if recorder is not None else SyncRecorder(kube, COMPONENT)
        self.settings = IntentSettings(cluster=cluster)
        self._managed: dict[str, str] = {}  # service key -> provider, for the managed-LB gauge
        self._managed_count: dict[str, int] = dict.fromkeys(self.providers, 0)  # provider -> its keys
        if metrics is not None:
            for name in self.providers:
                metrics.managed.labels(name).set(0)
        self._gates = {name: ApplyGate() for name in self.providers}
        #: Called with (service key, plan) after a plan with changes was applied (demo, tests).
        self.applied_listeners: list[Callable[[str, Plan], None]] = []
        self._lock = threading.Lock()

    # -- which Services are ours -----------------------------------------------------------------

    def provider_for(self, svc: Mapping[str, Any]) -> str | None:
        """The provider that handles ``svc``: its class if one of ours, else the default (if any).

        A Service whose class belongs to someone else is never touched, not even for cleanup.
        """
        cls = (svc.get("spec") or {}).get("loadBalancerClass")
        if cls:
            if (
                isinstance(cls, str)
                and cls.startswith(CLASS_PREFIX)
                and cls[len(CLASS_PREFIX) :] in self.providers
            ):
                return cls[len(CLASS_PREFIX) :]
            return None
        return self.default_provider

    @staticmethod
    def wants_load_balancer(svc: Mapping[str, Any]) -> bool:
        meta = svc.get("metadata") or {}
        return (svc.get("spec") or {}).get("type") == "LoadBalancer" and not meta.get("deletionTimestamp")

    def wants_our_load_balancer(self, svc: Mapping[str, Any], provider_name: str) -> bool:
        """Wants a load balancer, and not one that another controller of the cloud implements
        (upstream's ImplementedElsewhere: skipped without events; our own finalizer, if a
        Service moves over, still gets our load balancer cleaned up)."""
        if not self.wants_load_balancer(svc):
            return False
        elsewhere = implemented_elsewhere(self.providers[provider_name], svc)
        if elsewhere:
            log.debug("%s: implemented elsewhere (%s): skipped", service_key(svc), elsewhere)
            return False
        return True

    def is_ours(self, svc: Mapping[str, Any]) -> bool:
        """Should a change of ``svc`` be queued: handled by us, and wants an LB or needs cleanup."""
        name = self.provider_for(svc)
        return name is not None and (self.wants_our_load_balancer(svc, name) or has_finalizer(svc))

    def managed_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._managed)

    # -- the sync --------------------------------------------------------------------------------

    def sync(self, key: str) -> SyncResult:
        """Reconcile the Service ``key`` (``namespace/name``). Raises on failure (the caller backs off)."""
        svc = self.get_service(key)
        if svc is None:
            # Deleted: with our finalizer it was cleaned up before the object could go.
            self._set_managed(key, None)
            return SyncResult(key, "gone")
        provider_name = self.provider_for(svc)
        if provider_name is None or not self.is_ours(svc):
            self._set_managed(key, None)
            return SyncResult(key, "ignored", provider_name)
        provider = self.providers[provider_name]
        start = time.monotonic()
        result = "error"
        try:
            if self.wants_our_load_balancer(svc, provider_name):
                out = self._ensure(key, svc, provider_name, provider)
            else:
                out = self._cleanup(key, svc, provider_name, provider)
            result = "success"
            return out
        except InvalidService:
            result = "invalid"
            raise
        finally:
            if self.metrics is not None:
                self.metrics.reconciles.labels(provider_name, result).inc()
                self.metrics.reconcile_latency.labels(provider_name).observe(time.monotonic() - start)

    def _ensure(self, key: str, svc: Obj, provider_name: str, provider: Provider) -> SyncResult:
        extra = {"service": key, "provider": provider_name}
        nodes = self.list_nodes()
        try:
            intent = build_intent(svc, nodes, self.settings, provider, targets=self.node_targets(nodes))
        except InvalidService as exc:
            log.warning("invalid Service: %s", exc, extra={**extra, "error": str(exc)})
            self._event(svc, "Warning", "SyncLoadBalancerFailed", f"Error syncing load balancer: {exc}")
            raise
        if not intent.targets:
            # As upstream: keep the load balancer with an empty backend set (a node-pool rotation
            # must not take every Service down), say so, and fill it when nodes come back.
            why = no_nodes_reason(nodes) or "no eligible node"
            log.warning("no available nodes: %s", why, extra=extra)
            self._event(
                svc,
                "Warning",
                "UnAvailableLoadBalancer",
                f"There are no available nodes for LoadBalancer: {why}",
            )
        try:
            svc = self._ensure_finalizer(svc)
            had_ingress = bool(ingress_of(svc))
            announced: list[bool] = []

            def before_apply(plan: Plan) -> None:
                if plan.empty:
                    return
                log.info(
                    "applying plan: %s",
                    plan.summary(),
                    extra={**extra, "plan": plan.summary(), "changes": _change_list(plan)},
                )
                if not announced:
                    self._event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
                    announced.append(True)

            plan, applied = self._plan_and_apply(
                provider_name,
                provider,
                lambda: provider.plan(intent),
                # An empty plan that knows the ingress needs no apply: no write, no event.
                lambda p: not (p.empty and p.ingress),
                before_apply,
            )
            ingress = plan.ingress if applied is None else applied
            if not plan.empty:
                self._notify_applied(key, plan)
                if had_ingress:
                    self._event(
                        svc, "Normal", "UpdatedLoadBalancer", f"Updated load balancer: {what_changed(plan)}"
                    )
                else:
                    self._event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
            wanted = ingress_dicts(ingress)
            if not ingress:
                raise RuntimeError(f"{provider_name}: apply returned no ingress for {key}")
            if wanted != ingress_of(svc):
                self._patch_status(svc, wanted)
                log.info("status updated", extra={**extra, "ingress": wanted})
        except Exception as exc:
            log.warning("sync failed: %s", exc, extra={**extra, "error": str(exc)})
            if not is_not_found(exc) and not is_fenced(exc):  # fenced: the next leader syncs it
                self._event(svc, "Warning", "SyncLoadBalancerFailed", f"Error syncing load balancer: {exc}")
            raise
        self._set_managed(key, provider_name)
        if plan.empty:
            log.debug("no changes", extra={**extra, "plan": plan.summary()})
        return SyncResult(key, "ensured" if not plan.empty else "unchanged", provider_name, plan, wanted)

    def _cleanup(self, key: str, svc: Obj, provider_name: str, provider: Provider) -> SyncResult:
        extra = {"service": key, "provider": provider_name}
        ref = service_ref(svc)
        self._event(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")

        def before_delete(plan: Plan) -> None:
            log.info("deleting: %s", plan.summary(), extra={**extra, "plan": plan.summary()})

        try:
            plan, _ = self._plan_and_apply(
                provider_name,
                provider,
                lambda: provider.plan_delete(ref),
                lambda p: not p.empty,
                before_delete,
            )
            if not plan.empty:
                self._notify_applied(key, plan)
                left = provider.plan_delete(ref)
                if not left.empty:
                    raise RuntimeError(f"resources still owned after delete: {_change_list(left)}")
            if ingress_of(svc):
                self._patch_status(svc, None)
            self._remove_finalizer(svc)
        except Exception as exc:
            log.warning("cleanup failed: %s", exc, extra={**extra, "error": str(exc)})
            if not is_not_found(exc) and not is_fenced(exc):
                self._event(
                    svc, "Warning", "DeleteLoadBalancerFailed", f"Error deleting load balancer: {exc}"
                )
            raise
        self._event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
        self._set_managed(key, None)
        return SyncResult(key, "deleted", provider_name, plan)

    def _plan_and_apply(
        self,
        provider_name: str,
        provider: Provider,
        make_plan: Callable[[], Plan],
        needs_apply: Callable[[Plan], bool],
        before_apply: Callable[[Plan], None],
    ) -> tuple[Plan, tuple[Ingress, ...] | None]:
        """Plan, and apply when ``needs_apply``; returns the plan and apply's ingress (None: no apply).

        A stale plan (:func:`is_stale_plan`) is re-planned at once, and puts the provider's
        :class:`ApplyGate` in contended mode: while it lasts, plans with changes are re-made and
        applied one at a time under the gate's lock (plans without changes stay parallel), so that
        workers racing on a shared cloud resource stop invalidating each other's plans.
        """
        gate = self._gates[provider_name]
        for attempt in range(STALE_PLAN_RETRIES + 1):
            serial = attempt > 0 or gate.contended()
            if attempt == 0:
                plan = make_plan()
                if not needs_apply(plan):
                    return plan, None
            with gate.lock if serial else contextlib.nullcontext():
                if serial:
                    plan = make_plan()  # fresh, and nobody else applies meanwhile
                    if not needs_apply(plan):
                        return plan, None
                before_apply(plan)
                try:
                    return plan, provider.apply(plan)
                except Exception as exc:
                    if not is_stale_plan(exc) or attempt == STALE_PLAN_RETRIES:
                        raise
                    gate.stale()
                    log.info("plan went stale (%s); re-planning", exc, extra={"provider": provider_name})
        raise AssertionError("unreachable")

    # -- API writes ------------------------------------------------------------------------------

    def _ensure_finalizer(self, svc: Obj) -> Obj:
        """Add our finalizer (optimistic concurrency; on 409 re-read and retry). Returns the object."""
        for _ in range(CONFLICT_RETRIES):
            if has_finalizer(svc):
                return svc
            meta = svc["metadata"]
            finalizers = [*(meta.get("finalizers") or []), FINALIZER]
            patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
            try:
                return self.kube.patch_service(meta.get("namespace") or "default", meta["name"], patch)
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                svc = self._fresh(svc)
        raise RuntimeError(f"{service_key(svc)}: adding the finalizer kept conflicting")

    def _remove_finalizer(self, svc: Obj) -> None:
        for _ in range(CONFLICT_RETRIES):
            meta = svc["metadata"]
            if not has_finalizer(svc):
                return
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
            try:
                self.kube.patch_service(meta.get("namespace") or "default", meta["name"], patch)
                return
            except Exception as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc):
                    raise
                try:
                    svc = self._fresh(svc)
                except ServiceGone:
                    return
        raise RuntimeError(f"{service_key(svc)}: removing the finalizer kept conflicting")

    def _fresh(self, svc: Obj) -> Obj:
        """Re-read the Service from the API (after a 409): the cache may lag behind."""
        meta = svc["metadata"]
        fresh = self.kube.get_service(meta.get("namespace") or "default", meta["name"])
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != meta.get("uid"):
            raise ServiceGone(service_key(svc))
        return fresh

    def _patch_status(self, svc: Obj, ingress: list[dict[str, str]] | None) -> None:
        """Merge-patch ``status.loadBalancer`` on the status subresource (null clears it)."""
        meta = svc["metadata"]
        patch = {"status": {"loadBalancer": {"ingress": ingress or None}}}
        self.kube.patch_service_status(meta.get("namespace") or "default", meta["name"], patch)

    def _event(self, svc: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event on the Service (best effort: a failure is logged, never raised)."""
        try:
            self.recorder.record(svc, type_, reason, message[:1024])
        except Exception as exc:
            log.warning("could not record event %s: %s", reason, exc, extra={"service": service_key(svc)})

    def _notify_applied(self, key: str, plan: Plan) -> None:
        for listener in list(self.applied_listeners):
            try:
                listener(key, plan)
            except Exception:
                log.exception("applied-plan listener failed", extra={"service": key})

    def _set_managed(self, key: str, provider: str | None) -> None:
        with self._lock:
            before = self._managed.pop(key, None) if provider is None else self._managed.get(key)
            if provider is not None:
                self._managed[key] = provider
            if before == provider:
                return
            # Kept by counting each change, not by recounting every managed Service per sync (which
            # made a resync of N Services cost N x N: a fifth of a 1,000-Service resync's CPU).
            for name, step in ((before, -1), (provider, 1)):
                if name is not None:
                    self._managed_count[name] = self._managed_count.get(name, 0) + step
                    if self.metrics is not None:
                        self.metrics.managed.labels(name).set(self._managed_count[name])


def _change_list(plan: Plan) -> list[str]:
    return [f"{c.action.value} {c.kind} {c.name}" for c in plan.changes]
