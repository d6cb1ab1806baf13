"""Drift: a change made by hand in the cloud shows up in ``lbprov plan`` as exactly that change, and
the controller's periodic resync repairs it.

Hand changes go through the real SDKs against the emulators, as an operator's console click would:
AWS -- a listener deleted, a target group's health check edited, a security-group rule widened;
GCP -- the traffic firewall rule widened; Azure -- a load-balancing rule deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cli_testlib import run_cli, validate_schema
from sandbox_support import Env, wait_for

from lbprov import naming
from lbprov.controller.manager import Controller, ControllerConfig, _Workers, running
from lbprov.provider import load_provider

SOURCE = "10.0.0.0/8"
#: The class keeps other tests' Services (no class) away from the controller started here.
CLASS = "lbprov.io/{}"


def _aws(env: Env, service: str) -> Any:
    import boto3

    s = env.cloud.settings

    def client(name: str) -> Any:
        return boto3.client(
            name,
            region_name=s["region"],
            endpoint_url=s["endpoint_url"],
            aws_access_key_id=s["access_key_id"],
            aws_secret_access_key=s["secret_access_key"],
        )

    return client(service)


def _nlb_arn(env: Env, lb: str) -> str:
    arn: str = _aws(env, "elbv2").describe_load_balancers(Names=[lb])["LoadBalancers"][0]["LoadBalancerArn"]
    return arn


def aws_delete_listener(env: Env, lb: str, service: str = "web") -> Callable[[list[dict[str, Any]]], None]:
    elb = _aws(env, "elbv2")
    listener = next(
        x for x in elb.describe_listeners(LoadBalancerArn=_nlb_arn(env, lb))["Listeners"] if x["Port"] == 80
    )
    elb.delete_listener(ListenerArn=listener["ListenerArn"])

    def check(changes: list[dict[str, Any]]) -> None:
        (change,) = changes
        assert (change["action"], change["kind"]) == ("create", "listener")
        assert change["after"]["port"] == 80

    return check


def aws_edit_health_check(env: Env, lb: str, service: str = "web") -> Callable[[list[dict[str, Any]]], None]:
    elb = _aws(env, "elbv2")
    groups = elb.describe_target_groups(LoadBalancerArn=_nlb_arn(env, lb))["TargetGroups"]
    group = sorted(groups, key=lambda g: g["TargetGroupName"])[0]
    elb.modify_target_group(
        TargetGroupArn=group["TargetGroupArn"], HealthCheckIntervalSeconds=10, HealthyThresholdCount=5
    )

    def check(changes: list[dict[str, Any]]) -> None:
        (change,) = changes
        assert (change["action"], change["kind"], change["name"]) == (
            "update",
            "target-group",
            group["TargetGroupName"],
        )
        assert list(change["diff"]) == ["health_check"]
        before, after = change["diff"]["health_check"]["before"], change["diff"]["health_check"]["after"]
        assert (before["interval"], before["healthy"]) == (10, 5)
        assert {k: v for k, v in before.items() if k not in ("interval", "healthy")} == {
            k: v for k, v in after.items() if k not in ("interval", "healthy")
        }

    return check


def aws_widen_rule(env: Env, lb: str, service: str = "web") -> Callable[[list[dict[str, Any]]], None]:
    """Widen the rule that admits the source range: on the NLB's frontend security group (the
    security-group model of new NLBs, DESIGN.md), on the listener's port."""
    ec2 = _aws(env, "ec2")
    (nlb,) = _aws(env, "elbv2").describe_load_balancers(Names=[lb])["LoadBalancers"]
    svc = env.kube.get_service(env.namespace, service)
    port = svc["spec"]["ports"][0]["port"]
    groups = ec2.describe_security_groups(GroupIds=nlb["SecurityGroups"])["SecurityGroups"]
    (sg,) = (g["GroupId"] for g in groups if not g["GroupName"].startswith("k8s-traffic-"))
    perms = next(g for g in groups if g["GroupId"] == sg)["IpPermissions"]
    perm = next(p for p in perms if p.get("FromPort") == port and p["IpProtocol"] == "tcp")
    ours = [r for r in perm["IpRanges"] if r["CidrIp"] == SOURCE]
    assert ours, perm
    base = {"IpProtocol": "tcp", "FromPort": perm["FromPort"], "ToPort": perm["ToPort"]}
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[{**base, "IpRanges": ours}])
    widened = [{"CidrIp": "0.0.0.0/0", "Description": ours[0]["Description"]}]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{**base, "IpRanges": widened}])

    def check(changes: list[dict[str, Any]]) -> None:
        got = sorted((c["action"], c["kind"], (c["after"] or c["before"])["cidr"]) for c in changes)
        assert got == [
            ("create", "security-group-rule", SOURCE),
            ("delete", "security-group-rule", "0.0.0.0/0"),
        ], changes

    return check


