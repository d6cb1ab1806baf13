"""Predecessors: what cloud-provider-aws made for this Service, adopted in place (plan action adopt).

A cluster moving from cloud-provider-aws to lbprov has load balancers that upstream made under the
same UID-derived name. Deleting and recreating them would give every Service a new DNS name, so a
resource is this Service's *predecessor*, and adopted, when all of these hold (DESIGN.md
"Ownership"):

* it is found under a name only this Service can have: the load balancer ``a<uid>[:32]``, its
  classic security group ``k8s-elb-<lb>``, a target group the load balancer forwards to, or a node
  rule whose description names the load balancer (``kubernetes.io/rule/nlb/<kind>=<lb>``, or an
  all-protocol rule admitting the Service's ``k8s-elb-<lb>`` group);
* it carries upstream's ownership tag for *this* cluster (``kubernetes.io/cluster/<cluster>=owned``)
  and, where upstream tags it, ``kubernetes.io/service-name=<ns>/<name>`` of this Service;
* it has no ``lbprov.io/service-uid`` tag (then it is lbprov's, owned or foreign).

A resource of another cluster or another Service matches none of this and stays foreign: the
planner's ownership check raises OwnershipConflict for it.

:func:`prepare` finds the predecessors and shows them to the planner *as if already adopted* (on
copies: the read round's cache is never touched): ownership tags added, upstream's client and health
node rules described as lbprov's. The planner then plans as for its own resources, and
:meth:`Predecessors.add_to` puts first in the plan the ``adopt`` changes that make that true in the
cloud (tags; the rule descriptions, changed in place so no packet is ever refused), and late, after
lbprov's own rules were added, the revocation of upstream's rules that lbprov does not keep. Each
resource is adopted on its own, so a crash between two adoptions leaves state the next plan finishes.

Target groups keep upstream's names (their name hash differs from lbprov's): an adopted group is
tagged ``lbprov.io/adopted-from=cloud-provider-aws`` and serves the port whose protocol and NodePort
it has (:func:`adopted_target_group_names`), until a change of either needs a new group anyway.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Intent, InvalidService, ServiceRef
from lbprov_aws.desired import listener_ports, ownership_only
from lbprov_aws.diff.common import P_ELB_SG, P_SG_ADD, P_SG_DEL, _Builder
from lbprov_aws.names import (
    CLIENT_RULE,
    HEALTH_RULE,
    elb_security_group_name,
    nlb_rule_description,
    target_group_prefix,
)
from lbprov_aws.observe import ClusterContext, ObservedSG, ObservedTG, ServiceState
from lbprov_aws.options import TYPE, AWSOptions, LbKind, resolve
from lbprov_aws.sg_index import index_of

#: Tag on a target group adopted from cloud-provider-aws: it keeps upstream's name.
ADOPTED_TAG = "lbprov.io/adopted-from"
ADOPTED_FROM = "cloud-provider-aws"
#: Upstream's node rule descriptions (cloud-provider-aws ``aws_loadbalancer.go``,
#: ``updateInstanceSecurityGroupsForNLB``): ``kubernetes.io/rule/nlb/{client,health,mtu}=<lb>``.
UPSTREAM_NLB_RULE = "kubernetes.io/rule/nlb/{kind}={lb}"
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


def is_predecessor(tags: dict[str, str], cluster: str, ref: ServiceRef, *, service_tag: bool = True) -> bool:
    """Upstream's ownership of this cluster (and, with ``service_tag``, of this Service), and no
    lbprov ownership at all."""
    if naming.SERVICE_UID_TAG in tags or not naming.is_owned_by_cluster(tags, cluster):
        return False
    return not service_tag or tags.get(naming.SERVICE_NAME_TAG) == ref.key


def upstream_target_group_prefix(ref: ServiceRef) -> str:
    """``k8s-<ns[:8]>-<name[:8]>-`` with every non-alphanumeric removed, as upstream's
    ``buildTargetGroupName`` does (lbprov's own prefix keeps single dashes)."""
    return f"k8s-{_NON_ALNUM.sub('', ref.namespace)[:8]}-{_NON_ALNUM.sub('', ref.name)[:8]}-"


def target_group_prefixes(ref: ServiceRef) -> tuple[str, ...]:
    """The name prefixes under which a Service's target groups are listed: lbprov's and upstream's."""
    return tuple(dict.fromkeys((target_group_prefix(ref), upstream_target_group_prefix(ref))))


def adopted_target_group_names(tgs: Iterable[ObservedTG]) -> dict[tuple[str, int], str]:
    """(protocol, NodePort) -> the name of the adopted target group serving it."""
    return {
        (tg.protocol, tg.port): tg.name
        for tg in sorted(tgs, key=lambda t: t.name)
        if tg.tags.get(ADOPTED_TAG)
    }


@dataclass(frozen=True)
class UpstreamRule:
    """One entry of an upstream node rule: ``permission`` holds exactly that entry."""

    group_id: str
    kind: str  # client | health | mtu | elb
    permission: dict[str, Any]

    def label(self) -> str:
        p = self.permission
        source = [
            r.get("CidrIp") or r.get("CidrIpv6") for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])
        ]
        source += [g.get("GroupId") for g in p.get("UserIdGroupPairs", [])]
        ports = (
            "all" if p["IpProtocol"] == "-1" else f"{p['IpProtocol']}/{p.get('FromPort')}-{p.get('ToPort')}"
        )
        return f"{self.group_id} {ports} from {', '.join(str(s) for s in source)}"


