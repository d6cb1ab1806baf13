"""Carry out a plan's changes, in order, one AWS call (or a few) per change.

A change whose resource another change created earlier in the same apply (a listener forwarding to
a new target group, a rule admitting a new security group) finds it in the apply's context, which
starts from the ARNs and IDs the plan read. Nothing is written that the plan did not list; if a call
fails, the exception propagates and a fresh plan picks up from what exists.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Ingress, OwnershipConflict, Plan
from lbprov_aws.clients import AWSClients
from lbprov_aws.observe import NOT_FOUND_CODES, chunks
from lbprov_aws.planner import LB_ATTRIBUTE_DEFAULTS, TG_ATTRIBUTE_DEFAULTS
from lbprov_aws.sgrules import (
    Point,
    RuleConfig,
    RuleRange,
    TargetGroupFacts,
    group_delta,
    parse_rules,
    points_of_target_groups,
)


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _tag_diff(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    add = {k: v for k, v in after.items() if before.get(k) != v}
    remove = [k for k in before if k not in after]
    return add, remove


class StalePlan(RuntimeError):
    """Kept for compatibility (the controller recognises the name): no longer raised, since apply
    recomputes the shared node rules from a fresh read instead of refusing a plan made before
    another Service's apply."""


@dataclass(eq=False)
class _RuleRequest:
    """One apply's wish to bring a group's rules to what its Service wants (see ``_node_rules``)."""

    executor: Executor
    info: Mapping[str, Any]
    revoke: bool
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    pending: bool = False


