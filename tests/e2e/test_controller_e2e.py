"""The controller end to end: sandbox Kubernetes API + AWS provider on moto, over HTTP, in threads."""

from __future__ import annotations

import pytest

from lbprov.controller.service import FINALIZER
from lbprov.intent import EXCLUDE_LABEL
from lbprov.sandbox.demo import node_object

from .conftest import NAMESPACE, Env, wait_for

pytestmark = pytest.mark.e2e


def test_create_sets_ingress_events_and_finalizer(env: Env) -> None:
    c = env.controller()
    svc = env.create_service("web", [(80, "TCP"), (443, "TCP")])
    uid = svc["metadata"]["uid"]
    (ingress,) = env.wait_ingress("web")
    (lb,) = env.load_balancers(uid)
    assert ingress == {"hostname": lb["DNSName"]}
    assert env.listener_ports(uid) == [(80, "TCP"), (443, "TCP")]
    assert env.registered_instances(uid) == env.all_instance_ids()
    assert env.svc("web")["metadata"]["finalizers"] == [FINALIZER]  # type: ignore[index]
    wait_for(lambda: "EnsuredLoadBalancer" in env.reasons("web"), 60, "EnsuredLoadBalancer event")
    assert env.reasons("web")[:2] == ["EnsuringLoadBalancer", "EnsuredLoadBalancer"]
    ensured = next(e for e in env.events("web") if e["reason"] == "EnsuredLoadBalancer")
    assert ensured["type"] == "Normal" and ensured["involvedObject"]["uid"] == uid
    assert c.metrics is not None
    text = c.metrics.render().decode()
    assert 'lbprov_reconciles_total{provider="aws",result="success"}' in text
    assert 'lbprov_managed_load_balancers{provider="aws"} 1.0' in text


def test_port_change_updates_the_load_balancer(env: Env) -> None:
    env.controller()
    uid = env.create_service("web", [(80, "TCP")])["metadata"]["uid"]
    env.wait_ingress("web")
    env.kube.patch_service(
        NAMESPACE,
        "web",
        {
            "spec": {
                "ports": [
                    {"name": "p80", "protocol": "TCP", "port": 80},
                    {"name": "p8443", "protocol": "TCP", "port": 8443},
                ]
            }
        },
    )
    wait_for(lambda: env.listener_ports(uid) == [(80, "TCP"), (8443, "TCP")], 20, "listener for 8443")
    assert len(env.target_groups(uid)) == 2
    wait_for(lambda: "UpdatedLoadBalancer" in env.reasons("web"), 60, "UpdatedLoadBalancer event")
    assert len(env.load_balancers(uid)) == 1


def test_added_node_is_registered_and_excluded_node_deregistered(env: Env) -> None:
    env.controller()
    uid = env.create_service("web")["metadata"]["uid"]
    env.wait_ingress("web")
    new = env.cloud.add_node("node-4")
    env.kube.create_node(node_object(new))
    new_id = new.provider_id.rsplit("/", 1)[-1]
    wait_for(lambda: new_id in env.registered_instances(uid), 20, "node-4 registered")
    env.kube.patch_node("node-2", {"metadata": {"labels": {EXCLUDE_LABEL: "true"}}})
    excluded = env.instance_id("node-2")
    wait_for(lambda: excluded not in env.registered_instances(uid), 20, "node-2 deregistered")
    assert env.registered_instances(uid) == (env.all_instance_ids() - {excluded}) | {new_id}


def test_type_clusterip_deletes_lb_clears_status_and_removes_finalizer(env: Env) -> None:
    env.controller()
    uid = env.create_service("web")["metadata"]["uid"]
    env.wait_ingress("web")
    env.kube.patch_service(NAMESPACE, "web", {"spec": {"type": "ClusterIP", "externalTrafficPolicy": None}})

    def cleaned() -> bool:
        svc = env.svc("web") or {}
        return not svc["metadata"].get("finalizers") and not (svc.get("status") or {}).get(
            "loadBalancer", {}
        ).get("ingress")

    wait_for(cleaned, 20, "status cleared and finalizer removed")
    assert env.load_balancers(uid) == [] and env.target_groups(uid) == []
    # Events are posted from the recorder's queue: DeletedLoadBalancer comes after the finalizer went.
    wait_for(
        lambda: {"DeletingLoadBalancer", "DeletedLoadBalancer"} <= set(env.reasons("web")),
        60,
        "DeletingLoadBalancer and DeletedLoadBalancer events",
    )
    assert env.svc("web") is not None, "the Service itself stays (only its load balancer goes)"


def test_delete_removes_the_load_balancer_then_the_object(env: Env) -> None:
    env.controller()
    uid = env.create_service("web", [(53, "UDP")])["metadata"]["uid"]
    env.wait_ingress("web")
    env.kube.delete_service(NAMESPACE, "web")
    wait_for(lambda: env.svc("web") is None, 20, "Service object gone")
    assert env.load_balancers(uid) == [] and env.target_groups(uid) == []
    assert env.box.client("ec2")  # the node SG rules are checked by the provider's own no-leak tests
    owned = [lb for lb in env.provider().list_owned() if lb.ref.uid == uid]
    assert owned == []


