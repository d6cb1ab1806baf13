"""The node sync: the registered targets of every NLB Service's target groups, and the registered
instances of every classic ELB Service's load balancer, at once.

What of a Service's load balancer follows the nodes on AWS: the registered targets of each of its
instance target groups (one per listener port), or a classic ELB's registered instances, and the
node security group rules when the new node set has other security groups. Each target group and
classic ELB is the Service's own, so a node change costs one ``RegisterTargets`` (or
``DeregisterTargets``) per target group, one ``RegisterInstancesWithLoadBalancer`` (or
``DeregisterInstancesFromLoadBalancer``) per classic ELB, however it is made; what re-planning every
Service cost on top is each plan's reads and CPU. So the node sync:

* plans from what the provider remembers (remembered.py: each owned target group's tags and
  registered targets, each of the cluster's classic ELBs' tags and registered instances, kept
  current by lbprov's own writes; the same data a per-Service plan diffs against outside its deep
  checks) and one ``DescribeInstances`` of the node instances (plus one listing of the VPC's
  security groups when a node's groups differ from the others'): no read per Service;
* computes each Service's wanted targets with the per-Service plan's own function
  (:func:`lbprov_aws.desired.instance_ids` over the resolved intent, whose targets ``resolve``
  already filtered by ``target-node-labels``), and its target groups' names with
  :func:`lbprov_aws.names.target_group_name` over :func:`lbprov_aws.desired.listener_ports`, as
  diff/nlb.py does (a classic ELB: its UID-derived name, as diff/classic.py);
  ``externalTrafficPolicy`` changes the health check, never the targets;
* leaves uncovered (the controller re-plans them, today's path) whatever it cannot answer for
  exactly: a Service whose target groups or classic ELB (under lbprov's names, owned by the Service,
  with this cluster's identity) or their targets are not remembered (not applied or listed by this
  process yet, upstream's adopted target groups, a predecessor classic ELB not adopted yet, a write
  that failed; a Service without the type annotation that keeps the classic ELB it has while the
  default is NLB, diff/adopt.py ``keep_kind``, has no target group to find), and, when lbprov
  manages node security group rules, a Service whose nodes' security groups (as
  :func:`lbprov_aws.desired.node_security_groups` picks them) change (a classic ELB's node rule
  admits the cluster's backend group into each of them).

lbprov makes only ``instance`` target groups (their names hash the target type; ``nlb-ip`` Services
belong to aws-load-balancer-controller), so there is no IP-mode group to leave out.

:meth:`NodeSync.apply` sends the writes from a pool of ``node_sync_workers`` threads (a setting,
default 10), each call through the provider's :class:`~lbprov.cloudcalls.CloudCalls` (rate limits,
timeouts, back-off, the circuit breaker, the read-only guard), and returns when all are answered;
the controller's stop waits for a running node sync only within its shutdown timeout
(lbprov/controller/nodes.py). A failed write leaves the others applied: its Service is returned
by the apply (the controller re-plans it and records no event on it), and the remembered targets
of its group, or instances of its classic ELB, are forgotten (remembered.py), so that the re-plan
reads them. (A read round's listing of classic ELBs older than a node sync's write is not trusted
for that ELB's instances either: observe.py ``Reader._classic_instances``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal

from lbprov import naming
from lbprov.model import Action, Change, Intent
from lbprov.provider import NodeSyncPlan
from lbprov_aws.client import AWSClients
from lbprov_aws.desired import (
    NodeSecurityGroupError,
    instance_ids,
    listener_ports,
    node_port,
    node_security_groups,
)
from lbprov_aws.names import target_group_name
from lbprov_aws.observe import ClusterContext, ObservedSG, Reader, chunks
from lbprov_aws.options import AWSOptions, provider_id_instance
from lbprov_aws.settings import AWSSettings

log = logging.getLogger("lbprov.aws.node_sync")

PROVIDER = "aws"
#: Targets per RegisterTargets / DeregisterTargets call (as apply/nlb.py sends them).
TARGETS_PER_CALL = 100


@dataclass(frozen=True, slots=True)
class KnownGroup:
    """A target group as remembered: its ARN, tags and registered targets (None: not known)."""

    arn: str
    tags: Mapping[str, str]
    targets: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Registration:
    """What of a Service's load balancer the node sync keeps: a target group (``kind`` "tg", its
    ARN as ``cloud_id``, the NodePort it forwards to) or a classic ELB ("classic", its name), with
    the instances registered as remembered."""

    kind: Literal["tg", "classic"]
    name: str
    cloud_id: str
    targets: tuple[str, ...]
    node_port: int | None = None


def group_name(arn: str) -> str:
    """The name in a target group ARN (``...:targetgroup/NAME/ID``)."""
    return arn.partition(":targetgroup/")[2].partition("/")[0]


class NodeSync:
    """Plans and applies the target registrations of every NLB Service for the intents given."""

    def __init__(
        self,
        settings: AWSSettings,
        reader: Reader,
        clients: AWSClients,
        resolve: Callable[[Intent], Intent],
    ) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.reader = reader
        self.clients = clients
        self._resolve = resolve

    # -- plan ------------------------------------------------------------------------------------

    def plan(self, intents: Sequence[Intent]) -> NodeSyncPlan:
        """The target registration changes of every Service given (reads: the node instances)."""
        uncovered: dict[str, str] = {}
        wanted: list[tuple[Intent, list[Registration]]] = []
        known = self._known()
        for intent in intents:
            key = intent.ref.key
            try:
                intent = self._resolve(intent)
            except Exception as exc:  # its own plan says why, in an event
                uncovered[key] = f"its annotations do not resolve: {exc}"
                continue
            why, groups = self._groups(intent, known)
            if why is not None:
                uncovered[key] = why
                continue
            wanted.append((intent, groups))
        if not wanted:
            return NodeSyncPlan(PROVIDER, uncovered=uncovered)
        ids = {
            i for intent, _ in wanted for t in intent.targets if (i := provider_id_instance(t.provider_id))
        }
        ids |= {i for _, regs in wanted for r in regs for i in r.targets}
        with self.reader.shared_round():
            instances = self.reader.instances(sorted(ids))
            ctx = ClusterContext(
                vpc_id=None, vpc_cidrs=(), subnets=[], security_groups=(), instances=instances
            )
            node_groups = NodeGroups(self.settings, self.reader, instances)
            changes: list[Change] = []
            covered: set[str] = set()
            updated: set[str] = set()
            for intent, regs in wanted:
                key = intent.ref.key
                targets = instance_ids(intent, ctx)
                mine = [c for r in regs if (c := _change(intent, r, targets))]
                before = frozenset(i for r in regs for i in r.targets)
                if mine and (why := node_groups.change(before, frozenset(targets))):
                    uncovered[key] = why
                    continue
                covered.add(key)
                if mine:
                    updated.add(key)
                    changes.extend(mine)
        return NodeSyncPlan(
            PROVIDER,
            tuple(changes),
            covered=frozenset(covered),
            uncovered=uncovered,
            updated=frozenset(updated),
        )

    def _known(self) -> dict[str, list[KnownGroup]]:
        """The remembered target groups by name (a name may be in several VPCs or clusters)."""
        out: dict[str, list[KnownGroup]] = {}
        for arn, tags, targets in self.reader.remembered.target_groups():
            out.setdefault(group_name(arn), []).append(KnownGroup(arn, tags, targets))
        return out

    def _groups(
        self, intent: Intent, known: Mapping[str, list[KnownGroup]]
    ) -> tuple[str | None, list[Registration]]:
        """(why not covered, or None; the Service's registrations: its target groups, one per
        listener port, or its classic ELB)."""
        opts = intent.options
        if not isinstance(opts, AWSOptions):
            return "its options are not AWS's", []
        if opts.kind == "classic":
            return self._classic(intent)
        out: list[Registration] = []
        for port in listener_ports(intent.ports):
            name = target_group_name(self.cluster, intent.ref, port, port.protocol)
            found = [g for g in known.get(name, ()) if self._ours(g.tags, intent.ref.uid)]
            if len(found) != 1:
                return f"its target group {name} is not remembered (or not found once)", []
            if found[0].targets is None:
                return f"the registered targets of its target group {name} are not remembered", []
            out.append(Registration("tg", name, found[0].arn, found[0].targets, node_port(port)))
        return None, out

    def _classic(self, intent: Intent) -> tuple[str | None, list[Registration]]:
        """A classic ELB Service's load balancer, under its UID-derived name (the only one a classic
        ELB can have: options.py refuses ``load-balancer-name`` for it), as remembered."""
        name = intent.lb_name
        found = self.reader.remembered.classic(name)
        if found is None:
            return f"its classic ELB {name} is not remembered", []
        tags, instances = found
        if not self._ours(tags, intent.ref.uid):
            return f"its classic ELB {name} is not its own yet (a predecessor to adopt, or foreign)", []
        return None, [Registration("classic", name, name, instances)]

    def _ours(self, tags: Mapping[str, str], uid: str) -> bool:
        """Owned by the Service in this cluster, and not tagged with another cluster identity."""
        if not naming.is_owned_by_service(tags, self.cluster, uid):
            return False
        found = tags.get(naming.CLUSTER_ID_TAG)
        return found is None or found == self.settings.cluster_id

    # -- apply -----------------------------------------------------------------------------------

    def apply(self, plan: NodeSyncPlan) -> dict[str, str]:
        """The plan's writes, ``node_sync_workers`` at a time; returns the Services whose writes
        failed (key -> why: the controller re-plans them), the others stay applied."""
        failed: dict[str, str] = {}
        workers = max(1, min(self.settings.node_sync_workers, len(plan.changes)))
        with ThreadPoolExecutor(workers, thread_name_prefix="aws-node-sync") as pool:
            futures = {pool.submit(self._write, change): change for change in plan.changes}
            for future in as_completed(futures):
                change = futures[future]
                exc = future.exception()
                if exc is None:
                    continue
                what = "load_balancer" if change.data["type"] == "classic" else "target_group"
                log.warning(  # the rest goes on; this Service is re-planned
                    "node sync: a %s write failed",
                    "classic ELB" if what == "load_balancer" else "target group",
                    extra={what: change.name, "error": str(exc)},
                )
                failed.setdefault(
                    str(change.data["service"]), f"the node sync's write failed ({change.name}: {exc})"
                )
        return failed

    def _write(self, change: Change) -> None:
        if change.data["type"] == "classic":
            self._write_classic(change)
            return
        before = set((change.before or {}).get("targets", ()))
        after = set((change.after or {}).get("targets", ()))
        for op, ids in (
            ("elbv2:RegisterTargets", sorted(after - before)),
            ("elbv2:DeregisterTargets", sorted(before - after)),
        ):
            for batch in chunks(ids, TARGETS_PER_CALL):
                self.clients.call(op, TargetGroupArn=change.cloud_id, Targets=[{"Id": i} for i in batch])

    def _write_classic(self, change: Change) -> None:
        """A classic ELB's instances: one call each way, as apply/classic.py sends them (and as
        cloud-provider-aws's ``ensureLoadBalancerInstances`` does)."""
        before = set((change.before or {}).get("instances", ()))
        after = set((change.after or {}).get("instances", ()))
        for op, ids in (
            ("elb:RegisterInstancesWithLoadBalancer", sorted(after - before)),
            ("elb:DeregisterInstancesFromLoadBalancer", sorted(before - after)),
        ):
            if ids:
                self.clients.call(
                    op, LoadBalancerName=change.cloud_id, Instances=[{"InstanceId": i} for i in ids]
                )


