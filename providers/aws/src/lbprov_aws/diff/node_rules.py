"""Node security group rules for NLB Services, aggregated across the cluster.

Why: AWS counts every (protocol, port range, CIDR) of a security group as one rule (default limit
60 inbound), and upstream writes one rule per Service port per CIDR plus one per health-check port
(k/k#99813, kops#2721). lbprov instead keeps **cluster-level** rules, tagged by description
``lbprov.io/rule/nlb/{client,health}=<cluster>``, whose port ranges merge the *contiguous* NodePorts
of all Services that want the same protocol and CIDR: Services with NodePorts 30080, 30081, 30082
open to 0.0.0.0/0 share one rule ``tcp 30080-30082 0.0.0.0/0``. Health-check ports (traffic port or
healthCheckNodePort, from the VPC CIDR) are merged the same way, and skipped where a client rule
already admits the VPC. Ranges never include a port that no Service asked for.

Who owns which port of a shared range? NodePorts are unique in a cluster, so a port belongs to the
one Service that uses it. A Service's change takes the current rules, removes every port it owns
(from its target groups as they exist, and from the intent), adds back the ports it wants, and
renders again; other Services' ports pass through untouched. New ranges are authorised before old
ones are revoked, so nothing loses connectivity in between.

Rendering (setting ``node_security_group_rules``): ``ports`` merges the exact ports as above; with
random NodePorts (as the API server allocates them) that is one rule per Service port and CIDR, and
the group hits its rule limit past ~55 Services. ``nodeport-range`` opens the cluster's whole NodePort
range once per (purpose, protocol, CIDR) wanted by any Service, so rules grow with distinct source
CIDRs, not with Services. ``auto`` (default) keeps exact ports while the group's lbprov rules stay
within a budget, and otherwise switches the (purpose, protocol, CIDR) keys with the most exact rules
to the range, largest first, until it fits: a pure function of the set of all wanted ports, so every
plan computes the same rules. A range rule hides which Services want it; those are read from the
cluster's target groups (protocol, NodePort, and the ``lbprov.io/source-ranges`` tag).

Concurrency: the plan's rule changes are for display and dry-run. ``apply`` recomputes the change of
each group from a fresh read of it, under a per-group lock (so one process's rule writes to a group
run one at a time), from the Service's own ports and wanted points only: concurrent applies planned
from the same snapshot all succeed, and none resurrects or loses another Service's port. Revoking a
range rule (the last Service of that CIDR went away, or the key went back to exact ports) re-reads
the cluster's target groups under the lock first: a Service whose target groups exist keeps its
range; one created after that read writes its own rules after the lock is released.

Rules with any other description, and CIDR entries whose (protocol, ports, CIDR) equals a foreign
rule, are never touched.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lbprov_aws.names import CLIENT_RULE, HEALTH_RULE, nlb_rule_description

RuleMode = Literal["auto", "ports", "nodeport-range"]
Key = tuple[str, str, str]  # (purpose, protocol, CIDR)


@dataclass(frozen=True, order=True)
class Point:
    """One port of one protocol admitted from one CIDR, for client traffic or health checks."""

    kind: str
    protocol: str  # "tcp" | "udp"
    port: int
    cidr: str

    @property
    def key(self) -> Key:
        return (self.kind, self.protocol, self.cidr)

    def to_json(self) -> list[Any]:
        return [self.kind, self.protocol, self.port, self.cidr]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> Point:
        return cls(str(raw[0]), str(raw[1]), int(raw[2]), str(raw[3]))


@dataclass(frozen=True, order=True)
class RuleRange:
    """One security group rule as AWS counts it: protocol, port range, CIDR (+ our description)."""

    kind: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str

    def ports(self) -> range:
        return range(self.from_port, self.to_port + 1)

    @property
    def key(self) -> Key:
        return (self.kind, self.protocol, self.cidr)

    def describe(self, cluster: str) -> str:
        return nlb_rule_description(self.kind, cluster)

    def ip_permission(self, cluster: str) -> dict[str, Any]:
        entry_key, ranges_key = ("CidrIpv6", "Ipv6Ranges") if ":" in self.cidr else ("CidrIp", "IpRanges")
        return {
            "IpProtocol": self.protocol,
            "FromPort": self.from_port,
            "ToPort": self.to_port,
            ranges_key: [{entry_key: self.cidr, "Description": self.describe(cluster)}],
        }

    def label(self) -> str:
        ports = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{self.kind}:{self.protocol}/{ports} from {self.cidr}"

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.kind,
            "protocol": self.protocol,
            "ports": f"{self.from_port}-{self.to_port}",
            "cidr": self.cidr,
        }


def parse_rules(
    permissions: Sequence[Mapping[str, Any]], cluster: str
) -> tuple[set[RuleRange], set[tuple[str, int, int, str]]]:
    """Split a security group's ingress into our ranges and the keys of every other CIDR rule."""
    ours: set[RuleRange] = set()
    foreign: set[tuple[str, int, int, str]] = set()
    descriptions = {nlb_rule_description(k, cluster): k for k in (CLIENT_RULE, HEALTH_RULE)}
    for perm in permissions:
        proto = str(perm.get("IpProtocol"))
        lo = int(perm.get("FromPort", -1))
        hi = int(perm.get("ToPort", -1))
        entries = [(r.get("CidrIp"), r.get("Description")) for r in perm.get("IpRanges", [])] + [
            (r.get("CidrIpv6"), r.get("Description")) for r in perm.get("Ipv6Ranges", [])
        ]
        for cidr, desc in entries:
            if cidr is None:
                continue
            kind = descriptions.get(desc or "")
            if kind is not None and proto in ("tcp", "udp"):
                ours.add(RuleRange(kind, proto, lo, hi, str(cidr)))
            else:
                foreign.add((proto, lo, hi, str(cidr)))
    return ours, foreign


