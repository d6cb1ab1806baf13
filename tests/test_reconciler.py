"""ServiceReconciler decisions, driven with an in-memory API fake and a fake provider.

These are UNIT tests of the reconciler's decisions (which Services are ours, the order finalizer ->
cloud write, events, status only when it differs, cleanup, conflicts). The same behaviours are
checked end to end against the sandbox API server and the AWS provider on moto in tests/e2e/.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from lbprov.cloudcalls import CloudCalls, RateLimits, WriteFenced
from lbprov.controller.manager import needs_sync
from lbprov.controller.service import FINALIZER, ServiceReconciler
from lbprov.model import (
    Action,
    Change,
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    Plan,
    ServiceRef,
)
from lbprov.observability import Metrics
from lbprov.provider import SandboxCloud
from lbprov.testing import wait_for


class ApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def deep_merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(target.get(k), dict):
            deep_merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target


class FakeKube:
    """Services with resourceVersions (409 on stale), status subresource, events; logs writes."""

    def __init__(self, timeline: list[str]) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.timeline = timeline
        self.rv = 0
        self.conflicts_to_inject = 0

    def put(self, svc: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        svc["metadata"]["resourceVersion"] = str(self.rv)
        self.services[f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"] = svc
        return svc

    def cached(self, key: str) -> dict[str, Any] | None:
        svc = self.services.get(key)
        return copy.deepcopy(svc) if svc else None

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        svc = self.services.get(f"{namespace}/{name}")
        return copy.deepcopy(svc) if svc is not None else None

    def patch_service(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        svc = self.services.get(f"{namespace}/{name}")
        if svc is None:
            raise ApiError(404)
        rv = (patch.get("metadata") or {}).get("resourceVersion")
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            self.put(svc)  # somebody else wrote meanwhile
            raise ApiError(409)
        if rv is not None and rv != svc["metadata"]["resourceVersion"]:
            raise ApiError(409)
        self.timeline.append(f"kube:patch:{sorted((patch.get('metadata') or {}).get('finalizers') or [])}")
        patch = copy.deepcopy(patch)
        patch.get("metadata", {}).pop("resourceVersion", None)
        deep_merge(svc, patch)
        if svc["metadata"].get("deletionTimestamp") and not svc["metadata"].get("finalizers"):
            del self.services[f"{namespace}/{name}"]
            return copy.deepcopy(svc)
        return copy.deepcopy(self.put(svc))

    def patch_service_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        svc = self.services[f"{namespace}/{name}"]
        self.timeline.append("kube:status")
        deep_merge(svc, {"status": patch["status"]})
        return copy.deepcopy(self.put(svc))

    def create_event(
        self,
        obj: dict[str, Any],
        *,
        type: str,
        reason: str,
        message: str,
        component: str = "x",
        timestamp: str | None = None,
        name: str | None = None,
        combined: bool = False,
    ) -> None:
        meta = obj["metadata"]
        self.events.append(
            {
                "involvedObject": {"uid": meta["uid"], "name": meta["name"]},
                "type": type,
                "reason": reason,
                "message": message,
            }
        )

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events]


class FakeProvider:
    """A provider whose 'cloud' is a dict: one LB record per Service UID."""

    name: ClassVar[str] = "fake"
    settings_model: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self, name: str, timeline: list[str]) -> None:
        self.label = name
        self.timeline = timeline
        self.calls = CloudCalls(
            name, is_write=lambda op: op != "describe", limits=RateLimits(None, 1, None, 1)
        )
        self.cloud: dict[str, dict[str, Any]] = {}
        self.fail_delete = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> FakeProvider:
        raise NotImplementedError

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        value = annotations.get("fake.example/scheme", "external")
        if value not in ("external", "internal"):
            raise InvalidService(
                "metadata.annotations[fake.example/scheme]", f"{value!r}; accepted values: external, internal"
            )
        return replace(intent, scheme=value)  # type: ignore[arg-type]

    def _want(self, intent: Intent) -> dict[str, Any]:
        return {
            "ports": [(p.protocol, p.port, p.node_port) for p in intent.ports],
            "targets": [t.node_name for t in intent.targets],
            "scheme": intent.scheme,
        }

    def plan(self, intent: Intent) -> Plan:
        self.calls.before_send("describe")
        have = self.cloud.get(intent.ref.uid)
        want = self._want(intent)
        ingress = (Ingress(hostname=f"{intent.lb_name}.fake"),) if have else ()
        if have == want:
            return Plan(self.label, intent.ref, (), intent, ingress)
        action = Action.UPDATE if have else Action.CREATE
        return Plan(
            self.label,
            intent.ref,
            (Change(action, "load-balancer", intent.lb_name, have, want),),
            intent,
            ingress,
        )

    def plan_delete(self, ref: ServiceRef) -> Plan:
        self.calls.before_send("describe")
        have = self.cloud.get(ref.uid)
        if not have:
            return Plan(self.label, ref)
        return Plan(self.label, ref, (Change(Action.DELETE, "load-balancer", ref.uid, have, None),))

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        for change in plan.changes:
            self.calls.before_send(change.action.value)
            self.timeline.append(f"{self.label}:{change.action.value}")
            if change.action is Action.DELETE:
                if self.fail_delete:
                    raise RuntimeError("ResourceInUse: load balancer is busy")
                self.cloud.pop(plan.ref.uid, None)
            else:
                self.cloud[plan.ref.uid] = dict(change.after or {})
        if plan.intent is None:
            return ()
        return (Ingress(hostname=f"{plan.intent.lb_name}.fake"),)

    def list_owned(self) -> list[OwnedLoadBalancer]:
        return []

    @classmethod
    def sandbox(cls, nodes: Sequence[str]) -> AbstractContextManager[SandboxCloud]:
        raise NotImplementedError


def make_service(
    name: str,
    *,
    ns: str = "default",
    ports: Sequence[tuple[int, int]] = ((80, 30080),),
    lb_class: str | None = None,
    annotations: dict[str, str] | None = None,
    type_: str = "LoadBalancer",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type_,
        "ports": [{"name": f"p{p}", "protocol": "TCP", "port": p, "nodePort": np} for p, np in ports],
    }
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": {},
    }


NODES = [
    {"metadata": {"name": f"n{i}", "labels": {}}, "spec": {"providerID": f"fake://n{i}"}, "status": {}}
    for i in range(2)
]


@pytest.fixture
def env() -> tuple[FakeKube, dict[str, FakeProvider], ServiceReconciler, list[str], Metrics]:
    timeline: list[str] = []
    kube = FakeKube(timeline)
    providers = {"a": FakeProvider("a", timeline), "b": FakeProvider("b", timeline)}
    metrics = Metrics()
    rec = ServiceReconciler(
        kube,
        get_service=kube.cached,
        list_nodes=lambda: copy.deepcopy(NODES),
        providers=providers,  # type: ignore[arg-type]
        cluster="unit",
        default_provider="a",
        metrics=metrics,
    )
    return kube, providers, rec, timeline, metrics


def test_create_adds_finalizer_before_first_cloud_write_then_sets_ingress_and_events(env: Any) -> None:
    kube, _providers, rec, timeline, metrics = env
    kube.put(make_service("web"))
    result = rec.sync("default/web")
    assert result.action == "ensured"
    assert timeline.index(f"kube:patch:{[FINALIZER]}") < timeline.index("a:create")
    svc = kube.services["default/web"]
    assert svc["metadata"]["finalizers"] == [FINALIZER]
    assert svc["status"]["loadBalancer"]["ingress"] == [{"hostname": "auiddefaultweb.fake"}]
    assert kube.reasons() == ["EnsuringLoadBalancer", "EnsuredLoadBalancer"]
    assert kube.events[0]["involvedObject"]["uid"] == "uid-default-web"
    assert metrics.reconciles.labels("a", "success")._value.get() == 1
    assert metrics.managed.labels("a")._value.get() == 1


def test_unchanged_service_costs_no_write_no_status_patch_and_no_event(env: Any) -> None:
    kube, providers, rec, timeline, _ = env
    kube.put(make_service("web"))
    rec.sync("default/web")
    timeline.clear()
    kube.events.clear()
    providers["a"].calls.reset()
    result = rec.sync("default/web")
    assert result.action == "unchanged"
    assert providers["a"].calls.stats.writes == 0
    assert timeline == []  # no API write either
    assert kube.events == []


def test_port_change_updates_the_load_balancer_with_updated_event(env: Any) -> None:
    kube, providers, rec, _, _ = env
    kube.put(make_service("web"))
    rec.sync("default/web")
    kube.events.clear()
    kube.services["default/web"]["spec"]["ports"].append(
        {"name": "p443", "protocol": "TCP", "port": 443, "nodePort": 30443}
    )
    rec.sync("default/web")
    assert ("TCP", 443, 30443) in providers["a"].cloud["uid-default-web"]["ports"]
    assert kube.reasons() == ["EnsuringLoadBalancer", "UpdatedLoadBalancer"]


def test_service_of_another_class_is_never_touched(env: Any) -> None:
    kube, providers, rec, timeline, _ = env
    kube.put(make_service("other", lb_class="example.com/other"))
    svc = make_service("gone-other", lb_class="example.com/other", type_="ClusterIP")
    svc["metadata"]["finalizers"] = [FINALIZER]  # even with "our" finalizer name, not ours to clean
    kube.put(svc)
    assert rec.sync("default/other").action == "ignored"
    assert rec.sync("default/gone-other").action == "ignored"
    assert timeline == [] and kube.events == []
    assert providers["a"].calls.stats.reads == 0 and providers["b"].calls.stats.reads == 0


def test_no_class_without_default_provider_is_ignored(env: Any) -> None:
    kube, providers, _, timeline, _ = env
    rec = ServiceReconciler(
        kube, get_service=kube.cached, list_nodes=lambda: NODES, providers=providers, cluster="unit"
    )
    kube.put(make_service("web"))
    assert rec.sync("default/web").action == "ignored"
    assert timeline == []


def test_class_selects_the_provider_among_several(env: Any) -> None:
    kube, providers, rec, _, _ = env
    kube.put(make_service("on-b", lb_class="lbprov.io/b"))
    rec.sync("default/on-b")
    assert "uid-default-on-b" in providers["b"].cloud
    assert providers["a"].cloud == {}
    # Deleting uses the class's provider too.
    kube.services["default/on-b"]["spec"]["type"] = "ClusterIP"
    rec.sync("default/on-b")
    assert providers["b"].cloud == {}


def test_invalid_annotation_warns_makes_no_cloud_call_and_other_services_are_unaffected(env: Any) -> None:
    kube, providers, rec, timeline, metrics = env
    kube.put(make_service("bad", annotations={"fake.example/scheme": "sideways"}))
    kube.put(make_service("good"))
    with pytest.raises(InvalidService):
        rec.sync("default/bad")
    warning = kube.events[-1]
    assert warning["type"] == "Warning" and warning["reason"] == "SyncLoadBalancerFailed"
    assert "fake.example/scheme" in warning["message"] and "accepted values" in warning["message"]
    assert providers["a"].calls.stats.reads == 0 and providers["a"].calls.stats.writes == 0
    assert timeline == [], "no finalizer and no cloud write for an invalid Service"
    assert metrics.reconciles.labels("a", "invalid")._value.get() == 1
    rec.sync("default/good")
    assert "uid-default-good" in providers["a"].cloud
    # Fixed -> recovers.
    kube.services["default/bad"]["metadata"]["annotations"]["fake.example/scheme"] = "internal"
    assert rec.sync("default/bad").action == "ensured"
    assert providers["a"].cloud["uid-default-bad"]["scheme"] == "internal"


def test_type_change_to_clusterip_deletes_clears_status_then_removes_finalizer(env: Any) -> None:
    kube, providers, rec, timeline, metrics = env
    kube.put(make_service("web"))
    rec.sync("default/web")
    timeline.clear()
    kube.events.clear()
    kube.services["default/web"]["spec"]["type"] = "ClusterIP"
    assert rec.sync("default/web").action == "deleted"
    assert providers["a"].cloud == {}
    assert timeline == ["a:delete", "kube:status", "kube:patch:[]"]
    svc = kube.services["default/web"]
    assert "ingress" not in svc["status"]["loadBalancer"]
    assert svc["metadata"]["finalizers"] == []
    assert kube.reasons() == ["DeletingLoadBalancer", "DeletedLoadBalancer"]
    assert metrics.managed.labels("a")._value.get() == 0


def test_failed_delete_keeps_the_finalizer_and_warns(env: Any) -> None:
    kube, providers, rec, _, _ = env
    kube.put(make_service("web"))
    rec.sync("default/web")
    kube.services["default/web"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    providers["a"].fail_delete = True
    with pytest.raises(RuntimeError):
        rec.sync("default/web")
    assert kube.services["default/web"]["metadata"]["finalizers"] == [FINALIZER]
    assert kube.events[-1]["type"] == "Warning" and "ResourceInUse" in kube.events[-1]["message"]
    providers["a"].fail_delete = False
    assert rec.sync("default/web").action == "deleted"
    assert "default/web" not in kube.services, "the object goes once the finalizer is removed"


def test_finalizer_write_that_loses_a_race_is_retried_on_fresh_data(env: Any) -> None:
    kube, _providers, rec, _, _ = env
    kube.put(make_service("web"))
    kube.conflicts_to_inject = 2
    assert rec.sync("default/web").action == "ensured"
    assert kube.services["default/web"]["metadata"]["finalizers"] == [FINALIZER]


def test_deleted_service_is_forgotten(env: Any) -> None:
    _, _, rec, _, _ = env
    assert rec.sync("default/nothing").action == "gone"


def test_needs_sync_ignores_status_only_updates() -> None:
    old = make_service("web")
    new = copy.deepcopy(old)
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    new["metadata"]["resourceVersion"] = "99"
    assert not needs_sync(old, new)
    new["metadata"]["annotations"] = {"x": "y"}
    assert needs_sync(old, new)
    with_fin = copy.deepcopy(old)
    with_fin["metadata"]["finalizers"] = [FINALIZER]
    assert not needs_sync(old, with_fin), "our own finalizer add must not re-plan"
    assert needs_sync(with_fin, old), "a lost finalizer must be put back"


class FakeInformer:
    """Serves the FakeKube's objects as an informer cache would (no watch: tests call handlers)."""

    def __init__(self, kube: FakeKube, kind: str, **handlers: Any) -> None:
        self.kube = kube
        self.kind = kind
        self.handlers = handlers

    def start(self) -> None:
        if self.kind == "services":
            for svc in list(self.kube.services.values()):
                self.handlers["on_add"](copy.deepcopy(svc))

    def stop(self, timeout: float = 2.0) -> None:
        pass

    def wait_synced(self, timeout: float) -> bool:
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        return self.kube.cached(key) if self.kind == "services" else None

    def list(self) -> list[dict[str, Any]]:
        if self.kind == "services":
            return [copy.deepcopy(s) for s in self.kube.services.values()]
        return copy.deepcopy(NODES)


