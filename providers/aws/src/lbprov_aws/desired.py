"""The desired state of a Service's AWS resources (pure: Intent + options -> resource values).

This is the model builder: health checks, tags, subnets, listener ports, targets and the node
security group, computed from the Intent, its AWSOptions and the cluster context read before. No
I/O here; the diff (diff/) compares these values with what observe.py found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lbprov import naming
from lbprov.model import Intent, InvalidService, Port, ServiceRef
from lbprov_aws.observe import ClusterContext, ObservedSG
from lbprov_aws.options import SUBNETS, AWSOptions, provider_id_instance

#: Tag listing the additional-resource-tags keys lbprov set, so that removed ones can be removed.
ADDITIONAL_TAGS_TAG = "lbprov.io/additional-tags"
ROLE_ELB = "kubernetes.io/role/elb"
ROLE_INTERNAL_ELB = "kubernetes.io/role/internal-elb"
SSL_POLICY = "ELBSecurityPolicy-2016-08"

NLB_DEFAULT_HEALTH = {
    "protocol": "TCP",
    "port": "traffic-port",
    "path": None,
    "interval": 30,
    "timeout": 10,
    "healthy": 3,
    "unhealthy": 3,
}
NLB_LOCAL_TIMING = {"interval": 10, "timeout": 10, "healthy": 2, "unhealthy": 2}
CLASSIC_TIMING = {"interval": 10, "timeout": 5, "healthy": 2, "unhealthy": 6}
TG_ATTRIBUTE_DEFAULTS = {"stickiness.enabled": "false", "proxy_protocol_v2.enabled": "false"}
LB_ATTRIBUTE_DEFAULTS = {"load_balancing.cross_zone.enabled": "false"}


def node_port(port: Port) -> int:
    """AWS sends traffic to NodePorts (``AWSProvider.needs_node_ports``), so build_intent refuses a
    Service port without one; this is the typed guard of that contract."""
    if port.node_port is None:
        raise InvalidService("spec.ports[].nodePort", f"port {port.port} has no NodePort; AWS needs one")
    return port.node_port


def managed_tags(intent: Intent, opts: AWSOptions, cluster_id: str | None = None) -> dict[str, str]:
    """The tags of a Service's load balancer and target groups: ownership, the cluster identity
    (``lbprov.io/cluster-id``, added to older resources on their next reconcile), the kind, and
    the user's additional tags with the list of their keys."""
    tags = dict(intent.tags)
    if cluster_id:
        tags[naming.CLUSTER_ID_TAG] = cluster_id
    tags[naming.LB_KIND_TAG] = opts.kind
    extra = dict(opts.additional_tags)
    tags.update(extra)
    if extra:
        # Space-separated: a comma is not a valid tag value character (ELB/EC2 tag values allow
        # letters, digits, spaces and _.:/=+-@); options refuse additional tag keys with spaces.
        tags[ADDITIONAL_TAGS_TAG] = " ".join(sorted(extra))
    return tags


def ownership_only(ref: ServiceRef, cluster: str, kind: str, cluster_id: str | None = None) -> dict[str, str]:
    tags = naming.ownership_tags(cluster, ref, cluster_id)
    tags[naming.LB_KIND_TAG] = kind
    return tags


#: kube-proxy's health endpoint (KEP-3836: ``/healthz`` on 10256 tells whether the node's
#: kube-proxy serves Services). A UDP NodePort answers no health check, so a UDP target group of a
#: Cluster-policy Service probes this instead (the Azure provider does the same for UDP).
KUBE_PROXY_HEALTH_PORT = 10256
KUBE_PROXY_HEALTH_PATH = "/healthz"


def nlb_health(intent: Intent, opts: AWSOptions, protocol: str = "TCP") -> dict[str, Any]:
    """The health check of one target group (``protocol`` of its port: a UDP one under the Cluster
    policy probes kube-proxy's /healthz on 10256, since nothing answers TCP on a UDP NodePort)."""
    hc = dict(NLB_DEFAULT_HEALTH)
    if intent.health_check is not None:
        base = intent.health_check
        hc.update(NLB_LOCAL_TIMING)
        hc.update(
            protocol=base.protocol, port=str(base.port) if base.port else "traffic-port", path=base.path
        )
    elif protocol == "UDP":
        hc.update(protocol="HTTP", port=str(KUBE_PROXY_HEALTH_PORT), path=KUBE_PROXY_HEALTH_PATH)
    o = opts.health
    if o.protocol:
        hc["protocol"] = o.protocol
    if o.port is not None:
        hc["port"] = str(o.port)
    if o.path:
        hc["path"] = o.path
    for key in ("interval", "timeout", "healthy", "unhealthy"):
        if getattr(o, key) is not None:
            hc[key] = getattr(o, key)
    if o.interval is not None and o.timeout is None:
        # Only the interval set: the default timeout must not exceed it (ELBv2 CreateTargetGroup /
        # ModifyTargetGroup: "HealthCheckTimeoutSeconds must be ... less than or equal to the interval").
        hc["timeout"] = min(int(str(hc["timeout"])), o.interval)
    if o.timeout is not None and o.interval is None:
        hc["interval"] = max(int(str(hc["interval"])), o.timeout)
    if hc["protocol"] == "TCP":
        hc["path"] = None
    elif not hc["path"]:
        hc["path"] = "/"
    return hc


