"""Reading the cloud: what exists for one Service and for the cluster, with batched describes.

One plan costs one round of reads: the load balancer by name (both kinds), the target groups (one
listing, filtered by the Service's name prefix), their tags in batches of 20 ARNs, the listeners and
attributes of what is ours, and the cluster context (instances, subnets, VPC CIDRs, security groups).

A :class:`ReadRound` (``with provider.read_round(): ...``) caches the account-wide listings for the
length of one reconcile round: every load balancer and target group is listed once, and their tags
are read 20 ARNs per call, so re-planning N unchanged Services costs a few shared calls plus the
per-Service detail reads (listeners, attributes, registered targets), instead of ~8 shared reads per
Service. ``apply`` marks the Service dirty and drops the security group cache, so later plans in the
same round see their own writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.interning import compact
from lbprov_aws import sg_listing
from lbprov_aws.client import AWSClients
from lbprov_aws.diff.node_rules import SOURCE_RANGES_UNRECORDED, Key, TargetGroupFacts
from lbprov_aws.drift_schedule import DriftSchedule
from lbprov_aws.names import HEALTH_NODE_PORT_TAG, NLB_SECURITY_GROUPS_TAG, SOURCE_RANGES_TAG
from lbprov_aws.remembered import Remembered, trim_listener
from lbprov_aws.sg_index import GroupIndex
from lbprov_aws.tg_listing import TargetGroupListing

BATCH = 20
#: The tags of a listed record until the listing's tags are read (every record gets its own then).
_UNTAGGED: dict[str, str] = {}
#: Describing a missing load balancer by name is an error in the ELB APIs, not an empty answer.
NOT_FOUND_CODES = frozenset({"LoadBalancerNotFound", "AccessPointNotFound"})


def tag_dict(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(slots=True)
class ObservedTG:
    arn: str
    name: str
    protocol: str
    port: int
    vpc_id: str
    lb_arns: tuple[str, ...]
    health: dict[str, Any]
    tags: dict[str, str]
    attributes: dict[str, str] | None = None
    targets: tuple[str, ...] | None = None


@dataclass(slots=True)
class ObservedListener:
    arn: str
    port: int
    protocol: str
    target_group_arn: str | None
    certificate: str | None
    ssl_policy: str | None
    #: The TLS listener's ALPN policy (AWS's ``None`` when it has none).
    alpn: str | None = None


@dataclass(slots=True)
class ObservedNLB:
    arn: str
    name: str
    dns: str
    scheme: str
    subnets: tuple[str, ...]
    vpc_id: str
    tags: dict[str, str]
    attributes: dict[str, str] | None = None
    listeners: list[ObservedListener] | None = None
    #: Its security groups (empty: created without any, so it keeps the older node-rule model).
    security_groups: tuple[str, ...] = ()
    #: Subnet -> the addresses AWS reports for it (``allocation_id`` of an Elastic IP,
    #: ``private_ipv4``): what SubnetMappings gave it, or what AWS assigned.
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ``ipv4`` or ``dualstack``.
    ip_address_type: str = "ipv4"


@dataclass(slots=True)
class ObservedClassic:
    name: str
    dns: str
    scheme: str
    subnets: tuple[str, ...]
    vpc_id: str
    listeners: list[dict[str, Any]]
    health_check: dict[str, Any]
    instances: tuple[str, ...]
    security_groups: tuple[str, ...]
    tags: dict[str, str]
    cross_zone: bool | None = None
    #: DescribeLoadBalancerAttributes' LoadBalancerAttributes (access log, draining, idle timeout).
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Listener port -> the policy names set on it (SetLoadBalancerPoliciesOfListener).
    listener_policies: dict[int, list[str]] = field(default_factory=dict)
    #: The remembered write clock before it was read (``Remembered.clock``): a write of it since
    #: makes ``instances`` older than what is remembered (``Reader._details``).
    read_at: int = 0


@dataclass(slots=True)
class ObservedSG:
    id: str
    name: str
    vpc_id: str
    tags: dict[str, str]
    permissions: list[dict[str, Any]]


@dataclass
class ServiceState:
    """Everything found under the Service's names: the caller checks ownership."""

    nlb: ObservedNLB | None = None
    classic: ObservedClassic | None = None
    #: Target groups with the Service's name prefix (owned or not: compare tags).
    target_groups: list[ObservedTG] = field(default_factory=list)
    #: NLBs under another name than the UID-derived one (``load-balancer-name``; found by the name
    #: asked for, the name the target groups record, and the ARNs they are attached to), and a
    #: foreign load balancer holding the name asked for.
    renamed: list[ObservedNLB] = field(default_factory=list)
    foreign_named: ObservedNLB | None = None


@dataclass
class ClusterContext:
    vpc_id: str | None
    vpc_cidrs: tuple[str, ...]
    subnets: list[dict[str, Any]]
    #: Cluster-tagged security groups (node groups and classic ELB groups), plus an explicit node SG.
    security_groups: Sequence[ObservedSG]
    instances: dict[str, dict[str, Any]]
    #: Classic ELBs of the cluster other than the Service's: set only when a plan deletes one.
    other_classic_elbs: int | None = None
    #: (purpose, protocol, CIDR) keys whose whole-NodePort-range rule exists in a cluster group, and
    #: then the cluster's NLB target groups (to tell who still wants those rules).
    ranged_keys: set[Key] = field(default_factory=set)
    target_group_facts: list[TargetGroupFacts] | None = None
    #: The VPC's route tables and the region's zone types (subnet discovery; read only when needed).
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    zone_types: dict[str, str] = field(default_factory=dict)
    #: Load balancers other than the Service's own that carry the cluster's NLB backend group:
    #: read only where that group exists and the plan does not use it (None: not read).
    backend_users: set[str] | None = None
    #: Lookups over ``security_groups`` (sg_index.py): the read round's, shared by its plans.
    sg_index: GroupIndex | None = None


def _nlb(raw: dict[str, Any], tags: dict[str, str]) -> ObservedNLB:
    return ObservedNLB(
        arn=raw["LoadBalancerArn"],
        name=raw["LoadBalancerName"],
        dns=raw.get("DNSName", ""),
        scheme=_i(raw.get("Scheme", "internet-facing")),
        subnets=tuple(
            sorted(_i(az["SubnetId"]) for az in raw.get("AvailabilityZones", []) if az.get("SubnetId"))
        ),
        vpc_id=_i(raw.get("VpcId", "")),
        tags=tags,
        security_groups=tuple(sorted(_i(g) for g in raw.get("SecurityGroups") or [])),
        addresses=_addresses(raw),
        ip_address_type=_i(raw.get("IpAddressType", "ipv4")),
    )