def test_service_of_another_class_is_never_touched(env: Env) -> None:
    env.kube.create_namespace("foreign")
    env.controller()
    env.create_service("theirs", namespace="foreign", loadBalancerClass="example.com/other-lb")
    env.create_service("ours")  # a marker: once it is done, the controller has seen both
    env.wait_ingress("ours")
    foreign_writes = [
        r for r in env.api.requests if r.namespace == "foreign" and r.verb not in ("get", "list", "watch")
    ]
    assert [r.verb for r in foreign_writes] == ["create"], foreign_writes  # only our own test's create
    theirs = env.svc("theirs", "foreign") or {}
    assert not theirs["metadata"].get("finalizers") and not theirs.get("status", {}).get("loadBalancer")
    assert env.load_balancers(theirs["metadata"]["uid"]) == []


def test_bad_annotation_warns_writes_nothing_spares_others_and_recovers(env: Env) -> None:
    env.controller()
    bad_key = "service.beta.kubernetes.io/aws-load-balancer-type"
    bad = env.create_service("bad", annotations={bad_key: "sideways"})
    wait_for(lambda: "SyncLoadBalancerFailed" in env.reasons("bad"), 20, "SyncLoadBalancerFailed")
    warning = next(e for e in env.events("bad") if e["reason"] == "SyncLoadBalancerFailed")
    assert warning["type"] == "Warning" and bad_key in warning["message"] and "sideways" in warning["message"]
    assert env.writes() == [], "no cloud write for an invalid Service"
    assert not (env.svc("bad") or {})["metadata"].get("finalizers")
    env.create_service("good")
    env.wait_ingress("good")
    env.kube.patch_service(NAMESPACE, "bad", {"metadata": {"annotations": {bad_key: "nlb"}}})
    env.wait_ingress("bad")
    assert len(env.load_balancers(bad["metadata"]["uid"])) == 1


def test_dropped_watch_and_410_mid_run_miss_nothing(env: Env) -> None:
    c = env.controller()
    a_uid = env.create_service("a")["metadata"]["uid"]
    env.wait_ingress("a")
    env.api.drop_watches()
    env.create_service("b")  # created while the informer reconnects
    env.wait_ingress("b")
    env.api.expire_resource_versions()
    env.api.drop_watches()  # the reconnect now gets 410 Gone and must relist
    env.create_service("c")
    env.kube.patch_service(
        NAMESPACE,
        "a",
        {
            "spec": {
                "ports": [
                    {"name": "p80", "protocol": "TCP", "port": 80},
                    {"name": "p81", "protocol": "TCP", "port": 81},
                ]
            }
        },
    )
    env.wait_ingress("c")
    wait_for(lambda: env.listener_ports(a_uid) == [(80, "TCP"), (81, "TCP")], 20, "a's new port")
    assert c.services.lists >= 2, "the informer relisted after 410"  # type: ignore[attr-defined]


def test_two_replicas_only_the_leader_writes_and_the_other_takes_over(env: Env) -> None:
    timing = {"leader_elect": True, "lease_namespace": "kube-system", "lease_name": "lbprov-e2e"}
    # A released lease is taken at the standby's next retry, whatever its duration: a long lease and
    # renew deadline cost nothing and keep a loaded machine's slow renewal from handing the lease
    # to b early (a 2 s renew deadline made the standby's "no cloud call" a matter of load).
    timing |= {"lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 0.2}
    a = env.controller(identity="replica-a", **timing)
    wait_for(lambda: a.leading, 10, "replica-a leading")
    b = env.controller(identity="replica-b", **timing)
    wait_for(b.ready, 10, "replica-b ready (caches synced) while not leading")
    env.create_service("one")
    env.wait_ingress("one")
    b_calls = b.providers["aws"].calls.stats
    assert not b.leading and b_calls.reads == 0 and b_calls.writes == 0, "the standby made no cloud call"
    assert a.providers["aws"].calls.stats.writes > 0
    assert (env.kube.get_lease("kube-system", "lbprov-e2e") or {})["spec"]["holderIdentity"] == "replica-a"
    a.stop()  # graceful: releases the lease
    wait_for(lambda: b.leading, 60, "replica-b took over")
    assert (env.kube.get_lease("kube-system", "lbprov-e2e") or {})["spec"]["holderIdentity"] == "replica-b"
    env.create_service("two")
    env.wait_ingress("two")
    assert b.providers["aws"].calls.stats.writes > 0


def test_resync_repairs_drift_made_by_hand_in_the_cloud(env: Env) -> None:
    c = env.controller()
    uid = env.create_service("web", [(80, "TCP"), (443, "TCP")])["metadata"]["uid"]
    env.wait_ingress("web")
    wait_for(c.idle, 10, "controller idle")
    (lb,) = env.load_balancers(uid)
    client = env.elbv2()
    listener = next(
        x
        for x in client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        if x["Port"] == 443
    )
    client.delete_listener(ListenerArn=listener["ListenerArn"])  # somebody "fixes" things by hand
    assert env.listener_ports(uid) == [(80, "TCP")]
    # A listener is a deep check, rotated under the resync read budget: every Service is deep-checked
    # at least once every K resyncs (the provider's drift_check_periods), so K resyncs repair it.
    k = c.providers["aws"].drift_check_periods
    for _ in range(k):
        assert c.resync() == 1
        wait_for(c.idle, 20, "the resync to finish")
        if env.listener_ports(uid) == [(80, "TCP"), (443, "TCP")]:
            break
    wait_for(lambda: env.listener_ports(uid) == [(80, "TCP"), (443, "TCP")], 20, "listener 443 restored")