def classic_health(intent: Intent, opts: AWSOptions) -> dict[str, Any]:
    protocol, port, path = "TCP", str(intent.ports[0].node_port), None
    if intent.health_check is not None:
        base = intent.health_check
        protocol, port, path = base.protocol, str(base.port or intent.ports[0].node_port), base.path
    o = opts.health
    if o.protocol:
        protocol = o.protocol
    if o.port is not None:
        port = str(intent.ports[0].node_port) if o.port == "traffic-port" else str(o.port)
    if o.path:
        path = o.path
    target = f"{protocol}:{port}" if protocol == "TCP" else f"{protocol}:{port}{path or '/'}"
    timing = dict(CLASSIC_TIMING)
    for key in ("interval", "timeout", "healthy", "unhealthy"):
        if getattr(o, key) is not None:
            timing[key] = getattr(o, key)
    # ConfigureHealthCheck: "Timeout ... must be less than the Interval value" (ELB API reference,
    # HealthCheck). With only one of them set, derive the other so that it holds.
    if o.interval is not None and o.timeout is None:
        timing["timeout"] = min(timing["timeout"], o.interval - 1)
    if o.timeout is not None and o.interval is None:
        timing["interval"] = max(timing["interval"], o.timeout + 1)
    return {"target": target, **timing}


def select_subnets(opts: AWSOptions, scheme: str, ctx: ClusterContext, cluster: str) -> list[str]:
    """The annotation's subnets (IDs or Name tags), or one discovered subnet per AZ."""
    by_id = {s["SubnetId"]: s for s in ctx.subnets}
    if opts.subnets:
        by_name: dict[str, list[str]] = {}
        for s in ctx.subnets:
            for t in s.get("Tags", []):
                if t["Key"] == "Name":
                    by_name.setdefault(t["Value"], []).append(s["SubnetId"])
        chosen: list[str] = []
        for ref in opts.subnets:
            if ref in by_id:
                chosen.append(ref)
            elif len(by_name.get(ref, [])) == 1:
                chosen.append(by_name[ref][0])
            else:
                why = "matches several subnets" if by_name.get(ref) else "matches no subnet ID or Name tag"
                raise InvalidService(f"metadata.annotations[{SUBNETS}]", f"{ref!r} {why} in VPC {ctx.vpc_id}")
        return sorted(set(chosen))
    return discover_subnets(scheme, ctx, cluster)


def is_public(subnet_id: str, route_tables: list[dict[str, Any]]) -> bool:
    """cloud-provider-aws ``isSubnetPublic``: the subnet's route table (its explicit association,
    else the VPC's main table) has a route to an internet gateway (``igw-``)."""
    table = next(
        (t for t in route_tables for a in t.get("Associations", []) if a.get("SubnetId") == subnet_id), None
    )
    if table is None:
        table = next((t for t in route_tables for a in t.get("Associations", []) if a.get("Main")), None)
    return table is not None and any(
        str(r.get("GatewayId", "")).startswith("igw") for r in table.get("Routes", [])
    )


def discover_subnets(scheme: str, ctx: ClusterContext, cluster: str) -> list[str]:
    """One subnet per AZ as cloud-provider-aws finds them (``findELBSubnets``): the cluster VPC's
    subnets tagged for this cluster or for no cluster; internet-facing takes only public ones;
    Local Zone, Wavelength and Outpost subnets are skipped; in an AZ, a subnet with the role tag
    (``kubernetes.io/role/elb`` / ``…/internal-elb``) wins, then one with the cluster tag, then the
    lowest ID. Role tags are a preference: a VPC without them works."""
    role = ROLE_INTERNAL_ELB if scheme == "internal" else ROLE_ELB
    ckey = naming.cluster_tag_key(cluster)
    per_az: dict[str, tuple[int, int, str]] = {}
    for s in ctx.subnets:
        tags = {t["Key"]: t.get("Value", "") for t in s.get("Tags", [])}
        if ckey not in tags and any(k.startswith(naming.CLUSTER_TAG_PREFIX) for k in tags):
            continue  # another cluster's subnet
        az = s.get("AvailabilityZone", "")
        if s.get("OutpostArn") or ctx.zone_types.get(az, "availability-zone") != "availability-zone":
            continue
        if scheme != "internal" and not is_public(s["SubnetId"], ctx.route_tables):
            continue
        rank = (0 if role in tags else 1, 0 if ckey in tags else 1, s["SubnetId"])
        if az not in per_az or rank < per_az[az]:
            per_az[az] = rank
    if not per_az:
        kind = "public " if scheme != "internal" else ""
        raise InvalidService(
            "subnets",
            f"could not find any suitable {kind}subnets for the {scheme} load balancer in VPC "
            f"{ctx.vpc_id} (candidates: subnets tagged {ckey} or for no cluster, in regular availability "
            f"zones{', with a route to an internet gateway' if kind else ''}); list subnets in {SUBNETS}",
        )
    return sorted(rank[2] for rank in per_az.values())


