"""Intent + observed cloud state -> ordered Changes (no I/O here: the reads happened before).

The NLB and classic parts live in nlb.py and classic.py; the order of changes and the shared
helpers in common.py, the pieces of the desired state in ../desired.py.
"""

from __future__ import annotations

from typing import Any

from lbprov import naming
from lbprov.model import Ingress, Intent, InvalidService, ServiceRef
from lbprov_aws.desired import (
    node_security_groups,
)
from lbprov_aws.diff.adopt import Predecessors
from lbprov_aws.diff.classic import ClassicPlanning
from lbprov_aws.diff.common import (
    P_TG_DEL,
    PlanOutput,
    _Builder,
    check_owned,
)
from lbprov_aws.diff.nlb import NLBPlanning
from lbprov_aws.diff.nlb_security_groups import NLBSecurityGroupPlanning, resolve_groups, uses_groups
from lbprov_aws.diff.node_rules import Point
from lbprov_aws.observe import (
    ClusterContext,
    ObservedNLB,
    ObservedTG,
    ServiceState,
)
from lbprov_aws.options import AWSOptions, nlb_refuses
from lbprov_aws.sg_options import EXTRA_SECURITY_GROUPS, SECURITY_GROUPS

__all__ = ["PlanOutput", "Planner"]


class Planner(NLBPlanning, NLBSecurityGroupPlanning, ClassicPlanning):
    """Turns an intent (or a deleted Service) and the observed state into ordered changes."""

    def plan(
        self,
        intent: Intent,
        ctx: ClusterContext,
        state: ServiceState,
        predecessors: Predecessors | None = None,
    ) -> PlanOutput:
        """``predecessors``: what diff/adopt.prepare found and already shows as lbprov's."""
        opts: AWSOptions = intent.options if isinstance(intent.options, AWSOptions) else AWSOptions()
        ref = intent.ref
        b = _Builder()
        if predecessors is not None:
            predecessors.add_to(b)
        data: dict[str, Any] = {"kind": opts.kind, "vpc_id": ctx.vpc_id, "tg_arns": {}}
        owned_tgs = self._owned_tgs(state, ref)
        # With a chosen name the UID-derived one is not wanted, so a foreign namesake of it is no conflict.
        nlb = self._owned_or_conflict(
            "network load balancer", state.nlb, ref, opts.kind == "nlb" and not opts.name
        )
        classic = self._owned_or_conflict("classic load balancer", state.classic, ref, opts.kind == "classic")
        if opts.kind == "nlb" and opts.name and state.foreign_named is not None:
            f = state.foreign_named
            check_owned("network load balancer", f.name, f.tags, self.cluster, ref)
        renamed = [lb for lb in state.renamed if naming.is_owned_by_service(lb.tags, self.cluster, ref.uid)]
        nlb, leftover = _current_nlb(
            nlb, renamed, opts.name or intent.lb_name if opts.kind == "nlb" else None
        )
        node_sgs = node_security_groups(ctx, self.node_sg_id, self.cluster) if self.manage_sg else []
        ingress: tuple[Ingress, ...] = ()
        wanted_points: set[Point] = set()
        tg_by_name = {tg.name: tg for tg in owned_tgs}
        data["tg_arns"] = {tg.name: tg.arn for tg in owned_tgs}

        scheme = "internal" if intent.scheme == "internal" else "internet-facing"
        sgo = opts.groups
        with_groups = opts.kind == "nlb" and uses_groups(
            nlb, scheme, self.nlb_security_groups, sgo.needs_groups
        )
        groups: list[str] = []
        kept_groups = self._others_groups(nlb, ctx, ref) if with_groups and not sgo.needs_groups else None
        if kept_groups is not None:  # an adopted NLB with its own groups: kept, never managed
            groups = kept_groups
            self._delete_frontend(b, ctx, ref, reason="the NLB does not carry it")
            self._release_backend(b, ctx, data)
        elif with_groups and sgo.user_frontend:
            groups += resolve_groups(sgo.security_groups, ctx, SECURITY_GROUPS, self.cluster)
        elif with_groups:
            groups.append(self._plan_frontend(b, intent, ctx, data))
        if kept_groups is None and (not with_groups or sgo.user_frontend):
            self._delete_frontend(b, ctx, ref, reason="no NLB wants it as its frontend group")
        if kept_groups is None and with_groups and sgo.backend:
            groups.append(self._plan_backend(b, ctx, node_sgs, data))
        elif kept_groups is None:
            self._release_backend(b, ctx, data)
        if with_groups and kept_groups is None:
            groups += resolve_groups(sgo.extra_security_groups, ctx, EXTRA_SECURITY_GROUPS, self.cluster)
            groups = list(dict.fromkeys(groups))
        if opts.kind == "nlb":
            if opts.classic_only:  # no classic ELB to keep (see options._classic)
                key = opts.classic_only[0]
                raise InvalidService(f"metadata.annotations[{key}]", nlb_refuses(key))
            foreign = {tg.name: tg for tg in state.target_groups if tg.name not in tg_by_name}
            kept, wanted_points = self._plan_nlb(
                b, intent, opts, ctx, nlb, tg_by_name, foreign, data, groups if with_groups else None
            )
            for extra in leftover:  # another owned NLB under an older name (a crash mid-rename)
                self._delete_nlb(b, extra, reason="load-balancer-name changed")
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
            self._plan_classic(b, intent, opts, ctx, classic, node_sgs, data)
            for old in [nlb, *leftover] if nlb is not None else leftover:
                self._delete_nlb(b, old, reason="load balancer type changed to classic")
            for tg in owned_tgs:
                b.add(P_TG_DEL, self._tg_delete(tg, reason="load balancer type changed to classic"))
            if classic is not None and classic.dns:
                ingress = (Ingress(hostname=classic.dns),)

        if self.manage_sg:
            ports = self._service_ports(owned_tgs) | self._intent_ports(intent)
            self._sg_ranges(b, ctx, node_sgs, ports, wanted_points, ref.uid, data)
            self._kube_proxy_rule(b, ctx, node_sgs, bool(data.get("wants_kube_proxy")), ref.uid)
        return PlanOutput(b.changes(), data, ingress)

    def plan_delete(
        self,
        ref: ServiceRef,
        ctx: ClusterContext,
        state: ServiceState,
        predecessors: Predecessors | None = None,
    ) -> PlanOutput:
        b = _Builder()
        if predecessors is not None:
            predecessors.add_to(b)
        owned_tgs = self._owned_tgs(state, ref)
        nlb = self._owned_or_conflict("network load balancer", state.nlb, ref, False)
        classic = self._owned_or_conflict("classic load balancer", state.classic, ref, False)
        if nlb is not None:
            self._delete_nlb(b, nlb)
        for extra in state.renamed:  # NLBs under a chosen name (load-balancer-name)
            if naming.is_owned_by_service(extra.tags, self.cluster, ref.uid):
                self._delete_nlb(b, extra)
        for tg in owned_tgs:
            b.add(P_TG_DEL, self._tg_delete(tg))
        self._delete_classic(b, classic, ctx, lb_name=naming.lb_name(ref.uid), ref=ref)
        data: dict[str, Any] = {"tg_arns": {tg.name: tg.arn for tg in owned_tgs}}
        self._delete_frontend(b, ctx, ref, reason=None)
        self._release_backend(b, ctx, data)
        if self.manage_sg:
            self._sg_ranges(b, ctx, [], self._service_ports(owned_tgs), set(), ref.uid, data)
            self._kube_proxy_rule(b, ctx, [], False, ref.uid)
        return PlanOutput(b.changes(), data, ())

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


def _current_nlb(
    at_default: ObservedNLB | None, renamed: list[ObservedNLB], wanted: str | None
) -> tuple[ObservedNLB | None, list[ObservedNLB]]:
    """The Service's NLB to keep (or replace under the name ``wanted``) and the other owned ones
    (to delete): the one already named ``wanted`` if any, else the first found."""
    owned = ([at_default] if at_default is not None else []) + [lb for lb in renamed if lb is not at_default]
    if not owned:
        return None, []
    keep = next((lb for lb in owned if lb.name == wanted), owned[0])
    return keep, [lb for lb in owned if lb is not keep]