@dataclass(eq=False)
class _GroupWriter:
    """Per security group: ``lock`` serialises this process's rule writes to it; ``queue`` holds
    the requests waiting for the lock, which the next holder writes together (group commit: one
    read and one call per action for all of them, instead of one round each)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    guard: threading.Lock = field(default_factory=threading.Lock)
    queue: list[_RuleRequest] = field(default_factory=list)


_WRITERS: dict[str, _GroupWriter] = defaultdict(_GroupWriter)
_WRITERS_GUARD = threading.Lock()


class Executor:
    def __init__(
        self,
        clients: AWSClients,
        cluster: str,
        rules: RuleConfig | None = None,
        *,
        target_group_facts: Callable[[], list[TargetGroupFacts]] | None = None,
    ) -> None:
        self.clients = clients
        self.cluster = cluster
        self.rules = rules or RuleConfig()
        self.target_group_facts = target_group_facts

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        """Apply the plan. The shared node rules are not written as planned but recomputed, under
        a per-group lock, from a fresh read of the group (see sgrules.py)."""
        return self._apply(plan)

    def _node_rules(self, group_id: str, info: Mapping[str, Any], *, revoke: bool) -> bool:
        """Bring one group's lbprov rules to what this Service wants, from a fresh read: authorise
        what is missing, and (``revoke``) revoke what is no longer wanted. Only this Service's own
        ports are removed from exact rules; a range rule is revoked only after the cluster's target
        groups, re-read under the lock, show that no other Service wants it. Concurrent requests
        for the group are written together by whichever takes the lock first. Returns whether
        removals were left for a later ``revoke``."""
        with _WRITERS_GUARD:
            writer = _WRITERS[group_id]
        request = _RuleRequest(self, info, revoke)
        with writer.guard:
            writer.queue.append(request)
        with writer.lock:
            if not request.done.is_set():
                with writer.guard:
                    batch = [r for r in writer.queue if r.executor is self and r.revoke == revoke]
                    writer.queue = [r for r in writer.queue if r not in batch]
                try:
                    pending = self._write_rules(group_id, [r.info for r in batch], revoke=revoke)
                    for r in batch:
                        r.pending = pending
                except BaseException as exc:
                    for r in batch:
                        r.error = exc
                finally:
                    for r in batch:
                        r.done.set()
        if request.error is not None:
            raise request.error
        return request.pending

    def _write_rules(self, group_id: str, infos: list[Mapping[str, Any]], *, revoke: bool) -> bool:
        """One fresh read and the writes for the requests of several Services (NodePorts are unique,
        so their own ports are disjoint and the order does not matter)."""
        own_ports = {int(p) for info in infos for p in info.get("own_ports", [])}
        wanted = {Point.from_json(p) for info in infos for p in (info.get("wanted") or {}).get(group_id, [])}
        # Other Services' points as the plans saw them; a Service of this batch counts as it wants now.
        hidden = {
            p
            for info in infos
            for p in (Point.from_json(raw) for raw in info.get("hidden", []))
            if p.port not in own_ports
        }
        groups = self.clients.call("ec2:DescribeSecurityGroups", GroupIds=[group_id])["SecurityGroups"]
        ours, foreign = parse_rules(groups[0].get("IpPermissions", []) if groups else [], self.cluster)
        delta = group_delta(ours, foreign, own_ports, wanted, hidden, self.rules)
        if any(self.rules.is_range(r) for r in delta.remove):
            hidden = self._fresh_hidden(infos, ours)
            delta = group_delta(ours, foreign, own_ports, wanted, hidden, self.rules)
        # A removal is safe at once when the desired rules of its key still admit all its
        # ports (a re-aggregation, or a key switched to its range); the others (ports this
        # Service no longer wants) wait for ``revoke``. A new range goes first and the exact
        # rules it covers at once, so the group never holds both forms of a key (which could
        # exceed AWS's rule limit in between).
        admitted: dict[Any, set[int]] = defaultdict(set)
        for r in delta.desired:
            if not self.rules.is_range(r):
                admitted[r.key].update(r.ports())
        ranged = {r.key for r in delta.desired if self.rules.is_range(r)}

        def safe(r: RuleRange) -> bool:
            if r.key in ranged and self.rules.lo <= r.from_port and r.to_port <= self.rules.hi:
                return True
            return all(p in admitted[r.key] for p in r.ports())

        new_ranges = [r for r in delta.add if self.rules.is_range(r)]
        under_ranges = [r for r in delta.remove if r.key in ranged and safe(r)]
        others = [r for r in delta.add if r not in new_ranges]
        safe_rest = [r for r in delta.remove if r not in under_ranges and safe(r)]
        pending = [r for r in delta.remove if not safe(r)]
        for action, rules in (
            (Action.CREATE, new_ranges),
            (Action.DELETE, under_ranges),
            (Action.CREATE, others),
            (Action.DELETE, safe_rest + (pending if revoke else [])),
        ):
            if rules:
                self._ingress(action, group_id, *(r.ip_permission(self.cluster) for r in rules))
        return bool(pending) and not revoke

    def _fresh_hidden(self, infos: list[Mapping[str, Any]], ours: set[RuleRange]) -> set[Point]:
        ranged = {r.key for r in ours if self.rules.is_range(r)}
        if self.target_group_facts is None:
            raise RuntimeError("cannot revoke a NodePort range rule without reading the target groups")
        uids = {info.get("uid") for info in infos}
        vpc_cidrs = next((list(i["vpc_cidrs"]) for i in infos if i.get("vpc_cidrs")), [])
        facts = [f for f in self.target_group_facts() if f.uid not in uids]
        return points_of_target_groups(facts, vpc_cidrs, ranged)

    def _apply(self, plan: Plan) -> tuple[Ingress, ...]:
        ctx: dict[str, Any] = {
            "lb_arn": plan.data.get("lb_arn"),
            "dns": plan.data.get("dns"),
            "tg_arns": dict(plan.data.get("tg_arns", {})),
            "elb_sg_id": plan.data.get("elb_sg_id"),
            "backend_sg_id": plan.data.get("backend_sg_id"),
            "vpc_id": plan.data.get("vpc_id"),
        }
        handlers: dict[str, Callable[[Change, dict[str, Any]], None]] = {
            "tg": self._tg,
            "nlb": self._nlb,
            "listener": self._listener,
            "node-sg-pair": self._node_pair,
            "elb-sg": self._elb_sg,
            "elb-sg-rule": self._elb_sg_rule,
            "classic": self._classic,
            "classic-listener": self._classic_listener,
        }
        changes = list(plan.changes)
        info = plan.data.get("node_rules") or {}
        # The plan's node rule changes mark WHERE (in the order of the plan) each group is brought
        # to this Service's wanted rules; WHAT is written is recomputed from a fresh read. Where the
        # plan revokes later, the first block authorises, and revokes only what leaves every port
        # admitted; the ports the Service gives up are revoked at the later block (after listeners).
        done: set[str] = set()
        revoking = {
            c.cloud_id for c in changes if c.data["type"] == "node-sg-range" and c.action is Action.DELETE
        }
        i = 0
        while i < len(changes):
            change = changes[i]
            if change.data["type"] == "node-sg-range":
                j = i
                while (
                    j < len(changes)
                    and changes[j].data["type"] == "node-sg-range"
                    and changes[j].action is change.action
                    and changes[j].cloud_id == change.cloud_id
                ):
                    j += 1
                group = change.cloud_id
                assert group is not None
                if group in done:
                    pass  # the first block did everything (nothing had to wait for the listeners)
                elif change.action is Action.DELETE or group not in revoking:
                    self._node_rules(group, info, revoke=True)
                    done.add(group)
                elif not self._node_rules(group, info, revoke=False):
                    done.add(group)
                i = j
                continue
            handlers[change.data["type"]](change, ctx)
            i += 1
        if plan.is_delete:
            return ()
        return (Ingress(hostname=ctx["dns"]),) if ctx.get("dns") else plan.ingress

    # -- target groups ---------------------------------------------------------------------------

    def _tg(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        if c.action is Action.DELETE:
            call("elbv2:DeleteTargetGroup", TargetGroupArn=c.cloud_id)
            ctx["tg_arns"].pop(c.name, None)
            return
        after = dict(c.after or {})
        hc = after["health_check"]
        if c.action is Action.CREATE:
            params: dict[str, Any] = {
                "Name": c.name,
                "Protocol": after["protocol"],
                "Port": after["port"],
                "VpcId": after["vpc"],
                "TargetType": "instance",
                "Tags": _tags(after["tags"]),
                **self._health_params(hc),
            }
            arn = call("elbv2:CreateTargetGroup", **params)["TargetGroups"][0]["TargetGroupArn"]
            ctx["tg_arns"][c.name] = arn
            if any(after["attributes"].get(k, v) != v for k, v in TG_ATTRIBUTE_DEFAULTS.items()) or (
                after["attributes"].get("stickiness.enabled") == "true"
            ):
                self._tg_attributes(arn, after["attributes"])
            self._targets(arn, [], after["targets"], after["port"])
            return
        before = dict(c.before or {})
        arn = c.cloud_id
        if before["health_check"] != hc:
            call("elbv2:ModifyTargetGroup", TargetGroupArn=arn, **self._health_params(hc))
        if before["attributes"] != after["attributes"]:
            self._tg_attributes(arn, after["attributes"])
        if before["targets"] != after["targets"]:
            self._targets(arn, before["targets"], after["targets"], after["port"])
        if before["tags"] != after["tags"]:
            self._elbv2_tags(arn, before["tags"], after["tags"])

    @staticmethod
    def _health_params(hc: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "HealthCheckProtocol": hc["protocol"],
            "HealthCheckPort": hc["port"],
            "HealthCheckEnabled": True,
            "HealthCheckIntervalSeconds": hc["interval"],
            "HealthCheckTimeoutSeconds": hc["timeout"],
            "HealthyThresholdCount": hc["healthy"],
            "UnhealthyThresholdCount": hc["unhealthy"],
        }
        if hc.get("path"):
            params["HealthCheckPath"] = hc["path"]
        return params

    def _tg_attributes(self, arn: str | None, attrs: Mapping[str, str]) -> None:
        self.clients.call(
            "elbv2:ModifyTargetGroupAttributes",
            TargetGroupArn=arn,
            Attributes=[{"Key": k, "Value": v} for k, v in sorted(attrs.items())],
        )

    def _targets(self, arn: str | None, before: list[str], after: list[str], port: int) -> None:
        add = sorted(set(after) - set(before))
        remove = sorted(set(before) - set(after))
        for batch in chunks(add, 100):
            self.clients.call("elbv2:RegisterTargets", TargetGroupArn=arn, Targets=[{"Id": i} for i in batch])
        for batch in chunks(remove, 100):
            self.clients.call(
                "elbv2:DeregisterTargets", TargetGroupArn=arn, Targets=[{"Id": i} for i in batch]
            )

    def _elbv2_tags(self, arn: str | None, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        add, remove = _tag_diff(before, after)
        if add:
            self.clients.call("elbv2:AddTags", ResourceArns=[arn], Tags=_tags(add))
        if remove:
            self.clients.call("elbv2:RemoveTags", ResourceArns=[arn], TagKeys=remove)

    # -- NLB -------------------------------------------------------------------------------------

    def _nlb(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        if c.action in (Action.DELETE, Action.REPLACE):
            call("elbv2:DeleteLoadBalancer", LoadBalancerArn=c.cloud_id)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        if c.action is Action.CREATE and self._existing_nlb(c, ctx):
            return
        if c.action in (Action.CREATE, Action.REPLACE):
            lb = call(
                "elbv2:CreateLoadBalancer",
                Name=c.name,
                Subnets=after["subnets"],
                Scheme=after["scheme"],
                Type="network",
                IpAddressType="ipv4",
                Tags=_tags(after["tags"]),
            )["LoadBalancers"][0]
            ctx["lb_arn"], ctx["dns"] = lb["LoadBalancerArn"], lb.get("DNSName")
            if after["attributes"] != {k: LB_ATTRIBUTE_DEFAULTS.get(k) for k in after["attributes"]}:
                self._lb_attributes(ctx["lb_arn"], after["attributes"])
            return
        before = dict(c.before or {})
        arn = c.cloud_id
        if before["subnets"] != after["subnets"]:
            call("elbv2:SetSubnets", LoadBalancerArn=arn, Subnets=after["subnets"])
        if before["attributes"] != after["attributes"]:
            self._lb_attributes(arn, after["attributes"])
        if before["tags"] != after["tags"]:
            self._elbv2_tags(arn, before["tags"], after["tags"])

    def _existing_nlb(self, c: Change, ctx: dict[str, Any]) -> bool:
        """Describe before create: AWS would return the existing LB for an identical request, but
        moto (and a create with different settings) would not; never create a second one."""
        found = self.clients.call_optional("elbv2:DescribeLoadBalancers", NOT_FOUND_CODES, Names=[c.name])
        lbs = (found or {}).get("LoadBalancers", [])
        if not lbs:
            return False
        arn = lbs[0]["LoadBalancerArn"]
        tags = self.clients.call("elbv2:DescribeTags", ResourceArns=[arn])["TagDescriptions"]
        _check_same_owner("network load balancer", c, tags[0].get("Tags", []) if tags else [])
        ctx["lb_arn"], ctx["dns"] = arn, lbs[0].get("DNSName")
        return True

    def _existing_classic(self, c: Change, ctx: dict[str, Any]) -> bool:
        found = self.clients.call_optional(
            "elb:DescribeLoadBalancers", NOT_FOUND_CODES, LoadBalancerNames=[c.name]
        )
        lbs = (found or {}).get("LoadBalancerDescriptions", [])
        if not lbs:
            return False
        tags = self.clients.call("elb:DescribeTags", LoadBalancerNames=[c.name])["TagDescriptions"]
        _check_same_owner("classic load balancer", c, tags[0].get("Tags", []) if tags else [])
        ctx["dns"] = lbs[0].get("DNSName")
        return True

    def _lb_attributes(self, arn: str | None, attrs: Mapping[str, str]) -> None:
        self.clients.call(
            "elbv2:ModifyLoadBalancerAttributes",
            LoadBalancerArn=arn,
            Attributes=[{"Key": k, "Value": v} for k, v in sorted(attrs.items())],
        )

    def _listener(self, c: Change, ctx: dict[str, Any]) -> None:
        if c.action in (Action.DELETE, Action.REPLACE):
            self.clients.call("elbv2:DeleteListener", ListenerArn=c.cloud_id)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        params: dict[str, Any] = {
            "Protocol": after["protocol"],
            "Port": after["port"],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": ctx["tg_arns"][after["target_group"]]}],
        }
        if after.get("certificate"):
            params["Certificates"] = [{"CertificateArn": after["certificate"]}]
            params["SslPolicy"] = after["ssl_policy"]
        if c.action in (Action.CREATE, Action.REPLACE):
            self.clients.call("elbv2:CreateListener", LoadBalancerArn=ctx["lb_arn"], **params)
        else:
            self.clients.call("elbv2:ModifyListener", ListenerArn=c.cloud_id, **params)

    # -- security groups -------------------------------------------------------------------------

    def _ingress(self, action: Action, group_id: str, *permissions: Mapping[str, Any]) -> None:
        op = "AuthorizeSecurityGroupIngress" if action is Action.CREATE else "RevokeSecurityGroupIngress"
        resp = self.clients.call(f"ec2:{op}", GroupId=group_id, IpPermissions=[dict(p) for p in permissions])
        if resp.get("UnknownIpPermissions"):
            # Someone (a concurrent plan) already changed this rule: fail so the Service is re-planned.
            raise RuntimeError(f"{group_id}: rule to revoke no longer exists: {resp['UnknownIpPermissions']}")

    def _node_pair(self, c: Change, ctx: dict[str, Any]) -> None:
        assert c.cloud_id is not None
        source = c.data.get("source") or ctx["backend_sg_id"]
        perm = {
            "IpProtocol": "-1",
            "UserIdGroupPairs": [{"GroupId": source, "Description": c.data["description"]}],
        }
        self._ingress(c.action, c.cloud_id, perm)

    def _elb_sg(self, c: Change, ctx: dict[str, Any]) -> None:
        if c.action is Action.DELETE:
            self.clients.call("ec2:DeleteSecurityGroup", GroupId=c.cloud_id)
            return
        after = dict(c.after or {})
        resp = self.clients.call(
            "ec2:CreateSecurityGroup",
            GroupName=c.name,
            Description=(
                "lbprov: shared backend group of the cluster's classic ELBs"
                if after.get("shared")
                else f"lbprov: classic ELB {c.name[len('k8s-elb-') :]}"
            ),
            VpcId=after["vpc"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(after["tags"])}],
        )
        ctx[c.data.get("ctx_key", "elb_sg_id")] = resp["GroupId"]

    def _elb_sg_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        self._ingress(c.action, ctx["elb_sg_id"], c.data["permission"])

    # -- classic ELB -----------------------------------------------------------------------------

    def _classic(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        name = c.name
        if c.action in (Action.DELETE, Action.REPLACE):
            call("elb:DeleteLoadBalancer", LoadBalancerName=name)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        placeholders = {
            c.data.get("sg_name"): ctx["elb_sg_id"],
            c.data.get("backend_name"): ctx["backend_sg_id"],
        }
        sgs = sorted(placeholders.get(g, g) for g in after["security_groups"])
        if c.action is Action.CREATE and self._existing_classic(c, ctx):
            return
        if c.action in (Action.CREATE, Action.REPLACE):
            resp = call(
                "elb:CreateLoadBalancer",
                LoadBalancerName=name,
                Listeners=[self._classic_listener_params(li) for li in after["listeners"]],
                Subnets=after["subnets"],
                SecurityGroups=sgs,
                Scheme=after["scheme"],
                Tags=_tags(after["tags"]),
            )
            ctx["dns"] = resp.get("DNSName")
            self._classic_health(name, after["health_check"])
            if after["cross_zone"]:
                self._classic_cross_zone(name, True)
            self._classic_instances(name, [], after["instances"])
            return
        before = dict(c.before or {})
        if before["subnets"] != after["subnets"]:
            add = sorted(set(after["subnets"]) - set(before["subnets"]))
            remove = sorted(set(before["subnets"]) - set(after["subnets"]))
            if add:
                call("elb:AttachLoadBalancerToSubnets", LoadBalancerName=name, Subnets=add)
            if remove:
                call("elb:DetachLoadBalancerFromSubnets", LoadBalancerName=name, Subnets=remove)
        if before["security_groups"] != sgs:
            call("elb:ApplySecurityGroupsToLoadBalancer", LoadBalancerName=name, SecurityGroups=sgs)
        if before["health_check"] != after["health_check"]:
            self._classic_health(name, after["health_check"])
        if before["cross_zone"] != after["cross_zone"]:
            self._classic_cross_zone(name, after["cross_zone"])
        if before["instances"] != after["instances"]:
            self._classic_instances(name, before["instances"], after["instances"])
        if before["tags"] != after["tags"]:
            tags_add, tags_remove = _tag_diff(before["tags"], after["tags"])
            if tags_add:
                call("elb:AddTags", LoadBalancerNames=[name], Tags=_tags(tags_add))
            if tags_remove:
                call("elb:RemoveTags", LoadBalancerNames=[name], Tags=[{"Key": k} for k in tags_remove])

    @staticmethod
    def _classic_listener_params(li: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Protocol": li["protocol"],
            "LoadBalancerPort": li["port"],
            "InstanceProtocol": li["instance_protocol"],
            "InstancePort": li["instance_port"],
        }
        if li.get("certificate"):
            params["SSLCertificateId"] = li["certificate"]
        return params

    def _classic_health(self, name: str, hc: Mapping[str, Any]) -> None:
        self.clients.call(
            "elb:ConfigureHealthCheck",
            LoadBalancerName=name,
            HealthCheck={
                "Target": hc["target"],
                "Interval": hc["interval"],
                "Timeout": hc["timeout"],
                "HealthyThreshold": hc["healthy"],
                "UnhealthyThreshold": hc["unhealthy"],
            },
        )

    def _classic_cross_zone(self, name: str, enabled: bool) -> None:
        self.clients.call(
            "elb:ModifyLoadBalancerAttributes",
            LoadBalancerName=name,
            LoadBalancerAttributes={"CrossZoneLoadBalancing": {"Enabled": enabled}},
        )

    def _classic_instances(self, name: str, before: list[str], after: list[str]) -> None:
        add = sorted(set(after) - set(before))
        remove = sorted(set(before) - set(after))
        if add:
            self.clients.call(
                "elb:RegisterInstancesWithLoadBalancer",
                LoadBalancerName=name,
                Instances=[{"InstanceId": i} for i in add],
            )
        if remove:
            self.clients.call(
                "elb:DeregisterInstancesFromLoadBalancer",
                LoadBalancerName=name,
                Instances=[{"InstanceId": i} for i in remove],
            )

    def _classic_listener(self, c: Change, ctx: dict[str, Any]) -> None:
        name = c.cloud_id
        if c.action in (Action.DELETE, Action.REPLACE):
            assert c.before is not None
            self.clients.call(
                "elb:DeleteLoadBalancerListeners", LoadBalancerName=name, LoadBalancerPorts=[c.before["port"]]
            )
        if c.action in (Action.CREATE, Action.REPLACE):
            assert c.after is not None
            self.clients.call(
                "elb:CreateLoadBalancerListeners",
                LoadBalancerName=name,
                Listeners=[self._classic_listener_params(c.after)],
            )


def _check_same_owner(what: str, c: Change, tags: list[dict[str, str]]) -> None:
    """A load balancer appeared under our name between plan and apply: only ours may be reused."""
    found = {t["Key"]: t.get("Value", "") for t in tags}
    wanted = dict((c.after or {}).get("tags", {}))
    if found.get(naming.SERVICE_UID_TAG) != wanted.get(naming.SERVICE_UID_TAG) or not any(
        k.startswith(naming.CLUSTER_TAG_PREFIX)
        and found.get(k) == naming.OWNED
        and wanted.get(k) == naming.OWNED
        for k in found
    ):
        raise OwnershipConflict(
            f"{what} {c.name!r} appeared after the plan was made and is not owned by this Service; "
            "lbprov never adopts a foreign resource"
        )