def gcp_widen_firewall(env: Env, lb: str, service: str = "web") -> Callable[[list[dict[str, Any]]], None]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    s = env.cloud.settings
    opts = {"api_endpoint": s["api_endpoint"]}
    firewalls = compute_v1.FirewallsClient(credentials=AnonymousCredentials(), client_options=opts)
    operations = compute_v1.GlobalOperationsClient(credentials=AnonymousCredentials(), client_options=opts)
    firewalls._transport._extended_operations_services["global_operations"] = operations
    name = f"k8s-fw-{lb}"
    assert list(firewalls.get(project=s["project"], firewall=name).source_ranges) == [SOURCE]
    firewalls.patch(
        project=s["project"],
        firewall=name,
        firewall_resource=compute_v1.Firewall(source_ranges=["0.0.0.0/0"]),
    ).result()

    def check(changes: list[dict[str, Any]]) -> None:
        (change,) = changes
        assert (change["action"], change["kind"], change["name"]) == ("update", "firewall-rule", name)
        assert change["diff"] == {"sourceRanges": {"before": ["0.0.0.0/0"], "after": [SOURCE]}}

    return check


def azure_delete_rule(env: Env, lb: str, service: str = "web") -> Callable[[list[dict[str, Any]]], None]:
    from azure.core.credentials import AccessToken
    from azure.mgmt.network import NetworkManagementClient

    s = env.cloud.settings

    class Token:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(s["static_token"], int(time.time()) + 3600)

    net = NetworkManagementClient(
        Token(),  # type: ignore[arg-type]
        s["subscription_id"],
        base_url=s["base_url"],
        connection_verify=s["ca_bundle"],
        polling_interval=0,
    )
    shared = net.load_balancers.get(s["resource_group"], env.cluster)
    victim = next(r for r in shared.load_balancing_rules if r.name.startswith(lb) and r.frontend_port == 80)
    shared.load_balancing_rules = [r for r in shared.load_balancing_rules if r.name != victim.name]
    net.load_balancers.begin_create_or_update(s["resource_group"], env.cluster, shared).result()

    def check(changes: list[dict[str, Any]]) -> None:
        (change,) = changes
        assert (change["action"], change["kind"]) == ("create", "load-balancing-rule")
        assert change["name"].endswith(victim.name) and change["after"]["frontend_port"] == 80

    return check


#: Per provider: functions ``(env, lb_name, service_name) -> check(changes)`` making one hand change.
HAND_CHANGES: dict[str, list[Callable[..., Callable[[list[dict[str, Any]]], None]]]] = {
    "aws": [aws_delete_listener, aws_edit_health_check, aws_widen_rule],
    "gcp": [gcp_widen_firewall],
    "azure": [azure_delete_rule],
}


def make_web(env: Env) -> str:
    svc = env.create_service("web", [("TCP", 80), ("TCP", 443)], lb_class=CLASS.format(env.provider_name))
    env.patch("web", {"spec": {"loadBalancerSourceRanges": [SOURCE]}})
    return naming.lb_name(svc["metadata"]["uid"])


def plan_json(env: Env) -> dict[str, Any]:
    r = run_cli(env.plan_argv("-o", "json", "--default-provider", "none"))
    doc = r.json()
    validate_schema(doc)
    assert doc["exit_code"] == r.code
    return doc