def controller_over(
    kube: FakeKube, provider: FakeProvider, *, workers: int, waiting_syncs: int | None = None, **kwargs: Any
) -> Any:
    """The real controller over the fakes (cluster "unit", provider "a"), not started."""
    from lbprov.controller.manager import Controller, ControllerConfig

    return Controller(
        kube,  # type: ignore[arg-type]
        {"a": provider},  # type: ignore[dict-item]
        ControllerConfig(cluster="unit", default_provider="a", workers=workers, waiting_syncs=waiting_syncs),
        informer_factory=lambda kube, kind, **h: FakeInformer(kube, kind, **h),
        **kwargs,
    )


def test_graceful_stop_finishes_the_in_flight_reconcile_and_takes_no_new_work() -> None:
    import threading

    timeline: list[str] = []
    kube = FakeKube(timeline)
    provider = FakeProvider("a", timeline)
    entered, gate = threading.Event(), threading.Event()
    real_apply = provider.apply

    def slow_apply(plan: Plan) -> tuple[Ingress, ...]:
        entered.set()
        assert gate.wait(10)
        return real_apply(plan)

    provider.apply = slow_apply  # type: ignore[method-assign]
    kube.put(make_service("first"))
    kube.put(make_service("second"))
    controller = controller_over(kube, provider, workers=1, metrics=Metrics())
    controller.start()
    assert entered.wait(5), "the first reconcile reached apply"
    stopper = threading.Thread(target=controller.stop)
    stopper.start()
    stopper.join(0.3)
    assert stopper.is_alive(), "stop waits for the in-flight reconcile"
    gate.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert kube.services["default/first"]["status"]["loadBalancer"]["ingress"], (
        "the in-flight reconcile finished"
    )
    assert "uid-default-second" not in provider.cloud, "no new work was taken after stop"


