"""The desired state of a Service's AWS resources (pure: Intent + options -> resource values).

This is the model builder: health checks, tags, subnets, listener ports, targets and the node
security group, computed from the Intent, its AWSOptions and the cluster context read before. No
I/O here; the diff (diff/) compares these values with what observe.py found.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from lbprov import naming
from lbprov.model import Intent, InvalidService, Port, ServiceRef
from lbprov_aws.observe import ClusterContext, ObservedSG
from lbprov_aws.options import (
    BACKEND_TO_FRONTEND,
    EIP_ALLOCATIONS,
    PRIVATE_IPV4,
    SUBNETS,
    AWSOptions,
    provider_id_instance,
)
from lbprov_aws.sg_index import index_of

#: Tag listing the additional-resource-tags keys lbprov set, so that removed ones can be removed.
ADDITIONAL_TAGS_TAG = "lbprov.io/additional-tags"
#: On the target groups of an NLB with a chosen name (``load-balancer-name``): that name, so that a
#: later plan finds the NLB to replace or delete when the annotation changes or goes.
LB_NAME_TAG = "lbprov.io/load-balancer-name"
ROLE_ELB = "kubernetes.io/role/elb"
ROLE_INTERNAL_ELB = "kubernetes.io/role/internal-elb"
#: The default TLS policy of NLB TLS listeners: TLS 1.3 and 1.2 with forward-secret ciphers only.
#: Upstream (cloud-provider-aws and aws-load-balancer-controller) defaults to
#: ELBSecurityPolicy-2016-08, which still allows TLS 1.0/1.1 and CBC ciphers; ``ssl-negotiation-policy``
#: sets another one (see the README).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: AWS's default success codes of an NLB HTTP/HTTPS health check (ELBv2 Matcher).
DEFAULT_SUCCESS_CODES = "200-399"

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


def desired_tg_attributes(intent: Intent, opts: AWSOptions) -> dict[str, str]:
    """The target-group attributes lbprov reconciles: its own (stickiness from
    spec.sessionAffinity, proxy protocol v2 from ``proxy-protocol``; options.resolve() refused any
    contradiction) overlaid with the user's ``target-group-attributes``. Keys outside this dict are
    never touched (attributes.py). A UDP or TCP_UDP group gets proxy protocol off (the diff)."""
    attrs = {
        "stickiness.enabled": "true" if intent.session_affinity else "false",
        "proxy_protocol_v2.enabled": "true" if opts.proxy_protocol else "false",
    }
    if intent.session_affinity:
        attrs["stickiness.type"] = "source_ip"
    attrs.update(opts.target_group_attributes)
    if attrs["stickiness.enabled"] == "true":
        attrs.setdefault("stickiness.type", "source_ip")
    return attrs


def desired_lb_attributes(opts: AWSOptions) -> dict[str, str]:
    """The NLB attributes lbprov reconciles: cross-zone (``cross-zone-load-balancing-enabled``, off
    by default as upstream) and the user's ``attributes`` (attributes.py)."""
    attrs = {"load_balancing.cross_zone.enabled": "true" if opts.cross_zone else "false"}
    attrs.update(opts.lb_attributes)
    return attrs


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
    if hc["protocol"] in ("HTTP", "HTTPS"):
        # The user's codes are for their own endpoint, not for kube-proxy's (UDP, Cluster policy).
        own = hc["port"] != str(KUBE_PROXY_HEALTH_PORT) or o.port is not None
        hc["matcher"] = (opts.success_codes if own else None) or DEFAULT_SUCCESS_CODES
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


def classic_attributes(opts: AWSOptions) -> dict[str, Any]:
    """The classic ELB attributes lbprov reconciles (cloud-provider-aws's set, to its defaults):
    the access log, connection draining and the idle timeout (cross-zone is ``cross_zone``). A
    disabled access log or draining compares only as disabled (AWS keeps the rest)."""
    a = opts.classic
    log: dict[str, Any] = {"enabled": a.access_log}
    if a.access_log:
        log.update(interval=a.access_log_interval, bucket=a.access_log_bucket, prefix=a.access_log_prefix)
    draining: dict[str, Any] = {"enabled": a.draining}
    if a.draining:
        draining["timeout"] = a.draining_timeout
    return {"access_log": log, "draining": draining, "idle_timeout": a.idle_timeout}


def observed_classic_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    """The same view of DescribeLoadBalancerAttributes' answer."""
    log_raw = raw.get("AccessLog") or {}
    log: dict[str, Any] = {"enabled": bool(log_raw.get("Enabled", False))}
    if log["enabled"]:
        log.update(
            interval=int(log_raw.get("EmitInterval", 60)),
            bucket=log_raw.get("S3BucketName", ""),
            prefix=log_raw.get("S3BucketPrefix", ""),
        )
    d_raw = raw.get("ConnectionDraining") or {}
    draining: dict[str, Any] = {"enabled": bool(d_raw.get("Enabled", False))}
    if draining["enabled"]:
        draining["timeout"] = int(d_raw.get("Timeout", 300))
    idle = int((raw.get("ConnectionSettings") or {}).get("IdleTimeout", 60))
    return {"access_log": log, "draining": draining, "idle_timeout": idle}


