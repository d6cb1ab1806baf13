"""Planning an NLB: target groups, the load balancer, listeners, and the shared node rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lbprov.model import Action, Change, Intent, Port
from lbprov_aws import names
from lbprov_aws.attributes import check_deletable
from lbprov_aws.desired import (
    KUBE_PROXY_HEALTH_PORT,
    LB_ATTRIBUTE_DEFAULTS,
    LB_NAME_TAG,
    SSL_POLICY,
    TG_ATTRIBUTE_DEFAULTS,
    check_dualstack_subnets,
    desired_lb_attributes,
    desired_tg_attributes,
    instance_ids,
    listener_ports,
    managed_tags,
    nlb_health,
    node_port,
    select_subnets,
    subnet_mappings,
)
from lbprov_aws.diff.adopt import adopted_target_group_names
from lbprov_aws.diff.common import (
    P_LB,
    P_LB_DEL,
    P_LISTENER,
    P_LISTENER_DEL,
    P_SG_ADD,
    P_SG_DEL,
    P_TG_CREATE,
    P_TG_UPDATE,
    PlannerBase,
    _Builder,
    check_owned,
    observed_managed_tags,
    rule_change,
)
from lbprov_aws.diff.node_rules import (
    Point,
    RuleRange,
    group_delta,
    orphan_points,
    points_of_target_groups,
    service_points,
    source_ranges_tag,
)
from lbprov_aws.names import HEALTH_NODE_PORT_TAG, HEALTH_RULE, NLB_SECURITY_GROUPS_TAG, SOURCE_RANGES_TAG
from lbprov_aws.observe import (
    ClusterContext,
    ObservedNLB,
    ObservedSG,
    ObservedTG,
)
from lbprov_aws.options import AWSOptions
from lbprov_aws.sg_index import index_of


class NLBPlanning(PlannerBase):
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
        groups: list[str] | None = None,
    ) -> tuple[set[str], set[Point]]:
        """``groups``: the security groups (IDs, or names until created) of an NLB that follows the
        security-group model (diff/nlb_security_groups.py); None: the older node-rule model."""
        tags = managed_tags(intent, opts, self.cluster_id)
        targets = instance_ids(intent, ctx)
        attributes = desired_tg_attributes(intent, opts)
        tg_tags = dict(tags)
        # Who wants which range rule (diff/node_rules.py): read back from every target group of the cluster.
        if groups is None:  # (with groups, its NodePorts want no rule from the source ranges)
            tg_tags[SOURCE_RANGES_TAG] = source_ranges_tag(intent.source_ranges)
        if intent.health_check is not None and intent.health_check.port:
            tg_tags[HEALTH_NODE_PORT_TAG] = str(intent.health_check.port)
        if groups is not None:  # its ports want no NodePort rule (observe.target_group_facts)
            tg_tags[NLB_SECURITY_GROUPS_TAG] = "true"
        if opts.name:  # a later plan finds the NLB by it when the name changes (provider.plan)
            tg_tags[LB_NAME_TAG] = opts.name
        desired_tgs: dict[str, tuple[Port, dict[str, Any]]] = {}
        adopted = adopted_target_group_names(tg_by_name.values())  # upstream's, kept (diff/adopt.py)
        for port in listener_ports(intent.ports):
            name = adopted.get((port.protocol, node_port(port))) or names.target_group_name(
                self.cluster, intent.ref, port, port.protocol
            )
            attrs = dict(attributes)
            if port.protocol != "TCP":  # proxy protocol v2 is for TCP target groups only
                attrs["proxy_protocol_v2.enabled"] = "false"
            desired_tgs[name] = (
                port,
                {
                    "protocol": port.protocol,
                    "port": port.node_port,
                    "vpc": ctx.vpc_id,
                    "target_type": "instance",
                    "health_check": nlb_health(intent, opts, port.protocol),
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
        lb_after: dict[str, Any] = {
            "type": "network",
            "scheme": scheme,
            "subnets": select_subnets(opts, intent.scheme, ctx, self.cluster),
            "attributes": desired_lb_attributes(opts),
            "tags": tags,
        }
        if groups is not None:
            lb_after["security_groups"] = sorted(groups)
        if opts.ip_address_type == "dualstack":
            check_dualstack_subnets(lb_after["subnets"], ctx)
            lb_after["ip_address_type"] = "dualstack"
        elif nlb is not None and nlb.ip_address_type != "ipv4":
            lb_after["ip_address_type"] = "ipv4"  # back from dualstack: SetIpAddressType
        mappings = subnet_mappings(opts, lb_after["subnets"], ctx)
        if mappings:
            lb_after["subnet_mappings"] = mappings
        lb_name = opts.name or intent.lb_name
        replaced = False
        if nlb is None:
            b.add(
                P_LB,
                Change(Action.CREATE, "load-balancer", lb_name, None, lb_after, data={"type": "nlb"}),
            )
        else:
            data["lb_arn"] = nlb.arn
            data["dns"] = nlb.dns
            lb_before: dict[str, Any] = {
                "type": "network",
                "scheme": nlb.scheme,
                "subnets": list(nlb.subnets),
                "attributes": {
                    k: (nlb.attributes or {}).get(k, LB_ATTRIBUTE_DEFAULTS.get(k))
                    for k in lb_after["attributes"]
                },
                "tags": observed_managed_tags(nlb.tags, tags),
            }
            if "security_groups" in lb_after:
                lb_before["security_groups"] = sorted(nlb.security_groups)
            if "ip_address_type" in lb_after:
                lb_before["ip_address_type"] = nlb.ip_address_type
            seen = observed_mappings(nlb, "subnet_mappings" in lb_after and bool(opts.private_ipv4))
            if seen or "subnet_mappings" in lb_after:
                lb_before["subnet_mappings"] = seen
            why = replacement_reasons(nlb.name, lb_name, lb_before, lb_after)
            unprotect = False
            if why:
                # Protection turned off in the same change: apply turns it off, then replaces.
                unprotect = lb_after["attributes"].get("deletion_protection.enabled") == "false"
                if not unprotect:
                    check_deletable(nlb.attributes, nlb.name, f"it is replaced ({why})")
                unprotect = unprotect and (nlb.attributes or {}).get("deletion_protection.enabled") == "true"
                replaced = True
                if nlb.name != lb_name:
                    lb_before = {"name": nlb.name, **lb_before}
                    lb_after = {"name": lb_name, **lb_after}
                b.add(
                    P_LB,
                    Change(
                        Action.REPLACE,
                        "load-balancer",
                        lb_name,
                        lb_before,
                        lb_after,
                        cloud_id=nlb.arn,
                        reason=why,
                        data={"type": "nlb", "unprotect": unprotect},
                    ),
                )
            elif lb_before != lb_after:
                b.add(
                    P_LB,
                    Change(
                        Action.UPDATE,
                        "load-balancer",
                        lb_name,
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
                "ssl_policy": (opts.ssl_policy or SSL_POLICY) if tls else None,
            }
            if tls:  # (no ALPN entry for other listeners: their plans look as before)
                after["alpn"] = opts.alpn_policy or "None"
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
            if li.protocol == "TLS":
                before["alpn"] = li.alpn or "None"
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

        ports = [(p.protocol, node_port(p)) for p in intent.ports]  # TCP_UDP: both rules
        health_ports: set[int] = set()
        own_ports = self._intent_ports(intent)
        data["wants_kube_proxy"] = False
        for port, tg_after in desired_tgs.values():
            hc = tg_after["health_check"]
            hp = node_port(port) if hc["port"] == "traffic-port" else int(hc["port"])
            if hp in own_ports:
                health_ports.add(hp)
            elif hp == KUBE_PROXY_HEALTH_PORT:  # one cluster rule, shared (kube_proxy_rule)
                data["wants_kube_proxy"] = True
            # (any other custom port may be shared with anything: the operator's to open)
        if groups is not None:  # the backend group admits the NLB on the NodePort range and 10256
            data["wants_kube_proxy"] = False
            return set(desired_tgs), set()
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
        check_deletable(nlb.attributes, nlb.name, reason or "its Service is deleted")
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
        ports = {node_port(p) for p in intent.ports}
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
        node_sgs: list[ObservedSG],
        ports: set[int],
        wanted: set[Point],
        uid: str,
        data: dict[str, Any],
    ) -> None:
        """Rule changes (shown by the plan), and in ``data["node_rules"]`` what apply needs to
        recompute them from a fresh read of each group: see diff/node_rules.py."""
        # Only groups with lbprov rules and node groups can change (the index keeps the listing's
        # order and its parsed rules, shared by the round's plans).
        index = index_of(ctx, self.cluster)
        node_ids = {sg.id for sg in node_sgs}
        groups = index.in_order(set(index.rules) | node_ids)
        groups += [sg for sg in node_sgs if sg.id not in index.by_id]
        # Delete plans do not read the VPC: the health range rules name its CIDRs.
        vpc_cidrs = list(ctx.vpc_cidrs) or sorted({k[2] for k in ctx.ranged_keys if k[0] == HEALTH_RULE})
        others = [f for f in ctx.target_group_facts or () if f.uid != uid]
        hidden = points_of_target_groups(others, vpc_cidrs, ctx.ranged_keys)
        # Orphaned rules are swept only with a known cluster identity and a full listing of the
        # cluster's target groups (the cloud's state is the whole truth of who wants a rule).
        sweep = bool(self.cluster_id) and ctx.target_group_facts is not None
        info: dict[str, Any] = {
            "own_ports": sorted(ports),
            "uid": uid,
            "vpc_cidrs": vpc_cidrs,
            "hidden": [p.to_json() for p in sorted(hidden)],
            "wanted": {},
            "sweep": False,
        }
        for sg in groups:
            ours, foreign = index.parsed(sg)
            is_node = sg.id in node_ids
            if not ours and not is_node:
                continue
            group_wanted = wanted if is_node else set()
            orphans = orphan_points(ours, others, vpc_cidrs, self.rules) if sweep else set()
            info["sweep"] = info["sweep"] or bool(orphans)
            delta = group_delta(ours, foreign, ports, group_wanted, hidden, self.rules, orphans)
            for r in delta.add:  # (skipped: an identical rule someone else made already admits it)
                b.add(P_SG_ADD, self._range_change(Action.CREATE, sg.id, r))
            for r in delta.remove:
                b.add(P_SG_DEL, self._range_change(Action.DELETE, sg.id, r))
            if not delta.empty():
                info["wanted"][sg.id] = [p.to_json() for p in sorted(group_wanted)]
        data["node_rules"] = info

    def _range_change(self, action: Action, sg_id: str, r: RuleRange) -> Change:
        body = {"group": sg_id, **r.to_json()}
        return rule_change(
            action,
            f"{sg_id} {r.label()}",
            body,
            cloud_id=sg_id,
            data={"type": "node-sg-range", "permission": r.ip_permission(self.cluster)},
        )

    def _kube_proxy_rule(
        self, b: _Builder, ctx: ClusterContext, node_sgs: list[ObservedSG], wants: bool, uid: str
    ) -> None:
        """TCP 10256 (kube-proxy's /healthz) from the VPC into the node groups, for the UDP target
        groups of Cluster-policy Services. One rule per group for the whole cluster (description
        ``lbprov.io/rule/nlb/kube-proxy=<cluster>``): added by any Service that needs it, revoked
        only when no target group of the cluster but this Service's probes 10256 any more (told by
        the cloud's target groups, so a crash between deletes cannot leave it for good)."""
        desc = names.nlb_rule_description(names.KUBE_PROXY_RULE, self.cluster)
        others = any(
            f.health_port == str(KUBE_PROXY_HEALTH_PORT) for f in ctx.target_group_facts or () if f.uid != uid
        )
        node_ids = {sg.id for sg in node_sgs}
        index = index_of(ctx, self.cluster)  # (only groups with the rule, and node groups, can change)
        candidates = [index.by_id[i] for i in index.kube_proxy]
        for sg in sorted({g.id: g for g in [*candidates, *node_sgs]}.values(), key=lambda g: g.id):
            have = index.kube_proxy_of(sg)
            want = set(ctx.vpc_cidrs) if (wants and sg.id in node_ids) else set()
            for cidr in sorted(want - have):
                b.add(P_SG_ADD, self._kube_proxy_change(Action.CREATE, sg.id, cidr, desc))
            if want or others or ctx.target_group_facts is None:
                continue  # someone else may still need it (or we could not tell: keep it)
            for cidr in sorted(have):
                b.add(P_SG_DEL, self._kube_proxy_change(Action.DELETE, sg.id, cidr, desc))

    def _kube_proxy_change(self, action: Action, sg_id: str, cidr: str, desc: str) -> Change:
        body = {"group": sg_id, "protocol": "tcp", "ports": f"{KUBE_PROXY_HEALTH_PORT}", "cidr": cidr}
        entry_key, ranges_key = ("CidrIpv6", "Ipv6Ranges") if ":" in cidr else ("CidrIp", "IpRanges")
        perm = {
            "IpProtocol": "tcp",
            "FromPort": KUBE_PROXY_HEALTH_PORT,
            "ToPort": KUBE_PROXY_HEALTH_PORT,
            ranges_key: [{entry_key: cidr, "Description": desc}],
        }
        return rule_change(
            action,
            f"{sg_id} kube-proxy:tcp/{KUBE_PROXY_HEALTH_PORT} from {cidr}",
            body,
            cloud_id=sg_id,
            data={"type": "kube-proxy-rule", "permission": perm},
        )


def kube_proxy_entries(permissions: list[dict[str, Any]], desc: str) -> set[str]:
    """CIDRs of a group's kube-proxy health rule (by its description)."""
    out: set[str] = set()
    for perm in permissions:
        if perm.get("IpProtocol") != "tcp" or perm.get("FromPort") != KUBE_PROXY_HEALTH_PORT:
            continue
        for r in perm.get("IpRanges", []):
            if r.get("Description") == desc:
                out.add(r["CidrIp"])
        for r in perm.get("Ipv6Ranges", []):
            if r.get("Description") == desc:
                out.add(r["CidrIpv6"])
    return out


def replacement_reasons(
    name_before: str, name_after: str, before: dict[str, Any], after: dict[str, Any]
) -> str:
    """Why the NLB must be replaced rather than updated ("" if it need not): what AWS cannot
    change on an existing load balancer."""
    why: list[str] = []
    if before["scheme"] != after["scheme"]:
        why.append("the scheme of a load balancer cannot change")
    if name_before != name_after:
        why.append(f"a load balancer cannot be renamed ({name_before} -> {name_after}; new DNS name)")
    if before.get("subnet_mappings", []) != after.get("subnet_mappings", []):
        why.append("the Elastic IPs or private IPv4 addresses of a load balancer's subnets cannot change")
    if "security_groups" in after and not before.get("security_groups"):
        why.append(
            "AWS attaches security groups only to an NLB created with some (SetSecurityGroups), "
            "and this one was created without"
        )
    return "; ".join(why)


def observed_mappings(nlb: ObservedNLB, private: bool) -> list[dict[str, str]]:
    """The NLB's SubnetMappings as AWS reports them: its Elastic IPs, and its private addresses
    when the Service asks for some (AWS reports an internal NLB's own addresses too, so without
    the annotation they are not told from chosen ones and not compared)."""
    out: list[dict[str, str]] = []
    for sid in nlb.subnets:
        addr = nlb.addresses.get(sid, {})
        if addr.get("allocation_id"):
            out.append({"subnet": sid, "allocation_id": addr["allocation_id"]})
        elif private and addr.get("private_ipv4"):
            out.append({"subnet": sid, "private_ipv4": addr["private_ipv4"]})
    return out