def _addresses(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for az in raw.get("AvailabilityZones", []):
        for addr in az.get("LoadBalancerAddresses", [])[:1]:
            found = {
                "allocation_id": addr.get("AllocationId"),
                "private_ipv4": addr.get("PrivateIPv4Address"),
            }
            out[_i(az.get("SubnetId", ""))] = {k: v for k, v in found.items() if v}
    return out


def _classic(raw: dict[str, Any], tags: dict[str, str], read_at: int = 0) -> ObservedClassic:
    return ObservedClassic(
        name=raw["LoadBalancerName"],
        dns=raw.get("DNSName", ""),
        scheme=raw.get("Scheme", "internet-facing"),
        subnets=tuple(sorted(raw.get("Subnets", []))),
        vpc_id=raw.get("VPCId", ""),
        listeners=[d["Listener"] for d in raw.get("ListenerDescriptions", [])],
        listener_policies={
            int(d["Listener"]["LoadBalancerPort"]): list(d.get("PolicyNames", []))
            for d in raw.get("ListenerDescriptions", [])
        },
        health_check=dict(raw.get("HealthCheck") or {}),
        instances=tuple(sorted(i["InstanceId"] for i in raw.get("Instances", []))),
        security_groups=tuple(sorted(raw.get("SecurityGroups", []))),
        tags=tags,
        read_at=read_at,
    )


def normalise_health(raw: dict[str, Any]) -> dict[str, Any]:
    protocol = raw.get("HealthCheckProtocol", "TCP")
    return {
        "protocol": protocol,
        "port": str(raw.get("HealthCheckPort", "traffic-port")),
        "path": raw.get("HealthCheckPath") if protocol in ("HTTP", "HTTPS") else None,
        "interval": raw.get("HealthCheckIntervalSeconds"),
        "timeout": raw.get("HealthCheckTimeoutSeconds"),
        "healthy": raw.get("HealthyThresholdCount"),
        "unhealthy": raw.get("UnhealthyThresholdCount"),
        **(
            {"matcher": (raw.get("Matcher") or {}).get("HttpCode", "200-399")}
            if protocol in ("HTTP", "HTTPS")
            else {}
        ),
    }


def _tg(raw: dict[str, Any], tags: dict[str, str]) -> ObservedTG:
    return ObservedTG(
        arn=raw["TargetGroupArn"],
        name=raw["TargetGroupName"],
        protocol=_i(raw.get("Protocol", "")),
        port=int(raw.get("Port", 0)),
        vpc_id=_i(raw.get("VpcId", "")),
        lb_arns=tuple(raw.get("LoadBalancerArns", [])),
        health=compact(normalise_health(raw)),
        tags=tags,
    )


def _listener(li: Mapping[str, Any]) -> ObservedListener:
    return ObservedListener(
        arn=li["ListenerArn"],
        port=int(li["Port"]),
        protocol=li["Protocol"],
        target_group_arn=next(
            (a.get("TargetGroupArn") for a in li.get("DefaultActions", []) if a.get("Type") == "forward"),
            None,
        ),
        certificate=(li.get("Certificates") or [{}])[0].get("CertificateArn"),
        ssl_policy=li.get("SslPolicy"),
        alpn=(li.get("AlpnPolicy") or ["None"])[0],
    )


def _sg(raw: dict[str, Any]) -> ObservedSG:
    return ObservedSG(
        id=_i(raw["GroupId"]),
        name=raw.get("GroupName", ""),
        vpc_id=_i(raw.get("VpcId", "")),
        tags=compact(tag_dict(raw.get("Tags"))),
        permissions=compact(list(raw.get("IpPermissions", []))),
    )


def _i(value: str) -> str:
    """One copy of a short name many records share (a VPC, subnet or security group ID, a scheme or
    protocol): botocore parses a fresh string for each, and a round keeps one record per load
    balancer, target group and security group of the account (lbprov.interning)."""
    return sys.intern(value) if type(value) is str else value


def _could_be_ours_lb(name: str) -> bool:
    return len(name) == 32 and name.startswith("a")


class ReadRound:
    """Account-wide listings cached for one reconcile round (see the module docstring).

    ``implicit``: opened by plans running at the same time outside an explicit round (see
    :meth:`Reader.shared_round`); it reads details afresh, like a plan without a round.
    ``period``: set by :meth:`drift_check` for the periodic resync; see :meth:`due`."""

    def __init__(
        self, *, implicit: bool = False, periods: Callable[[], int] | None = None, k: int = 1
    ) -> None:
        self.lock = threading.RLock()
        self.implicit = implicit
        #: An implicit round that an explicit one took over (:meth:`take_over`).
        self.taken_over = False
        self.started = time.monotonic()
        self.users = 0
        self._periods = periods
        #: Deep checks: every Service is due once every ``k`` periodic rounds.
        self.k = max(1, k)
        self.period: int | None = None
        #: In a periodic round, the keys due a deep check (Reader._schedule).
        self.due_keys: frozenset[str] = frozenset()
        self.dirty: set[str] = set()
        self._forget_reads()

    def _forget_reads(self) -> None:
        """Start (or start again) with nothing read: every listing and read cached by the round."""
        #: In a periodic round, the keys the round's listing sees (Reader._schedule).
        self.roster: frozenset[str] | None = None
        self.nlbs: dict[str, ObservedNLB] | None = None
        #: When the listing of ``nlbs`` was started (see :meth:`Reader.name_free`).
        self.nlbs_listed_at: float | None = None
        self.classics: dict[str, ObservedClassic] | None = None
        self.target_groups: TargetGroupListing | None = None
        #: target_group_facts() of ``target_groups`` at its ``version`` (one computation per change).
        self.tg_facts: tuple[int, list[TargetGroupFacts]] | None = None
        self.subnets: dict[str, list[dict[str, Any]]] = {}
        self.route_tables: dict[str, list[dict[str, Any]]] = {}
        self.vpc_cidrs: dict[str, tuple[str, ...]] = {}
        #: Security groups by VPC (None: the cluster-tagged ones, VPC unknown), and their indexes.
        self.cluster_sgs: dict[str | None, sg_listing.Listing] | None = None
        self.sg_indexes: dict[str | None, GroupIndex] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        #: Security groups of every ELBv2 load balancer of the account, by name (whether the
        #: cluster's NLB backend group is still used); dropped by every apply.
        self.lb_groups: dict[str, tuple[str, ...]] | None = None

    def drift_check(self) -> None:
        """This round is the periodic resync: the Services whose turn it is (:meth:`due`) get a deep
        check (tags, listeners, attributes and targets read afresh); the others are planned from the
        listings read in this round and the details remembered from their last deep check (kept
        current by lbprov's own writes). Called by the controller right after opening the round.

        A round taken over from an implicit one (:meth:`take_over`) holds reads made before it knew
        it was periodic (up to :data:`SHARED_ROUND_SECONDS` before the resync began), the listings
        without the sweep's roster and without the due Services' tags read afresh
        (Reader._schedule, _forget_due): every cached read is dropped, to be read again, so the
        periodic resync sees what a round opened at its start would (the review of session 9: the
        cluster's security groups, instances, subnets, route tables and VPC CIDRs were kept)."""
        if self._periods is not None:
            self.period = self._periods()
            if self.taken_over:
                with self.lock:
                    self._forget_reads()

    def take_over(self, *, periods: Callable[[], int] | None, k: int) -> None:
        """Make this implicit round an explicit one (Reader.explicit_round): its listings serve the
        explicit round's plans, and it ends with the explicit round. Plain attribute stores (the
        caller holds the reader's round guard; a listing in progress under :attr:`lock` goes on)."""
        self._periods = periods
        self.k = max(1, k)
        self.taken_over = True
        self.implicit = False

    def due(self, uid: str) -> bool:
        """Whether ``uid`` (a Service's UID, or the ARN of a load balancer or target group without
        one) is deep-checked in this round: in a periodic round, the keys of the round's roster that
        the sweep chose (drift_schedule.py: at most ceil(N / k) of N, each within k resyncs); a key
        outside the roster (its tags were not remembered, so they are read anyway) by a slot fixed
        by the key, once every ``k`` periodic rounds."""
        if self.period is None:
            return False
        if self.roster is not None and uid in self.roster:
            return uid in self.due_keys
        return (self.period - drift_slot(uid, self.k)) % self.k == 0

    def invalidate(self, uid: str, *, target_groups: bool = True, security_groups: bool = True) -> None:
        """After a write for ``uid``: its cached resources are stale. (``target_groups`` and
        ``security_groups`` are kept for callers: the round's listings of both are kept current by
        the writes themselves, see :meth:`Reader.after_write`, or dropped by a write that fails.)"""
        del target_groups, security_groups
        with self.lock:
            self.dirty.add(uid)
            self.lb_groups = None


def drift_slot(uid: str, k: int) -> int:
    """The periodic round (mod ``k``) in which ``uid`` is deep-checked: stable across restarts."""
    return int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % max(1, k)


#: Reads of a deep check of a one-port NLB Service: listeners, load balancer attributes, target
#: group attributes, target health (tags come 20 ARNs per call). K = this / the read budget.
DEEP_CHECK_READS = 4

#: How old a round's load balancer listing may be to tell apply that a name is free (the
#: controller's rounds last at most 120 s: lbprov.controller.manager.MAX_ROUND_SECONDS).
NAME_FREE_SECONDS = 120.0

#: Security groups per DescribeSecurityGroups page (AWS's maximum). Without MaxResults AWS answers
#: every group of the VPC at once: with a frontend group per NLB Service, 10,000 groups are a
#: response of about 20 MB that botocore parses into one XML tree, the controller's largest
#: transient allocation (tests/test_memory_cuts.py).
SG_PAGE = 1000

#: An implicit round (plans that overlap outside an explicit round) is joined only while younger
#: than this: concurrent plans share its listings, a plan that starts later reads afresh.
SHARED_ROUND_SECONDS = 5.0


class Reader:
    """All read calls of the provider, direct or through the current :class:`ReadRound`."""

    def __init__(self, clients: AWSClients, cluster: str, node_sg_id: str | None = None) -> None:
        self.clients = clients
        self.cluster = cluster
        self.node_sg_id = node_sg_id
        self.round: ReadRound | None = None
        self._zone_types: dict[str, str] | None = None
        #: Tags and details kept between rounds, current with this process's writes.
        self.remembered = Remembered()
        #: The sweep of periodic deep checks, across this reader's rounds (drift_schedule.py).
        self.drift = DriftSchedule()
        self._round_guard = threading.Lock()
        clients.write_observers.extend([self.remembered, self])

    # -- rounds ------------------------------------------------------------------------------------

    @contextmanager
    def explicit_round(
        self, *, periods: Callable[[], int] | None = None, k: int = 1, fresh: bool = False
    ) -> Iterator[ReadRound]:
        """An explicit round (provider.read_round); nesting reuses the outer explicit round.

        ``fresh`` (the controller's rollover, lbprov.provider.read_round): a new round replaces the
        open one, explicit or implicit, at once, for the plans in flight too (they look
        :attr:`round` up at each read), and the replaced round's exit leaves the new one in place.
        So the controller's rollover leaves no moment without a round.

        Otherwise an implicit round in progress that is still young (:data:`SHARED_ROUND_SECONDS`,
        the age at which plans stop joining it) becomes this explicit round
        (:meth:`ReadRound.take_over`), listings and all; an older one is replaced by a new round
        (its plans go on with the new one). Why: a round that listed the account again while plans
        still shared an implicit round's listing made two full listings at once. The controller
        once ended an expired round before it opened the next, and the plans in between opened
        such an implicit round: at 10,000 Services the restarts that outlived the 120 s round
        listed the account 3 times where 2 rounds need 2, and peaked at 200 MB against 151 MB for
        one that did not (issue 14; bench/scale_memory.py). The controller now hands its rounds
        over (``fresh``); the takeover stays for a batch that begins while plans outside any batch
        share an implicit round (a node sync's or the resync's batch during a burst of Service
        changes)."""
        with self._round_guard:
            outer = self.round
            if fresh or outer is None:
                rnd, mine = ReadRound(periods=periods, k=k), True
                self.round = rnd
            elif not outer.implicit:
                rnd, mine = outer, False
            elif time.monotonic() - outer.started <= SHARED_ROUND_SECONDS:
                outer.take_over(periods=periods, k=k)
                rnd, mine = outer, True
            else:
                rnd, mine = ReadRound(periods=periods, k=k), True
                self.round = rnd
        try:
            yield rnd
        finally:
            if mine:
                with self._round_guard:
                    if self.round is rnd:
                        self.round = None

    @contextmanager
    def shared_round(self) -> Iterator[None]:
        """Around one plan: outside an explicit round, plans that run at the same time share one
        implicit round (single flight: the first to need a listing reads it, the others wait for it
        and use it), joined only while it is younger than :data:`SHARED_ROUND_SECONDS` and closed
        when its last plan ends. A plan alone reads as it would without a round."""
        with self._round_guard:
            rnd = self.round
            if rnd is not None and not rnd.implicit:
                joined = None
            else:
                if rnd is None or time.monotonic() - rnd.started > SHARED_ROUND_SECONDS:
                    rnd = ReadRound(implicit=True)
                    self.round = rnd
                rnd.users += 1
                joined = rnd
        try:
            yield
        finally:
            if joined is not None:
                with self._round_guard:
                    joined.users -= 1
                    # (A round taken over by an explicit one ends with it, not with its plans.)
                    if joined.users == 0 and self.round is joined and joined.implicit:
                        self.round = None

    # -- writes: keep the round's listings current -------------------------------------------------

    def before_write(self, operation: str, params: Mapping[str, Any]) -> None:
        return None

    def write_failed(self, operation: str, params: Mapping[str, Any]) -> None:
        """A security group write failed or its outcome is unknown: the round's listing of them is
        read again by the next plan."""
        rnd = self.round
        if rnd is not None and operation.startswith("ec2:"):
            with rnd.lock:
                rnd.cluster_sgs = None

    def after_write(
        self, operation: str, params: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> None:
        """Our own target group and NLB writes, applied to the round's listings, so that later plans
        of the round see them without listing the account again (tags come from ``remembered``)."""
        rnd = self.round
        if rnd is None:
            return
        if operation.startswith("ec2:"):
            self._security_group_written(rnd, operation, params, result)
            return
        with rnd.lock:
            tgs, nlbs = rnd.target_groups, rnd.nlbs
            if tgs is not None:
                if operation in ("elbv2:CreateTargetGroup", "elbv2:ModifyTargetGroup") and result:
                    for raw in result.get("TargetGroups", []):
                        arn = raw["TargetGroupArn"]
                        tags = self.remembered.get(self.remembered.tags, arn) or {}
                        tgs.put(_tg(raw, dict(tags)))
                elif operation == "elbv2:DeleteTargetGroup":
                    tgs.remove(params.get("TargetGroupArn", ""))
                elif operation in ("elbv2:AddTags", "elbv2:RemoveTags"):
                    for arn in params.get("ResourceArns", []):
                        if (tg := tgs.get(arn)) is not None:
                            tg.tags = dict(self.remembered.get(self.remembered.tags, tg.arn) or {})
                            tgs.touched()
            if nlbs is not None:
                if operation == "elbv2:CreateLoadBalancer" and result:
                    for raw in result.get("LoadBalancers", []):
                        tags = self.remembered.get(self.remembered.tags, raw["LoadBalancerArn"]) or {}
                        nlbs[raw["LoadBalancerName"]] = _nlb(raw, dict(tags))
                elif operation == "elbv2:DeleteLoadBalancer":
                    arn = params.get("LoadBalancerArn")
                    for name in [n for n, lb in nlbs.items() if lb.arn == arn]:
                        del nlbs[name]
                elif operation in ("elbv2:AddTags", "elbv2:RemoveTags"):
                    arns = set(params.get("ResourceArns", []))
                    for lb in nlbs.values():
                        if lb.arn in arns:
                            lb.tags = dict(self.remembered.get(self.remembered.tags, lb.arn) or {})

    @staticmethod
    def _security_group_written(
        rnd: ReadRound, operation: str, params: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> None:
        """Our own security group writes, applied to the round's listings (sg_listing.py); a write
        whose effect is not known exactly drops them (read again by the next plan)."""
        with rnd.lock:
            if rnd.cluster_sgs is None:
                return
            updated: dict[str | None, sg_listing.Listing] = {}
            changes: dict[str | None, frozenset[str]] = {}
            for vpc_id, groups in rnd.cluster_sgs.items():
                mirrored = sg_listing.mirror(groups, vpc_id, operation, params, result)
                if mirrored is None:
                    rnd.cluster_sgs = None
                    return
                updated[vpc_id], changes[vpc_id] = mirrored
            # The index follows its listing by the groups the write changed (not rebuilt: O(log N)).
            for vpc_id, index in list(rnd.sg_indexes.items()):
                old = rnd.cluster_sgs.get(vpc_id)
                if vpc_id in updated and index.groups is old and updated[vpc_id] is not old:
                    rnd.sg_indexes[vpc_id] = index.updated(updated[vpc_id], changes[vpc_id])
            rnd.cluster_sgs = updated

    # -- load balancers and target groups ------------------------------------------------------

    def service_state(
        self, uid: str, lb_name: str, tg_prefix: str | tuple[str, ...], *, details: bool = True
    ) -> ServiceState:
        """``details=False`` (delete plans) skips listeners, attributes and registered targets;
        ``tg_prefix`` may be several (lbprov's and cloud-provider-aws's target group prefixes)."""
        rnd = self.round
        if rnd is not None and uid not in rnd.dirty:
            with rnd.lock:
                self._fill_round(rnd)
                assert rnd.nlbs is not None and rnd.classics is not None and rnd.target_groups is not None
                nlb = rnd.nlbs.get(lb_name)
                classic = rnd.classics.get(lb_name)
                tgs = rnd.target_groups.with_prefix(tg_prefix)
            # Copies: details are filled per plan and must not leak into the shared cache.
            state = ServiceState(
                nlb=_copy_nlb(nlb) if nlb else None,
                classic=dataclasses.replace(classic, tags=dict(classic.tags)) if classic else None,
                target_groups=[_copy_tg(tg) for tg in tgs],
            )
        else:
            state = self._direct_state(lb_name, tg_prefix)
        if details:
            self._details(state, uid)
        return state

    def name_free(self, name: str) -> bool:
        """Whether the current round's listing shows no ELBv2 load balancer (of any type: ALB and
        NLB names share one namespace) named ``name``: then apply creates it without describing the
        name first (apply/nlb.py ``_existing_nlb``). Only a listing younger than
        :data:`NAME_FREE_SECONDS` answers, kept current by this process's own creates and deletes
        (:meth:`after_write`), and only for names the listing keeps (``a`` + 31 characters); any
        other case says False, and apply describes first as before. What the listing cannot show
        (a load balancer another process created since) AWS still refuses: names are unique per
        account and region, and apply handles ``DuplicateLoadBalancerName`` as "exists"."""
        rnd = self.round
        if rnd is None or not _could_be_ours_lb(name):
            return False
        with rnd.lock:
            listed_at = rnd.nlbs_listed_at
            if rnd.nlbs is None or listed_at is None or time.monotonic() - listed_at > NAME_FREE_SECONDS:
                return False
            return name not in rnd.nlbs

    def _direct_state(self, lb_name: str, tg_prefix: str | tuple[str, ...]) -> ServiceState:
        state = ServiceState()
        raw_nlb = self._describe_one("elbv2:DescribeLoadBalancers", "LoadBalancers", Names=[lb_name])
        classic_read_at = self.remembered.clock()
        raw_classic = self._describe_one(
            "elb:DescribeLoadBalancers", "LoadBalancerDescriptions", LoadBalancerNames=[lb_name]
        )
        raw_tgs = [
            tg for tg in self._list_target_groups() if str(tg["TargetGroupName"]).startswith(tg_prefix)
        ]
        arns = ([raw_nlb["LoadBalancerArn"]] if raw_nlb else []) + [tg["TargetGroupArn"] for tg in raw_tgs]
        # The Service's own tags are read afresh (its ownership is decided by them), and remembered.
        tags = self.remembered.tags_of(arns, self.elbv2_tags, fresh=True)
        if raw_nlb and raw_nlb.get("LoadBalancerName") == lb_name:
            state.nlb = _nlb(raw_nlb, tags.get(raw_nlb["LoadBalancerArn"], {}))
        if raw_classic and raw_classic.get("LoadBalancerName") == lb_name:
            classic_tags = self.elb_tags([lb_name]).get(lb_name, {})
            state.classic = _classic(raw_classic, classic_tags, classic_read_at)
        self._remember_classics([state.classic] if state.classic else [], classic_read_at, [lb_name])
        state.target_groups = [_tg(tg, tags.get(tg["TargetGroupArn"], {})) for tg in raw_tgs]
        return state

    def _describe_one(self, op: str, key: str, **params: Any) -> dict[str, Any] | None:
        found = self.clients.call_optional(op, NOT_FOUND_CODES, **params)
        items = found.get(key, []) if found else []
        return items[0] if items else None

    def _list_target_groups(self) -> Iterator[dict[str, Any]]:
        """Every target group of the account, as the pages come (one page's answer alive at once:
        callers keep what they need of each, see :meth:`_fill_round`)."""
        return self.clients.pages(
            "elbv2:DescribeTargetGroups",
            "TargetGroups",
            token_in="Marker",
            token_out="NextMarker",
            PageSize=400,
        )

    def elbv2_tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for batch in chunks(list(arns), BATCH):
            resp = self.clients.call("elbv2:DescribeTags", ResourceArns=list(batch))
            for desc in resp.get("TagDescriptions", []):
                out[desc["ResourceArn"]] = tag_dict(desc.get("Tags"))
        return out

    def elb_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for batch in chunks(list(names), BATCH):
            resp = self.clients.call("elb:DescribeTags", LoadBalancerNames=list(batch))
            for desc in resp.get("TagDescriptions", []):
                out[desc["LoadBalancerName"]] = tag_dict(desc.get("Tags"))
        return out

    def _fill_round(self, rnd: ReadRound) -> None:
        if rnd.classics is None:  # (first: their Services are in the roster, _schedule)
            rnd.classics = self._list_classics()
        if rnd.nlbs is None:
            before = self.remembered.generations()
            listed_at = time.monotonic()
            # Each load balancer is kept as its compact record as its page comes, its tags filled in
            # once every ARN is known: the parsed answers of the whole listing (3.2 KB a load
            # balancer and 2.4 KB a target group as botocore parses them, against 1.2 and 1.6 KB
            # kept; 56 MB at 10,000 Services) are never alive at once, and leave no such hole in
            # the heap (issue 14).
            nlbs: dict[str, ObservedNLB] = {}
            arns: list[str] = []
            for lb in self.clients.pages(
                "elbv2:DescribeLoadBalancers",
                "LoadBalancers",
                token_in="Marker",
                token_out="NextMarker",
                PageSize=400,
            ):
                # Every type: ALB and NLB names share one namespace, so a foreign ALB collides too.
                if _could_be_ours_lb(lb["LoadBalancerName"]):
                    nlb = _nlb(lb, _UNTAGGED)
                    nlbs[nlb.name] = nlb
                    arns.append(nlb.arn)
            self.remembered.prune(set(arns), marker=":loadbalancer/", before=before)
            self._schedule(rnd, arns)
            self._forget_due(rnd, arns)
            tags = self.cached_tags(arns)
            for nlb in nlbs.values():
                nlb.tags = tags.get(nlb.arn, {})
            rnd.nlbs = nlbs
            rnd.nlbs_listed_at = listed_at
        if rnd.target_groups is None:
            rnd.target_groups = TargetGroupListing(self._listed_target_groups(rnd))

    def _listed_target_groups(self, rnd: ReadRound | None) -> list[ObservedTG]:
        """Every target group lbprov could have made (one listing), with its tags: remembered ones
        as they are, the rest read 20 ARNs per call (see remembered.py)."""
        before = self.remembered.generations()
        listed: set[str] = set()
        tgs: list[ObservedTG] = []
        for raw in self._list_target_groups():  # (compact records as the pages come: _fill_round)
            listed.add(raw["TargetGroupArn"])
            if str(raw["TargetGroupName"]).startswith("k8s-"):
                tgs.append(_tg(raw, _UNTAGGED))
        self.remembered.prune(listed, marker=":targetgroup/", before=before)
        arns = [tg.arn for tg in tgs]
        if rnd is not None:
            self._forget_due(rnd, arns)
        tags = self.cached_tags(arns)
        for tg in tgs:
            tg.tags = tags.get(tg.arn, {})
        return tgs

    def cached_tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        """Tags of ``arns`` from ``remembered``, reading (20 per call) only those never seen: the
        remembered dicts themselves, for listings (plans get copies: ``_copy_nlb``, ``_copy_tg``)."""
        return self.remembered.tags_of(arns, self.elbv2_tags, shared=True)

    def _schedule(self, rnd: ReadRound, lb_arns: Sequence[str]) -> None:
        """In a periodic round, once: its roster (the Services of its classic ELBs and of the
        listed load balancers whose tags are remembered) and the ones the sweep makes due."""
        if rnd.period is None or rnd.roster is not None:
            return
        assert rnd.classics is not None
        roster = {uid for lb in rnd.classics.values() if (uid := lb.tags.get(naming.SERVICE_UID_TAG))}
        for arn in lb_arns:
            tags = self.remembered.get(self.remembered.tags, arn)
            if tags is not None:
                roster.add(tags.get(naming.SERVICE_UID_TAG, arn))
        rnd.roster = frozenset(roster)
        rnd.due_keys = self.drift.next_due(roster, rnd.k)

    def _forget_due(self, rnd: ReadRound, arns: Sequence[str]) -> None:
        """In a periodic round, the tags of the Services due for a deep check are read again."""
        if rnd.period is None:
            return
        stale = []
        for arn in arns:
            tags = self.remembered.get(self.remembered.tags, arn)
            if tags is not None and rnd.due(tags.get(naming.SERVICE_UID_TAG, arn)):
                stale.append(arn)
        self.remembered.forget(stale)

    def _list_classics(self) -> dict[str, ObservedClassic]:
        """Every classic ELB whose name could be ours, with its tags, by name (one listing, tags 20
        names per call): the read round fills its cache with it, and so does owned_classic_names,
        which needs no other listing. The cluster's own are remembered (``_remember_classics``)."""
        read_at = self.remembered.clock()
        raw = [
            lb
            for lb in self.clients.pages(
                "elb:DescribeLoadBalancers",
                "LoadBalancerDescriptions",
                token_in="Marker",
                token_out="NextMarker",
                PageSize=400,
            )
            if _could_be_ours_lb(lb["LoadBalancerName"])
        ]
        tags = self.elb_tags([lb["LoadBalancerName"] for lb in raw])
        out = {
            lb["LoadBalancerName"]: _classic(lb, tags.get(lb["LoadBalancerName"], {}), read_at) for lb in raw
        }
        self._remember_classics(out.values(), read_at, None)
        return out

    def _remember_classics(
        self, found: Iterable[ObservedClassic], read_at: int, looked_for: Sequence[str] | None
    ) -> None:
        """Tags and instances of the cluster's classic ELBs just read, for the node sync (see
        ``Remembered.classics_read``; ``looked_for`` None: a complete listing)."""
        self.remembered.classics_read(
            {
                lb.name: (lb.tags, lb.instances)
                for lb in found
                if naming.is_owned_by_cluster(lb.tags, self.cluster)
            },
            read_at,
            looked_for=looked_for,
        )

    def details(self, state: ServiceState, uid: str) -> None:
        """The per-resource reads of a state read with ``details=False`` (after diff/adopt.prepare
        showed predecessors as owned, so that theirs are read too)."""
        self._details(state, uid)

    def _details(self, state: ServiceState, uid: str) -> None:
        """Per-resource reads, only for what this Service owns (the rest is never changed).

        In an explicit round (resync, node sync, initial sync) a Service that is not due for a deep
        check (:meth:`ReadRound.due`) and has not been written in the round is planned from the
        details remembered from its last read, kept current by lbprov's writes; what was never read
        is read. Outside a round, in an implicit one, or when due, everything is read afresh."""
        rnd = self.round
        remembered = rnd is not None and not rnd.implicit and uid not in rnd.dirty and not rnd.due(uid)
        mem = self.remembered
        if state.nlb and naming.is_owned_by_service(state.nlb.tags, self.cluster, uid):
            arn = state.nlb.arn
            attrs = mem.get(mem.lb_attributes, arn) if remembered else None
            if attrs is None:
                gen = mem.generation(arn)
                found = self.clients.call("elbv2:DescribeLoadBalancerAttributes", LoadBalancerArn=arn)
                attrs = {a["Key"]: a["Value"] for a in found.get("Attributes", [])}
                mem.store(mem.lb_attributes, arn, attrs, gen)
            state.nlb.attributes = dict(attrs)
            listeners = mem.get(mem.listeners, arn) if remembered else None
            if listeners is None:
                gen = mem.generation(arn)
                listeners = tuple(
                    trim_listener(li)
                    for li in self.clients.pages(
                        "elbv2:DescribeListeners",
                        "Listeners",
                        token_in="Marker",
                        token_out="NextMarker",
                        LoadBalancerArn=arn,
                    )
                )
                mem.store(mem.listeners, arn, listeners, gen)
            state.nlb.listeners = [_listener(li) for li in listeners]
        for tg in state.target_groups:
            if not naming.is_owned_by_service(tg.tags, self.cluster, uid):
                continue
            tg_attrs = mem.get(mem.tg_attributes, tg.arn) if remembered else None
            if tg_attrs is None:
                gen = mem.generation(tg.arn)
                found = self.clients.call("elbv2:DescribeTargetGroupAttributes", TargetGroupArn=tg.arn)
                tg_attrs = {a["Key"]: a["Value"] for a in found.get("Attributes", [])}
                mem.store(mem.tg_attributes, tg.arn, tg_attrs, gen)
            tg.attributes = dict(tg_attrs)
            targets = mem.get(mem.targets, tg.arn) if remembered else None
            if targets is None:
                gen = mem.generation(tg.arn)
                health = self.clients.call("elbv2:DescribeTargetHealth", TargetGroupArn=tg.arn)
                targets = tuple(
                    sorted(
                        {
                            d["Target"]["Id"]
                            for d in health.get("TargetHealthDescriptions", [])
                            if d.get("TargetHealth", {}).get("State") != "draining"
                        }
                    )
                )
                mem.store(mem.targets, tg.arn, targets, gen)
            tg.targets = targets
        if state.classic and naming.is_owned_by_service(state.classic.tags, self.cluster, uid):
            name = state.classic.name
            raw_attrs = mem.get(mem.classic_attributes, name) if remembered else None
            if raw_attrs is None:
                gen = mem.generation(name)
                found = self.clients.call("elb:DescribeLoadBalancerAttributes", LoadBalancerName=name)
                raw_attrs = dict(found.get("LoadBalancerAttributes", {}))
                mem.store(mem.classic_attributes, name, raw_attrs, gen)
            cz = raw_attrs.get("CrossZoneLoadBalancing", {})
            state.classic.cross_zone = bool(cz.get("Enabled", False))
            state.classic.attributes = dict(raw_attrs)
            self._classic_instances(state.classic)

    def _classic_instances(self, classic: ObservedClassic) -> None:
        """A classic ELB written by this process since its listing was read (the node sync registers
        instances outside the Services' plans, while a round's listing is kept): its instances are
        the remembered ones, kept current by those writes, or read again when not known."""
        mem = self.remembered
        if not mem.written_since(classic.name, classic.read_at):
            return
        if (known := mem.classic(classic.name)) is not None:
            classic.instances = known[1]
            return
        read_at = mem.clock()
        raw = self._describe_one(
            "elb:DescribeLoadBalancers", "LoadBalancerDescriptions", LoadBalancerNames=[classic.name]
        )
        if raw is None:
            return  # gone since: the plan goes on with what the listing showed, apply finds out
        # (its own tags, not the plan's: diff/adopt.py shows a predecessor's as lbprov's)
        found = _classic(raw, self.elb_tags([classic.name]).get(classic.name, {}), read_at)
        classic.instances, classic.read_at = found.instances, read_at
        self._remember_classics([found], read_at, [classic.name])

    def nlbs_named(
        self, uid: str, names: Sequence[str] = (), arns: Sequence[str] = (), *, details: bool = True
    ) -> list[ObservedNLB]:
        """NLBs under other names than the UID-derived one (``load-balancer-name``), by name or by
        the ARN a target group of the Service is attached to; details of the owned ones. Read
        directly (one describe each): only Services with a chosen name have any."""
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(set(names)):
            if raw := self._describe_one("elbv2:DescribeLoadBalancers", "LoadBalancers", Names=[name]):
                found[raw["LoadBalancerArn"]] = raw
        for arn in sorted(set(arns) - set(found)):
            if raw := self._describe_one(
                "elbv2:DescribeLoadBalancers", "LoadBalancers", LoadBalancerArns=[arn]
            ):
                found[raw["LoadBalancerArn"]] = raw
        tags = self.elbv2_tags(sorted(found))
        out = [_nlb(raw, tags.get(arn, {})) for arn, raw in sorted(found.items())]
        for nlb in out:
            if details:
                self._details(ServiceState(nlb=nlb), uid)
        return out

    def nlb_attributes(self, arn: str) -> dict[str, str]:
        """An NLB's attributes (a delete plan reads them too: deletion protection)."""
        attrs = self.clients.call("elbv2:DescribeLoadBalancerAttributes", LoadBalancerArn=arn)
        return {a["Key"]: a["Value"] for a in attrs.get("Attributes", [])}

    def all_owned(self) -> tuple[list[ObservedNLB], list[ObservedClassic], list[ObservedTG]]:
        """Every load balancer and target group of the account that this cluster owns."""
        rnd = self.round or ReadRound()
        with rnd.lock:
            if self.round is None or rnd.dirty:
                rnd.nlbs = rnd.classics = rnd.target_groups = None
            self._fill_round(rnd)
            assert rnd.nlbs is not None and rnd.classics is not None and rnd.target_groups is not None

            def owned(tags: dict[str, str]) -> bool:
                return naming.is_owned_by_cluster(tags, self.cluster)

            return (
                [lb for lb in rnd.nlbs.values() if owned(lb.tags)],
                [lb for lb in rnd.classics.values() if owned(lb.tags)],
                [tg for tg in rnd.target_groups if owned(tg.tags)],
            )

    def _round_classics(self) -> dict[str, ObservedClassic]:
        """The classic ELB listing (+ tags) by name, cached in the read round; listed afresh
        outside one or after a write made the round dirty."""
        rnd = self.round or ReadRound()
        with rnd.lock:
            if self.round is None or rnd.dirty:
                rnd.classics = None
            if rnd.classics is None:
                rnd.classics = self._list_classics()
            return dict(rnd.classics)  # (a copy: writes update the round's dict under its lock)

    def owned_classic_names(self) -> set[str]:
        """Names of every classic ELB this cluster owns (listing + tags, 20 names per call)."""
        classics = self._round_classics()
        return {n for n, lb in classics.items() if naming.is_owned_by_cluster(lb.tags, self.cluster)}

    def classics_using(self, group_ids: set[str]) -> set[str]:
        """Names of the classic ELBs (of names lbprov could have made) that use any of these
        security groups (listing + tags, cached in the read round)."""
        return {n for n, lb in self._round_classics().items() if group_ids & set(lb.security_groups)}

    def load_balancers_using(self, group_ids: set[str], *, fresh: bool = False) -> set[str]:
        """Names of the ELBv2 load balancers of any name or owner (aws-load-balancer-controller's
        too) that carry any of these security groups: one listing, cached in the read round."""
        rnd = None if fresh else self.round
        groups = rnd.lb_groups if rnd is not None else None
        if groups is None:
            groups = {
                lb["LoadBalancerName"]: tuple(lb.get("SecurityGroups") or [])
                for lb in self.clients.pages(
                    "elbv2:DescribeLoadBalancers",
                    "LoadBalancers",
                    token_in="Marker",
                    token_out="NextMarker",
                    PageSize=400,
                )
            }
            if rnd is not None:
                rnd.lb_groups = groups
        return {name for name, sgs in groups.items() if group_ids & set(sgs)}

    def target_group_facts(self, *, fresh: bool = False) -> list[TargetGroupFacts]:
        """Protocol, NodePort, health port and source CIDRs of every NLB target group of the
        cluster (``fresh``: bypass the read round, as apply does under the group lock)."""
        rnd = self.round
        if rnd is not None and not fresh:
            with rnd.lock:
                self._fill_round(rnd)
                assert rnd.target_groups is not None
                version = rnd.target_groups.version
                if rnd.tg_facts is None or rnd.tg_facts[0] != version:  # once per change, not per plan
                    rnd.tg_facts = (version, self._facts(rnd.target_groups))
                return list(rnd.tg_facts[1])
        # A fresh listing; tags as remembered (they change only by this process's writes, which
        # keep them current, or by hand, which the Service's next deep check sees).
        return self._facts(self._listed_target_groups(None))

    def _facts(self, tgs: Iterable[ObservedTG]) -> list[TargetGroupFacts]:
        out: list[TargetGroupFacts] = []
        for tg in tgs:
            if not naming.is_owned_by_cluster(tg.tags, self.cluster):
                continue
            if tg.tags.get(naming.LB_KIND_TAG, "nlb") != "nlb":
                continue
            if tg.tags.get(NLB_SECURITY_GROUPS_TAG) == "true":
                continue  # its NLB's backend group admits it: it wants no NodePort rule
            hnp = tg.tags.get(HEALTH_NODE_PORT_TAG, "")
            sources = tg.tags.get(SOURCE_RANGES_TAG)
            out.append(
                TargetGroupFacts(
                    uid=tg.tags.get(naming.SERVICE_UID_TAG, tg.arn),
                    protocol=tg.protocol,
                    port=tg.port,
                    health_port=str(tg.health.get("port", "traffic-port")),
                    health_node_port=int(hnp) if hnp.isdigit() else None,
                    source_ranges=None
                    if sources is None or sources in ("*", SOURCE_RANGES_UNRECORDED)
                    else tuple(sources.split()),
                )
            )
        return out

    # -- cluster context -------------------------------------------------------------------------

    def cluster_context(
        self, instance_ids: Sequence[str], *, vpc_id: str | None, need_vpc: bool = True
    ) -> ClusterContext:
        instances = self.instances(instance_ids)
        if vpc_id is None:
            vpcs = sorted({i.get("VpcId", "") for i in instances.values() if i.get("VpcId")})
            if len(vpcs) > 1:
                raise RuntimeError(
                    f"the nodes' instances are in several VPCs ({', '.join(vpcs)}); set vpc_id"
                )
            vpc_id = vpcs[0] if vpcs else None
        subnets: list[dict[str, Any]] = []
        if need_vpc:
            if vpc_id is None:
                subnets = self._subnets_by_cluster_tag()
                vpcs = sorted({s["VpcId"] for s in subnets})
                if len(vpcs) != 1:
                    raise RuntimeError(
                        "cannot tell the cluster's VPC: no node instance found and "
                        f"{len(vpcs)} VPCs have subnets tagged {naming.cluster_tag_key(self.cluster)}; "
                        "set the vpc_id setting"
                    )
                vpc_id = vpcs[0]
            subnets = self.subnets(vpc_id)
        cidrs = self.vpc_cidrs(vpc_id) if (need_vpc and vpc_id) else ()
        groups = self.security_groups(vpc_id)
        return ClusterContext(
            vpc_id=vpc_id,
            vpc_cidrs=cidrs,
            subnets=subnets,
            security_groups=groups,
            instances=instances,
            sg_index=self._round_index(vpc_id, groups),
        )

    def _round_index(self, vpc_id: str | None, groups: Sequence[ObservedSG]) -> GroupIndex | None:
        """The round's index of its listing of the VPC's groups, built by the first plan that needs
        it (None outside a round: the plan builds its own from the listing it read)."""
        rnd = self.round
        if rnd is None:
            return None
        with rnd.lock:
            index = rnd.sg_indexes.get(vpc_id)
            if index is None or index.groups is not groups:  # (a listing read again)
                index = GroupIndex(groups, self.cluster)
                rnd.sg_indexes[vpc_id] = index
            return index

    def instances(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rnd = self.round
        with rnd.lock if rnd is not None else contextlib.nullcontext():
            return self._instances(rnd, ids)

    def _instances(self, rnd: ReadRound | None, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(ids))
        cache: dict[str, dict[str, Any]] = rnd.instances if rnd else {}
        missing = [i for i in wanted if i not in cache]
        # A filter (unlike InstanceIds=) ignores unknown IDs instead of failing the whole call.
        for batch in chunks(missing, 200):
            for res in self.clients.pages(
                "ec2:DescribeInstances",
                "Reservations",
                token_in="NextToken",
                token_out="NextToken",
                Filters=[{"Name": "instance-id", "Values": list(batch)}],
            ):
                for inst in res.get("Instances", []):
                    if inst.get("State", {}).get("Name") in ("terminated", "shutting-down"):
                        continue
                    cache[inst["InstanceId"]] = inst
        return {i: cache[i] for i in wanted if i in cache}

    def _subnets_by_cluster_tag(self) -> list[dict[str, Any]]:
        return list(
            self.clients.pages(
                "ec2:DescribeSubnets",
                "Subnets",
                token_in="NextToken",
                token_out="NextToken",
                Filters=[{"Name": "tag-key", "Values": [naming.cluster_tag_key(self.cluster)]}],
            )
        )

    def subnets(self, vpc_id: str) -> list[dict[str, Any]]:
        """The VPC's subnets, cached for the read round."""
        return self._per_vpc("ec2:DescribeSubnets", "Subnets", vpc_id, "subnets")

    def route_tables(self, vpc_id: str) -> list[dict[str, Any]]:
        """The VPC's route tables (to tell public subnets), cached for the read round."""
        return self._per_vpc("ec2:DescribeRouteTables", "RouteTables", vpc_id, "route_tables")

    def _per_vpc(self, op: str, key: str, vpc_id: str, cache: str) -> list[dict[str, Any]]:
        """Every page of an EC2 describe filtered to one VPC, cached in ``round.<cache>`` (single
        flight: concurrent plans of the round wait for the first one's read)."""
        rnd = self.round
        with rnd.lock if rnd is not None else contextlib.nullcontext():
            return self._per_vpc_read(rnd, op, key, vpc_id, cache)

    def _per_vpc_read(
        self, rnd: ReadRound | None, op: str, key: str, vpc_id: str, cache: str
    ) -> list[dict[str, Any]]:
        cached: dict[str, list[dict[str, Any]]] | None = getattr(rnd, cache) if rnd else None
        if cached is not None and vpc_id in cached:
            return cached[vpc_id]
        found = list(
            self.clients.pages(
                op,
                key,
                token_in="NextToken",
                token_out="NextToken",
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
            )
        )
        if cached is not None:
            cached[vpc_id] = found
        return found

    def zone_types(self) -> dict[str, str]:
        """Zone name -> type (``availability-zone``, ``local-zone``, ``wavelength-zone``) of the
        region, read once per provider (zones do not change type)."""
        with self._round_guard if self._zone_types is None else contextlib.nullcontext():
            return self._read_zone_types()

    def _read_zone_types(self) -> dict[str, str]:
        if self._zone_types is None:
            resp = self.clients.call("ec2:DescribeAvailabilityZones", AllAvailabilityZones=True)
            self._zone_types = {
                z["ZoneName"]: z.get("ZoneType", "availability-zone")
                for z in resp.get("AvailabilityZones", [])
            }
        return self._zone_types

    def vpc_cidrs(self, vpc_id: str) -> tuple[str, ...]:
        rnd = self.round
        with rnd.lock if rnd is not None else contextlib.nullcontext():
            return self._vpc_cidrs(rnd, vpc_id)

    def _vpc_cidrs(self, rnd: ReadRound | None, vpc_id: str) -> tuple[str, ...]:
        if rnd and vpc_id in rnd.vpc_cidrs:
            return rnd.vpc_cidrs[vpc_id]
        vpcs = self.clients.call("ec2:DescribeVpcs", VpcIds=[vpc_id]).get("Vpcs", [])
        cidrs: set[str] = set()
        for vpc in vpcs:
            for assoc in vpc.get("CidrBlockAssociationSet", []):
                if assoc.get("CidrBlockState", {}).get("State", "associated") == "associated":
                    cidrs.add(assoc["CidrBlock"])
            if vpc.get("CidrBlock"):
                cidrs.add(vpc["CidrBlock"])
        out = tuple(sorted(cidrs))
        if rnd:
            rnd.vpc_cidrs[vpc_id] = out
        return out

    def security_groups(self, vpc_id: str | None) -> sg_listing.Listing:
        """Every security group of the cluster's VPC (tagged for the cluster or not: a node's only
        group may be untagged, and its lbprov rules must still be found by a delete), or, with the
        VPC unknown, the cluster-tagged groups; plus the node_security_group_id setting's group."""
        rnd = self.round
        if rnd is not None:
            with rnd.lock:
                if rnd.cluster_sgs is None:
                    rnd.cluster_sgs = {}
                if vpc_id not in rnd.cluster_sgs:
                    rnd.cluster_sgs[vpc_id] = self._read_security_groups(vpc_id)
                return rnd.cluster_sgs[vpc_id]
        return self._read_security_groups(vpc_id)

    def security_groups_named(self, name: str, vpc_id: str | None) -> list[ObservedSG]:
        """Every group of that name in the VPC, tagged or not (to detect a foreign namesake)."""
        filters = [{"Name": "group-name", "Values": [name]}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        return [
            _sg(sg)
            for sg in self.clients.call("ec2:DescribeSecurityGroups", Filters=filters).get(
                "SecurityGroups", []
            )
        ]

    def _read_security_groups(self, vpc_id: str | None) -> sg_listing.Listing:
        by = (
            {"Name": "vpc-id", "Values": [vpc_id]}
            if vpc_id
            else {"Name": "tag-key", "Values": [naming.cluster_tag_key(self.cluster)]}
        )
        found = {
            sg["GroupId"]: _sg(sg)
            for sg in self.clients.pages(
                "ec2:DescribeSecurityGroups",
                "SecurityGroups",
                token_in="NextToken",
                token_out="NextToken",
                Filters=[by],
                MaxResults=SG_PAGE,
            )
        }
        if self.node_sg_id and self.node_sg_id not in found:
            for sg in self.clients.call("ec2:DescribeSecurityGroups", GroupIds=[self.node_sg_id]).get(
                "SecurityGroups", []
            ):
                found[sg["GroupId"]] = _sg(sg)
        return sg_listing.Listing.of(found.values())


def _copy_nlb(nlb: ObservedNLB) -> ObservedNLB:
    return ObservedNLB(
        nlb.arn,
        nlb.name,
        nlb.dns,
        nlb.scheme,
        nlb.subnets,
        nlb.vpc_id,
        dict(nlb.tags),
        security_groups=nlb.security_groups,
        addresses={k: dict(v) for k, v in nlb.addresses.items()},
        ip_address_type=nlb.ip_address_type,
    )


def _copy_tg(tg: ObservedTG) -> ObservedTG:
    return ObservedTG(
        tg.arn, tg.name, tg.protocol, tg.port, tg.vpc_id, tg.lb_arns, dict(tg.health), dict(tg.tags)
    )