def classic_listener(opts: AWSOptions, port: Port) -> dict[str, Any]:
    """One classic listener as cloud-provider-aws builds it (``buildListener``): on a TLS port
    (``ssl-cert`` and ``ssl-ports``) the front end follows ``backendProtocolMapping`` (SSL to TCP by
    default, HTTPS for http/https, SSL for ssl/tcp); elsewhere ``http`` gives HTTP to HTTP and
    anything else TCP to TCP."""
    backend = opts.backend_protocol
    if opts.uses_tls(port.port, port.name):
        front, back = ("ssl", "tcp") if backend is None else (BACKEND_TO_FRONTEND[backend], backend)
        cert: str | None = opts.ssl_cert
    else:
        front = back = "http" if backend == "http" else "tcp"
        cert = None
    return {
        "protocol": front.upper(),
        "port": port.port,
        "instance_protocol": back.upper(),
        "instance_port": port.node_port,
        "certificate": cert,
    }


#: cloud-provider-aws's name for the classic SSL negotiation policy it creates per load balancer
#: (``ensureSSLNegotiationPolicy``).
CLASSIC_SSL_POLICY_PREFIX = "k8s-SSLNegotiationPolicy-"


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


def subnet_mappings(opts: AWSOptions, subnets: list[str], ctx: ClusterContext) -> list[dict[str, str]]:
    """The NLB's SubnetMappings for ``eip-allocations`` / ``private-ipv4-addresses`` ([] without
    them): the n-th Elastic IP to the subnet of the n-th availability zone in name order; each
    private address to the subnet whose CIDR holds it. One address per subnet, or InvalidService
    naming the annotation (discovered subnets are known only here)."""
    key, items = (
        (EIP_ALLOCATIONS, opts.eip_allocations) if opts.eip_allocations else (PRIVATE_IPV4, opts.private_ipv4)
    )
    if not items:
        return []
    field = f"metadata.annotations[{key}]"
    if len(items) != len(subnets):
        raise InvalidService(
            field,
            f"{len(items)} addresses for the load balancer's {len(subnets)} subnets ({', '.join(subnets)}); give one per subnet",
        )
    info = {s["SubnetId"]: s for s in ctx.subnets}
    if opts.eip_allocations:
        by_zone = sorted(subnets, key=lambda sid: (info.get(sid, {}).get("AvailabilityZone", ""), sid))
        pairs = dict(zip(by_zone, items, strict=True))
        return [{"subnet": sid, "allocation_id": pairs[sid]} for sid in subnets]
    owner: dict[str, str] = {}
    for address in items:
        ip = ipaddress.ip_address(address)
        holders = [
            sid
            for sid in subnets
            if ip in ipaddress.ip_network(info.get(sid, {}).get("CidrBlock", "0.0.0.0/32"))
        ]
        if not holders:
            raise InvalidService(
                field, f"{address} is in none of the load balancer's subnets ({', '.join(subnets)})"
            )
        if holders[0] in owner:
            raise InvalidService(
                field,
                f"{address} and {owner[holders[0]]} are both in subnet {holders[0]}; give one per subnet",
            )
        owner[holders[0]] = address
    return [{"subnet": sid, "private_ipv4": owner[sid]} for sid in subnets]


#: IPv6 CIDR association states of a subnet that has no usable IPv6 block.
_GONE = frozenset({"disassociating", "disassociated", "failing", "failed"})


def check_dualstack_subnets(subnets: list[str], ctx: ClusterContext) -> None:
    """A dualstack NLB needs an IPv6 CIDR on each of its subnets (NLB user guide, "IP address
    type": "the subnets ... must have an associated IPv6 CIDR block")."""
    info = {s["SubnetId"]: s for s in ctx.subnets}
    missing = [
        sid
        for sid in subnets
        if not any(
            str(a.get("Ipv6CidrBlockState", {}).get("State", "associated")) not in _GONE
            for a in info.get(sid, {}).get("Ipv6CidrBlockAssociationSet", [])
        )
    ]
    if missing:
        raise InvalidService(
            "spec.ipFamilies",
            f"a dualstack NLB (IPv4 and IPv6) needs subnets with an IPv6 CIDR, and {', '.join(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} none; add IPv6 CIDRs to the VPC and these subnets, "
            "or serve IPv4 only",
        )


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
    by_id = index_of(ctx, cluster).by_id
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
