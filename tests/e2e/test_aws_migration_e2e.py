"""Moving a cluster from cloud-provider-aws to lbprov, end to end (issue 10).

Two Services have the load balancers cloud-provider-aws made for them, through boto3 exactly as
upstream does (lbprov_aws.testing_upstream): a classic ELB (upstream's default, the Service has no
type annotation) and an NLB (``aws-load-balancer-type: nlb``), with upstream's status and finalizer.
The real controller then runs on the sandbox Kubernetes API with lbprov's default (NLB): both
Services keep their hostnames and their load balancers, which become lbprov's; deleting the Services
leaves nothing of upstream's behind.
"""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws.testing import Svc
from lbprov_aws.testing_upstream import Upstream, make_upstream_classic, make_upstream_nlb

from lbprov import naming
from lbprov.controller.service import FINALIZER

from .conftest import NAMESPACE, Env, wait_for

pytestmark = pytest.mark.e2e

TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"


def _as_upstream_left_it(
    env: Env, name: str, annotations: dict[str, str], kind: str
) -> tuple[dict[str, Any], Upstream]:
    """A Service with cloud-provider-aws's load balancer, status and finalizer."""
    created = env.create_service(name, [(80, "TCP"), (443, "TCP")], annotations=annotations)
    ports = [(p["port"], p["protocol"], p["nodePort"]) for p in created["spec"]["ports"]]
    svc = Svc(name=name, namespace=NAMESPACE, uid=created["metadata"]["uid"], ports=ports)
    up = (make_upstream_classic if kind == "classic" else make_upstream_nlb)(env.cloud, svc)
    env.kube.patch_service(NAMESPACE, name, {"metadata": {"finalizers": [FINALIZER]}})
    env.kube.patch_service_status(
        NAMESPACE, name, {"status": {"loadBalancer": {"ingress": [{"hostname": up.dns}]}}}
    )
    return created, up


def _tags(env: Env, kind: str, lb_name: str) -> dict[str, str]:
    if kind == "classic":
        descs = env.box.client("elb").describe_tags(LoadBalancerNames=[lb_name])["TagDescriptions"]
    else:
        (lb,) = [
            lb
            for lb in env.elbv2().describe_load_balancers()["LoadBalancers"]
            if lb["LoadBalancerName"] == lb_name
        ]
        descs = env.elbv2().describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"]
    return {t["Key"]: t["Value"] for t in descs[0]["Tags"]} if descs else {}


def test_services_of_cloud_provider_aws_keep_their_hostnames_under_lbprov(env: Env) -> None:
    legacy, up_classic = _as_upstream_left_it(env, "legacy", {}, "classic")
    fast, up_nlb = _as_upstream_left_it(env, "fast", {TYPE: "nlb"}, "nlb")
    env.controller()  # default_load_balancer_type is nlb: the classic ELB is kept all the same
    for svc, up, kind in ((legacy, up_classic, "classic"), (fast, up_nlb, "nlb")):
        name, uid = svc["metadata"]["name"], svc["metadata"]["uid"]

        def adopted(kind: str = kind, up: Upstream = up, uid: str = uid) -> bool:
            return _tags(env, kind, up.lb_name).get(naming.SERVICE_UID_TAG) == uid

        def updated(name: str = name) -> list[str]:
            # The Service had upstream's ingress: lbprov reports an update that names the adoption.
            return [e["message"] for e in env.events(name) if e["reason"] == "UpdatedLoadBalancer"]

        wait_for(adopted, 60, f"{kind} of {name} adopted")
        (message,) = wait_for(updated, 30, f"UpdatedLoadBalancer of {name}")
        assert "adopted" in message, message
        assert env.wait_ingress(name) == [{"hostname": up.dns}]
    # Nothing was made anew: one classic ELB, one NLB, upstream's two target groups.
    classics = env.box.client("elb").describe_load_balancers()["LoadBalancerDescriptions"]
    assert [(lb["LoadBalancerName"], lb["DNSName"]) for lb in classics] == [
        (up_classic.lb_name, up_classic.dns)
    ]
    nlbs = env.elbv2().describe_load_balancers()["LoadBalancers"]
    assert [(lb["LoadBalancerName"], lb["DNSName"]) for lb in nlbs] == [(up_nlb.lb_name, up_nlb.dns)]
    assert sorted(tg["TargetGroupName"] for tg in env.target_groups(fast["metadata"]["uid"])) == sorted(
        up_nlb.target_groups
    )
    assert not any(r in ("SyncLoadBalancerFailed",) for r in env.reasons("legacy") + env.reasons("fast"))

    for name in ("legacy", "fast"):
        env.kube.delete_service(NAMESPACE, name)
    wait_for(lambda: env.svc("legacy") is None and env.svc("fast") is None, 60, "both Services gone")
    assert env.box.client("elb").describe_load_balancers()["LoadBalancerDescriptions"] == []
    assert env.elbv2().describe_load_balancers()["LoadBalancers"] == []
    assert env.elbv2().describe_target_groups()["TargetGroups"] == []
    groups = env.box.client("ec2").describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups if g["GroupName"].startswith("k8s-elb-a")] == []
    node_sg = next(g for g in groups if g["GroupId"] == env.cloud.extra["node_security_group_id"])
    assert all(
        not (r.get("Description") or "").startswith("kubernetes.io/rule/nlb/")
        for perm in node_sg["IpPermissions"]
        for r in perm.get("IpRanges", [])
    )
    admitted = {
        pair["GroupId"] for perm in node_sg["IpPermissions"] for pair in perm.get("UserIdGroupPairs", [])
    }
    assert up_classic.security_group_id not in admitted
