"""Security group writes, with the group commit for the cluster's shared node rules.

Per group, ``_node_rules`` serialises this process's rule writes under a lock, and whichever apply
takes the lock writes the queued requests of every waiting apply together (one fresh read and one
call per action for all of them): see diff/node_rules.py for why the rules are recomputed here.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.model import Action, Change
from lbprov_aws.apply.base import ApplierBase
from lbprov_aws.diff.node_rules import (
    Point,
    RuleRange,
    group_delta,
    orphan_points,
    parse_rules,
    points_of_target_groups,
)


@dataclass(eq=False)
class _RuleRequest:
    """One apply's wish to bring a group's rules to what its Service wants (see ``_node_rules``)."""

    executor: SecurityGroupApplier
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


class SecurityGroupApplier(ApplierBase):
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
        orphans: set[Point] = set()
        if any(info.get("sweep") for info in infos) and self.target_group_facts is not None:
            # Orphans as the cloud shows them now, under the lock: a Service whose target groups
            # exist (it creates them before its rules) keeps its rules.
            uids = {info.get("uid") for info in infos}
            vpc_cidrs = next((list(i["vpc_cidrs"]) for i in infos if i.get("vpc_cidrs")), [])
            facts = [f for f in self.target_group_facts() if f.uid not in uids]
            orphans = orphan_points(ours, facts, vpc_cidrs, self.rules)
            delta = group_delta(ours, foreign, own_ports, wanted, hidden, self.rules, orphans)
        if any(self.rules.is_range(r) for r in delta.remove):
            hidden = self._fresh_hidden(infos, ours)
            delta = group_delta(ours, foreign, own_ports, wanted, hidden, self.rules, orphans)
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

    def _kube_proxy_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        """The cluster's shared kube-proxy health rule: adding one that a concurrent apply added
        already is fine; it is revoked only if, read afresh now, no other Service's target group
        probes 10256 (a Service created since the plan keeps it)."""
        assert c.cloud_id is not None
        perm = c.data["permission"]
        if c.action is Action.CREATE:
            try:
                self.clients.call(
                    "ec2:AuthorizeSecurityGroupIngress", GroupId=c.cloud_id, IpPermissions=[perm]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
                    raise
            return
        if self.target_group_facts is not None:
            port = str(perm["FromPort"])
            uid = ctx.get("uid")
            if any(f.health_port == port and f.uid != uid for f in self.target_group_facts()):
                return
        self.clients.call("ec2:RevokeSecurityGroupIngress", GroupId=c.cloud_id, IpPermissions=[perm])
