"""Shared pieces of planning: the order of changes, desired-state helpers, ownership checks.

Order of a plan (so that traffic keeps flowing and a crash between two writes always leaves state
that a fresh plan can finish):

 1. classic ELB security groups, then their rules         (the ELB needs them at creation)
 2. target groups: create, then update (health, attributes, targets, tags)
 3. the load balancer: create / replace / update           (replace = scheme change)
 4. listeners: create / update (forward to the new groups)
 5. node security group: authorise new ranges              (before revoking old ones)
 6. listeners: delete
 7. node security group: revoke old ranges                 (while the target groups still record
                                                            which NodePorts the Service owned)
 8. load balancer of the other kind / of a deleted Service: delete
 9. target groups: delete
10. classic ELB security group rules: revoke; then the groups: delete
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Ingress, Intent, InvalidService, OwnershipConflict, Port, ServiceRef
from lbprov_aws.names import HEALTH_NODE_PORT_TAG as HEALTH_NODE_PORT_TAG
from lbprov_aws.names import SOURCE_RANGES_TAG as SOURCE_RANGES_TAG
from lbprov_aws.observe import (
    ClusterContext,
    ObservedSG,
)
from lbprov_aws.options import SUBNETS, AWSOptions, provider_id_instance
from lbprov_aws.sgrules import RuleConfig

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

(
    P_ELB_SG,
    P_ELB_SG_RULE,
    P_TG_CREATE,
    P_TG_UPDATE,
    P_LB,
    P_LISTENER,
    P_SG_ADD,
    P_LISTENER_DEL,
    P_SG_DEL,
    P_LB_DEL,
    P_TG_DEL,
    P_ELB_SG_RULE_DEL,
    P_ELB_SG_DEL,
) = range(13)


@dataclass
class PlanOutput:
    changes: list[Change]
    data: dict[str, Any]
    ingress: tuple[Ingress, ...]


@dataclass
class _Builder:
    items: list[tuple[int, int, Change]] = field(default_factory=list)

    def add(self, phase: int, change: Change) -> None:
        self.items.append((phase, len(self.items), change))

    def changes(self) -> list[Change]:
        return [c for _, _, c in sorted(self.items, key=lambda t: (t[0], t[1]))]


def _owner_text(tags: dict[str, str]) -> str:
    clusters = [k[len(naming.CLUSTER_TAG_PREFIX) :] for k in tags if k.startswith(naming.CLUSTER_TAG_PREFIX)]
    uid = tags.get(naming.SERVICE_UID_TAG)
    if not clusters:
        return "no cluster ownership tag"
    return f"cluster tag(s) {', '.join(clusters)}" + (
        f", Service UID {uid}" if uid else ", no Service UID tag"
    )


def check_owned(what: str, name: str, tags: dict[str, str], cluster: str, ref: ServiceRef) -> None:
    if not naming.is_owned_by_service(tags, cluster, ref.uid):
        raise OwnershipConflict(
            f"{what} {name!r} already exists but is not owned by Service {ref.key} (uid {ref.uid}) of "
            f"cluster {cluster!r} (it has {_owner_text(tags)}); lbprov never adopts a foreign resource: "
            "delete or rename it, or recreate the Service to get a new UID-derived name"
        )


def managed_tags(intent: Intent, opts: AWSOptions) -> dict[str, str]:
    tags = dict(intent.tags)
    tags[naming.LB_KIND_TAG] = opts.kind
    extra = dict(opts.additional_tags)
    tags.update(extra)
    if extra:
        tags[ADDITIONAL_TAGS_TAG] = ",".join(sorted(extra))
    return tags


def observed_managed_tags(observed: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    """The subset of observed tags lbprov manages: what it wants now and what it set before."""
    keys = set(desired)
    keys.update(k for k in observed.get(ADDITIONAL_TAGS_TAG, "").split(",") if k)
    keys.update((ADDITIONAL_TAGS_TAG, HEALTH_NODE_PORT_TAG, SOURCE_RANGES_TAG))
    return {k: observed[k] for k in sorted(keys) if k in observed}


def ownership_only(ref: ServiceRef, cluster: str, kind: str) -> dict[str, str]:
    tags = naming.ownership_tags(cluster, ref)
    tags[naming.LB_KIND_TAG] = kind
    return tags


def rule_change(
    action: Action, name: str, body: dict[str, Any], *, data: dict[str, Any], cloud_id: str | None = None
) -> Change:
    """A security group rule is only ever created or deleted, never modified: its description is
    the ``after`` of a create and the ``before`` of a delete."""
    return Change(
        action,
        "security-group-rule",
        name,
        None if action is Action.CREATE else body,
        body if action is Action.CREATE else None,
        cloud_id=cloud_id,
        data=data,
    )


# -- pieces of the desired state ------------------------------------------------------------------


def nlb_health(intent: Intent, opts: AWSOptions) -> dict[str, Any]:
    hc = dict(NLB_DEFAULT_HEALTH)
    if intent.health_check is not None:
        base = intent.health_check
        hc.update(NLB_LOCAL_TIMING)
        hc.update(
            protocol=base.protocol, port=str(base.port) if base.port else "traffic-port", path=base.path
        )
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
    role = ROLE_INTERNAL_ELB if scheme == "internal" else ROLE_ELB
    ckey = naming.cluster_tag_key(cluster)
    per_az: dict[str, tuple[int, str]] = {}
    for s in ctx.subnets:
        tags = {t["Key"]: t.get("Value", "") for t in s.get("Tags", [])}
        if role not in tags or tags[role] not in ("1", ""):
            continue
        other_cluster = any(k.startswith(naming.CLUSTER_TAG_PREFIX) and k != ckey for k in tags)
        if ckey not in tags and other_cluster:
            continue
        rank = (0 if ckey in tags else 1, s["SubnetId"])
        az = s.get("AvailabilityZone", "")
        if az not in per_az or rank < per_az[az]:
            per_az[az] = rank
    if not per_az:
        raise InvalidService(
            "subnets",
            f"could not find any suitable subnets for the {scheme} load balancer in VPC {ctx.vpc_id}: "
            f"tag one subnet per AZ with {role}=1 and {ckey}=owned (or shared), "
            f"or list subnets in {SUBNETS}",
        )
    return sorted(rank[1] for rank in per_az.values())


def node_security_group(ctx: ClusterContext, override: str | None) -> ObservedSG | None:
    if override:
        return next((sg for sg in ctx.security_groups if sg.id == override), None)
    attached = {g["GroupId"] for i in ctx.instances.values() for g in i.get("SecurityGroups", [])}
    candidates = [
        sg for sg in ctx.security_groups if sg.id in attached and not sg.name.startswith("k8s-elb-")
    ]
    if not candidates and not attached:
        # No node instance yet (every node gone): the VPC's single cluster-tagged node group, so
        # that the rules of a Service survive a moment without nodes (upstream's fallback).
        candidates = [
            sg for sg in ctx.security_groups if sg.vpc_id == ctx.vpc_id and not sg.name.startswith("k8s-elb-")
        ]
        return candidates[0] if len(candidates) == 1 else None
    if len(candidates) > 1:
        ids = ", ".join(sg.id for sg in candidates)
        raise RuntimeError(
            f"the node instances have several cluster-tagged security groups ({ids}); tag only one "
            "or set node_security_group_id"
        )
    return candidates[0] if candidates else None


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


class PlannerBase:
    """Settings shared by the NLB and classic planning mixins."""

    def __init__(
        self,
        cluster: str,
        *,
        manage_sg: bool = True,
        node_sg_id: str | None = None,
        rules: RuleConfig | None = None,
    ) -> None:
        self.cluster = cluster
        self.manage_sg = manage_sg
        self.node_sg_id = node_sg_id
        self.rules = rules or RuleConfig()
