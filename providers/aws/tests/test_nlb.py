"""NLB lifecycle, update matrix and the DESIGN.md invariants, through boto3 against moto."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    converge,
    delete_all,
    intent_of,
    kinds,
    node_objects,
)

from lbprov import naming
from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import OwnershipConflict
from lbprov.provider import SandboxCloud

#: NLBs of the older node-rule model (created without security groups), whose NodePort rules these
#: tests pin; the security-group model is pinned by test_nlb_security_groups.py.
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def test_nlb_lifecycle_converges_is_idempotent_and_leaves_nothing(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=[(80, "TCP", 30080), (53, "UDP", 30053)])
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = converge(provider, intent)
    assert sorted(kinds(plan)).count(("create", "target-group")) == 2

    [lb] = view.nlbs(svc.uid)
    assert lb["LoadBalancerName"] == svc.lb_name
    assert lb["Scheme"] == "internet-facing"
    assert lb["Tags"][naming.LB_KIND_TAG] == "nlb"
    assert lb["Tags"][naming.cluster_tag_key(CLUSTER)] == "owned"
    assert {az["SubnetId"] for az in lb["AvailabilityZones"]} == set(cloud.extra["public_subnets"])
    tgs = view.tgs(svc.uid)
    assert [(tg["Protocol"], tg["Port"]) for tg in tgs] == [("UDP", 30053), ("TCP", 30080)]
    instances = sorted(n.provider_id.rsplit("/", 1)[1] for n in cloud.nodes)
    for tg in tgs:
        assert len(tg["TargetGroupName"]) <= 32 and tg["TargetGroupName"].startswith("k8s-default-web-")
        assert tg["Targets"] == instances
        assert tg["TargetType"] == "instance"
        # Cluster policy: TCP on the traffic port, 30/10/3/3 (REFERENCE.md); a UDP port answers no
        # TCP check: kube-proxy's /healthz on 10256 (KEP-3836).
        if tg["Protocol"] == "UDP":
            assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("HTTP", "10256")
            assert tg["HealthCheckPath"] == "/healthz"
        else:
            assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("TCP", "traffic-port")
        assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"]) == (30, 10)
        assert (tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (3, 3)
    listeners = view.listeners(lb["LoadBalancerArn"])
    by_tg = {tg["TargetGroupArn"]: tg["Port"] for tg in tgs}
    assert [
        (li["Port"], li["Protocol"], by_tg[li["DefaultActions"][0]["TargetGroupArn"]]) for li in listeners
    ] == [
        (53, "UDP", 30053),
        (80, "TCP", 30080),
    ]
    assert view.node_rules("client") == {
        ("tcp", 30080, 30080, "0.0.0.0/0"),
        ("udp", 30053, 30053, "0.0.0.0/0"),
    }
    # TCP/30080 is already open to 0.0.0.0/0 for its health checks; the UDP port's health checks
    # go to kube-proxy on TCP 10256, opened from the VPC by the cluster's kube-proxy rule.
    assert view.node_rules("health") == set()
    assert view.node_rules("kube-proxy") == {("tcp", 10256, 10256, "10.0.0.0/16")}

    ingress = provider.apply(provider.plan(intent))
    assert ingress and ingress[0].hostname == lb["DNSName"]

    delete = delete_all(provider, svc)
    assert ("delete", "load-balancer") in kinds(delete)
    view.assert_nothing_owned(svc, [30080, 30053])
    assert view.node_rules("kube-proxy") == set()  # no UDP target group is left
    # What we did not create survives.
    assert any(sg["GroupId"] == cloud.extra["node_security_group_id"] for sg in view.security_groups())


def test_read_only_plan_and_apply_send_no_mutating_request(cloud: SandboxCloud) -> None:
    ro = AWSProvider.from_settings(cloud.settings, read_only=True)
    svc = Svc()
    intent = intent_of(ro, svc, node_objects(cloud))
    seen_before = len(cloud.extra["requests"]())
    plan = ro.plan(intent)
    assert not plan.empty
    with pytest.raises(ReadOnlyViolation):
        ro.apply(plan)
    # Even a caller that ignores the error and calls the SDK directly is refused before sending.
    with pytest.raises(ReadOnlyViolation):
        ro.clients.clients["ec2"].create_security_group(
            GroupName="x", Description="x", VpcId=cloud.extra["vpc_id"]
        )
    assert ro.plan_delete(intent.ref).empty  # nothing exists, so nothing to delete
    # The recorder does see our requests (the reads), so an empty list below means something.
    assert len(cloud.extra["requests"]()) > seen_before
    assert cloud.mutating_requests() == []
    assert ro.calls.stats.writes == 0 and sum(ro.calls.stats.refused.values()) >= 1


def test_read_only_delete_of_existing_lb_sends_nothing(provider: AWSProvider, cloud: SandboxCloud) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    before = list(cloud.mutating_requests())
    ro = AWSProvider.from_settings(cloud.settings, read_only=True)
    plan = ro.plan_delete(intent_of(ro, svc, node_objects(cloud)).ref)
    assert ("delete", "load-balancer") in kinds(plan)
    with pytest.raises(ReadOnlyViolation):
        ro.apply(plan)
    assert cloud.mutating_requests() == before


def test_foreign_lb_with_colliding_name_is_a_conflict_and_untouched(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    # Someone else's NLB (no cluster tag) under the name the Service would get.
    view.elbv2.create_load_balancer(
        Name=svc.lb_name,
        Subnets=cloud.extra["public_subnets"],
        Type="network",
        Tags=[{"Key": "team", "Value": "x"}],
    )
    before = view.nlbs()
    with pytest.raises(OwnershipConflict, match="not owned by Service default/web"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    # Delete never touches it either.
    assert provider.plan_delete(intent_of(provider, svc, node_objects(cloud)).ref).empty
    assert view.nlbs() == before


def test_lb_of_another_service_uid_is_a_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    other_tags = naming.ownership_tags(
        CLUSTER, dataclasses.replace(intent_of(provider, svc, []).ref, uid="other")
    )
    view.elbv2.create_load_balancer(
        Name=svc.lb_name,
        Subnets=cloud.extra["public_subnets"],
        Type="network",
        Tags=[{"Key": k, "Value": v} for k, v in other_tags.items()],
    )
    with pytest.raises(OwnershipConflict, match="Service UID other"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))


def test_foreign_target_group_with_colliding_name_is_a_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    intent = intent_of(provider, svc, node_objects(cloud))
    name = next(c.name for c in provider.plan(intent).changes if c.kind == "target-group")
    view.elbv2.create_target_group(Name=name, Protocol="TCP", Port=1, VpcId=cloud.extra["vpc_id"])
    with pytest.raises(OwnershipConflict, match=f"target group '{name}'"):
        provider.plan(intent)
    [tg] = [tg for tg in view.tgs() if tg["TargetGroupName"] == name]
    assert tg["Port"] == 1


def test_foreign_security_group_rules_are_never_touched(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    sg = cloud.extra["node_security_group_id"]
    foreign = [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}],
        },
        # Same port and CIDR as the Service will want, made by someone else.
        {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]
    view.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=foreign)
    svc = Svc()
    intent = intent_of(provider, svc, node_objects(cloud))
    converge(provider, intent)
    delete_all(provider, svc)
    perms = {(p["FromPort"], r["CidrIp"]) for p in view.node_sg()["IpPermissions"] for r in p["IpRanges"]}
    assert {(22, "0.0.0.0/0"), (30080, "0.0.0.0/0")} <= perms


def test_node_rules_aggregate_contiguous_node_ports_across_services(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    services = [Svc(name=f"s{i}", ports=[(80, "TCP", 30100 + i)]) for i in range(6)]
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    # Six Services, one rule (upstream: six).
    assert view.node_rules() == {("tcp", 30100, 30105, "0.0.0.0/0")}
    # Removing one from the middle splits the range; the others keep their ports.
    delete_all(provider, services[2])
    assert view.node_rules() == {("tcp", 30100, 30101, "0.0.0.0/0"), ("tcp", 30103, 30105, "0.0.0.0/0")}
    for svc in services:
        if svc is not services[2]:
            assert provider.plan(intent_of(provider, svc, nodes)).empty
    for svc in services:
        delete_all(provider, svc)
    assert view.node_rules() == set()


def test_local_policy_health_check_and_rule(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        spec={
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "loadBalancerSourceRanges": ["203.0.113.0/24"],
        }
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [tg] = view.tgs(svc.uid)
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"]) == (
        "HTTP",
        "32000",
        "/healthz",
    )
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"]) == (10, 10)
    assert (tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (2, 2)
    assert view.node_rules("client") == {("tcp", 30080, 30080, "203.0.113.0/24")}
    assert view.node_rules("health") == {("tcp", 32000, 32000, "10.0.0.0/16")}
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080, 32000])


def _set(**kw: Any) -> Callable[[Svc], None]:
    def apply(svc: Svc) -> None:
        for key, value in kw.items():
            if key == "annotations":
                svc.annotations.update(value)
            elif key == "drop_annotations":
                for k in value:
                    svc.annotations.pop(k, None)
            elif key == "spec":
                svc.spec.update(value)
            else:
                setattr(svc, key, value)

    return apply


def test_tcp_and_udp_on_one_port_share_a_tcp_udp_listener(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=[(53, "TCP", 30053), (53, "UDP", 30053)])
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [tg] = view.tgs(svc.uid)
    assert (tg["Protocol"], tg["Port"]) == ("TCP_UDP", 30053)
    [lb] = view.nlbs(svc.uid)
    [li] = view.listeners(lb["LoadBalancerArn"])
    assert (li["Protocol"], li["Port"]) == ("TCP_UDP", 53)
    assert view.node_rules("client") == {
        ("tcp", 30053, 30053, "0.0.0.0/0"),
        ("udp", 30053, 30053, "0.0.0.0/0"),
    }
    svc.ports = [(53, "UDP", 30053)]
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert ("replace", "listener") in kinds(plan)
    assert view.node_rules("client") == {("udp", 30053, 30053, "0.0.0.0/0")}
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30053])


def _check_ports(view: AwsView, svc: Svc) -> None:
    tgs = view.tgs(svc.uid)
    [lb] = view.nlbs(svc.uid)
    listeners = view.listeners(lb["LoadBalancerArn"])
    by_arn = {tg["TargetGroupArn"]: (tg["Protocol"], tg["Port"]) for tg in tgs}
    got = sorted((li["Port"], *by_arn[li["DefaultActions"][0]["TargetGroupArn"]]) for li in listeners)
    assert all(li["Protocol"] == by_arn[li["DefaultActions"][0]["TargetGroupArn"]][0] for li in listeners)
    assert got == sorted((p, proto, np) for p, proto, np in svc.ports)
    assert len(tgs) == len(svc.ports)
    client = view.node_rules("client")
    for _, proto, np in svc.ports:
        assert any(r[0] == proto.lower() and r[1] <= np <= r[2] for r in client)


# (id, mutation, expected (action, kind) pairs that must appear, check)
MATRIX: list[tuple[str, Callable[[Svc], None], set[tuple[str, str]], Callable[[AwsView, Svc], None]]] = [
    (
        "port-added",
        _set(ports=[(80, "TCP", 30080), (443, "TCP", 30443)]),
        {("create", "target-group"), ("create", "listener"), ("create", "security-group-rule")},
        _check_ports,
    ),
    (
        "port-removed",
        _set(ports=[]),  # replaced below by a two-port start
        {("delete", "target-group"), ("delete", "listener")},
        _check_ports,
    ),
    (
        "node-port-changed",
        _set(ports=[(80, "TCP", 30090)]),
        {("create", "target-group"), ("update", "listener"), ("delete", "target-group")},
        _check_ports,
    ),
    (
        "service-port-changed",
        _set(ports=[(8080, "TCP", 30080)]),
        {("create", "listener"), ("delete", "listener")},
        _check_ports,
    ),
    (
        "tcp-to-udp",
        _set(ports=[(80, "UDP", 30080)]),
        # One listener per port, recreated for a change to or from UDP; the target group is replaced.
        {("create", "target-group"), ("delete", "target-group"), ("replace", "listener")},
        _check_ports,
    ),
    (
        "udp-to-tcp",
        _set(ports=[(80, "TCP", 30080)]),
        {("create", "target-group"), ("delete", "target-group"), ("replace", "listener")},
        _check_ports,
    ),
]


@pytest.mark.parametrize("case", MATRIX, ids=[m[0] for m in MATRIX])
def test_port_update_matrix(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, case: tuple[Any, ...]
) -> None:
    name, mutate, expected, check = case
    nodes = node_objects(cloud)
    start = {"port-removed": [(80, "TCP", 30080), (443, "TCP", 30443)], "udp-to-tcp": [(80, "UDP", 30080)]}
    svc = Svc(ports=start.get(name, [(80, "TCP", 30080)]))
    converge(provider, intent_of(provider, svc, nodes))
    [lb_before] = view.nlbs(svc.uid)
    if name == "port-removed":
        svc.ports = [(80, "TCP", 30080)]
    else:
        mutate(svc)
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert expected <= set(kinds(plan)), kinds(plan)
    assert ("replace", "load-balancer") not in kinds(plan)
    check(view, svc)
    [lb_after] = view.nlbs(svc.uid)
    assert lb_after["LoadBalancerArn"] == lb_before["LoadBalancerArn"]  # updated in place
    old_ports = [30080, 30443, 30090]
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, old_ports)


def test_nodes_added_removed_and_excluded(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    new = cloud.add_node("node-d")
    cloud.nodes.append(new)
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert kinds(plan) == [("update", "target-group")]
    assert new.provider_id.rsplit("/", 1)[1] in view.tgs(svc.uid)[0]["Targets"]
    # node-a excluded by label, node-b removed.
    nodes = [
        n
        for n in node_objects(
            cloud, {"node-a": {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}}
        )
        if n["metadata"]["name"] != "node-b"
    ]
    converge(provider, intent_of(provider, svc, nodes))
    expected = sorted(n.provider_id.rsplit("/", 1)[1] for n in cloud.nodes if n.name in ("node-c", "node-d"))
    assert view.tgs(svc.uid)[0]["Targets"] == expected


def test_target_node_labels_restrict_targets(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={ANN + "target-node-labels": "pool=edge"})
    nodes = node_objects(cloud, {"node-b": {"pool": "edge"}})
    converge(provider, intent_of(provider, svc, nodes))
    b = next(n for n in cloud.nodes if n.name == "node-b")
    assert view.tgs(svc.uid)[0]["Targets"] == [b.provider_id.rsplit("/", 1)[1]]


def test_local_cluster_affinity_and_source_ranges_update_in_place(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    # Cluster -> Local: health check becomes HTTP /healthz on the healthCheckNodePort.
    svc.spec.update(externalTrafficPolicy="Local", healthCheckNodePort=32100)
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert ("update", "target-group") in kinds(plan)
    assert view.tgs(svc.uid)[0]["HealthCheckPort"] == "32100"
    assert ("tcp", 32100, 32100, "10.0.0.0/16") in view.node_rules("health")
    # ClientIP on: source_ip stickiness.
    svc.spec.update(sessionAffinity="ClientIP")
    converge(provider, intent_of(provider, svc, nodes))
    attrs = view.tgs(svc.uid)[0]["Attributes"]
    assert (attrs["stickiness.enabled"], attrs["stickiness.type"]) == ("true", "source_ip")
    # Source ranges: client rules follow.
    svc.spec["loadBalancerSourceRanges"] = ["198.51.100.0/24", "203.0.113.0/24"]
    converge(provider, intent_of(provider, svc, nodes))
    assert view.node_rules("client") == {
        ("tcp", 30080, 30080, "198.51.100.0/24"),
        ("tcp", 30080, 30080, "203.0.113.0/24"),
    }
    # Back: Local -> Cluster, ClientIP off, all sources.
    for key in (
        "externalTrafficPolicy",
        "healthCheckNodePort",
        "sessionAffinity",
        "loadBalancerSourceRanges",
    ):
        svc.spec.pop(key)
    converge(provider, intent_of(provider, svc, nodes))
    [tg] = view.tgs(svc.uid)
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("TCP", "traffic-port")
    assert tg["Attributes"]["stickiness.enabled"] == "false"
    assert view.node_rules() == {("tcp", 30080, 30080, "0.0.0.0/0")}
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080, 32100])


def test_internal_external_switch_replaces_the_lb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations[ANN + "internal"] = "true"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert ("replace", "load-balancer") in kinds(plan)
    [lb] = view.nlbs(svc.uid)
    assert lb["Scheme"] == "internal"
    assert {az["SubnetId"] for az in lb["AvailabilityZones"]} == set(cloud.extra["private_subnets"])
    assert len(view.listeners(lb["LoadBalancerArn"])) == 1
    svc.annotations.pop(ANN + "internal")
    svc.annotations[ANN + "scheme"] = "internet-facing"
    converge(provider, intent_of(provider, svc, nodes))
    assert [lb["Scheme"] for lb in view.nlbs(svc.uid)] == ["internet-facing"]
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080])


def test_tags_attributes_proxy_protocol_and_health_overrides(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(annotations={ANN + "additional-resource-tags": "team=web,env=prod"})
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    assert (lb["Tags"]["team"], lb["Tags"]["env"]) == ("web", "prod")
    # A tag added by hand (not ours) must survive our tag updates.
    view.elbv2.add_tags(ResourceArns=[lb["LoadBalancerArn"]], Tags=[{"Key": "by-hand", "Value": "1"}])
    svc.annotations.update(
        {
            ANN + "additional-resource-tags": "team=api",
            ANN + "cross-zone-load-balancing-enabled": "true",
            ANN + "proxy-protocol": "*",
            ANN + "healthcheck-protocol": "HTTP",
            ANN + "healthcheck-path": "/ready",
            ANN + "healthcheck-interval": "15",
            ANN + "healthcheck-timeout": "5",
            ANN + "healthcheck-healthy-threshold": "4",
            ANN + "healthcheck-unhealthy-threshold": "5",
        }
    )
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert {("update", "load-balancer"), ("update", "target-group")} <= set(kinds(plan))
    [lb] = view.nlbs(svc.uid)
    assert lb["Tags"]["team"] == "api" and "env" not in lb["Tags"] and lb["Tags"]["by-hand"] == "1"
    assert view.lb_attributes(lb["LoadBalancerArn"])["load_balancing.cross_zone.enabled"] == "true"
    [tg] = view.tgs(svc.uid)
    assert tg["Tags"]["team"] == "api" and "env" not in tg["Tags"]
    assert tg["Attributes"]["proxy_protocol_v2.enabled"] == "true"
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"]) == (
        "HTTP",
        "/ready",
        15,
    )
    assert (tg["HealthCheckTimeoutSeconds"], tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (
        5,
        4,
        5,
    )
    svc.annotations.clear()
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    assert "team" not in lb["Tags"] and lb["Tags"]["by-hand"] == "1"
    assert view.lb_attributes(lb["LoadBalancerArn"])["load_balancing.cross_zone.enabled"] == "false"


def test_tls_listener_with_acm_certificate(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    cert = cloud.extra["create_certificate"]("web.example.com")
    nodes = node_objects(cloud)
    svc = Svc(
        ports=[(80, "TCP", 30080), (443, "TCP", 30443)],
        annotations={ANN + "ssl-cert": cert, ANN + "ssl-ports": "443"},
    )
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    listeners = {li["Port"]: li for li in view.listeners(lb["LoadBalancerArn"])}
    assert listeners[80]["Protocol"] == "TCP"
    assert listeners[443]["Protocol"] == "TLS"
    assert listeners[443]["Certificates"][0]["CertificateArn"] == cert
    # TLS off again: the listener is modified in place.
    svc.annotations.clear()
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "listener")]


def test_subnets_annotation_by_name_and_id(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    nodes = node_objects(cloud)
    first = cloud.extra["public_subnets"][0]
    svc = Svc(annotations={ANN + "subnets": first})
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    assert [az["SubnetId"] for az in lb["AvailabilityZones"]] == [first]
    # Widened by Name tag: SetSubnets in place (moto refuses fewer than two AZs for SetSubnets).
    svc.annotations[ANN + "subnets"] = f"{CLUSTER}-public-us-east-1b,{first}"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "load-balancer")]
    [lb] = view.nlbs(svc.uid)
    assert {az["SubnetId"] for az in lb["AvailabilityZones"]} == set(cloud.extra["public_subnets"])


def test_no_candidate_subnet_gives_a_clear_error(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    from lbprov.model import InvalidService

    # Role tags are a preference (upstream): only subnets of another cluster leave no candidate.
    subnets = cloud.extra["private_subnets"] + cloud.extra["public_subnets"]
    view.ec2.delete_tags(Resources=subnets, Tags=[{"Key": "kubernetes.io/cluster/test"}])
    view.ec2.create_tags(Resources=subnets, Tags=[{"Key": "kubernetes.io/cluster/other", "Value": "owned"}])
    svc = Svc(annotations={ANN + "scheme": "internal"})
    with pytest.raises(InvalidService, match=r"subnets tagged kubernetes.io/cluster/test or for no cluster"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    svc.annotations[ANN + "subnets"] = "no-such-subnet"
    with pytest.raises(InvalidService, match="no-such-subnet"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))


def test_drift_made_by_hand_is_repaired(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    nodes = node_objects(cloud)
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    [tg] = view.tgs(svc.uid)
    [li] = view.listeners(lb["LoadBalancerArn"])
    view.elbv2.delete_listener(ListenerArn=li["ListenerArn"])
    view.elbv2.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": tg["Targets"][0]}])
    view.ec2.revoke_security_group_ingress(
        GroupId=cloud.extra["node_security_group_id"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert sorted(kinds(plan)) == [
        ("create", "listener"),
        ("create", "security-group-rule"),
        ("update", "target-group"),
    ]


def test_service_without_nodes_keeps_its_rules_and_gets_targets_back(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    plan = converge(provider, intent_of(provider, svc, []))
    assert kinds(plan) == [("update", "target-group")]
    assert view.tgs(svc.uid)[0]["Targets"] == []
    assert view.node_rules() == {("tcp", 30080, 30080, "0.0.0.0/0")}
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert len(view.tgs(svc.uid)[0]["Targets"]) == 3


def test_applying_a_stale_create_plan_twice_makes_no_second_lb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """moto (unlike AWS) creates a second LB under an existing name: apply describes first."""
    svc = Svc()
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    lb_change = [c for c in plan.changes if c.kind == "load-balancer"]
    provider.apply(plan)
    from lbprov.model import Plan

    provider.apply(Plan("aws", plan.ref, tuple(lb_change), plan.intent, data=plan.data))
    assert len(view.nlbs(svc.uid)) == 1
    assert len([lb for lb in view.nlbs() if lb["LoadBalancerName"] == svc.lb_name]) == 1


def test_provider_satisfies_the_protocol(provider: AWSProvider) -> None:
    from lbprov.provider import Provider

    assert isinstance(provider, Provider)


def test_custom_health_port_never_takes_over_another_services_rule(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    a = Svc(name="a", ports=[(80, "TCP", 30080)])
    # b health-checks a's NodePort (odd, but allowed): b must neither open nor revoke it.
    b = Svc(name="b", ports=[(80, "TCP", 30090)], annotations={ANN + "healthcheck-port": "30080"})
    b.spec["loadBalancerSourceRanges"] = ["203.0.113.0/24"]
    converge(provider, intent_of(provider, a, nodes))
    converge(provider, intent_of(provider, b, nodes))
    delete_all(provider, b)
    assert view.node_rules() == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert provider.plan(intent_of(provider, a, nodes)).empty


def test_rule_changes_of_one_plan_go_in_one_call_per_group_and_action(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=[(80, "TCP", 30080), (443, "TCP", 30082)])
    svc.spec["loadBalancerSourceRanges"] = ["198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"]
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    assert sum(c.kind == "security-group-rule" for c in plan.changes) == 8  # 2 ports x 3 CIDRs + 2 health
    provider.calls.reset()
    provider.apply(plan)
    assert provider.calls.stats.sent[("ec2:AuthorizeSecurityGroupIngress", "write")] == 1
    assert len(view.node_rules()) == 8
    provider.calls.reset()
    delete_all(provider, svc)
    assert provider.calls.stats.sent[("ec2:RevokeSecurityGroupIngress", "write")] == 1
    view.assert_nothing_owned(svc, [30080, 30082])


def test_a_plan_made_before_another_apply_still_applies_exactly(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """apply recomputes the shared node rules from a fresh read: a plan made before another
    Service changed them applies on the first try, and neither Service's port is lost."""
    nodes = node_objects(cloud)
    a, b = Svc(name="a", ports=[(80, "TCP", 30100)]), Svc(name="b", ports=[(80, "TCP", 30101)])
    plan_a = provider.plan(intent_of(provider, a, nodes))
    converge(provider, intent_of(provider, b, nodes))  # changes the node rules after plan_a was made
    provider.apply(plan_a)
    assert view.node_rules() == {("tcp", 30100, 30101, "0.0.0.0/0")}
    converge(provider, intent_of(provider, a, nodes))  # converged; a second apply writes nothing
    assert provider.plan(intent_of(provider, b, nodes)).empty