def merge(points: Iterable[Point]) -> set[RuleRange]:
    """Merge points into ranges of contiguous ports per (kind, protocol, CIDR)."""
    groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for p in points:
        groups[(p.kind, p.protocol, p.cidr)].add(p.port)
    out: set[RuleRange] = set()
    for (kind, proto, cidr), ports in groups.items():
        run: list[int] = []
        for port in sorted(ports):
            if run and port != run[-1] + 1:
                out.add(RuleRange(kind, proto, run[0], run[-1], cidr))
                run = []
            run.append(port)
        if run:
            out.add(RuleRange(kind, proto, run[0], run[-1], cidr))
    return out


def expand(ranges: Iterable[RuleRange]) -> set[Point]:
    return {Point(r.kind, r.protocol, port, r.cidr) for r in ranges for port in r.ports()}


def covers(cidr: str, inner: Sequence[str]) -> bool:
    """Whether ``cidr`` contains every network of ``inner`` (of the same IP version)."""
    return _covers(cidr, tuple(inner))


@functools.lru_cache(maxsize=4096)
def _covers(cidr: str, inner: tuple[str, ...]) -> bool:
    """(Cached: every plan of the older node-rule model asks it for every target group of the
    cluster, with the same few CIDRs.)"""
    outer = ipaddress.ip_network(cidr)
    nets = [ipaddress.ip_network(c) for c in inner]
    return all(n.version == outer.version and n.subnet_of(outer) for n in nets)  # type: ignore[arg-type]


def service_points(
    *,
    ports: Iterable[tuple[str, int]],
    health_ports: Iterable[int],
    source_ranges: Sequence[str],
    vpc_cidrs: Sequence[str],
) -> set[Point]:
    """What one NLB Service needs: its NodePorts from the source ranges, its health-check ports from
    the VPC CIDRs (unless a client rule already admits the VPC on that port)."""
    points: set[Point] = set()
    for proto, port in ports:
        for cidr in source_ranges:
            points.add(Point(CLIENT_RULE, proto.lower(), port, cidr))
    for port in health_ports:
        if any(
            p.kind == CLIENT_RULE and p.protocol == "tcp" and p.port == port and covers(p.cidr, vpc_cidrs)
            for p in points
        ):
            continue
        for cidr in vpc_cidrs:
            points.add(Point(HEALTH_RULE, "tcp", port, cidr))
    return points


