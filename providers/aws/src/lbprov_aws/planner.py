"""Intent + observed cloud state -> ordered Changes (no I/O here: the reads happened before).

Order of a plan (so that traffic keeps flowing and a crash between two writes always leaves state
that a fresh plan can finish):

 1. classic ELB security group, then its rules            (the ELB needs them at creation)
 2. target groups: create, then update (health, attributes, targets, tags)
 3. the load balancer: create / replace / update           (replace = scheme change)
 4. listeners: create / update (forward to the new groups)
 5. node security group: authorise new ranges              (before revoking old ones)
 6. listeners: delete
 7. node security group: revoke old ranges                 (while the target groups still record
                                                            which NodePorts the Service owned)
 8. load balancer of the other kind / of a deleted Service: delete
 9. target groups: delete
10. classic ELB security group rules: revoke; then the group: delete
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Ingress, Intent, InvalidService, OwnershipConflict, Port, ServiceRef
from lbprov_aws import names
from lbprov_aws.names import CLIENT_RULE
from lbprov_aws.observe import (
    ClusterContext,
    ObservedClassic,
    ObservedNLB,
    ObservedSG,
    ObservedTG,
    ServiceState,
)
from lbprov_aws.options import SUBNETS, AWSOptions, provider_id_instance
from lbprov_aws.sgrules import (
    RuleRange,
    desired_ranges,
    parse_rules,
    service_points,
)

#: Tag listing the additional-resource-tags keys lbprov set, so that removed ones can be removed.
ADDITIONAL_TAGS_TAG = "lbprov.io/additional-tags"
#: On target groups of a Local Service: its healthCheckNodePort, a port the Service owns in the
#: shared node security group rules (a custom healthcheck-port may be shared and is not recorded).
HEALTH_NODE_PORT_TAG = "lbprov.io/health-node-port"
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
    keys.update((ADDITIONAL_TAGS_TAG, HEALTH_NODE_PORT_TAG))
    return {k: observed[k] for k in sorted(keys) if k in observed}


def ownership_only(ref: ServiceRef, cluster: str, kind: str) -> dict[str, str]:
    tags = naming.ownership_tags(cluster, ref)
    tags[naming.LB_KIND_TAG] = kind
    return tags


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


def snapshot_of(ranges: Iterable[RuleRange]) -> list[list[Any]]:
    """JSON-able, order-independent form of a group's lbprov rules (for Plan.data)."""
    return sorted([r.kind, r.protocol, r.from_port, r.to_port, r.cidr] for r in ranges)


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


# -- the planner ------------------------------------------------------------------------------------