def test_events_leave_the_workers_path_and_stop_flushes_them() -> None:
    """The controller's events go through its recorder's thread: a worker finishes a Service (status
    written) while the API server still holds its first event; stop posts the rest before it returns."""
    import threading

    timeline: list[str] = []
    kube = FakeKube(timeline)
    entered, gate = threading.Event(), threading.Event()
    real_create_event = kube.create_event

    def hanging_create_event(obj: dict[str, Any], **kw: Any) -> None:
        entered.set()
        assert gate.wait(300)  # longer than the test's waits: a post on the worker's path hangs it
        real_create_event(obj, **kw)

    kube.create_event = hanging_create_event  # type: ignore[method-assign]
    kube.put(make_service("web"))
    controller = controller_over(kube, FakeProvider("a", timeline), workers=1, metrics=Metrics())
    controller.start()
    wait_for(lambda: kube.services["default/web"].get("status"), 60, "status written")
    # The recorder's thread takes the first event when it runs, which a loaded machine may make
    # after the worker wrote the status: wait for that, not for the status alone.
    wait_for(entered.is_set, 60, "the first event's post to begin (and hang)")
    assert kube.events == [], "the first event is still being posted"
    stopper = threading.Thread(target=controller.stop)
    stopper.start()
    gate.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert kube.reasons() == ["EnsuringLoadBalancer", "EnsuredLoadBalancer"], "flushed, in order"