def desired_ranges(current: set[RuleRange], service_ports: set[int], wanted: set[Point]) -> set[RuleRange]:
    """Current ranges with the Service's ports replaced by what it wants now."""
    kept = {p for p in expand(current) if p.port not in service_ports}
    return merge(kept | wanted)


@dataclass(frozen=True)
class RuleConfig:
    """How wanted points become rules (the ``node_security_group_rules`` settings)."""

    mode: RuleMode = "auto"
    budget: int = 50
    lo: int = 30000
    hi: int = 32767

    def is_range(self, r: RuleRange) -> bool:
        return (r.from_port, r.to_port) == (self.lo, self.hi)

    def in_range(self, p: Point) -> bool:
        return self.lo <= p.port <= self.hi


def range_keys(points: Iterable[Point], cfg: RuleConfig) -> set[Key]:
    """Which (purpose, protocol, CIDR) keys open the whole NodePort range instead of exact ports.

    Deterministic from the set of points, so every Service's plan renders the same rules."""
    by_key: dict[Key, set[Point]] = defaultdict(set)
    for p in points:
        if cfg.in_range(p):
            by_key[p.key].add(p)
    if cfg.mode == "ports":
        return set()
    if cfg.mode == "nodeport-range":
        return set(by_key)
    counts = {k: len(merge(pts)) for k, pts in by_key.items()}
    outside = len(merge(p for p in points if not cfg.in_range(p)))
    total = sum(counts.values()) + outside
    chosen: set[Key] = set()
    for k in sorted(counts, key=lambda k: (-counts[k], k)):
        if total <= cfg.budget or counts[k] <= 1:
            break
        chosen.add(k)
        total -= counts[k] - 1
    return chosen


def render(points: Iterable[Point], cfg: RuleConfig) -> set[RuleRange]:
    """The rules for a set of wanted points: whole-range rules for the keys of :func:`range_keys`,
    merged exact ports for the rest (and for any port outside the configured range)."""
    pts = set(points)
    ranged = range_keys(pts, cfg)
    out = {RuleRange(k[0], k[1], cfg.lo, cfg.hi, k[2]) for k in ranged}
    out |= merge(p for p in pts if p.key not in ranged or not cfg.in_range(p))
    # A health rule identical to a client rule adds nothing.
    client = {(r.protocol, r.from_port, r.to_port, r.cidr) for r in out if r.kind == CLIENT_RULE}
    return {
        r for r in out if r.kind == CLIENT_RULE or (r.protocol, r.from_port, r.to_port, r.cidr) not in client
    }


@dataclass(frozen=True)
class GroupDelta:
    desired: frozenset[RuleRange]
    add: tuple[RuleRange, ...]
    remove: tuple[RuleRange, ...]

    def empty(self) -> bool:
        return not self.add and not self.remove


def group_delta(
    ours: set[RuleRange],
    foreign: set[tuple[str, int, int, str]],
    own_ports: set[int],
    wanted: set[Point],
    hidden: set[Point],
    cfg: RuleConfig,
    orphans: set[Point] | frozenset[Point] = frozenset(),
) -> GroupDelta:
    """One Service's change to one group's lbprov rules.

    ``ours``: the group's lbprov rules now; ``own_ports``: every port the Service owns (it may remove
    those); ``wanted``: its points; ``hidden``: other Services' points (from the target groups),
    used only for keys whose range rule exists now (an exact rule shows its points itself);
    ``orphans``: exact points that no target group of the cluster wants (see orphan_points)."""
    ranged_now = {r.key for r in ours if cfg.is_range(r)}
    exact = {r for r in ours if not cfg.is_range(r)}
    points = {p for p in expand(exact) if p.port not in own_ports and p not in orphans} | wanted
    points |= {p for p in hidden if p.key in ranged_now}
    desired = render(points, cfg)
    add = tuple(
        r for r in sorted(desired - ours) if (r.protocol, r.from_port, r.to_port, r.cidr) not in foreign
    )
    return GroupDelta(frozenset(desired), add, tuple(sorted(ours - desired)))