def test_plan_shows_exactly_the_hand_made_drift(env: Env) -> None:
    lb = make_web(env)
    env.converge("web")
    for hand_change in HAND_CHANGES[env.provider_name]:
        assert plan_json(env)["exit_code"] == 0
        before = list(env.cloud.mutating_requests())
        check = hand_change(env, lb)
        mutated = list(env.cloud.mutating_requests())
        assert len(mutated) > len(before), "the hand change did not reach the emulator"
        doc = plan_json(env)
        assert doc["exit_code"] == 2, (hand_change.__name__, doc)
        (plan,) = doc["plans"]
        check(plan["changes"])
        assert list(env.cloud.mutating_requests()) == mutated, "lbprov plan wrote to the cloud"
        env.writer.apply(env.plan_for("web"))  # repair before the next scenario


class ResyncGate:
    """Holds the controller's periodic resyncs back while closed (a due one waits, then runs on
    opening), and counts those running, so that a test can make a hand change and plan it with
    no resync in between, then let the timer's own resync repair it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0
        real = _Workers.resync

        def gated(workers: _Workers) -> int:
            with self._cond:
                self._cond.wait_for(lambda: not self._closed)
                self._running += 1
            try:
                return real(workers)
            finally:
                with self._cond:
                    self._running -= 1

        monkeypatch.setattr(_Workers, "resync", gated)

    def close(self) -> None:
        with self._cond:
            self._closed = True

    def open(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()

    def quiet(self) -> bool:
        """Closed, and no resync past the gate any more (their keys are queued by then)."""
        with self._cond:
            return self._closed and self._running == 0


def test_controller_resync_repairs_hand_made_drift(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller converges the Service; a hand change with no Kubernetes event is shown by
    ``lbprov plan`` and repaired by the next periodic resync.

    The hand change and the plan are made with the periodic resync held back (:class:`ResyncGate`),
    then the timer's resync goes: before, they had to fit between two resyncs 6 s apart, which a
    loaded machine need not do (the resync repaired the drift before the plan saw it)."""
    period = 2.0
    gate = ResyncGate(monkeypatch)
    # as `lbprov run` builds it: the cluster identity and the provider's cluster facts filled in
    provider = load_provider(env.provider_name).from_settings(env.settings(read_only=False))
    config = ControllerConfig(
        cluster=env.cluster,
        default_provider=None,  # only Services of our class: the rest of the sandbox is not ours
        workers=2,
        resync_period=period,
        node_debounce=0.2,
        backoff_base=0.5,
        backoff_max=2.0,
        cache_sync_timeout=20.0,
        shutdown_timeout=20.0,
    )
    lb = make_web(env)
    with running(Controller(env.kube, {env.provider_name: provider}, config)) as controller:
        wait_for(
            lambda: (env.kube.get_service(env.namespace, "web").get("status") or {}).get("loadBalancer"),
            60,
            "the controller to set the ingress",
        )
        wait_for(lambda: plan_json(env)["exit_code"] == 0, 60, "the controller to converge")
        gate.close()
        workers = controller._workers
        assert workers is not None
        wait_for(
            lambda: gate.quiet() and controller.idle() and workers.queue.pending_delayed() == 0,
            120,
            "no resync or reconcile in flight or due",
        )
        hand_change = HAND_CHANGES[env.provider_name][0]
        check = hand_change(env, lb)
        doc = plan_json(env)
        assert doc["exit_code"] == 2, doc
        check(doc["plans"][0]["changes"])
        gate.open()
        # Deep checks (AWS: listeners, attributes) are rotated under a read budget: every Service is
        # deep-checked at least once every K resyncs (drift_check_periods; 1 where all is checked).
        k = getattr(provider, "drift_check_periods", 1)
        wait_for(
            lambda: plan_json(env)["exit_code"] == 0, (k + 5) * period + 60, "the resync to repair the drift"
        )
    assert env.plan_for("web").empty


@pytest.fixture(autouse=True)
def _quiet_controller_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
