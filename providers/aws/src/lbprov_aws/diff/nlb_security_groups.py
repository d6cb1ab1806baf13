"""Planning the security groups of an NLB created with groups (aws-load-balancer-controller's model).

Why: with the older model, every NLB Service adds NodePort rules from its source ranges to the node
security groups, which grow with the Services (AWS allows 60 inbound rules per group) and let the
source ranges reach the NodePorts directly. An NLB created *with* security groups instead carries

* a **frontend** group of its own (``k8s-<ns8>-<name8>-<hash10>``, as aws-load-balancer-controller
  names it), opening the listener ports (per protocol) to the Service's source ranges; and
* the cluster's shared **backend** group (``k8s-traffic-<cluster>-<hash10>``), which every node
  security group admits on the NodePort range (TCP and UDP) and kube-proxy's health port 10256:
  three rules per node group, however many Services there are.

AWS attaches groups only to an NLB created with some (``SetSecurityGroups``), so an NLB that exists
without groups (upstream's default, or lbprov before this model) keeps the older model (node_rules.py);
``uses_groups`` decides which model a plan follows. The setting ``nlb_security_groups`` (default
true) chooses the model of new NLBs.

Ownership. The frontend group is the Service's (ownership tags with its UID) and goes after its NLB.
The backend group is the cluster's: it carries the cluster tag, the identity and
aws-load-balancer-controller's two tags, by which that controller finds and shares it instead of
colliding on its name; a group of that name made by aws-load-balancer-controller for this cluster is
used, never deleted. lbprov deletes the backend group and its node rules only when no load balancer
at all carries it (AWS would refuse anyway) and its identity matches (naming.identity_matches): any
plan that does not use the group decides that from the cloud's state, so a crash after the last NLB's
delete cannot leave it for good. Apply re-checks under a lock (apply/nlb_security_groups.py).
"""

from __future__ import annotations

from typing import Any

from lbprov import naming
from lbprov.annotations import annotation_field
from lbprov.model import Action, Change, Intent, InvalidService, OwnershipConflict, ServiceRef
from lbprov_aws import names
from lbprov_aws.desired import KUBE_PROXY_HEALTH_PORT, listener_ports, ownership_only
from lbprov_aws.diff.common import (
    P_ELB_SG,
    P_ELB_SG_DEL,
    P_ELB_SG_RULE,
    P_ELB_SG_RULE_DEL,
    PlannerBase,
    _Builder,
    check_owned,
    rule_change,
    sg_delete,
)
from lbprov_aws.observe import ClusterContext, ObservedNLB, ObservedSG
from lbprov_aws.sg_index import index_of

#: (protocol, from, to, CIDR) of one frontend rule.
FrontKey = tuple[str, int, int, str]


def uses_groups(nlb: ObservedNLB | None, scheme: str, default: bool, required: bool = False) -> bool:
    """Whether the Service's NLB follows the security-group model: a new one by the setting
    (``default``) or because its annotations ask for groups (``required``); an existing one by
    whether it was created with groups, unless the annotations ask for groups, which replaces an
    NLB created without (diff/nlb.py says so). A scheme change replaces the NLB anyway."""
    if nlb is None or nlb.scheme != scheme:
        return default or required
    return bool(nlb.security_groups) or required


def resolve_groups(refs: tuple[str, ...], ctx: ClusterContext, annotation: str, cluster: str) -> list[str]:
    """The IDs of the security groups an annotation names (IDs, group names or ``Name`` tags in
    the cluster's VPC, as aws-load-balancer-controller resolves them); refuses what is not there."""
    out: list[str] = []
    index = index_of(ctx, cluster)
    for ref in refs:
        found = [sg.id for sg in index.matching(ref) if sg.vpc_id == ctx.vpc_id]
        if len(set(found)) != 1:
            why = "matches several" if found else "matches no"
            raise InvalidService(
                annotation_field(annotation),
                f"{ref!r} {why} security group ID, group name or Name tag in VPC {ctx.vpc_id}",
            )
        out.append(found[0])
    return out