#: The source-ranges tag value of a list too long to record. ``*`` (used before) is not a valid tag
#: value character; both read back as "not recorded".
SOURCE_RANGES_UNRECORDED = "unrecorded"


def source_ranges_tag(source_ranges: Sequence[str]) -> str:
    """The value of the target-group tag that records a Service's source CIDRs (who wants a range
    rule). Tag values are at most 256 characters: a longer list is recorded as unknown."""
    value = " ".join(sorted(set(source_ranges)))
    return value if len(value) <= 256 else SOURCE_RANGES_UNRECORDED


@dataclass(frozen=True)
class TargetGroupFacts:
    """What a target group tells about the points its Service wants."""

    uid: str
    protocol: str  # TCP, UDP, TCP_UDP, TLS
    port: int
    health_port: str  # "traffic-port" or a number
    health_node_port: int | None
    source_ranges: tuple[str, ...] | None  # None: not recorded


def points_of_target_groups(
    groups: Iterable[TargetGroupFacts], vpc_cidrs: Sequence[str], ranged_now: set[Key]
) -> set[Point]:
    """The points each Service wants, recomputed from its target groups as its plan did.

    A group without a recorded source-ranges tag is assumed to want its port from every key now
    opened as a range (conservative: it never loses access)."""
    by_uid: dict[str, list[TargetGroupFacts]] = defaultdict(list)
    for g in groups:
        by_uid[g.uid].append(g)
    out: set[Point] = set()
    for tgs in by_uid.values():
        own = {g.port for g in tgs} | {g.health_node_port for g in tgs if g.health_node_port}
        ports: list[tuple[str, int]] = []
        health: set[int] = set()
        for g in tgs:
            protos = (
                ("TCP", "UDP") if g.protocol == "TCP_UDP" else ("UDP",) if g.protocol == "UDP" else ("TCP",)
            )
            ports.extend((p, g.port) for p in protos)
            hp = (
                g.port
                if g.health_port == "traffic-port"
                else int(g.health_port)
                if g.health_port.isdigit()
                else 0
            )
            if hp in own:
                health.add(hp)
        recorded = [g.source_ranges for g in tgs if g.source_ranges is not None]
        if len(recorded) == len(tgs):
            sources = sorted({c for r in recorded for c in r})
            out |= service_points(
                ports=ports, health_ports=sorted(health), source_ranges=sources, vpc_cidrs=vpc_cidrs
            )
            continue
        for kind, proto, cidr in ranged_now:
            out |= {Point(kind, proto, port, cidr) for p, port in ports if p.lower() == proto}
            if kind == HEALTH_RULE:
                out |= {Point(kind, "tcp", port, cidr) for port in health}
    return out


def orphan_points(
    ours: set[RuleRange], facts: Iterable[TargetGroupFacts], vpc_cidrs: Sequence[str], cfg: RuleConfig
) -> set[Point]:
    """The points of a group's exact lbprov rules that no target group of the cluster wants: rules
    left behind by a race (an apply re-authorising a deleted Service's ports from a stale listing)
    or a crash. Recovered from the cloud's state alone: ``facts`` are every NLB target group of the
    cluster (whatever identity it carries: another same-named cluster's wish is kept). A Service
    whose target groups do not record their source ranges keeps its ports from every CIDR; health
    points are judged only when the VPC's CIDRs are known."""
    exact = {r for r in ours if not cfg.is_range(r)}
    if not exact:
        return set()
    by_uid: dict[str, list[TargetGroupFacts]] = defaultdict(list)
    for g in facts:
        by_uid[g.uid].append(g)
    wanted: set[Point] = set()
    unknown: set[int] = set()
    for tgs in by_uid.values():
        if all(g.source_ranges is not None for g in tgs):
            wanted |= points_of_target_groups(tgs, vpc_cidrs, set())
        else:
            unknown |= {g.port for g in tgs} | {g.health_node_port for g in tgs if g.health_node_port}
    return {
        p
        for p in expand(exact)
        if p.port not in unknown and p not in wanted and (p.kind != HEALTH_RULE or vpc_cidrs)
    }