class StalePlan(RuntimeError):
    """Named like lbprov_aws.executor.StalePlan: recognised by name, the core imports no provider."""


def test_a_stale_plan_is_replanned_at_once_without_warning(env: Any) -> None:
    kube, providers, rec, _, _ = env
    kube.put(make_service("web"))
    real_apply = providers["a"].apply
    failures = {"left": 2}

    def racing_apply(plan: Plan) -> tuple[Ingress, ...]:
        if failures["left"]:
            failures["left"] -= 1
            raise StalePlan("security group changed since the plan was made; nothing was written")
        return real_apply(plan)

    providers["a"].apply = racing_apply
    assert rec.sync("default/web").action == "ensured"
    assert kube.reasons() == ["EnsuringLoadBalancer", "EnsuredLoadBalancer"], "no Warning, one Ensuring"
    assert providers["a"].calls.stats.sent[("describe", "read")] == 3, "re-planned on fresh data each time"


def test_a_plan_that_stays_stale_falls_back_to_backoff(env: Any) -> None:
    kube, providers, rec, _, _ = env
    kube.put(make_service("web"))

    def always_stale(plan: Plan) -> tuple[Ingress, ...]:
        raise StalePlan("still racing")

    providers["a"].apply = always_stale
    with pytest.raises(StalePlan):
        rec.sync("default/web")
    assert kube.events[-1]["reason"] == "SyncLoadBalancerFailed"


