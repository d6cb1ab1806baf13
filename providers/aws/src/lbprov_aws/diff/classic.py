"""Planning a classic ELB: its security groups, the load balancer, listeners, the node rule."""

from __future__ import annotations

from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Intent, OwnershipConflict, ServiceRef
from lbprov_aws import names
from lbprov_aws.desired import (
    CLASSIC_SSL_POLICY_PREFIX,
    classic_attributes,
    classic_health,
    classic_listener,
    instance_ids,
    managed_tags,
    observed_classic_attributes,
    ownership_only,
    select_subnets,
)
from lbprov_aws.diff.common import (
    P_ELB_SG,
    P_ELB_SG_DEL,
    P_ELB_SG_RULE,
    P_ELB_SG_RULE_DEL,
    P_LB,
    P_LB_DEL,
    P_LISTENER,
    P_LISTENER_DEL,
    P_SG_ADD,
    P_SG_DEL,
    PlannerBase,
    _Builder,
    check_owned,
    observed_managed_tags,
    rule_change,
    sg_delete,
)
from lbprov_aws.observe import (
    ClusterContext,
    ObservedClassic,
    ObservedSG,
)
from lbprov_aws.options import AWSOptions
from lbprov_aws.sg_index import index_of


class ClassicPlanning(PlannerBase):
    # -- classic ELB ------------------------------------------------------------------------------

    def _plan_classic(
        self,
        b: _Builder,
        intent: Intent,
        opts: AWSOptions,
        ctx: ClusterContext,
        classic: ObservedClassic | None,
        node_sgs: list[ObservedSG],
        data: dict[str, Any],
    ) -> None:
        ref = intent.ref
        tags = managed_tags(intent, opts, self.cluster_id)
        sg_name = names.elb_security_group_name(intent.lb_name)
        elb_sg = next(iter(index_of(ctx, self.cluster).named(sg_name, ctx.vpc_id)), None)
        if elb_sg is not None:
            check_owned("security group", sg_name, elb_sg.tags, self.cluster, ref)
            data["elb_sg_id"] = elb_sg.id
            if self.cluster_id and naming.CLUSTER_ID_TAG not in elb_sg.tags:
                # Made before cluster identities: it gets this cluster's on its next reconcile, as
                # the load balancers and target groups do (ec2:CreateTags on the cluster's groups).
                b.add(P_ELB_SG, _identity_change(elb_sg, self.cluster_id))
        else:
            b.add(
                P_ELB_SG,
                Change(
                    Action.CREATE,
                    "security-group",
                    sg_name,
                    None,
                    {
                        "vpc": ctx.vpc_id,
                        "tags": ownership_only(ref, self.cluster, "classic", self.cluster_id),
                    },
                    data={"type": "elb-sg", "name": sg_name},
                ),
            )
        backend_name = names.elb_backend_security_group_name(self.cluster)
        backend = next(iter(index_of(ctx, self.cluster).named(backend_name, ctx.vpc_id)), None)
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
                    {
                        "vpc": ctx.vpc_id,
                        "tags": naming.cluster_tags(self.cluster, self.cluster_id),
                        "shared": True,
                    },
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
        # cloud-provider-aws also admits ICMP type 3 code 4 (path MTU discovery) from the source
        # ranges into the group it made: an adopted group keeps that rule for the current ranges.
        current -= {("icmp", 3, 4, cidr) for cidr in intent.source_ranges}
        desc = names.elb_sg_rule_description(intent.lb_name)
        for key in sorted(desired - current):
            b.add(P_ELB_SG_RULE, self._elb_sg_rule(Action.CREATE, sg_name, key, desc))
        for key in sorted(current - desired):
            b.add(P_ELB_SG_RULE_DEL, self._elb_sg_rule(Action.DELETE, sg_name, key, desc))

        listeners = {str(p.port): classic_listener(opts, p) for p in intent.ports}
        for li in listeners.values():
            if opts.ssl_policy and li["protocol"] in ("SSL", "HTTPS"):
                li["ssl_policy"] = opts.ssl_policy
        after = {
            "scheme": "internal" if intent.scheme == "internal" else "internet-facing",
            "subnets": select_subnets(opts, intent.scheme, ctx, self.cluster),
            "security_groups": sorted(
                [elb_sg.id if elb_sg else sg_name, backend.id if backend else backend_name]
            ),
            "health_check": classic_health(intent, opts),
            "cross_zone": opts.cross_zone,
            "attributes": classic_attributes(opts),
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
                "attributes": observed_classic_attributes(classic.attributes),
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
                    policy = _ssl_policy_of(classic.listener_policies.get(int(li["LoadBalancerPort"]), []))
                    if policy:
                        seen[str(li["LoadBalancerPort"])]["ssl_policy"] = policy
                for lkey in sorted(set(listeners) | set(seen), key=int):
                    want, have = listeners.get(lkey), seen.get(lkey)
                    if want == have:
                        continue
                    action = (
                        Action.CREATE if have is None else Action.DELETE if want is None else Action.REPLACE
                    )
                    if want and have and _without_policy(want) == _without_policy(have):
                        action = Action.UPDATE  # only the SSL policy: SetLoadBalancerPoliciesOfListener
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
                            else "SSL negotiation policy"
                            if action is Action.UPDATE
                            else None,
                            data={"type": "classic-listener"},
                        ),
                    )
        # The node security group admits everything from the cluster's shared ELB backend group.
        if self.manage_sg:
            pair_desc = names.elb_backend_rule_description(self.cluster)
            source = backend.id if backend else None
            existing = self._pair_rules(ctx, pair_desc)
            for node_sg in node_sgs:
                if (node_sg.id, source) not in existing:
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
        return rule_change(
            action,
            f"{sg_name} {proto}/{lo} from {cidr}",
            body,
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
        return rule_change(
            action,
            f"{sg_id} all from {source or sg_name}",
            body,
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
        backend_name = names.elb_backend_security_group_name(self.cluster)
        index = index_of(ctx, self.cluster)
        unused = [
            sg
            for sg in index.named(backend_name)
            if naming.is_owned_by_cluster(sg.tags, self.cluster)
            and naming.identity_matches(sg.tags, self.cluster_id)
        ]
        if unused and ctx.other_classic_elbs == 0:
            # No classic ELB uses the shared backend group (the last one is deleted by this plan, or
            # was before a crash): the group and the node rules admitting it go. Decided from the
            # cloud's state, so only for a group of this cluster's identity.
            desc = names.elb_backend_rule_description(self.cluster)
            ids = {sg.id for sg in unused}
            if self.manage_sg:
                for sg_id, group in sorted(self._pair_rules(ctx, desc), key=str):
                    if group in ids:
                        b.add(P_SG_DEL, self._pair_change(Action.DELETE, sg_id, group, desc))
            for sg in unused:
                b.add(P_ELB_SG_DEL, _elb_sg_delete(sg, reason="no classic ELB of the cluster uses it"))
        sg_name = names.elb_security_group_name(name)
        uid = ref.uid if ref else (classic.tags.get(naming.SERVICE_UID_TAG) if classic else None)
        for sg in index.named(sg_name):
            if uid and naming.is_owned_by_service(sg.tags, self.cluster, uid):
                b.add(P_ELB_SG_DEL, _elb_sg_delete(sg, reason=reason))


def _identity_change(sg: ObservedSG, cluster_id: str) -> Change:
    add = {naming.CLUSTER_ID_TAG: cluster_id}
    return Change(
        Action.UPDATE,
        "security-group",
        sg.name,
        {"tags": {}},
        {"tags": add},
        cloud_id=sg.id,
        reason="the cluster identity, on a group made before identities",
        data={"type": "add-tags", "api": "ec2", "tags": add},
    )


def _elb_sg_delete(sg: ObservedSG, *, reason: str | None) -> Change:
    """Deleting a classic ELB group, the Service's own or the cluster's shared backend one (the
    callers matched ``sg`` by that name, so ``sg.name`` is the change's name)."""
    return sg_delete(sg, reason=reason, data={"type": "elb-sg"})


def _ssl_policy_of(policy_names: list[str]) -> str | None:
    """The predefined policy behind cloud-provider-aws's ``k8s-SSLNegotiationPolicy-<name>``."""
    for name in policy_names:
        if name.startswith(CLASSIC_SSL_POLICY_PREFIX):
            return name[len(CLASSIC_SSL_POLICY_PREFIX) :]
    return None


def _without_policy(listener: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in listener.items() if k != "ssl_policy"}