@dataclass
class Predecessors:
    """What :func:`prepare` found, and the changes that adopt it."""

    adopt: list[Change] = field(default_factory=list)
    takeover: list[Change] = field(default_factory=list)
    revoke: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.adopt or self.takeover or self.revoke)

    def add_to(self, b: _Builder) -> None:
        """Adoptions first (tags: nothing else changes before the resource is lbprov's), rule
        takeovers before lbprov's own rule changes, revocations of upstream's rules after lbprov's
        rules were added (the planner adds those in the same phase, later)."""
        for c in self.adopt:
            b.add(P_ELB_SG, c)
        for c in self.takeover:
            b.add(P_SG_ADD, c)
        for c in self.revoke:
            b.add(P_SG_DEL, c)


def _lb_tag_change(name: str, api: str, cloud_id: str, have: dict[str, str], want: dict[str, str]) -> Change:
    """Adopting a predecessor load balancer (NLB through elbv2, classic through elb): the
    ownership tags ``want`` it lacks."""
    return _tag_change("load-balancer", name, api, cloud_id, have, _missing(have, want))


def _tag_change(
    kind: str, name: str, api: str, cloud_id: str, have: dict[str, str], add: dict[str, str]
) -> Change:
    upstream = {
        k: have[k]
        for k in sorted(have)
        if k.startswith(naming.CLUSTER_TAG_PREFIX) or k == naming.SERVICE_NAME_TAG
    }
    return Change(
        Action.ADOPT,
        kind,
        name,
        {"tags": upstream},
        {"tags": {**upstream, **add}},
        cloud_id=cloud_id,
        reason="made by cloud-provider-aws for this Service: adopted in place",
        data={"type": "add-tags", "api": api, "tags": add},
    )


def _missing(have: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in want.items() if have.get(k) != v}