def test_after_a_stale_plan_applies_with_changes_run_one_at_a_time(env: Any) -> None:
    import threading
    import time

    kube, providers, rec, _, _ = env
    provider = providers["a"]
    real_apply = provider.apply
    state = {"active": 0, "max": 0, "stale_once": True}
    lock = threading.Lock()

    def apply(plan: Plan) -> tuple[Ingress, ...]:
        with lock:
            if state["stale_once"]:
                state["stale_once"] = False
                raise StalePlan("shared rules changed")
            state["active"] += 1
            state["max"] = max(state["max"], state["active"])
        time.sleep(0.02)
        try:
            return real_apply(plan)
        finally:
            with lock:
                state["active"] -= 1

    provider.apply = apply
    for i in range(6):
        kube.put(make_service(f"s{i}"))
    rec.sync("default/s0")  # goes stale once, re-plans: contended mode from now on
    assert rec._gates["a"].contended()
    threads = [threading.Thread(target=rec.sync, args=(f"default/s{i}",)) for i in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(provider.cloud) == 6
    assert state["max"] == 1, "contended applies are serialised"


def test_batches_run_inside_the_provider_read_round_until_the_queue_drains() -> None:
    import threading
    from contextlib import contextmanager

    timeline: list[str] = []
    kube = FakeKube(timeline)
    provider = FakeProvider("a", timeline)
    rounds: list[str] = []
    in_round = threading.Event()
    plans_in_round: list[bool] = []

    class Round:
        def drift_check(self) -> None:
            rounds.append("drift-check")

    @contextmanager
    def read_round() -> Any:
        rounds.append("enter")
        in_round.set()
        try:
            yield Round()
        finally:
            in_round.clear()
            rounds.append("exit")

    real_plan = provider.plan

    def plan(intent: Intent) -> Plan:
        plans_in_round.append(in_round.is_set())
        return real_plan(intent)

    provider.read_round = read_round  # type: ignore[attr-defined]
    provider.plan = plan  # type: ignore[method-assign]
    for i in range(5):
        kube.put(make_service(f"s{i}"))
    controller = controller_over(kube, provider, workers=2)

    controller.start()
    try:
        # the initial sync is one round, closed when drained
        wait_for(lambda: rounds == ["enter", "exit"], 60, "the initial sync's round", interval=0.01)
        assert plans_in_round == [True] * 5
        assert controller.resync() == 5
        # Only the periodic resync is a drift check (not the initial sync, nor a node sync).
        wait_for(
            lambda: rounds == ["enter", "exit", "enter", "drift-check", "exit"],
            60,
            "the resync's drift-check round",
            interval=0.01,
        )
        assert plans_in_round[5:] == [True] * 5
    finally:
        controller.stop()


ELSEWHERE = "fake.lbprov.io/other-controller"


def _elsewhere(service: Mapping[str, Any]) -> str | None:
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    return "another controller serves it" if ELSEWHERE in annotations else None


def test_a_service_implemented_elsewhere_is_skipped_without_events_or_finalizer(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, providers, rec, timeline, _ = env
    monkeypatch.setattr(FakeProvider, "implemented_elsewhere", staticmethod(_elsewhere), raising=False)
    svc = make_service("lbc", annotations={ELSEWHERE: "yes"})
    kube.put(svc)
    assert not rec.is_ours(svc)
    result = rec.sync("default/lbc")
    assert result.action == "ignored"
    assert kube.events == [] and timeline == []
    assert "finalizers" not in kube.services["default/lbc"]["metadata"]
    assert providers["a"].cloud == {}


def test_a_service_that_moves_to_another_controller_gets_our_load_balancer_cleaned_up(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, providers, rec, _, _ = env
    monkeypatch.setattr(FakeProvider, "implemented_elsewhere", staticmethod(_elsewhere), raising=False)
    kube.put(make_service("web"))
    rec.sync("default/web")
    assert "uid-default-web" in providers["a"].cloud
    kube.services["default/web"]["metadata"]["annotations"][ELSEWHERE] = "yes"
    rec.sync("default/web")
    assert providers["a"].cloud == {}
    assert FINALIZER not in (kube.services["default/web"]["metadata"].get("finalizers") or [])


def test_the_managed_gauge_counts_changes_and_never_rescans_every_managed_service(env: Any) -> None:
    """Each sync moves the gauge by its own change: a resync of N Services must not cost N x N."""
    kube, _, rec, _, metrics = env
    for name in ("one", "two", "three"):
        kube.put(make_service(name))
        rec.sync(f"default/{name}")
    assert metrics.managed.labels("a")._value.get() == 3

    class NoScan(dict):  # type: ignore[type-arg]
        def _scan(self, *_: Any) -> Any:
            raise AssertionError("the gauge rescanned every managed Service")

        values = items = keys = __iter__ = _scan

    rec._managed = NoScan(rec._managed)
    for name in ("one", "two", "three"):
        rec.sync(f"default/{name}")
    kube.services["default/two"]["spec"]["type"] = "ClusterIP"
    rec.sync("default/two")
    assert metrics.managed.labels("a")._value.get() == 2


def test_a_batch_longer_than_a_round_gets_a_fresh_round_not_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round older than MAX_ROUND_SECONDS ends (drift made by hand is seen), and the rest of the
    batch plans in a new round: without one, every later plan listed the account for itself."""
    import threading
    from contextlib import contextmanager

    from lbprov.controller import manager

    monkeypatch.setattr(manager, "MAX_ROUND_SECONDS", 0.0)  # every round is too old at once
    timeline: list[str] = []
    kube = FakeKube(timeline)
    provider = FakeProvider("a", timeline)
    open_rounds = {"now": 0, "entered": 0}
    lock = threading.Lock()
    plans_in_round: list[bool] = []

    @contextmanager
    def read_round() -> Any:
        with lock:
            open_rounds["now"] += 1
            open_rounds["entered"] += 1
        try:
            yield object()
        finally:
            with lock:
                open_rounds["now"] -= 1

    real_plan = provider.plan

    def plan(intent: Intent) -> Plan:
        with lock:
            plans_in_round.append(open_rounds["now"] == 1)
        return real_plan(intent)

    provider.read_round = read_round  # type: ignore[attr-defined]
    provider.plan = plan  # type: ignore[method-assign]
    for i in range(6):
        kube.put(make_service(f"s{i}"))
    # one worker thread (no thread waiting for a slot): the syncs run one after another, each ending
    # the round it planned in
    controller = controller_over(kube, provider, workers=1, waiting_syncs=0)
    controller.start()
    try:
        wait_for(
            lambda: len(plans_in_round) >= 6 and open_rounds["now"] == 0,
            60,
            "six plans and every round closed",
            interval=0.01,
        )
    finally:
        controller.stop()
    assert plans_in_round == [True] * 6  # each plan ran inside exactly one round, never none
    assert open_rounds["entered"] == 6  # a fresh round after each plan (all were too old)


def test_the_heap_is_given_back_when_a_batch_round_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """lbprov.heap.release runs once the round's listings are dropped (its __exit__ has run), so
    that the RSS between batches is what is live, not the batch's peak; lbprov.heap.settle runs
    just before it (a no-op unless ``lbprov run`` turned it on)."""
    import time
    from contextlib import contextmanager

    from lbprov.controller import manager

    events: list[str] = []
    monkeypatch.setattr(manager.heap, "release", lambda: events.append("release") or True)
    monkeypatch.setattr(manager.heap, "settle", lambda: events.append("settle") or True)
    timeline: list[str] = []
    kube = FakeKube(timeline)
    provider = FakeProvider("a", timeline)

    @contextmanager
    def read_round() -> Any:
        events.append("enter")
        try:
            yield object()
        finally:
            events.append("exit")

    provider.read_round = read_round  # type: ignore[attr-defined]
    for i in range(3):
        kube.put(make_service(f"s{i}"))
    controller = controller_over(kube, provider, workers=2)
    controller.start()
    try:
        deadline = time.monotonic() + 60  # bounds a hang only
        while events[-1:] != ["release"]:
            assert time.monotonic() < deadline, events
            time.sleep(0.01)
        controller.resync()
        while events.count("release") < 2:
            assert time.monotonic() < deadline, events
            time.sleep(0.01)
    finally:
        controller.stop()
    # the garbage collected and the survivors frozen (lbprov.heap.settle) before the pages go back
    assert events[:8] == ["enter", "exit", "settle", "release", "enter", "exit", "settle", "release"]


def test_a_fenced_write_fails_the_sync_without_a_warning_event(env: Any) -> None:
    """A write refused by the leader-election fence: the next leader syncs the Service, so its
    users see no "Error syncing" for a failover (upstream's replica exits without one)."""
    kube, providers, rec, _, _ = env
    kube.put(make_service("web"))
    calls = providers["a"].calls
    calls.fence(0.0, "this replica stopped leading")
    with pytest.raises(WriteFenced):
        rec.sync("default/web")
    assert "SyncLoadBalancerFailed" not in kube.reasons()
    assert providers["a"].cloud == {} and calls.stats.writes == 0
    calls.unfence()  # leading again
    assert rec.sync("default/web").action == "ensured"