def test_services_planned_from_one_snapshot_apply_concurrently_on_the_first_try(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """N Services planned from the same snapshot, applied at once from threads: every apply
    succeeds on the first try and the rules are exact (no port lost, none extra); then deletes of
    half of them, planned from one snapshot too."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    nodes = node_objects(cloud)
    # Contiguous NodePorts share ranges (the hardest case) plus a second CIDR and a UDP port.
    services = [Svc(name=f"c{i}", ports=[(80, "TCP", 30300 + i)]) for i in range(10)]
    services.append(Svc(name="udp", ports=[(53, "UDP", 30310)]))
    restricted = Svc(name="r", ports=[(80, "TCP", 30311)])
    restricted.spec["loadBalancerSourceRanges"] = ["203.0.113.0/24"]
    services.append(restricted)
    plans = [provider.plan(intent_of(provider, s, nodes)) for s in services]
    barrier = threading.Barrier(len(plans))

    def apply(plan: Any) -> None:
        barrier.wait()
        provider.apply(plan)

    with ThreadPoolExecutor(len(plans)) as pool:
        list(pool.map(apply, plans))  # raises if any apply failed
    assert view.node_rules() == {
        ("tcp", 30300, 30309, "0.0.0.0/0"),
        ("udp", 30310, 30310, "0.0.0.0/0"),
        ("tcp", 30311, 30311, "203.0.113.0/24"),
        # Health checks from the VPC: r's (the UDP Service's go to kube-proxy on 10256).
        ("tcp", 30311, 30311, "10.0.0.0/16"),
    }
    assert view.node_rules("kube-proxy") == {("tcp", 10256, 10256, "10.0.0.0/16")}
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))  # empty plan, idempotent apply
    gone = [*services[0:10:2], restricted]
    deletes = [provider.plan_delete(intent_of(provider, s, []).ref) for s in gone]
    barrier = threading.Barrier(len(deletes))
    with ThreadPoolExecutor(len(deletes)) as pool:
        list(pool.map(apply, deletes))
    assert view.node_rules() == {("tcp", p, p, "0.0.0.0/0") for p in (30301, 30303, 30305, 30307, 30309)} | {
        ("udp", 30310, 30310, "0.0.0.0/0"),
    }
    assert view.node_rules("kube-proxy") == {("tcp", 10256, 10256, "10.0.0.0/16")}
    for svc in services:
        if svc not in gone:
            assert provider.plan(intent_of(provider, svc, nodes)).empty


def test_unknown_instance_is_never_registered(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """moto (unlike AWS) accepts RegisterTargets for instances that do not exist: the plan only
    registers instances DescribeInstances found."""
    nodes = node_objects(cloud)
    nodes.append(
        {
            "metadata": {"name": "ghost", "labels": {}},
            "spec": {"providerID": "aws:///us-east-1a/i-0000000000ghost"},
        }
    )
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    assert "i-0000000000ghost" not in view.tgs(svc.uid)[0]["Targets"]
    assert len(view.tgs(svc.uid)[0]["Targets"]) == 3