class NodeGroups:
    """Whether a Service's node security groups (where lbprov writes its node rules) change with
    its targets, within one node sync plan.

    Only where lbprov manages the rules on the nodes' own groups (a fixed
    ``node_security_group_id`` is every node's group). The group :func:`node_security_groups` picks
    for an instance depends only on that instance's list of groups (and on those groups' tags), so
    when the old and the new targets have the same distinct lists of groups the picks are the
    same, and the VPC's security groups are not even read (a node added to an existing node group,
    the usual case). Otherwise they are read once and the picks compared, once per distinct set of
    instances (most Services share the whole node set)."""

    def __init__(self, settings: AWSSettings, reader: Reader, instances: Mapping[str, Mapping[str, Any]]):
        self.settings = settings
        self.reader = reader
        self.instances = instances
        self._listing: Sequence[ObservedSG] | None = None
        self._picked: dict[frozenset[str], frozenset[str] | str] = {}

    def change(self, before: frozenset[str], after: frozenset[str]) -> str | None:
        """Why the node rules may change (then the Service's own plan writes them), or None."""
        s = self.settings
        if not s.manage_node_security_group or s.node_security_group_id:
            return None
        if self._lists(before) == self._lists(after):
            return None
        old, new = self._pick(before), self._pick(after)
        for found in (old, new):
            if isinstance(found, str):
                return found
        if old != new:
            return "its nodes' security groups change, and its node rules are written to them"
        return None

    def _lists(self, ids: frozenset[str]) -> set[frozenset[str]]:
        return {
            frozenset(g.get("GroupId") for g in self.instances[i].get("SecurityGroups", ()))
            for i in ids
            if i in self.instances
        }

    def _pick(self, ids: frozenset[str]) -> frozenset[str] | str:
        """The picked groups of the instances ``ids`` that exist, or why they cannot be told."""
        if ids not in self._picked:
            instances = {i: dict(self.instances[i]) for i in ids if i in self.instances}
            vpc = self.settings.vpc_id or _one_vpc(self.instances)
            if self._listing is None:
                self._listing = self.reader.security_groups(vpc)
            part = ClusterContext(
                vpc_id=vpc, vpc_cidrs=(), subnets=[], security_groups=self._listing, instances=instances
            )
            try:
                self._picked[ids] = frozenset(
                    sg.id for sg in node_security_groups(part, None, self.settings.cluster_name)
                )
            except NodeSecurityGroupError as exc:
                self._picked[ids] = f"its nodes' security groups: {exc}"
        return self._picked[ids]


def _one_vpc(instances: Mapping[str, Mapping[str, Any]]) -> str | None:
    vpcs = {str(i.get("VpcId")) for i in instances.values() if i.get("VpcId")}
    return next(iter(vpcs)) if len(vpcs) == 1 else None


def _change(intent: Intent, reg: Registration, targets: list[str]) -> Change | None:
    """The registration change of a target group or classic ELB (None when it already has exactly
    ``targets``)."""
    before = sorted(reg.targets)
    if before == targets:
        return None
    added, removed = len(set(targets) - set(before)), len(set(before) - set(targets))
    reason = f"the cluster's nodes changed: {added} to register, {removed} to deregister"
    key = intent.ref.key
    if reg.kind == "classic":
        return Change(
            Action.UPDATE,
            "load-balancer",
            reg.name,
            {"instances": before},
            {"instances": list(targets)},
            cloud_id=reg.cloud_id,
            reason=reason,
            data={"type": "classic", "service": key},
        )
    return Change(
        Action.UPDATE,
        "target-group",
        reg.name,
        {"targets": before},
        {"targets": list(targets)},
        cloud_id=reg.cloud_id,
        reason=reason,
        data={"type": "tg", "service": key, "node_port": reg.node_port},
    )
