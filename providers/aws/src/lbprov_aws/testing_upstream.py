"""Test support: a Service's load balancer made exactly as cloud-provider-aws makes it.

Used by the adoption tests (tests/test_adopt.py) and the end-to-end migration test. Every request
is what upstream's ``EnsureLoadBalancer`` sends (kubernetes/cloud-provider-aws
``pkg/providers/v1/aws.go`` for the classic ELB, ``aws_loadbalancer.go`` for ``type: nlb``), through
plain boto3 against the sandbox, independently of the provider under test:

* classic ELB ``a<uid>[:32]``, tags ``kubernetes.io/service-name`` and ``kubernetes.io/cluster/<c>=owned``;
  its own security group ``k8s-elb-<lb>`` described ``Security group for Kubernetes ELB <lb> (<ns>/<name>)``,
  tagged only for the cluster (``ensureSecurityGroup``), opening the service ports and ICMP 3/4
  (path MTU) to the source ranges, rules without descriptions; TCP listeners to the NodePorts; the
  health check ``TCP:<first NodePort>`` 10/5/2/6; every node registered; one all-protocol rule in
  the node security group admitting the ELB's group (no description).
* NLB ``a<uid>[:32]`` (same tags), one target group per port named as ``buildTargetGroupName``
  (``k8s-<ns[:8]>-<name[:8]>-<sha1(...)[:10]>``, non-alphanumerics removed), TCP health check on the
  traffic port 30/10/3/3, one listener per port, and in the node security group the NodePorts from
  the source ranges described ``kubernetes.io/rule/nlb/client=<lb>``, ICMP 3/4 described
  ``kubernetes.io/rule/nlb/mtu=<lb>``, and (only where the client rule does not already admit the
  VPC) the health ports from the VPC CIDR described ``kubernetes.io/rule/nlb/health=<lb>``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lbprov import naming
from lbprov.provider import SandboxCloud
from lbprov_aws.options import provider_id_instance
from lbprov_aws.sandbox import MotoSandbox
from lbprov_aws.testing import Svc

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


@dataclass
class Upstream:
    """What the helper made (names and IDs), for assertions."""

    lb_name: str
    dns: str
    lb_arn: str | None = None
    security_group_id: str | None = None
    target_groups: tuple[str, ...] = ()


def upstream_target_group_name(
    cluster: str,
    svc: Svc,
    port: int,
    node_port: int,
    protocol: str = "TCP",
    hc_protocol: str = "TCP",
    hc_interval: int = 30,
) -> str:
    """cloud-provider-aws ``buildTargetGroupName`` (sha1 over the cluster ID, namespace, name,
    service port, NodePort, target protocol, target type, health-check protocol and interval)."""
    h = hashlib.sha1()  # upstream's name, not a security use
    for part in (
        cluster,
        svc.namespace,
        svc.name,
        str(port),
        str(node_port),
        protocol,
        "instance",
        hc_protocol,
        str(hc_interval),
    ):
        h.update(part.encode())
    ns = _NON_ALNUM.sub("", svc.namespace)[:8]
    name = _NON_ALNUM.sub("", svc.name)[:8]
    return f"k8s-{ns}-{name}-{h.hexdigest()[:10]}"


def _instances(cloud: SandboxCloud) -> list[str]:
    return sorted(i for n in cloud.nodes if (i := provider_id_instance(n.provider_id)))


def _tags(cluster: str, svc: Svc, service_key: str | None = None) -> list[dict[str, str]]:
    return [
        {"Key": naming.SERVICE_NAME_TAG, "Value": service_key or f"{svc.namespace}/{svc.name}"},
        {"Key": naming.cluster_tag_key(cluster), "Value": naming.OWNED},
    ]


def make_upstream_classic(
    cloud: SandboxCloud,
    svc: Svc,
    *,
    source_ranges: Sequence[str] = ("0.0.0.0/0",),
    cluster: str | None = None,
    service_key: str | None = None,
) -> Upstream:
    """A classic ELB for ``svc`` as cloud-provider-aws's default mode makes it."""
    box: MotoSandbox = cloud.extra["sandbox"]
    ec2, elb = box.client("ec2"), box.client("elb")
    cluster = cluster or cloud.extra["cluster"]
    lb = svc.lb_name
    sg = ec2.create_security_group(
        GroupName=f"k8s-elb-{lb}",
        Description=f"Security group for Kubernetes ELB {lb} ({svc.namespace}/{svc.name})",
        VpcId=cloud.extra["vpc_id"],
    )["GroupId"]
    ec2.create_tags(Resources=[sg], Tags=[{"Key": naming.cluster_tag_key(cluster), "Value": naming.OWNED}])
    ranges = [{"CidrIp": c} for c in source_ranges]
    perms: list[dict[str, Any]] = [
        {"IpProtocol": proto.lower(), "FromPort": port, "ToPort": port, "IpRanges": ranges}
        for port, proto, _ in svc.ports
    ]
    perms.append({"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": ranges})
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms)
    dns = elb.create_load_balancer(
        LoadBalancerName=lb,
        Listeners=[
            {
                "Protocol": "TCP",
                "LoadBalancerPort": port,
                "InstanceProtocol": "TCP",
                "InstancePort": node_port,
            }
            for port, _, node_port in svc.ports
        ],
        Subnets=list(cloud.extra["public_subnets"]),
        SecurityGroups=[sg],
        Tags=_tags(cluster, svc, service_key),
    )["DNSName"]
    elb.configure_health_check(
        LoadBalancerName=lb,
        HealthCheck={
            "Target": f"TCP:{svc.ports[0][2]}",
            "Interval": 10,
            "Timeout": 5,
            "HealthyThreshold": 2,
            "UnhealthyThreshold": 6,
        },
    )
    elb.register_instances_with_load_balancer(
        LoadBalancerName=lb, Instances=[{"InstanceId": i} for i in _instances(cloud)]
    )
    ec2.authorize_security_group_ingress(
        GroupId=cloud.extra["node_security_group_id"],
        IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}],
    )
    return Upstream(lb_name=lb, dns=dns, security_group_id=sg)


