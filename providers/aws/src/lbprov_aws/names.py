"""AWS resource names and rule descriptions derived from the Service identity.

Target group names follow upstream's shape ``k8s-<ns8>-<name8>-<hash10>`` (32 characters at most,
AWS's limit). The hash covers the cluster, the Service UID and every immutable field of a target
group (protocol, port = NodePort, target type) plus the service port, so changing any of them yields
a new name: the plan creates the new group, moves the listener and deletes the old one. All of a
Service's groups share the prefix ``k8s-<ns8>-<name8>-``, which lets a plan list candidates without
reading every group's tags.
"""

from __future__ import annotations

import functools
import hashlib
import re

from lbprov.model import Port, ServiceRef
from lbprov.naming import short_hash

_NON_NAME = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")

#: Description of node security group rules for NLB client traffic (NodePorts from source ranges).
CLIENT_RULE = "client"
#: Description of node security group rules for NLB health checks (from the VPC CIDR).
HEALTH_RULE = "health"
#: Description of the node security group rule for kube-proxy's /healthz (TCP 10256 from the VPC),
#: probed by the UDP target groups of Cluster-policy Services; one per group for the cluster.
KUBE_PROXY_RULE = "kube-proxy"


def _part(value: str) -> str:
    """Up to 8 name characters of a namespace or Service name: runs of ``-`` collapsed and none at
    either end, since ELBv2 target group names may not hold ``--`` (CreateTargetGroup ``Name``)."""
    return _DASHES.sub("-", _NON_NAME.sub("", value.lower())).strip("-")[:8].strip("-") or "x"


def target_group_prefix(ref: ServiceRef) -> str:
    return f"k8s-{_part(ref.namespace)}-{_part(ref.name)}-"


def target_group_name(cluster: str, ref: ServiceRef, port: Port, protocol: str | None = None) -> str:
    """``protocol`` overrides the port's (``TCP_UDP`` when a Service has TCP and UDP on one port)."""
    digest = short_hash(cluster, ref.uid, protocol or port.protocol, port.port, port.node_port, "instance")
    name = target_group_prefix(ref) + digest
    assert len(name) <= 32, name
    return name


def elb_security_group_name(lb_name: str) -> str:
    """The classic ELB's own security group (upstream's name)."""
    return f"k8s-elb-{lb_name}"


def nlb_rule_description(kind: str, cluster: str) -> str:
    """Node security group rules are shared by the cluster's NLB Services (aggregated port ranges),
    so they name the cluster, not one load balancer."""
    return f"lbprov.io/rule/nlb/{kind}={cluster}"


def elb_backend_security_group_name(cluster: str) -> str:
    """One group attached to every classic ELB of the cluster (next to each ELB's own group), so
    that the node security group needs ONE rule for all classic ELBs, not one per ELB (upstream's
    per-ELB rule exhausts the node group's rule limit; aws-load-balancer-controller's "backend
    security group" does the same)."""
    return f"k8s-elb-backend-{cluster}"


def elb_backend_rule_description(cluster: str) -> str:
    """The node security group rule that lets the cluster's classic ELBs in."""
    return f"lbprov.io/rule/elb-backend={cluster}"


def elb_sg_rule_description(lb_name: str) -> str:
    return f"lbprov.io/rule/elb-client={lb_name}"


#: On target groups of a Local Service: its healthCheckNodePort, a port the Service owns in the
#: shared node security group rules (a custom healthcheck-port may be shared and is not recorded).
HEALTH_NODE_PORT_TAG = "lbprov.io/health-node-port"
#: On NLB target groups: the Service's source CIDRs, space-separated (``*``: too many to record), so
#: that any plan can tell which Services still want a whole-NodePort-range rule (diff/node_rules.py).
SOURCE_RANGES_TAG = "lbprov.io/source-ranges"


# -- security groups of an NLB created with groups (aws-load-balancer-controller's model) ---------

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
#: The description aws-load-balancer-controller gives its frontend groups (EC2 allows ``[]``).
NLB_FRONTEND_SG_DESCRIPTION = "[k8s] Managed SecurityGroup for LoadBalancer"
#: The description of aws-load-balancer-controller's shared backend group.
NLB_BACKEND_SG_DESCRIPTION = "[k8s] Shared Backend SecurityGroup for LoadBalancer"
#: aws-load-balancer-controller finds the cluster's backend group by these two tags (its
#: ``backend_sg_provider.go``); lbprov's group carries them so that the two controllers in one
#: cluster share one group instead of colliding on its name.
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
LBC_RESOURCE_TAG = "elbv2.k8s.aws/resource"
LBC_BACKEND_SG = "backend-sg"
#: Description of the node security group rules that admit the backend group (NodePort range and
#: kube-proxy's health port), one set per node group for the whole cluster.
BACKEND_RULE = "backend"
#: Description of the frontend group's rules (the listener ports from the source ranges).
FRONTEND_RULE = "frontend"
#: On the target groups of an NLB created with security groups: its Service wants no NodePort rule
#: from its source ranges (the backend group admits the NLB), so the older model's rule ownership
#: (diff/node_rules.py) must not count its ports.
NLB_SECURITY_GROUPS_TAG = "lbprov.io/nlb-security-groups"


def nlb_frontend_security_group_name(cluster: str, ref: ServiceRef) -> str:
    """aws-load-balancer-controller's managed group name (``buildManagedSecurityGroupName``):
    ``k8s-<ns8>-<name8>-<sha256(cluster, name, namespace, uid)[:10]>``, alphanumerics only."""
    digest = hashlib.sha256(f"{cluster}{ref.name}{ref.namespace}{ref.uid}".encode()).hexdigest()
    return f"k8s-{_NON_ALNUM.sub('', ref.namespace)[:8]}-{_NON_ALNUM.sub('', ref.name)[:8]}-{digest[:10]}"


@functools.lru_cache(maxsize=8)
def nlb_backend_security_group_name(cluster: str) -> str:
    """aws-load-balancer-controller's shared backend group name (``getBackendSGName``):
    ``k8s-traffic-<cluster, alphanumerics, 232 at most>-<sha256(cluster)[:10]>``. Cached: one
    cluster's name is asked for three or four times per plan (about 1% of a create's worker CPU)."""
    digest = hashlib.sha256(cluster.encode()).hexdigest()
    return f"k8s-traffic-{_NON_ALNUM.sub('', cluster)[:232]}-{digest[:10]}"