def prepare(
    state: ServiceState,
    ctx: ClusterContext,
    ref: ServiceRef,
    lb_name: str,
    cluster: str,
    cluster_id: str | None,
    *,
    intent: Intent | None,
    manage_sg: bool = True,
) -> Predecessors:
    """Find the Service's predecessors, show them to the planner as adopted (``state`` and ``ctx``
    get copies), and return the changes that adopt them. ``intent`` None: the Service is deleted,
    and what upstream made goes with what lbprov made."""
    out = Predecessors()
    kind = None if intent is None else getattr(intent.options, "kind", "nlb")
    if state.nlb is not None and is_predecessor(state.nlb.tags, cluster, ref):
        want = ownership_only(ref, cluster, "nlb", cluster_id)
        if kind == "nlb":
            out.adopt.append(_lb_tag_change(state.nlb.name, "elbv2", state.nlb.arn, state.nlb.tags, want))
        state.nlb = dataclasses.replace(state.nlb, tags={**state.nlb.tags, **want})
    if state.classic is not None and is_predecessor(state.classic.tags, cluster, ref):
        want = ownership_only(ref, cluster, "classic", cluster_id)
        if kind == "classic":
            out.adopt.append(
                _lb_tag_change(state.classic.name, "elb", state.classic.name, state.classic.tags, want)
            )
        state.classic = dataclasses.replace(state.classic, tags={**state.classic.tags, **want})
    lb_arn = (
        state.nlb.arn
        if state.nlb is not None and naming.is_owned_by_service(state.nlb.tags, cluster, ref.uid)
        else None
    )
    wanted_ports = (
        {(p.protocol, p.node_port) for p in listener_ports(intent.ports)}
        if intent and kind == "nlb"
        else set()
    )
    tgs: list[ObservedTG] = []
    for tg in state.target_groups:
        if lb_arn is None or lb_arn not in tg.lb_arns or not is_predecessor(tg.tags, cluster, ref):
            tgs.append(tg)
            continue
        want = ownership_only(ref, cluster, "nlb", cluster_id)
        if (tg.protocol, tg.port) in wanted_ports:
            want[ADOPTED_TAG] = ADOPTED_FROM
            wanted_ports.discard((tg.protocol, tg.port))
            out.adopt.append(
                _tag_change("target-group", tg.name, "elbv2", tg.arn, tg.tags, _missing(tg.tags, want))
            )
        tgs.append(dataclasses.replace(tg, tags={**tg.tags, **want}))
    state.target_groups = tgs
    # A classic ELB under the Service's name that is not its own (after the above) makes its group
    # foreign too: the planner refuses the name, and nothing of it is touched.
    foreign_classic = state.classic is not None and not naming.is_owned_by_service(
        state.classic.tags, cluster, ref.uid
    )
    _security_groups(out, ctx, ref, lb_name, cluster, cluster_id, kind, manage_sg, foreign_classic)
    return out


def _security_groups(
    out: Predecessors,
    ctx: ClusterContext,
    ref: ServiceRef,
    lb_name: str,
    cluster: str,
    cluster_id: str | None,
    kind: str | None,
    manage_sg: bool,
    foreign_classic: bool,
) -> None:
    """The classic ELB's group ``k8s-elb-<lb>`` and upstream's node rules for this load balancer."""
    elb_sg_name = elb_security_group_name(lb_name)
    descriptions = {UPSTREAM_NLB_RULE.format(kind=k, lb=lb_name): k for k in ("client", "health", "mtu")}
    ours = {
        CLIENT_RULE: nlb_rule_description(CLIENT_RULE, cluster),
        HEALTH_RULE: nlb_rule_description(HEALTH_RULE, cluster),
    }
    index = index_of(ctx, cluster)
    elb_sg_ids = {
        sg.id
        for sg in index.named(elb_sg_name)
        if not foreign_classic
        and (
            is_predecessor(sg.tags, cluster, ref, service_tag=False)
            or naming.is_owned_by_service(sg.tags, cluster, ref.uid)
        )
    }
    take_over = kind == "nlb" and manage_sg
    # Without node rule management lbprov adds no rule of its own: a kept NLB keeps upstream's.
    keep_rules = kind == "nlb" and not manage_sg
    # Only these groups can hold anything of this load balancer's (the index says which, without
    # looking into every group of the VPC); the others are left as they are.
    candidates = set(elb_sg_ids) | index.upstream_rules.get(lb_name, set())
    for group_id in elb_sg_ids:
        candidates |= index.admitted_by.get(group_id, set())
    changed_groups: dict[str, ObservedSG] = {}
    for sg in index.in_order(candidates):
        if sg.name == elb_sg_name and sg.id in elb_sg_ids and naming.SERVICE_UID_TAG not in sg.tags:
            want = ownership_only(ref, cluster, "classic", cluster_id)
            if kind == "classic":
                out.adopt.append(
                    _tag_change("security-group", sg.name, "ec2", sg.id, sg.tags, _missing(sg.tags, want))
                )
            sg = dataclasses.replace(sg, tags={**sg.tags, **want})
        permissions = copy.deepcopy(sg.permissions)
        changed = False
        for perm in permissions:
            for ranges_key, cidr_key in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
                for entry in perm.get(ranges_key, []):
                    rule_kind = descriptions.get(entry.get("Description") or "")
                    if rule_kind is None or keep_rules:
                        continue
                    single: dict[str, Any] = {
                        "IpProtocol": perm["IpProtocol"],
                        **{k: perm[k] for k in ("FromPort", "ToPort") if k in perm},
                        ranges_key: [{cidr_key: entry[cidr_key], "Description": entry["Description"]}],
                    }
                    rule = UpstreamRule(sg.id, rule_kind, single)
                    if take_over and rule_kind in ours and perm["IpProtocol"] in ("tcp", "udp"):
                        entry["Description"] = ours[rule_kind]
                        changed = True
                        new = copy.deepcopy(single)
                        new[ranges_key][0]["Description"] = ours[rule_kind]
                        out.takeover.append(
                            Change(
                                Action.ADOPT,
                                "security-group-rule",
                                rule.label(),
                                {"description": entry_desc(single)},
                                {"description": ours[rule_kind]},
                                cloud_id=sg.id,
                                reason="cloud-provider-aws's rule for this load balancer, taken over in place",
                                data={"type": "adopt-rule", "permission": new},
                            )
                        )
                    else:
                        why = (
                            "cloud-provider-aws's ICMP path-MTU rule; lbprov's NLB rules do not include it"
                            if take_over
                            else "cloud-provider-aws's rule for this load balancer"
                        )
                        out.revoke.append(_revoke(rule, why))
            if sg.id in elb_sg_ids:
                continue
            for pair in perm.get("UserIdGroupPairs", []):
                if pair.get("GroupId") in elb_sg_ids and perm.get("IpProtocol") == "-1":
                    if kind == "classic" and not manage_sg:
                        continue  # lbprov adds no rule of its own: upstream's keeps the ELB working
                    single = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": pair["GroupId"]}]}
                    why = "cloud-provider-aws's rule admitting the ELB's group" + (
                        " (lbprov's rule admits the cluster's shared backend group)"
                        if kind == "classic"
                        else ""
                    )
                    out.revoke.append(_revoke(UpstreamRule(sg.id, "elb", single), why))
        if changed:
            sg = dataclasses.replace(sg, permissions=permissions)
        if sg is not index.by_id[sg.id]:
            changed_groups[sg.id] = sg
    if changed_groups:  # (else the round's list and index stay shared)
        ctx.security_groups = [changed_groups.get(sg.id, sg) for sg in ctx.security_groups]