class Planner:
    def __init__(self, cluster: str, *, manage_sg: bool = True, node_sg_id: str | None = None) -> None:
        self.cluster = cluster
        self.manage_sg = manage_sg
        self.node_sg_id = node_sg_id

    def plan(self, intent: Intent, ctx: ClusterContext, state: ServiceState) -> PlanOutput:
        opts: AWSOptions = intent.options if isinstance(intent.options, AWSOptions) else AWSOptions()
        ref = intent.ref
        b = _Builder()
        data: dict[str, Any] = {"kind": opts.kind, "vpc_id": ctx.vpc_id, "tg_arns": {}}
        owned_tgs = self._owned_tgs(state, ref)
        nlb = self._owned_or_conflict("network load balancer", state.nlb, ref, opts.kind == "nlb")
        classic = self._owned_or_conflict("classic load balancer", state.classic, ref, opts.kind == "classic")
        node_sg = node_security_group(ctx, self.node_sg_id) if self.manage_sg else None
        ingress: tuple[Ingress, ...] = ()
        wanted_points: set[Any] = set()
        tg_by_name = {tg.name: tg for tg in owned_tgs}
        data["tg_arns"] = {tg.name: tg.arn for tg in owned_tgs}

        if opts.kind == "nlb":
            foreign = {tg.name: tg for tg in state.target_groups if tg.name not in tg_by_name}
            kept, wanted_points = self._plan_nlb(b, intent, opts, ctx, nlb, tg_by_name, foreign, data)
            for tg in owned_tgs:
                if tg.name not in kept:
                    b.add(P_TG_DEL, self._tg_delete(tg))
            # Also finds a classic ELB security group left behind by an interrupted switch.
            self._delete_classic(
                b, classic, ctx, reason="load balancer type changed to nlb", lb_name=intent.lb_name, ref=ref
            )
            if nlb is not None and nlb.dns:
                ingress = (Ingress(hostname=nlb.dns),)
        else:
            self._plan_classic(b, intent, opts, ctx, classic, node_sg, data)
            if nlb is not None:
                self._delete_nlb(b, nlb, reason="load balancer type changed to classic")
            for tg in owned_tgs:
                b.add(P_TG_DEL, self._tg_delete(tg, reason="load balancer type changed to classic"))
            if classic is not None and classic.dns:
                ingress = (Ingress(hostname=classic.dns),)

        if self.manage_sg:
            ports = self._service_ports(owned_tgs) | self._intent_ports(intent)
            data["sg_snapshot"] = {}
            self._sg_ranges(b, ctx, node_sg, ports, wanted_points, data["sg_snapshot"])
        return PlanOutput(b.changes(), data, ingress)

    def plan_delete(self, ref: ServiceRef, ctx: ClusterContext, state: ServiceState) -> PlanOutput:
        b = _Builder()
        owned_tgs = self._owned_tgs(state, ref)
        nlb = self._owned_or_conflict("network load balancer", state.nlb, ref, False)
        classic = self._owned_or_conflict("classic load balancer", state.classic, ref, False)
        if nlb is not None:
            self._delete_nlb(b, nlb)
        for tg in owned_tgs:
            b.add(P_TG_DEL, self._tg_delete(tg))
        self._delete_classic(b, classic, ctx, lb_name=naming.lb_name(ref.uid), ref=ref)
        snapshot: dict[str, list[list[Any]]] = {}
        if self.manage_sg:
            self._sg_ranges(b, ctx, None, self._service_ports(owned_tgs), set(), snapshot)
        return PlanOutput(
            b.changes(), {"tg_arns": {tg.name: tg.arn for tg in owned_tgs}, "sg_snapshot": snapshot}, ()
        )

    # -- ownership --------------------------------------------------------------------------------

    def _owned_or_conflict(self, what: str, found: Any, ref: ServiceRef, wanted: bool) -> Any:
        if found is None:
            return None
        if naming.is_owned_by_service(found.tags, self.cluster, ref.uid):
            return found
        if wanted:
            check_owned(what, found.name, found.tags, self.cluster, ref)
        return None

    def _owned_tgs(self, state: ServiceState, ref: ServiceRef) -> list[ObservedTG]:
        return [
            tg for tg in state.target_groups if naming.is_owned_by_service(tg.tags, self.cluster, ref.uid)
        ]

    # -- NLB --------------------------------------------------------------------------------------

    def _plan_nlb(
        self,
        b: _Builder,
        intent: Intent,
        opts: AWSOptions,
        ctx: ClusterContext,
        nlb: ObservedNLB | None,
        tg_by_name: dict[str, ObservedTG],
        foreign: dict[str, ObservedTG],
        data: dict[str, Any],
    ) -> tuple[set[str], set[Any]]:
        tags = managed_tags(intent, opts)
        targets = instance_ids(intent, ctx)
        health = nlb_health(intent, opts)
        attributes = {"stickiness.enabled": "true" if intent.session_affinity else "false"}
        if intent.session_affinity:
            attributes["stickiness.type"] = "source_ip"
        tg_tags = dict(tags)
        if intent.health_check is not None and intent.health_check.port:
            tg_tags[HEALTH_NODE_PORT_TAG] = str(intent.health_check.port)
        desired_tgs: dict[str, tuple[Port, dict[str, Any]]] = {}
        for port in listener_ports(intent.ports):
            name = names.target_group_name(self.cluster, intent.ref, port, port.protocol)
            attrs = dict(attributes)
            attrs["proxy_protocol_v2.enabled"] = (
                "true" if (opts.proxy_protocol and port.protocol == "TCP") else "false"
            )
            desired_tgs[name] = (
                port,
                {
                    "protocol": port.protocol,
                    "port": port.node_port,
                    "vpc": ctx.vpc_id,
                    "target_type": "instance",
                    "health_check": health,
                    "attributes": attrs,
                    "targets": targets,
                    "tags": tg_tags,
                },
            )
        for name, (port, after) in desired_tgs.items():
            if name in foreign:
                check_owned("target group", name, foreign[name].tags, self.cluster, intent.ref)
            tg = tg_by_name.get(name)
            if tg is None:
                b.add(
                    P_TG_CREATE,
                    Change(
                        Action.CREATE,
                        "target-group",
                        name,
                        None,
                        after,
                        reason=f"{port.protocol}/{port.port} -> NodePort {port.node_port}",
                        data={"type": "tg"},
                    ),
                )
                continue
            before = {
                "protocol": tg.protocol,
                "port": tg.port,
                "vpc": tg.vpc_id,
                "target_type": "instance",
                "health_check": tg.health,
                "attributes": {
                    k: (tg.attributes or {}).get(k, TG_ATTRIBUTE_DEFAULTS.get(k)) for k in after["attributes"]
                },
                "targets": list(tg.targets or ()),
                "tags": observed_managed_tags(tg.tags, tg_tags),
            }
            if before != after:
                b.add(
                    P_TG_UPDATE,
                    Change(
                        Action.UPDATE,
                        "target-group",
                        name,
                        before,
                        after,
                        cloud_id=tg.arn,
                        data={"type": "tg"},
                    ),
                )

        # The load balancer.
        scheme = "internal" if intent.scheme == "internal" else "internet-facing"
        lb_after = {
            "type": "network",
            "scheme": scheme,
            "subnets": select_subnets(opts, intent.scheme, ctx, self.cluster),
            "attributes": {"load_balancing.cross_zone.enabled": "true" if opts.cross_zone else "false"},
            "tags": tags,
        }
        replaced = False
        if nlb is None:
            b.add(
                P_LB,
                Change(Action.CREATE, "load-balancer", intent.lb_name, None, lb_after, data={"type": "nlb"}),
            )
        else:
            data["lb_arn"] = nlb.arn
            data["dns"] = nlb.dns
            lb_before = {
                "type": "network",
                "scheme": nlb.scheme,
                "subnets": list(nlb.subnets),
                "attributes": {
                    k: (nlb.attributes or {}).get(k, LB_ATTRIBUTE_DEFAULTS.get(k))
                    for k in lb_after["attributes"]
                },
                "tags": observed_managed_tags(nlb.tags, tags),
            }
            if lb_before["scheme"] != scheme:
                replaced = True
                b.add(
                    P_LB,
                    Change(
                        Action.REPLACE,
                        "load-balancer",
                        intent.lb_name,
                        lb_before,
                        lb_after,
                        cloud_id=nlb.arn,
                        reason="the scheme of a load balancer cannot change",
                        data={"type": "nlb"},
                    ),
                )
            elif lb_before != lb_after:
                b.add(
                    P_LB,
                    Change(
                        Action.UPDATE,
                        "load-balancer",
                        intent.lb_name,
                        lb_before,
                        lb_after,
                        cloud_id=nlb.arn,
                        data={"type": "nlb"},
                    ),
                )

        # Listeners: one per port (TCP, UDP, TLS or TCP_UDP): a protocol change is a ModifyListener.
        arn_to_tg = {tg.arn: tg.name for tg in tg_by_name.values()}
        observed: dict[str, Any] = {}
        extra: list[Any] = []
        if nlb is not None and not replaced:
            for li in sorted(nlb.listeners or [], key=lambda li: li.arn):
                key = str(li.port)
                if key in observed:
                    extra.append(li)  # a duplicate (moto allows it): remove it
                else:
                    observed[key] = li
        for name, (port, _) in desired_tgs.items():
            key = str(port.port)
            tls = port.protocol == "TCP" and opts.uses_tls(port.port, port.name)
            after = {
                "protocol": "TLS" if tls else port.protocol,
                "port": port.port,
                "target_group": name,
                "certificate": opts.ssl_cert if tls else None,
                "ssl_policy": SSL_POLICY if tls else None,
            }
            li = observed.pop(key, None)
            if li is None:
                b.add(
                    P_LISTENER,
                    Change(
                        Action.CREATE,
                        "listener",
                        key,
                        None,
                        after,
                        reason="load balancer replaced" if replaced else None,
                        data={"type": "listener"},
                    ),
                )
                continue
            before = {
                "protocol": li.protocol,
                "port": li.port,
                "target_group": arn_to_tg.get(li.target_group_arn or "", li.target_group_arn),
                "certificate": li.certificate if li.protocol == "TLS" else None,
                "ssl_policy": li.ssl_policy if li.protocol == "TLS" else None,
            }
            if before != after:
                # TCP <-> TLS is modified in place; a change to or from UDP / TCP_UDP deletes and
                # recreates the listener on the same port (moto's ModifyListener refuses UDP).
                udp = {"UDP", "TCP_UDP"}
                replace = before["protocol"] != after["protocol"] and bool(
                    {before["protocol"], after["protocol"]} & udp
                )
                b.add(
                    P_LISTENER,
                    Change(
                        Action.REPLACE if replace else Action.UPDATE,
                        "listener",
                        key,
                        before,
                        after,
                        cloud_id=li.arn,
                        data={"type": "listener"},
                    ),
                )
        for key, li in sorted(observed.items()):
            b.add(P_LISTENER_DEL, self._listener_delete(key, li, arn_to_tg))
        for li in extra:
            b.add(
                P_LISTENER_DEL,
                self._listener_delete(str(li.port), li, arn_to_tg, reason="duplicate listener"),
            )

        ports = [(p.protocol, p.node_port) for p in intent.ports]  # TCP_UDP: both rules
        health_ports: set[int] = set()
        own_ports = {p.node_port for p in intent.ports} | (
            {intent.health_check.port} if intent.health_check and intent.health_check.port else set()
        )
        for port in intent.ports:
            hp = port.node_port if health["port"] == "traffic-port" else int(health["port"])
            if hp in own_ports:  # a shared custom port (e.g. 10256) is the operator's to open
                health_ports.add(hp)
        points = service_points(
            ports=ports,
            health_ports=sorted(health_ports),
            source_ranges=intent.source_ranges,
            vpc_cidrs=ctx.vpc_cidrs,
        )
        return set(desired_tgs), points

    def _listener_delete(
        self, key: str, li: Any, arn_to_tg: dict[str, str], reason: str | None = None
    ) -> Change:
        before = {
            "protocol": li.protocol,
            "port": li.port,
            "target_group": arn_to_tg.get(li.target_group_arn or "", li.target_group_arn),
        }
        return Change(
            Action.DELETE,
            "listener",
            key,
            before,
            None,
            cloud_id=li.arn,
            reason=reason,
            data={"type": "listener"},
        )

    def _tg_delete(self, tg: ObservedTG, reason: str | None = None) -> Change:
        before = {"protocol": tg.protocol, "port": tg.port}
        return Change(
            Action.DELETE,
            "target-group",
            tg.name,
            before,
            None,
            cloud_id=tg.arn,
            reason=reason,
            data={"type": "tg"},
        )

    def _delete_nlb(self, b: _Builder, nlb: ObservedNLB, reason: str | None = None) -> None:
        before = {"type": "network", "scheme": nlb.scheme, "dns": nlb.dns}
        b.add(
            P_LB_DEL,
            Change(
                Action.DELETE,
                "load-balancer",
                nlb.name,
                before,
                None,
                cloud_id=nlb.arn,
                reason=reason,
                data={"type": "nlb"},
            ),
        )

    @staticmethod
    def _intent_ports(intent: Intent) -> set[int]:
        ports = {p.node_port for p in intent.ports}
        if intent.health_check and intent.health_check.port:
            ports.add(intent.health_check.port)
        return ports

    @staticmethod
    def _service_ports(tgs: Iterable[ObservedTG]) -> set[int]:
        """The NodePorts a Service's existing target groups say it owns (see HEALTH_NODE_PORT_TAG)."""
        out: set[int] = set()
        for tg in tgs:
            out.add(tg.port)
            if tg.tags.get(HEALTH_NODE_PORT_TAG, "").isdigit():
                out.add(int(tg.tags[HEALTH_NODE_PORT_TAG]))
        return out

    def _sg_ranges(
        self,
        b: _Builder,
        ctx: ClusterContext,
        node_sg: ObservedSG | None,
        ports: set[int],
        wanted: set[Any],
        snapshot: dict[str, list[list[Any]]],
    ) -> None:
        """Rule changes, and ``snapshot``: the lbprov rules each changed group had when planned,
        which apply compares (under a per-group lock) before writing: see sgrules.py."""
        groups = list(ctx.security_groups)
        if node_sg is not None and all(sg.id != node_sg.id for sg in groups):
            groups.append(node_sg)
        for sg in groups:
            ours, foreign = parse_rules(sg.permissions, self.cluster)
            is_node = node_sg is not None and sg.id == node_sg.id
            if not ours and not is_node:
                continue
            desired = desired_ranges(ours, ports, wanted if is_node else set())
            client_keys = {
                (r.protocol, r.from_port, r.to_port, r.cidr) for r in desired if r.kind == CLIENT_RULE
            }
            desired = {
                r
                for r in desired
                if r.kind == CLIENT_RULE or (r.protocol, r.from_port, r.to_port, r.cidr) not in client_keys
            }
            add = [
                r
                for r in sorted(desired - ours)
                if (r.protocol, r.from_port, r.to_port, r.cidr) not in foreign
            ]
            remove = sorted(ours - desired)
            for r in add:  # (skipped: an identical rule someone else made already admits it)
                b.add(P_SG_ADD, self._range_change(Action.CREATE, sg.id, r))
            for r in remove:
                b.add(P_SG_DEL, self._range_change(Action.DELETE, sg.id, r))
            if add or remove:
                snapshot[sg.id] = snapshot_of(ours)

    def _range_change(self, action: Action, sg_id: str, r: RuleRange) -> Change:
        body = {"group": sg_id, **r.to_json()}
        return Change(
            action,
            "security-group-rule",
            f"{sg_id} {r.label()}",
            None if action is Action.CREATE else body,
            body if action is Action.CREATE else None,
            cloud_id=sg_id,
            data={"type": "node-sg-range", "permission": r.ip_permission(self.cluster)},
        )

    # -- classic ELB ------------------------------------------------------------------------------

    def _plan_classic(
        self,
        b: _Builder,
        intent: Intent,
        opts: AWSOptions,
        ctx: ClusterContext,
        classic: ObservedClassic | None,
        node_sg: ObservedSG | None,
        data: dict[str, Any],
    ) -> None:
        ref = intent.ref
        tags = managed_tags(intent, opts)
        sg_name = names.elb_security_group_name(intent.lb_name)
        elb_sg = next(
            (sg for sg in ctx.security_groups if sg.name == sg_name and sg.vpc_id == ctx.vpc_id), None
        )
        if elb_sg is not None:
            check_owned("security group", sg_name, elb_sg.tags, self.cluster, ref)
            data["elb_sg_id"] = elb_sg.id
        else:
            b.add(
                P_ELB_SG,
                Change(
                    Action.CREATE,
                    "security-group",
                    sg_name,
                    None,
                    {"vpc": ctx.vpc_id, "tags": ownership_only(ref, self.cluster, "classic")},
                    data={"type": "elb-sg", "name": sg_name},
                ),
            )
        backend_name = names.elb_backend_security_group_name(self.cluster)
        backend = next(
            (sg for sg in ctx.security_groups if sg.name == backend_name and sg.vpc_id == ctx.vpc_id), None
        )
        if backend is not None:
            if not naming.is_owned_by_cluster(backend.tags, self.cluster):
                raise OwnershipConflict(
                    f"security group {backend_name!r} exists in {ctx.vpc_id} but is not owned by cluster "
                    f"{self.cluster!r}; lbprov never adopts a foreign resource"
                )
            data["backend_sg_id"] = backend.id
        else:
            b.add(
                P_ELB_SG,
                Change(
                    Action.CREATE,
                    "security-group",
                    backend_name,
                    None,
                    {"vpc": ctx.vpc_id, "tags": naming.cluster_tags(self.cluster), "shared": True},
                    reason="shared by the cluster's classic ELBs",
                    data={"type": "elb-sg", "ctx_key": "backend_sg_id"},
                ),
            )
        # Its ingress: the service ports from the source ranges (the group is ours alone).
        desired = {("tcp", p.port, p.port, cidr) for p in intent.ports for cidr in intent.source_ranges}
        current: set[tuple[str, int, int, str]] = set()
        if elb_sg is not None:
            for perm in elb_sg.permissions:
                for r in perm.get("IpRanges", []):
                    current.add(
                        (perm["IpProtocol"], perm.get("FromPort", -1), perm.get("ToPort", -1), r["CidrIp"])
                    )
                for r in perm.get("Ipv6Ranges", []):
                    current.add(
                        (perm["IpProtocol"], perm.get("FromPort", -1), perm.get("ToPort", -1), r["CidrIpv6"])
                    )
        desc = names.elb_sg_rule_description(intent.lb_name)
        for key in sorted(desired - current):
            b.add(P_ELB_SG_RULE, self._elb_sg_rule(Action.CREATE, sg_name, key, desc))
        for key in sorted(current - desired):
            b.add(P_ELB_SG_RULE_DEL, self._elb_sg_rule(Action.DELETE, sg_name, key, desc))

        listeners = {
            str(p.port): {
                "protocol": "SSL" if opts.uses_tls(p.port, p.name) else "TCP",
                "port": p.port,
                "instance_protocol": "TCP",
                "instance_port": p.node_port,
                "certificate": opts.ssl_cert if opts.uses_tls(p.port, p.name) else None,
            }
            for p in intent.ports
        }
        after = {
            "scheme": "internal" if intent.scheme == "internal" else "internet-facing",
            "subnets": select_subnets(opts, intent.scheme, ctx, self.cluster),
            "security_groups": sorted(
                [elb_sg.id if elb_sg else sg_name, backend.id if backend else backend_name]
            ),
            "health_check": classic_health(intent, opts),
            "cross_zone": opts.cross_zone,
            "instances": instance_ids(intent, ctx),
            "tags": tags,
        }
        if classic is None:
            b.add(
                P_LB,
                Change(
                    Action.CREATE,
                    "load-balancer",
                    intent.lb_name,
                    None,
                    {**after, "listeners": [listeners[k] for k in sorted(listeners, key=int)]},
                    data={"type": "classic", "sg_name": sg_name, "backend_name": backend_name},
                ),
            )
        else:
            data["dns"] = classic.dns
            hc = classic.health_check
            before = {
                "scheme": classic.scheme,
                "subnets": list(classic.subnets),
                "security_groups": list(classic.security_groups),
                "health_check": {
                    "target": hc.get("Target"),
                    "interval": hc.get("Interval"),
                    "timeout": hc.get("Timeout"),
                    "healthy": hc.get("HealthyThreshold"),
                    "unhealthy": hc.get("UnhealthyThreshold"),
                },
                "cross_zone": bool(classic.cross_zone),
                "instances": list(classic.instances),
                "tags": observed_managed_tags(classic.tags, tags),
            }
            if before["scheme"] != after["scheme"]:
                b.add(
                    P_LB,
                    Change(
                        Action.REPLACE,
                        "load-balancer",
                        intent.lb_name,
                        before,
                        {**after, "listeners": [listeners[k] for k in sorted(listeners, key=int)]},
                        cloud_id=classic.name,
                        reason="the scheme of a load balancer cannot change",
                        data={"type": "classic", "sg_name": sg_name, "backend_name": backend_name},
                    ),
                )
            else:
                if before != after:
                    b.add(
                        P_LB,
                        Change(
                            Action.UPDATE,
                            "load-balancer",
                            intent.lb_name,
                            before,
                            after,
                            cloud_id=classic.name,
                            data={"type": "classic", "sg_name": sg_name, "backend_name": backend_name},
                        ),
                    )
                seen: dict[str, dict[str, Any]] = {}
                for li in classic.listeners:
                    seen[str(li["LoadBalancerPort"])] = {
                        "protocol": li.get("Protocol", "TCP").upper(),
                        "port": li["LoadBalancerPort"],
                        "instance_protocol": li.get("InstanceProtocol", "TCP").upper(),
                        "instance_port": li["InstancePort"],
                        "certificate": li.get("SSLCertificateId") or None,
                    }
                for lkey in sorted(set(listeners) | set(seen), key=int):
                    want, have = listeners.get(lkey), seen.get(lkey)
                    if want == have:
                        continue
                    action = (
                        Action.CREATE if have is None else Action.DELETE if want is None else Action.REPLACE
                    )
                    b.add(
                        P_LISTENER if want else P_LISTENER_DEL,
                        Change(
                            action,
                            "listener",
                            f"TCP/{lkey}",
                            have,
                            want,
                            cloud_id=classic.name,
                            reason="classic listeners cannot be modified"
                            if action is Action.REPLACE
                            else None,
                            data={"type": "classic-listener"},
                        ),
                    )
        # The node security group admits everything from the cluster's shared ELB backend group.
        if self.manage_sg and node_sg is not None:
            pair_desc = names.elb_backend_rule_description(self.cluster)
            source = backend.id if backend else None
            if (node_sg.id, source) not in self._pair_rules(ctx, pair_desc):
                b.add(
                    P_SG_ADD,
                    self._pair_change(Action.CREATE, node_sg.id, source, pair_desc, sg_name=backend_name),
                )

    def _elb_sg_rule(self, action: Action, sg_name: str, key: tuple[str, int, int, str], desc: str) -> Change:
        proto, lo, hi, cidr = key
        body = {"group": sg_name, "protocol": proto, "ports": f"{lo}-{hi}", "cidr": cidr}
        entry = ("CidrIpv6", "Ipv6Ranges") if ":" in cidr else ("CidrIp", "IpRanges")
        perm = {
            "IpProtocol": proto,
            "FromPort": lo,
            "ToPort": hi,
            entry[1]: [{entry[0]: cidr, "Description": desc}],
        }
        return Change(
            action,
            "security-group-rule",
            f"{sg_name} {proto}/{lo} from {cidr}",
            None if action is Action.CREATE else body,
            body if action is Action.CREATE else None,
            data={"type": "elb-sg-rule", "sg_name": sg_name, "permission": perm},
        )

    def _pair_rules(self, ctx: ClusterContext, desc: str) -> set[tuple[str, str | None]]:
        found: set[tuple[str, str | None]] = set()
        for sg in ctx.security_groups:
            for perm in sg.permissions:
                for pair in perm.get("UserIdGroupPairs", []):
                    if pair.get("Description") == desc:
                        found.add((sg.id, pair.get("GroupId")))
        return found

    def _pair_change(
        self, action: Action, sg_id: str, source: str | None, desc: str, sg_name: str | None = None
    ) -> Change:
        body = {"group": sg_id, "protocol": "all", "source_group": source or sg_name}
        return Change(
            action,
            "security-group-rule",
            f"{sg_id} all from {source or sg_name}",
            None if action is Action.CREATE else body,
            body if action is Action.CREATE else None,
            cloud_id=sg_id,
            data={"type": "node-sg-pair", "source": source, "sg_name": sg_name, "description": desc},
        )

    def _delete_classic(
        self,
        b: _Builder,
        classic: ObservedClassic | None,
        ctx: ClusterContext,
        *,
        reason: str | None = None,
        lb_name: str | None = None,
        ref: ServiceRef | None = None,
    ) -> None:
        name = classic.name if classic else lb_name
        assert name is not None
        if classic is not None:
            before = {"scheme": classic.scheme, "dns": classic.dns}
            b.add(
                P_LB_DEL,
                Change(
                    Action.DELETE,
                    "load-balancer",
                    classic.name,
                    before,
                    None,
                    cloud_id=classic.name,
                    reason=reason,
                    data={"type": "classic"},
                ),
            )
        if classic is not None and ctx.other_classic_elbs == 0:
            # The last classic ELB of the cluster: the shared backend group and its rule go too.
            desc = names.elb_backend_rule_description(self.cluster)
            if self.manage_sg:
                for sg_id, group in sorted(self._pair_rules(ctx, desc), key=str):
                    b.add(P_SG_DEL, self._pair_change(Action.DELETE, sg_id, group, desc))
            backend_name = names.elb_backend_security_group_name(self.cluster)
            for sg in ctx.security_groups:
                if sg.name == backend_name and naming.is_owned_by_cluster(sg.tags, self.cluster):
                    b.add(
                        P_ELB_SG_DEL,
                        Change(
                            Action.DELETE,
                            "security-group",
                            backend_name,
                            {"id": sg.id, "vpc": sg.vpc_id},
                            None,
                            cloud_id=sg.id,
                            reason="no classic ELB of the cluster is left",
                            data={"type": "elb-sg"},
                        ),
                    )
        sg_name = names.elb_security_group_name(name)
        uid = ref.uid if ref else (classic.tags.get(naming.SERVICE_UID_TAG) if classic else None)
        for sg in ctx.security_groups:
            if sg.name == sg_name and uid and naming.is_owned_by_service(sg.tags, self.cluster, uid):
                b.add(
                    P_ELB_SG_DEL,
                    Change(
                        Action.DELETE,
                        "security-group",
                        sg_name,
                        {"id": sg.id, "vpc": sg.vpc_id},
                        None,
                        cloud_id=sg.id,
                        reason=reason,
                        data={"type": "elb-sg"},
                    ),
                )