def backend_permissions(lo: int, hi: int, source: str | None, cluster: str) -> list[dict[str, Any]]:
    """The node group rules admitting the backend group (``source``: its ID, None until created):
    the NodePort range over TCP and UDP, and kube-proxy's /healthz port (UDP target groups of
    Cluster-policy Services probe it)."""
    desc = names.nlb_rule_description(names.BACKEND_RULE, cluster)
    pair = {"GroupId": source, "Description": desc}
    return [
        {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": [dict(pair)]},
        {"IpProtocol": "udp", "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": [dict(pair)]},
        {
            "IpProtocol": "tcp",
            "FromPort": KUBE_PROXY_HEALTH_PORT,
            "ToPort": KUBE_PROXY_HEALTH_PORT,
            "UserIdGroupPairs": [dict(pair)],
        },
    ]


def _pair_keys(sg: ObservedSG) -> dict[tuple[str, int, int, str], str]:
    """(protocol, from, to, source group) -> description of a group's group-sourced rules."""
    out: dict[tuple[str, int, int, str], str] = {}
    for perm in sg.permissions:
        for pair in perm.get("UserIdGroupPairs", []):
            key = (
                str(perm.get("IpProtocol")),
                perm.get("FromPort", -1),
                perm.get("ToPort", -1),
                pair.get("GroupId"),
            )
            out[key] = pair.get("Description") or ""
    return out


def is_lbc_backend(sg: ObservedSG, cluster: str) -> bool:
    """aws-load-balancer-controller's backend group for this cluster (shared, never deleted)."""
    return (
        sg.tags.get(names.LBC_CLUSTER_TAG) == cluster
        and sg.tags.get(names.LBC_RESOURCE_TAG) == names.LBC_BACKEND_SG
    )


class NLBSecurityGroupPlanning(PlannerBase):
    """The frontend and backend groups of an NLB, and the release of the backend group."""

    def _find_group(self, ctx: ClusterContext, name: str) -> ObservedSG | None:
        return next(iter(index_of(ctx, self.cluster).named(name, ctx.vpc_id)), None)

    def _plan_frontend(self, b: _Builder, intent: Intent, ctx: ClusterContext, data: dict[str, Any]) -> str:
        """The Service's frontend group and its rules; returns its ID (or name, until created)."""
        ref = intent.ref
        name = names.nlb_frontend_security_group_name(self.cluster, ref)
        sg = self._find_group(ctx, name)
        if sg is not None:
            check_owned("security group", name, sg.tags, self.cluster, ref)
            data["frontend_sg_id"] = sg.id
        else:
            b.add(
                P_ELB_SG,
                Change(
                    Action.CREATE,
                    "security-group",
                    name,
                    None,
                    {
                        "vpc": ctx.vpc_id,
                        "description": names.NLB_FRONTEND_SG_DESCRIPTION,
                        "tags": ownership_only(ref, self.cluster, "nlb", self.cluster_id),
                    },
                    reason="the NLB's frontend group: its listener ports from the source ranges",
                    data={"type": "nlb-sg", "role": "frontend"},
                ),
            )
        want: set[FrontKey] = set()
        for port in listener_ports(intent.ports):
            protos = ("tcp", "udp") if str(port.protocol) == "TCP_UDP" else (port.protocol.lower(),)
            for proto in protos:
                want |= {(proto, port.port, port.port, cidr) for cidr in intent.source_ranges}
        have: set[FrontKey] = set()
        for perm in sg.permissions if sg is not None else []:
            lo, hi, proto = perm.get("FromPort", -1), perm.get("ToPort", -1), str(perm["IpProtocol"])
            have |= {(proto, lo, hi, r["CidrIp"]) for r in perm.get("IpRanges", [])}
            have |= {(proto, lo, hi, r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", [])}
        desc = names.nlb_rule_description(names.FRONTEND_RULE, intent.lb_name)
        for key in sorted(want - have):
            b.add(P_ELB_SG_RULE, _frontend_rule(Action.CREATE, name, key, desc))
        for key in sorted(have - want):
            b.add(P_ELB_SG_RULE_DEL, _frontend_rule(Action.DELETE, name, key, desc))
        return sg.id if sg is not None else name

    def _plan_backend(
        self, b: _Builder, ctx: ClusterContext, node_sgs: list[ObservedSG], data: dict[str, Any]
    ) -> str:
        """The cluster's backend group (created if missing) and its rule in each node group."""
        name = names.nlb_backend_security_group_name(self.cluster)
        sg = self._find_group(ctx, name)
        if sg is not None:
            if not naming.is_owned_by_cluster(sg.tags, self.cluster) and not is_lbc_backend(sg, self.cluster):
                raise OwnershipConflict(
                    f"security group {name!r} exists in {ctx.vpc_id} but is neither owned by cluster "
                    f"{self.cluster!r} nor aws-load-balancer-controller's backend group of it; lbprov "
                    "never adopts a foreign resource"
                )
            data["nlb_backend_sg_id"] = sg.id
        else:
            tags = naming.cluster_tags(self.cluster, self.cluster_id)
            tags[names.LBC_CLUSTER_TAG] = self.cluster
            tags[names.LBC_RESOURCE_TAG] = names.LBC_BACKEND_SG
            b.add(
                P_ELB_SG,
                Change(
                    Action.CREATE,
                    "security-group",
                    name,
                    None,
                    {"vpc": ctx.vpc_id, "description": names.NLB_BACKEND_SG_DESCRIPTION, "tags": tags},
                    reason="shared by the cluster's NLBs: the node groups admit it",
                    data={"type": "nlb-sg", "role": "backend"},
                ),
            )
        if self.manage_sg:
            source = sg.id if sg is not None else None
            for node_sg in node_sgs:
                have = _pair_keys(node_sg)
                for perm in backend_permissions(self.rules.lo, self.rules.hi, source, self.cluster):
                    key = (perm["IpProtocol"], perm["FromPort"], perm["ToPort"], source)
                    if source is not None and key in have:
                        continue  # (an identical rule of anyone's admits it already)
                    b.add(P_ELB_SG_RULE, _backend_rule(Action.CREATE, node_sg.id, perm, name))
        return sg.id if sg is not None else name

    def _release_backend(self, b: _Builder, ctx: ClusterContext, data: dict[str, Any]) -> None:
        """Delete the cluster's backend group and the node rules admitting it, where no load
        balancer carries it any more (decided from the cloud's state: only for this identity)."""
        name = names.nlb_backend_security_group_name(self.cluster)
        if ctx.backend_users is None or ctx.backend_users:
            return  # not read (no such group) or still used
        desc = names.nlb_rule_description(names.BACKEND_RULE, self.cluster)
        for sg in ctx.security_groups:
            if not (
                sg.name == name
                and naming.is_owned_by_cluster(sg.tags, self.cluster)
                and naming.identity_matches(sg.tags, self.cluster_id)
            ):
                continue
            referenced = [
                (other.id, key, d)
                for other in ctx.security_groups
                for key, d in _pair_keys(other).items()
                if key[3] == sg.id
            ]
            if any(d != desc for _, _, d in referenced):
                continue  # someone else's rule admits it: AWS would refuse to delete it
            release: dict[str, Any] = {"group": sg.id, "rules": []}
            for group_id, (proto, lo, hi, _), _d in sorted(referenced):
                perm = {
                    "IpProtocol": proto,
                    "FromPort": lo,
                    "ToPort": hi,
                    "UserIdGroupPairs": [{"GroupId": sg.id, "Description": desc}],
                }
                release["rules"].append([group_id, perm])
                b.add(P_ELB_SG_RULE_DEL, _backend_rule(Action.DELETE, group_id, perm, name, release=sg.id))
            data.setdefault("backend_release", {})[sg.id] = release
            b.add(
                P_ELB_SG_DEL,
                sg_delete(
                    sg,
                    reason="no load balancer carries the cluster's NLB backend group",
                    data={"type": "backend-release", "group": sg.id},
                ),
            )

    def _others_groups(
        self, nlb: ObservedNLB | None, ctx: ClusterContext, ref: ServiceRef
    ) -> list[str] | None:
        """The groups of an NLB that carries groups but none of lbprov's (cloud-provider-aws's
        managed NLB security group of a predecessor adopted in place, diff/adopt.py): kept as they
        are, never managed nor deleted; None for any other NLB."""
        if nlb is None or not nlb.security_groups:
            return None
        front = names.nlb_frontend_security_group_name(self.cluster, ref)
        back = names.nlb_backend_security_group_name(self.cluster)
        index = index_of(ctx, self.cluster)
        ours = {
            sg.id for sg in index.named(front) if naming.is_owned_by_service(sg.tags, self.cluster, ref.uid)
        } | {
            sg.id
            for sg in index.named(back)
            if naming.is_owned_by_cluster(sg.tags, self.cluster) or is_lbc_backend(sg, self.cluster)
        }
        return None if ours & set(nlb.security_groups) else sorted(nlb.security_groups)

    def _delete_frontend(self, b: _Builder, ctx: ClusterContext, ref: ServiceRef, reason: str | None) -> None:
        """The Service's frontend group goes (after its NLB: phases of diff/common.py)."""
        name = names.nlb_frontend_security_group_name(self.cluster, ref)
        for sg in index_of(ctx, self.cluster).named(name):
            if naming.is_owned_by_service(sg.tags, self.cluster, ref.uid):
                b.add(P_ELB_SG_DEL, sg_delete(sg, reason=reason, data={"type": "nlb-sg", "role": "frontend"}))


def _frontend_rule(action: Action, sg_name: str, key: FrontKey, desc: str) -> Change:
    proto, lo, hi, cidr = key
    entry, ranges = ("CidrIpv6", "Ipv6Ranges") if ":" in cidr else ("CidrIp", "IpRanges")
    perm = {"IpProtocol": proto, "FromPort": lo, "ToPort": hi, ranges: [{entry: cidr, "Description": desc}]}
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    return rule_change(
        action,
        f"{sg_name} {proto}/{ports} from {cidr}",
        {"group": sg_name, "protocol": proto, "ports": ports, "cidr": cidr},
        data={"type": "nlb-sg-rule", "permission": perm},
    )


def _backend_rule(
    action: Action, group_id: str, perm: dict[str, Any], backend_name: str, *, release: str | None = None
) -> Change:
    ports = (
        f"{perm['FromPort']}-{perm['ToPort']}"
        if perm["FromPort"] != perm["ToPort"]
        else str(perm["FromPort"])
    )
    return rule_change(
        action,
        f"{group_id} {perm['IpProtocol']}/{ports} from {backend_name}",
        {"group": group_id, "protocol": perm["IpProtocol"], "ports": ports, "source_group": backend_name},
        cloud_id=group_id,
        data={"type": "backend-release" if release else "backend-rule", "permission": perm, "group": release},
    )