def _covers(cidrs: Sequence[str], cidr: str) -> bool:
    inner = ipaddress.ip_network(cidr)
    return any(
        inner.version == (net := ipaddress.ip_network(c)).version and inner.subnet_of(net)  # type: ignore[arg-type]
        for c in cidrs
    )


def make_upstream_nlb(
    cloud: SandboxCloud,
    svc: Svc,
    *,
    source_ranges: Sequence[str] = ("0.0.0.0/0",),
    cluster: str | None = None,
    service_key: str | None = None,
    health_node_port: int | None = None,
) -> Upstream:
    """An NLB for ``svc`` (annotated ``aws-load-balancer-type: nlb``) as cloud-provider-aws makes it;
    ``health_node_port``: ``externalTrafficPolicy: Local``, checked by HTTP ``/healthz`` on it 10/10/2/2."""
    box: MotoSandbox = cloud.extra["sandbox"]
    ec2, elbv2 = box.client("ec2"), box.client("elbv2")
    cluster = cluster or cloud.extra["cluster"]
    lb = elbv2.create_load_balancer(
        Name=svc.lb_name,
        Subnets=list(cloud.extra["public_subnets"]),
        Scheme="internet-facing",
        Type="network",
        Tags=_tags(cluster, svc, service_key),
    )["LoadBalancers"][0]
    tgs: list[str] = []
    for port, proto, node_port in svc.ports:
        health: dict[str, Any] = {
            "HealthCheckProtocol": "TCP",
            "HealthCheckPort": "traffic-port",
            "HealthCheckIntervalSeconds": 30,
            "HealthCheckTimeoutSeconds": 10,
            "HealthyThresholdCount": 3,
            "UnhealthyThresholdCount": 3,
        }
        if health_node_port is not None:
            health = {
                "HealthCheckProtocol": "HTTP",
                "HealthCheckPort": str(health_node_port),
                "HealthCheckPath": "/healthz",
                "HealthCheckIntervalSeconds": 10,
                "HealthCheckTimeoutSeconds": 10,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 2,
            }
        name = upstream_target_group_name(
            cluster,
            svc,
            port,
            node_port,
            proto,
            health["HealthCheckProtocol"],
            health["HealthCheckIntervalSeconds"],
        )
        arn = elbv2.create_target_group(
            Name=name,
            Protocol=proto,
            Port=node_port,
            VpcId=cloud.extra["vpc_id"],
            TargetType="instance",
            Tags=_tags(cluster, svc, service_key),
            **health,
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in _instances(cloud)])
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol=proto,
            Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
        )
        tgs.append(name)
    node_sg = cloud.extra["node_security_group_id"]
    perms: list[dict[str, Any]] = []
    client = f"kubernetes.io/rule/nlb/client={svc.lb_name}"
    for _, proto, node_port in svc.ports:
        perms.append(
            {
                "IpProtocol": proto.lower(),
                "FromPort": node_port,
                "ToPort": node_port,
                "IpRanges": [{"CidrIp": c, "Description": client} for c in source_ranges],
            }
        )
    # Health checks come from the load balancer's subnets; no rule where the client rule admits them.
    subnets = ec2.describe_subnets(SubnetIds=list(cloud.extra["public_subnets"]))["Subnets"]
    subnet_cidrs = sorted(s["CidrBlock"] for s in subnets if not _covers(source_ranges, s["CidrBlock"]))
    health_ports = (
        {n for _, p, n in svc.ports if p == "TCP"} if health_node_port is None else {health_node_port}
    )
    if health_node_port is not None:  # not a client port: the client rule never covers it
        subnet_cidrs = sorted(s["CidrBlock"] for s in subnets)
    if subnet_cidrs:
        health_rule = f"kubernetes.io/rule/nlb/health={svc.lb_name}"
        for node_port in sorted(health_ports):
            perms.append(
                {
                    "IpProtocol": "tcp",
                    "FromPort": node_port,
                    "ToPort": node_port,
                    "IpRanges": [{"CidrIp": c, "Description": health_rule} for c in subnet_cidrs],
                }
            )
    mtu = f"kubernetes.io/rule/nlb/mtu={svc.lb_name}"
    perms.append(
        {
            "IpProtocol": "icmp",
            "FromPort": 3,
            "ToPort": 4,
            "IpRanges": [{"CidrIp": c, "Description": mtu} for c in source_ranges],
        }
    )
    ec2.authorize_security_group_ingress(GroupId=node_sg, IpPermissions=perms)
    return Upstream(
        lb_name=svc.lb_name, dns=lb["DNSName"], lb_arn=lb["LoadBalancerArn"], target_groups=tuple(tgs)
    )