class NodeSecurityGroupError(RuntimeError):
    """A node instance whose security group for the load balancer's rules cannot be told (no
    group tagged for the cluster and not exactly one group, or several tagged ones). The Service
    fails (SyncLoadBalancerFailed naming the instance) rather than succeeding without the rule."""


def is_cluster_tagged(sg: ObservedSG, cluster: str) -> bool:
    return naming.cluster_tag_key(cluster) in sg.tags


def node_security_groups(ctx: ClusterContext, override: str | None, cluster: str) -> list[ObservedSG]:
    """The security group of each node instance that receives the rules, as upstream resolves it
    (cloud-provider-aws ``findSecurityGroupForInstance``): the instance's one group tagged
    ``kubernetes.io/cluster/<cluster>``; else its only group; else an error naming the instance.
    Nodes of several node groups (or EKS's cluster group beside a node-group group) give several
    groups, each of which gets the rules. ``override`` (the node_security_group_id setting) is the
    group of every node."""
    by_id = {sg.id: sg for sg in ctx.security_groups}
    if override:
        return [by_id[override]] if override in by_id else []
    if not ctx.instances:
        # No node instance (every node gone): the VPC's single cluster-tagged node group, so that
        # the rules of a Service survive a moment without nodes (upstream's fallback).
        candidates = [
            sg
            for sg in ctx.security_groups
            if sg.vpc_id == ctx.vpc_id
            and is_cluster_tagged(sg, cluster)
            and not sg.name.startswith("k8s-elb-")
        ]
        return candidates if len(candidates) == 1 else []
    chosen: dict[str, ObservedSG] = {}
    problems: list[str] = []
    for instance_id, inst in sorted(ctx.instances.items()):
        groups = [g["GroupId"] for g in inst.get("SecurityGroups", []) if g.get("GroupId")]
        tagged = [g for g in groups if g in by_id and is_cluster_tagged(by_id[g], cluster)]
        if len(tagged) > 1:
            problems.append(
                f"instance {instance_id} has several security groups tagged "
                f"{naming.cluster_tag_key(cluster)} ({', '.join(sorted(tagged))}); tag only one"
            )
            continue
        pick = tagged[0] if tagged else groups[0] if len(groups) == 1 else None
        if pick is None:
            problems.append(
                f"instance {instance_id} has {len(groups)} security groups "
                f"({', '.join(sorted(groups)) or 'none'}) and none is tagged "
                f"{naming.cluster_tag_key(cluster)}; tag the one that should admit the load balancer"
            )
            continue
        if pick not in by_id:
            problems.append(f"instance {instance_id}: its security group {pick} could not be read")
            continue
        chosen[pick] = by_id[pick]
    if problems:
        raise NodeSecurityGroupError(
            "cannot tell which node security group admits the load balancer: " + "; ".join(problems)
        )
    return [chosen[k] for k in sorted(chosen)]


def instance_ids(intent: Intent, ctx: ClusterContext) -> list[str]:
    """Targets that map to a live instance (unknown IDs are skipped, as upstream does)."""
    ids = {provider_id_instance(t.provider_id) for t in intent.targets}
    return sorted(i for i in ids if i and i in ctx.instances)


def listener_ports(ports: Iterable[Port]) -> list[Port]:
    """One entry per service port number: TCP and UDP on the same number become one ``TCP_UDP``
    listener and target group (AWS allows one listener per port; resolve() checks they share the
    NodePort)."""
    by_number: dict[int, list[Port]] = {}
    for p in ports:
        by_number.setdefault(p.port, []).append(p)
    out: list[Port] = []
    for number in sorted(by_number):
        group = by_number[number]
        if len(group) == 1:
            out.append(group[0])
        else:
            first = group[0]
            out.append(Port(first.name, "TCP_UDP", number, first.node_port))  # type: ignore[arg-type]
    return out