def entry_desc(permission: dict[str, Any]) -> str:
    entries = permission.get("IpRanges", []) + permission.get("Ipv6Ranges", [])
    return str(entries[0].get("Description", "")) if entries else ""


def _revoke(rule: UpstreamRule, reason: str) -> Change:
    return Change(
        Action.DELETE,
        "security-group-rule",
        rule.label(),
        {"group": rule.group_id, "kind": rule.kind},
        None,
        cloud_id=rule.group_id,
        reason=reason,
        data={"type": "predecessor-rule", "permission": rule.permission},
    )


def keep_kind(intent: Intent, state: ServiceState, cluster: str) -> Intent:
    """A Service without the type annotation keeps the kind of load balancer it has, its own or
    its predecessor's, whatever default_load_balancer_type says: neither the move from
    cloud-provider-aws (whose default is a classic ELB) nor a change of the setting replaces a load
    balancer. The intent is resolved again as that kind (a classic ELB refuses UDP, for example)."""
    opts = intent.options
    if not isinstance(opts, AWSOptions) or opts.kind_explicit:
        return intent
    ref = intent.ref

    def has(found: Any) -> bool:
        return found is not None and (
            naming.is_owned_by_service(found.tags, cluster, ref.uid)
            or is_predecessor(found.tags, cluster, ref)
        )

    kinds = {k for k, found in (("nlb", state.nlb), ("classic", state.classic)) if has(found)}
    if len(kinds) != 1 or opts.kind in kinds:
        return intent
    kept: LbKind = "classic" if "classic" in kinds else "nlb"
    try:
        return resolve(intent, dict(opts.annotations), kept)
    except InvalidService as exc:
        raise InvalidService(
            exc.field,
            f"{exc.reason} (the Service has a {kept} load balancer and no {TYPE} annotation, so it keeps "
            f"that {kept} load balancer; set {TYPE} to replace it)",
        ) from exc
